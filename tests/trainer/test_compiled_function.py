"""``tf.function``: the training loop of TensorFlow's guide "Writing a training loop from scratch", compiled
once per signature into an ONNX program (before, the decorator did nothing and GradientTape raised)."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf

keras = tf.keras


def _model(seed: int = 0):
    inputs = keras.Input(shape=(8,))
    x = keras.layers.Dense(16, activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def _data():
    rng = np.random.default_rng(1)
    return rng.random((64, 8), dtype=np.float32), rng.integers(0, 3, 64)


def test_guide_loop_equals_fit_step_by_step():
    """Same weights, SGD, same batches: the compiled loop's losses and weights are fit's."""
    x, y = _data()
    model, optimizer = _model(), keras.optimizers.SGD(learning_rate=0.1)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    accuracy = keras.metrics.SparseCategoricalAccuracy()
    traces = []

    @tf.function
    def train_step(xb, yb):
        traces.append(1)   # a Python side effect runs once per trace, as in TensorFlow
        with tf.GradientTape() as tape:
            logits = model(xb, training=True)
            loss_value = loss_fn(yb, logits)
        grads = tape.gradient(loss_value, model.trainable_weights)
        optimizer.apply_gradients(zip(grads, model.trainable_weights))
        accuracy.update_state(yb, logits)
        return loss_value

    losses = [float(train_step(x[i:i + 16], y[i:i + 16])) for i in range(0, 64, 16)]
    assert len(traces) == 1 and int(np.asarray(optimizer.iterations.numpy())) == 4

    reference = _model()
    reference.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss=loss_fn)
    expected, hits = [], 0
    for i in range(0, 64, 16):
        hits += int(np.sum(np.argmax(reference.predict(x[i:i + 16], verbose=0), -1) == y[i:i + 16]))
        expected.append(float(reference.train_on_batch(x[i:i + 16], y[i:i + 16])))
    np.testing.assert_allclose(losses, expected, rtol=1e-5)
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # The tracker saw every batch, scored with the weights before each update.
    np.testing.assert_allclose(float(accuracy.result()), hits / 64, rtol=1e-6)


def test_new_shapes_retrace_and_results_keep_their_structure():
    w = tf.Variable(np.ones(3, np.float32), name="w_retrace")
    traces = []

    @tf.function
    def step(x, scale=2.0):
        traces.append(x.shape)
        return {"sum": tf.reduce_sum(w * x) * scale, "pair": (x * 0.0, 7)}

    out = step(np.ones(3, np.float32))
    assert float(out["sum"]) == 6.0 and out["pair"][1] == 7 and out["pair"][0].shape == (3,)
    step(np.ones(3, np.float32) * 2)
    assert len(traces) == 1
    assert float(step(np.ones((2, 3), np.float32))["sum"]) == 12.0 and len(traces) == 2
    assert float(step(np.ones(3, np.float32), scale=1.0)["sum"]) == 3.0 and len(traces) == 3


def test_inlined_inside_a_trace_and_eager_switch():
    calls = []

    @tf.function
    def double(x):
        calls.append(1)
        return x * 2

    tf.config.run_functions_eagerly(True)
    try:
        double(np.ones(2, np.float32))
        double(np.ones(2, np.float32))
        assert len(calls) == 2   # plain Python on every call
    finally:
        tf.config.run_functions_eagerly(False)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Lambda(lambda t: double(t))])
    np.testing.assert_allclose(model.predict(np.ones((1, 2), np.float32), verbose=0), [[2.0, 2.0]])


def test_tape_in_a_function_run_eagerly_records_eagerly():
    w = tf.Variable(np.array([1.0, 2.0], np.float32), name="w_eager_switch")

    @tf.function
    def grad(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(w * x)
        return tape.gradient(loss, w)

    tf.config.run_functions_eagerly(True)
    try:
        np.testing.assert_allclose(grad(np.array([3.0, 4.0], np.float32)), [3.0, 4.0])
    finally:
        tf.config.run_functions_eagerly(False)
    np.testing.assert_allclose(grad(np.array([3.0, 4.0], np.float32)), [3.0, 4.0])
