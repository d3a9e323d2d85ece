"""The loops driving a real compiled Sequential model (onnxruntime) on real data: scikit-learn's 8x8 digits."""
from __future__ import annotations

import numpy as np
import pytest

from onnxforge import layers
from onnxforge.callbacks import EarlyStopping, LearningRateScheduler
from onnxforge.datasets import digits
from onnxforge.initializers import set_random_seed
from onnxforge.models import Sequential
from onnxforge.optimizers import Adam


@pytest.fixture(scope="module")
def data():
    (x, y), (xt, yt) = digits.load_data()
    scale = lambda a: (a / 16.0).astype(np.float32)  # noqa: E731
    return scale(x[:600]), y[:600], scale(xt[:150]), yt[:150]


def _model(lr=0.01):
    set_random_seed(0)  # reproducible initial weights (Keras 3 seeding)
    model = Sequential([layers.Input((8, 8)), layers.Flatten(), layers.Dense(32, activation="relu"),
                        layers.Dense(10, activation="softmax")])
    model.compile(optimizer=Adam(lr),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"], device="cpu")
    return model


def test_fit_evaluate_predict_on_digits(data):
    x, y, xt, yt = data
    model = _model()
    history = model.fit(x, y, batch_size=64, epochs=4, validation_data=(xt, yt), verbose=0)
    assert list(history.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert history.params == {"verbose": 0, "epochs": 4, "steps": 10}  # 600 / 64 -> 9 full + 1 partial
    assert history.history["loss"][-1] < 0.6 * history.history["loss"][0]
    assert history.history["val_accuracy"][-1] > 0.6
    loss, acc = model.evaluate(xt, yt, batch_size=40, verbose=0)  # 150 = 3 * 40 + 30
    assert loss == pytest.approx(history.history["val_loss"][-1], rel=1e-5)
    assert acc == pytest.approx(history.history["val_accuracy"][-1])
    probs = model.predict(xt, batch_size=64, verbose=0)
    assert probs.shape == (150, 10) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert (probs.argmax(axis=1) == yt).mean() == pytest.approx(acc)


def test_learning_rate_scheduler_feeds_the_compiled_step(data):
    x, y, _, _ = data
    model = _model(lr=0.01)
    before = model.get_weights()
    model.fit(x, y, epochs=1, verbose=0, callbacks=[LearningRateScheduler(lambda epoch, lr: 0.0)])
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)  # Adam with lr = 0 leaves the weights alone
    model.fit(x, y, epochs=1, verbose=0)
    assert model.optimizer.learning_rate == 0.0


def test_early_stopping_restores_compiled_weights(data):
    x, y, xt, yt = data
    model = _model(lr=0.05)
    stop = EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
    history = model.fit(x, y, epochs=6, validation_data=(xt, yt), callbacks=[stop], verbose=0)
    best = int(np.argmin(history.history["val_loss"]))
    assert stop.best_epoch == history.epoch[best]
    assert model.evaluate(xt, yt, verbose=0)[0] == pytest.approx(min(history.history["val_loss"]), rel=1e-5)
