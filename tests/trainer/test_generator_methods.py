"""tf.keras 2's fit_generator / evaluate_generator / predict_generator forward to fit / evaluate / predict."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf

RNG = np.random.default_rng(0)
X = RNG.normal(size=(12, 3)).astype(np.float32)
Y = RNG.normal(size=(12, 1)).astype(np.float32)


class Batches(tf.keras.utils.Sequence):
    def __init__(self):
        super().__init__()
        self.epochs_ended = 0

    def __len__(self):
        return 3

    def __getitem__(self, i):
        return X[i * 4:(i + 1) * 4], Y[i * 4:(i + 1) * 4]

    def on_epoch_end(self):
        self.epochs_ended += 1


def _model():
    tf.keras.utils.set_random_seed(1)
    model = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(2, activation="tanh"),
                                 tf.keras.layers.Dense(1)])
    model.compile(optimizer=tf.keras.optimizers.SGD(0.1), loss="mse", metrics=["mae"])
    return model


def test_generator_methods_equal_the_modern_calls():
    old, new = _model(), _model()
    seq_old, seq_new = Batches(), Batches()
    with pytest.warns(DeprecationWarning, match="fit_generator"):
        h_old = old.fit_generator(seq_old, steps_per_epoch=3, epochs=2, verbose=0, workers=4,
                                  use_multiprocessing=True, max_queue_size=5, shuffle=False)
    h_new = new.fit(seq_new, steps_per_epoch=3, epochs=2, verbose=0, shuffle=False)
    assert seq_old.epochs_ended == seq_new.epochs_ended >= 2
    np.testing.assert_allclose(h_old.history["loss"], h_new.history["loss"], rtol=1e-6)
    for a, b in zip(old.get_weights(), new.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    with pytest.warns(DeprecationWarning):
        got = old.evaluate_generator(Batches(), steps=3, workers=2)
    np.testing.assert_allclose(got, new.evaluate(X, Y, batch_size=4, verbose=0), rtol=1e-5)
    with pytest.warns(DeprecationWarning):
        pred = old.predict_generator(iter([X[:4], X[4:]]), steps=2)
    np.testing.assert_allclose(pred, new.predict(X, verbose=0), rtol=1e-5, atol=1e-6)


def test_fit_generator_rejects_what_fit_rejects():
    with pytest.warns(DeprecationWarning), pytest.raises(TypeError):
        _model().fit_generator(Batches(), epochs=1, verbose=0, no_such_argument=1)
