"""``import onnxforge as tf``: the TensorFlow tensor functions that Keras programs call around
``tf.GradientTape`` have TensorFlow's defaults (checked against NumPy's equivalents), and a train_step
written with them trains."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf
from onnxforge import keras

X = np.arange(12, dtype="float32").reshape(3, 4)


@pytest.mark.parametrize("got,want", [
    (lambda: tf.reduce_mean(X, axis=1), X.mean(1)),
    (lambda: tf.reduce_sum(X, axis=[0, 1], keepdims=True), X.sum((0, 1), keepdims=True)),
    (lambda: tf.reduce_max(X), X.max()),
    (lambda: tf.concat([X, X], axis=0), np.concatenate([X, X])),
    (lambda: tf.gather(X, [2, 0]), X[[2, 0]]),                         # axis 0 by default
    (lambda: tf.argmax(X), X.argmax(0)),                                 # axis 0 by default
    (lambda: tf.split(X, [1, 3], axis=1), np.split(X, [1], axis=1)),     # sizes, not cut indices
    (lambda: tf.split(X, 2, axis=1), np.split(X, 2, axis=1)),
    (lambda: tf.matmul(X, X, transpose_b=True), X @ X.T),
    (lambda: tf.range(2, 8, 3), np.arange(2, 8, 3)),
    (lambda: tf.clip_by_value(X, 2.0, 5.0), np.clip(X, 2, 5)),
    (lambda: tf.transpose(X, [1, 0]), X.T),
    (lambda: tf.one_hot([0, 2], 3, on_value=5.0, off_value=-1.0), np.where(np.eye(3)[[0, 2]] > 0, 5.0, -1.0)),
    (lambda: tf.zeros((2, 2)), np.zeros((2, 2))),
    (lambda: tf.constant([1.0, 2.0]).dtype, np.dtype("float32")),
    (lambda: tf.nn.softmax(X), np.exp(X) / np.exp(X).sum(-1, keepdims=True)),
    (lambda: tf.math.reduce_logsumexp(X, axis=0), np.log(np.exp(X).sum(0))),
    (lambda: tf.shape(X)[1], 4),
])
def test_tensorflow_defaults(got, want):
    out = got()
    if isinstance(want, list):
        assert len(out) == len(want)
        for a, b in zip(out, want):
            np.testing.assert_allclose(np.asarray(a), b, rtol=1e-5)
    elif isinstance(want, np.dtype):
        assert out == want
    else:
        np.testing.assert_allclose(np.asarray(out), want, rtol=1e-5)


def test_a_tensorflow_style_train_step_trains():
    """A GAN-style step: tf.shape, tf.random.uniform label noise, tf.reduce_mean and tf.GradientTape."""
    class Model(keras.Model):
        def __init__(self):
            super().__init__()
            self.net = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
            self.tracker = keras.metrics.Mean(name="loss")

        @property
        def metrics(self):
            return [self.tracker]

        def train_step(self, data):
            x, y = data
            noise = 0.01 * tf.random.uniform(tf.shape(y))
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(self.net(x) - (y + noise)))
            grads = tape.gradient(loss, self.net.trainable_weights)
            self.optimizer.apply_gradients(zip(grads, self.net.trainable_weights))
            self.tracker.update_state(loss)
            return {"loss": self.tracker.result()}

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5]], "float32")
    model = Model()
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    history = model.fit(x, y, batch_size=16, epochs=5, verbose=0)
    assert history.history["loss"][-1] < 0.1 * history.history["loss"][0]
