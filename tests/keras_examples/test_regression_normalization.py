"""The "basic regression" tutorial (Auto MPG): a ``layers.Normalization(axis=-1)`` adapted to the
training features as a model's first layer, Dense layers, mean-absolute-error loss, ``validation_split``,
``EarlyStopping(restore_best_weights=True)``, ``evaluate``, and a ``.keras`` save / load round trip that
keeps the adapted statistics.

Tolerance: Keras's initial weights copied (the adapted mean and variance included), ``shuffle=False``, no
randomness in training: losses within 2% of Keras's.
"""
from __future__ import annotations

import numpy as np

from . import data as synthetic
from .harness import assert_close, run_both, workdir


def regression(keras, data, init, tmp_path):
    (train_features, train_labels), (test_features, test_labels) = data
    keras.utils.set_random_seed(19)
    normalizer = keras.layers.Normalization(axis=-1)
    normalizer.adapt(np.array(train_features))
    model = keras.Sequential([
        keras.Input(shape=(train_features.shape[1],)),
        normalizer,
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(1),
    ])
    init(model)
    model.compile(loss="mean_absolute_error", optimizer=keras.optimizers.Adam(0.01))
    early = keras.callbacks.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    history = model.fit(train_features, train_labels, validation_split=0.2, epochs=12, batch_size=32,
                        shuffle=False, callbacks=[early], verbose=0)
    test_mae = model.evaluate(test_features, test_labels, verbose=0)

    path = str(workdir(keras, tmp_path) / "dnn_model.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    np.testing.assert_allclose(reloaded.predict(test_features, verbose=0), model.predict(test_features, verbose=0),
                               rtol=1e-5, atol=1e-4)
    return {"loss": history.history["loss"][-1], "best_val_loss": min(history.history["val_loss"]),
            "test_mae": float(test_mae), "epochs_run": float(len(history.history["loss"]))}


def test_regression_normalization(tmp_path):
    x, y = synthetic.tabular_regression(500)
    data = (x[:400], y[:400]), (x[400:], y[400:])
    want, got = run_both(regression, data, copy_weights=True, tmp_path=tmp_path)
    assert_close(want, got, rtol=0.02, keys=["loss", "best_val_loss", "test_mae"])
    assert got["epochs_run"] == want["epochs_run"]
    assert want["test_mae"] < 2.5   # the target's spread is ~9; predicting its mean scores ~7
