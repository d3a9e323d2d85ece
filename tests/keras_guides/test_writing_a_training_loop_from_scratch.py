"""keras.io's "Writing a training loop from scratch" (its TensorFlow version, on onnxforge's ``GradientTape``):
a tape per batch, ``optimizer.apply`` / ``apply_gradients``, metrics driven by hand
(``update_state`` / ``result`` / ``reset_state``), a ``tf.function`` step and ``model.losses`` from
``add_loss``. Keras runs the same loop on torch (``harness.value_and_grad``); the same weights and batches
give the same losses and accuracies.
"""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf
from tests.keras_examples.harness import apply_gradients, assert_close, fkeras, keras, run_both, value_and_grad

RNG = np.random.default_rng(0)
X_TRAIN = RNG.random((64, 12)).astype("float32")
Y_TRAIN = RNG.integers(0, 5, 64)
X_VAL = RNG.random((24, 12)).astype("float32")
Y_VAL = RNG.integers(0, 5, 24)


def _batches(x, y, size):
    return [(x[i:i + size], y[i:i + size]) for i in range(0, len(x), size)]


class _ActivityRegularization:
    """The guide's layer that adds ``1e-2 * sum(inputs)`` as a loss, built on the given ``keras``."""

    @staticmethod
    def make(keras_api):
        class ActivityRegularizationLayer(keras_api.layers.Layer):
            def call(self, inputs):
                self.add_loss(1e-2 * keras_api.ops.sum(inputs))
                return inputs

        return ActivityRegularizationLayer()


def loop(keras_api, data, init, regularize=False):
    inputs = keras_api.Input(shape=(12,), name="digits")
    x = keras_api.layers.Dense(16, activation="relu")(inputs)
    if regularize:
        x = _ActivityRegularization.make(keras_api)(x)
    x = keras_api.layers.Dense(16, activation="relu")(x)
    outputs = keras_api.layers.Dense(5, name="predictions")(x)
    model = keras_api.Model(inputs=inputs, outputs=outputs)
    init(model)
    optimizer = keras_api.optimizers.Adam(learning_rate=1e-2)
    loss_fn = keras_api.losses.SparseCategoricalCrossentropy(from_logits=True)
    train_acc = keras_api.metrics.SparseCategoricalAccuracy()
    val_acc = keras_api.metrics.SparseCategoricalAccuracy()
    out = {}
    for epoch in range(2):
        for step, (xb, yb) in enumerate(_batches(X_TRAIN, Y_TRAIN, 16)):
            def forward():
                logits = model(xb, training=True)
                loss = loss_fn(yb, logits)
                if regularize:
                    loss = loss + sum(model.losses)
                return loss, logits

            (loss, logits), grads = value_and_grad(keras_api, forward, model.trainable_weights)
            apply_gradients(keras_api, optimizer, grads, model.trainable_weights)
            train_acc.update_state(yb, logits)
            out[f"loss_{epoch}_{step}"] = float(keras_api.ops.convert_to_numpy(loss))
        out[f"train_acc_{epoch}"] = float(keras_api.ops.convert_to_numpy(train_acc.result()))
        train_acc.reset_state()
        for xb, yb in _batches(X_VAL, Y_VAL, 8):
            val_acc.update_state(yb, model(xb, training=False))
        out[f"val_acc_{epoch}"] = float(keras_api.ops.convert_to_numpy(val_acc.result()))
        val_acc.reset_state()
    return out


def test_gradient_tape_loop_with_metrics_matches_keras():
    want, got = run_both(loop, None, copy_weights=True)
    assert_close(want, got, rtol=2e-4, atol=1e-6)


def test_losses_added_in_the_forward_pass_join_the_loop_as_in_keras():
    want, got = run_both(loop, None, copy_weights=True, regularize=True)
    assert_close(want, got, rtol=2e-4, atol=1e-6)


def test_tf_function_step_gives_the_eager_loop_numbers():
    """The guide's ``@tf.function`` train and test steps compute what the eager loop does."""
    def build():
        inputs = fkeras.Input(shape=(12,))
        x = fkeras.layers.Dense(16, activation="relu")(inputs)
        model = fkeras.Model(inputs, fkeras.layers.Dense(5)(x))
        model.set_weights([np.random.default_rng(3).normal(0, 0.3, w.shape).astype("float32")
                           for w in model.get_weights()])
        return model, fkeras.optimizers.Adam(1e-2), fkeras.metrics.SparseCategoricalAccuracy()

    loss_fn = fkeras.losses.SparseCategoricalCrossentropy(from_logits=True)
    results = []
    for compiled in (False, True):
        model, optimizer, acc = build()

        def train_step(x, y):
            with tf.GradientTape() as tape:
                logits = model(x, training=True)
                loss_value = loss_fn(y, logits)
            grads = tape.gradient(loss_value, model.trainable_weights)
            optimizer.apply(grads, model.trainable_weights)
            acc.update_state(y, logits)
            return loss_value

        step = tf.function(train_step) if compiled else train_step
        losses = [float(step(xb, yb)) for xb, yb in _batches(X_TRAIN, Y_TRAIN, 16)]
        results.append((losses, float(acc.result())))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-5)
    assert results[1][1] == pytest.approx(results[0][1])


def test_metric_variables_are_tensors_with_numpy_like_keras_variables():
    """``[v.numpy() for v in metric.variables]`` (the regression: onnxforge handed back bare ndarrays)."""
    got = fkeras.metrics.SparseCategoricalAccuracy()
    want = keras.metrics.SparseCategoricalAccuracy()
    for m in (got, want):
        m.update_state(np.array([1, 2, 0]), np.array([[0.1, 0.9, 0.0], [1.0, 0.0, 0.0], [0.8, 0.1, 0.1]]))
    values = [v.numpy() for v in got.variables]
    expected = [keras.ops.convert_to_numpy(v) for v in want.variables]
    np.testing.assert_allclose(values, expected)
    assert float(got.total) == pytest.approx(2.0)
    got.reset_state()
    assert [float(v.numpy()) for v in got.variables] == [0.0, 0.0]
