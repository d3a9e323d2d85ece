"""The Keras functional-API guide's ticket classifier: three named inputs (title and body word ids, tag
bits), two Embedding + LSTM branches, ``layers.concatenate``, two named heads returned as a dict, a dict of
losses with ``loss_weights``, per-output metrics, and ``fit`` / ``evaluate`` / ``predict`` on dicts of
arrays keyed by input and output names.

Tolerance: Keras's initial weights copied, ``shuffle=False``, no randomness: every loss within 2% of
Keras's and the department accuracy within 0.03.
"""
from __future__ import annotations

import numpy as np

from . import data as synthetic
from .harness import assert_band, assert_close, run_both

NUM_TAGS, NUM_WORDS, NUM_DEPARTMENTS = 12, 200, 4


def multi_io(keras, data, init):
    (title_data, body_data, tags_data, priority_targets, dept_targets), test = data
    layers = keras.layers
    keras.utils.set_random_seed(13)

    title_input = keras.Input(shape=(None,), name="title")
    body_input = keras.Input(shape=(None,), name="body")
    tags_input = keras.Input(shape=(NUM_TAGS,), name="tags")
    title_features = layers.Embedding(NUM_WORDS, 16)(title_input)
    body_features = layers.Embedding(NUM_WORDS, 16)(body_input)
    title_features = layers.LSTM(16)(title_features)
    body_features = layers.LSTM(8)(body_features)
    x = layers.concatenate([title_features, body_features, tags_input])
    priority_pred = layers.Dense(1, name="priority")(x)
    department_pred = layers.Dense(NUM_DEPARTMENTS, name="department")(x)
    model = keras.Model(inputs=[title_input, body_input, tags_input],
                        outputs={"priority": priority_pred, "department": department_pred})
    init(model)
    model.compile(
        optimizer=keras.optimizers.RMSprop(3e-3),
        loss={"priority": keras.losses.BinaryCrossentropy(from_logits=True),
              "department": keras.losses.CategoricalCrossentropy(from_logits=True)},
        loss_weights={"priority": 1.0, "department": 0.2},
        metrics={"department": [keras.metrics.CategoricalAccuracy(name="acc")]},
    )
    history = model.fit({"title": title_data, "body": body_data, "tags": tags_data},
                        {"priority": priority_targets, "department": dept_targets},
                        epochs=4, batch_size=32, shuffle=False, verbose=0)
    (t_title, t_body, t_tags, t_priority, t_dept) = test
    scores = model.evaluate({"title": t_title, "body": t_body, "tags": t_tags},
                            {"priority": t_priority, "department": t_dept}, verbose=0, return_dict=True)
    predictions = model.predict({"title": t_title, "body": t_body, "tags": t_tags}, verbose=0)
    assert sorted(predictions) == ["department", "priority"], sorted(predictions)
    assert predictions["department"].shape == (len(t_title), NUM_DEPARTMENTS)
    logs = history.history
    return {"loss": logs["loss"][-1], "priority_loss": logs["priority_loss"][-1],
            "department_loss": logs["department_loss"][-1], "department_acc": logs["department_acc"][-1],
            "test_loss": scores["loss"], "test_department_acc": scores["department_acc"],
            "predicted_department_acc": float(np.mean(predictions["department"].argmax(1) == t_dept.argmax(1)))}


def test_multi_io():
    data = synthetic.tickets(700)
    train = tuple(a[:560] for a in data)
    test = tuple(a[560:] for a in data)
    want, got = run_both(multi_io, (train, test), copy_weights=True)
    assert_close(want, got, rtol=0.02, keys=["loss", "priority_loss", "department_loss", "test_loss"])
    assert_band(want, got, 0.03, ["department_acc", "test_department_acc", "predicted_department_acc"])
    assert want["test_department_acc"] > 0.6   # chance is 0.25
