"""Dtype policies against real Keras 3: float64 and mixed_float16 models with the same weights give Keras's
variable dtypes, output dtypes, predictions and training steps (with the dynamic loss scale)."""
from __future__ import annotations

import contextlib

import numpy as np
import pytest

from .common import copy_weights, fkeras, keras, max_diff, onnxforge

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


@contextlib.contextmanager
def policy(name: str):
    """The same global policy in Keras and onnxforge, restored afterwards."""
    keras.config.set_dtype_policy(name)
    fkeras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy("float32")
        fkeras.config.set_dtype_policy("float32")


def _mlp(K, mixed):
    inp = K.Input((6,))
    h = K.layers.Dense(8, activation="relu")(inp)
    h = K.layers.BatchNormalization()(h)
    h = K.layers.Dense(3)(h)
    out = K.layers.Activation("softmax", dtype="float32")(h) if mixed else K.layers.Activation("softmax")(h)
    return K.Model(inp, out), "sparse_categorical_crossentropy", (6,)


def _cnn(K, mixed):
    inp = K.Input((8, 8, 2))
    h = K.layers.Conv2D(4, 3, activation="relu")(inp)
    h = K.layers.MaxPooling2D()(h)
    h = K.layers.Conv2D(4, 3, padding="same")(h)
    h = K.layers.GlobalAveragePooling2D()(h)
    out = K.layers.Dense(3, dtype="float32" if mixed else None)(h)
    return K.Model(inp, out), K.losses.SparseCategoricalCrossentropy(from_logits=True), (8, 8, 2)


def _rnn(K, mixed):
    inp = K.Input((5,), dtype="int64")
    h = K.layers.Embedding(10, 4)(inp)
    h = K.layers.LSTM(5, return_sequences=True)(h)
    h = K.layers.GRU(3)(h)
    out = K.layers.Dense(3)(h)
    return K.Model(inp, out), K.losses.SparseCategoricalCrossentropy(from_logits=True), None


def _residual(K, mixed):
    inp = K.Input((4, 6))
    h = K.layers.Dense(6, activation="gelu")(inp)
    x = K.layers.LayerNormalization()(inp + h)
    x = K.layers.GlobalAveragePooling1D()(x)
    out = K.layers.Dense(3)(x)
    return K.Model(inp, out), K.losses.SparseCategoricalCrossentropy(from_logits=True), (4, 6)


ARCHS = {"mlp": _mlp, "cnn": _cnn, "rnn": _rnn, "residual": _residual}


def _data(shape, n=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 10, size=(n, 5)).astype("int64") if shape is None else \
        rng.normal(size=(n, *shape)).astype("float32")
    return x, rng.integers(0, 3, size=(n,)).astype("int64")


def _pair(arch, name):
    mixed = name.startswith("mixed")
    with policy(name):
        (k, loss_k, shape), (f, loss_f, _) = ARCHS[arch](keras, mixed), ARCHS[arch](fkeras, mixed)
    rng = np.random.default_rng(1)
    weights = []
    for w in k.weights:
        value = rng.normal(0, 0.4, tuple(w.shape))
        weights.append(np.abs(value) + 0.5 if "variance" in w.path else value)
    k.set_weights([w.astype(keras.ops.convert_to_numpy(v).dtype) for w, v in zip(weights, k.weights)])
    copy_weights(k, f)
    return k, f, loss_k, loss_f, shape


# Keras's own float64 layers keep some float32 constants (~3e-8 off a float64 reference): see
# test_float64_is_float64_end_to_end for onnxforge against numpy in float64.
TOLERANCE = {"float64": 1e-6, "mixed_float16": 2e-2}


@pytest.mark.parametrize("name", ["float64", "mixed_float16"])
@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_policy_model_matches_keras(arch, name):
    k, f, loss_k, loss_f, shape = _pair(arch, name)
    # Variable dtypes, layer dtypes, output dtypes.
    assert [str(keras.ops.convert_to_numpy(w).dtype) for w in k.weights] == [str(w.dtype) for w in f.weights]
    assert [(l.dtype_policy.name, l.compute_dtype, l.variable_dtype) for l in k.layers] == \
        [(l.dtype_policy.name, l.compute_dtype, l.variable_dtype) for l in f.layers]
    assert [t.dtype for t in k.outputs] == [t.dtype for t in f.outputs]
    x, y = _data(shape)
    pk, pf = k.predict(x, verbose=0), f.predict(x, verbose=0)
    assert pk.dtype == pf.dtype
    tol = TOLERANCE[name] if arch != "cnn" or name != "float64" else 1e-5   # float64 Conv runs in float32
    np.testing.assert_allclose(pf, pk, rtol=tol, atol=tol)
    k.compile(optimizer=keras.optimizers.SGD(0.05), loss=loss_k)
    f.compile(optimizer=fkeras.optimizers.SGD(0.05), loss=loss_f)
    assert type(k.optimizer).__name__ == type(f.optimizer).__name__
    for _ in range(2):
        lk, lf = k.train_on_batch(x, y), f.train_on_batch(x, y)
        assert lf == pytest.approx(lk, rel=tol, abs=tol)
    assert max_diff(k.get_weights(), f.get_weights()) < (tol if name == "float64" else 5e-2)
    if name == "mixed_float16":
        ks = [float(keras.ops.convert_to_numpy(v)) for v in (k.optimizer.step_counter, k.optimizer.dynamic_scale)]
        fs = [float(v.numpy()) for v in (f.optimizer.step_counter, f.optimizer.dynamic_scale)]
        assert ks == fs == [2.0, 2.0 ** 15]


def test_float64_is_float64_end_to_end():
    """A float64 MLP's predictions equal a NumPy float64 computation to rounding (1e-12)."""
    _, f, _, _, shape = _pair("mlp", "float64")
    x, _ = _data(shape)
    w = f.get_weights()
    h = np.maximum(x.astype(np.float64) @ w[0] + w[1], 0)
    gamma, beta, mean, var = w[2:6]
    h = (h - mean) / np.sqrt(var + 1e-3) * gamma + beta
    z = h @ w[6] + w[7]
    e = np.exp(z - z.max(-1, keepdims=True))
    np.testing.assert_allclose(f.predict(x, verbose=0), e / e.sum(-1, keepdims=True), rtol=1e-12, atol=1e-14)
