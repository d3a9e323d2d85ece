"""``tf.function`` return values compared with TensorFlow's: a function that returns nothing (a training step
that only applies gradients, a function that only prints) gives ``None``, and ``None`` leaves, dicts and
Python numbers come back in the structure TensorFlow gives (before, a function with nothing to compute built
an empty program onnxruntime refused to load)."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf

keras = tf.keras


def _functions(fw):
    """The same functions written against ``fw`` (onnxforge or TensorFlow)."""
    def nothing(x):
        pass

    def none():
        return None

    def nones(x):
        return (None, [None, None])

    def mixed(x):
        return {"b": None, "a": x * 2.0, "c": (None, x + 1.0, 3, 0.5, True)}

    return {name: fw.function(f) for name, f in
            (("nothing", nothing), ("none", none), ("nones", nones), ("mixed", mixed))}


def _plain(tree):
    """Tensors as numpy (value and dtype), the structure kept."""
    if isinstance(tree, dict):
        return {k: _plain(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_plain(v) for v in tree)
    return tree if tree is None else np.asarray(tree)


def _assert_same(got, want):
    assert type(got) is type(want), (got, want)
    if isinstance(want, dict):
        assert list(got) == list(want)
        for k in want:
            _assert_same(got[k], want[k])
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            _assert_same(g, w)
    elif want is not None:
        assert got.dtype == want.dtype, (got.dtype, want.dtype)
        np.testing.assert_allclose(got, want)


@pytest.mark.parametrize("name", ["nothing", "none", "nones", "mixed"])
def test_returns_match_tensorflow(name):
    real_tf = pytest.importorskip("tensorflow")
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    args = () if name == "none" else (x,)
    ours = _functions(tf)[name]
    want = _plain(_functions(real_tf)[name](*args))
    for _ in range(2):   # the traced call and the cached one
        _assert_same(_plain(ours(*args)), want)


def test_train_step_without_return_applies_gradients():
    """keras.io's GAN and custom-loop examples: a step that only applies gradients returns None and trains."""
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    optimizer = keras.optimizers.SGD(learning_rate=0.1)
    rng = np.random.default_rng(0)
    x, y = rng.random((8, 4), dtype=np.float32), rng.random((8, 2), dtype=np.float32)

    @tf.function
    def train_step(xb, yb):
        with tf.GradientTape() as tape:
            loss = keras.losses.mean_squared_error(yb, model(xb, training=True))
        grads = tape.gradient(loss, model.trainable_weights)
        optimizer.apply_gradients(zip(grads, model.trainable_weights))

    kernel, bias = (np.array(w) for w in model.get_weights())
    assert train_step(x, y) is None
    # The loss is per sample (8,): the tape sums it, and each sample's mean over 2 outputs halves 2 * err.
    err = x @ kernel + bias - y
    np.testing.assert_allclose(model.get_weights()[0], kernel - 0.1 * x.T @ err, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.get_weights()[1], bias - 0.1 * err.sum(0), rtol=1e-5, atol=1e-6)


def test_print_only_function_traces_once():
    traces = []

    @tf.function
    def log(x):
        traces.append(x.shape)

    x = np.ones((2, 2), np.float32)
    assert log(x) is None and log(x) is None
    assert len(traces) == 1
