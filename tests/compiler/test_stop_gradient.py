"""``stop_gradient`` holds wherever onnxforge differentiates: ``fit``'s one-session step, the step sharded over
the cores, an eager ``GradientTape`` and one inside a custom ``train_step`` (TensorFlow's semantics: no gradient
flows into what produced the stopped value)."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf
from onnxforge import keras


def _frozen_by_stop_gradient(monkeypatch, shards: int) -> tuple[float, float]:
    monkeypatch.setenv("ONNXFORGE_CORE_SHARDS", str(shards))
    inputs = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(4, 3, name="upstream")(inputs)
    h = keras.layers.Lambda(keras.ops.stop_gradient)(h)
    h = keras.layers.Conv2D(4, 3, name="downstream")(h)
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(h)))
    model.compile(optimizer="sgd", loss="mse")
    before = [model.get_layer(n).get_weights()[0].copy() for n in ("upstream", "downstream")]
    rng = np.random.default_rng(0)
    model.fit(rng.random((128, 8, 8, 1), np.float32), rng.random((128, 1), np.float32), batch_size=128, verbose=0)
    if shards > 1:
        assert model._shard_steps[1].get(shards) is not None, "the step was expected to run sharded"
    return tuple(float(np.abs(model.get_layer(n).get_weights()[0] - w).max())
                 for n, w in zip(("upstream", "downstream"), before))


@pytest.mark.parametrize("shards", [1, 2])
def test_fit_does_not_train_what_feeds_a_stop_gradient(monkeypatch, shards):
    upstream, downstream = _frozen_by_stop_gradient(monkeypatch, shards)
    assert upstream == 0.0
    assert downstream > 0.0


def test_eager_tape_sees_a_stopped_value_as_a_constant():
    x, y = tf.Variable(3.0), tf.Variable(2.0)
    with tf.GradientTape() as tape:
        z = x * x + tf.stop_gradient(x * y)
    gx, gy = tape.gradient(z, [x, y])
    assert float(gx) == 6.0 and gy is None            # TensorFlow: [6.0, None]
    dense = keras.layers.Dense(2)
    ones = np.ones((1, 3), np.float32)
    with tf.GradientTape() as tape:
        out = tf.reduce_sum(keras.ops.stop_gradient(dense(ones)) * 2.0 + dense(ones))
    np.testing.assert_allclose(np.asarray(tape.gradient(out, dense.bias)), [1.0, 1.0])


def test_custom_train_step_tape_respects_stop_gradient():
    class Model(keras.Model):
        def __init__(self):
            super().__init__()
            self.a = keras.layers.Dense(2, name="a")
            self.b = keras.layers.Dense(1, name="b")

        def call(self, x):
            return self.b(self.a(x))

        def train_step(self, data):
            x, y = data
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(self.b(tf.stop_gradient(self.a(x))) - y))
            grads = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
            return {"loss": loss}

    model = Model()
    model.compile(optimizer="sgd")
    x, y = np.ones((4, 3), np.float32), np.zeros((4, 1), np.float32)
    model(x)
    before = model.a.get_weights()[0].copy()
    model.fit(x, y, verbose=0)
    np.testing.assert_array_equal(model.a.get_weights()[0], before)
