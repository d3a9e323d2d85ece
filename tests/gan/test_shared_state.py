"""One Variable per weight, shared by every compiled program that uses it: each step reads the value the
other program (or the host) left, whether the other program trains it or only reads it."""
from __future__ import annotations

import numpy as np

import onnxforge as of
from onnxforge import layers, losses, optimizers


def _models():
    shared = layers.Dense(3, name="shared")
    x = of.Input((4,), name="x")
    a = of.Model(x, shared(x), name="model_a")
    head = layers.Dense(2, name="head")
    b = of.Model(x, head(shared(x)), name="model_b")
    for model in (a, b):
        model.compile(optimizer=optimizers.SGD(0.1), loss=losses.MeanSquaredError(), device="cpu")
    return shared, head, a, b


def _sgd_a(W, c, x, t, lr=0.1):
    y = x @ W + c
    g = 2 * (y - t) / y.size
    return W - lr * x.T @ g, c - lr * g.sum(0)


def _sgd_b(W, c, V, e, x, t, lr=0.1):
    h = x @ W + c
    y = h @ V + e
    g = 2 * (y - t) / y.size
    dh = g @ V.T
    return W - lr * x.T @ dh, c - lr * dh.sum(0), V - lr * h.T @ g, e - lr * g.sum(0)


def test_two_programs_training_one_layer_alternately_equal_numpy():
    shared, head, a, b = _models()
    rng = np.random.default_rng(0)
    W, c = (w.numpy().astype(np.float64) for w in shared.weights)
    V, e = (w.numpy().astype(np.float64) for w in head.weights)
    for step in range(3):
        x = rng.normal(size=(5, 4)).astype(np.float32)
        ta, tb = rng.normal(size=(5, 3)).astype(np.float32), rng.normal(size=(5, 2)).astype(np.float32)
        a.train_on_batch(x, ta)
        W, c = _sgd_a(W, c, x, ta)
        b.train_on_batch(x, tb)
        W, c, V, e = _sgd_b(W, c, V, e, x, tb)
        if step == 1:   # a host assignment between steps is what the next program reads
            W = W * 0.5
            shared.kernel.assign(W)
        np.testing.assert_allclose(b.predict(x, verbose=0), (x @ W + c) @ V + e, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(shared.kernel.numpy(), W, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(shared.bias.numpy(), c, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(head.kernel.numpy(), V, rtol=1e-4, atol=1e-5)
    assert a.weights[0] is b.weights[0]   # one Variable object, not copies


def test_a_reading_program_sees_every_update():
    """Model c only reads the shared layer (frozen at its compile); model a trains it."""
    shared, head, a, _ = _models()
    shared.trainable = False
    x = of.Input((4,))
    c_model = of.Model(x, head(shared(x)))
    c_model.compile(optimizer=optimizers.SGD(0.1), loss=losses.MeanSquaredError(), device="cpu")
    shared.trainable = True
    rng = np.random.default_rng(1)
    xs = rng.normal(size=(6, 4)).astype(np.float32)
    for _ in range(3):
        before = shared.kernel.numpy().copy()
        a.train_on_batch(xs, rng.normal(size=(6, 3)).astype(np.float32))
        assert not np.allclose(before, shared.kernel.numpy())
        kernel = shared.kernel.numpy().copy()
        c_model.train_on_batch(xs, rng.normal(size=(6, 2)).astype(np.float32))
        np.testing.assert_array_equal(kernel, shared.kernel.numpy())     # c reads, never writes
        expected = (xs @ kernel + shared.bias.numpy()) @ head.kernel.numpy() + head.bias.numpy()
        np.testing.assert_allclose(c_model.predict(xs, verbose=0), expected, rtol=1e-4, atol=1e-5)
