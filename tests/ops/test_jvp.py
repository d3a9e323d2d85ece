"""``keras.ops.jvp`` (``ops.linalg.jvp``): forward-mode products read off two reverse passes, compared with Keras 3's
torch backend (``torch.func.jvp``) and with float64 central differences; ``has_aux``, nested outputs, several
primals, weights read inside ``fun``, inside a model (graph ops, checker) and the argument errors. Before,
``onnxforge.keras.ops`` had no ``jvp``."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from tests.keras_oracle.common import fkeras, keras

RNG = np.random.default_rng(0)
X = RNG.normal(size=(3, 4)).astype(np.float32)
T = RNG.normal(size=(3, 4)).astype(np.float32)

FUNCTIONS = {
    "sin": lambda o: lambda a: o.sin(a),
    "tanh_gram": lambda o: lambda a: o.matmul(o.tanh(a), o.transpose(a)),
    "softmax": lambda o: lambda a: o.softmax(a * 2.0, axis=-1),
    "logsumexp_sq": lambda o: lambda a: o.logsumexp(a ** 2, axis=0),
    "where_relu": lambda o: lambda a: o.where(a > 0, o.sqrt(o.abs(a) + 1.0), o.exp(a)),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_matches_keras_torch(name):
    want_out, want_tan = keras.ops.jvp(FUNCTIONS[name](keras.ops), (keras.ops.convert_to_tensor(X),),
                                       (keras.ops.convert_to_tensor(T),))
    got_out, got_tan = fkeras.ops.jvp(FUNCTIONS[name](fkeras.ops), (X,), (T,))
    np.testing.assert_allclose(np.asarray(got_out), keras.ops.convert_to_numpy(want_out), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(got_tan), keras.ops.convert_to_numpy(want_tan), rtol=1e-4, atol=1e-5)


def _softmax(a):
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


#: The same functions in float64 NumPy, for the central differences.
REFERENCE = {
    "sin": np.sin,
    "tanh_gram": lambda a: np.tanh(a) @ a.T,
    "softmax": lambda a: _softmax(a * 2.0),
    "logsumexp_sq": lambda a: np.log(np.exp(a ** 2).sum(axis=0)),
    "where_relu": lambda a: np.where(a > 0, np.sqrt(np.abs(a) + 1.0), np.exp(a)),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_float64_central_differences(name):
    x, t = X.astype(np.float64), T.astype(np.float64)
    _, tangent = fkeras.ops.jvp(FUNCTIONS[name](fkeras.ops), (x,), (t,))
    eps = 1e-6
    numeric = (REFERENCE[name](x + eps * t) - REFERENCE[name](x - eps * t)) / (2 * eps)
    assert np.asarray(tangent).dtype == np.float64
    np.testing.assert_allclose(np.asarray(tangent), numeric, rtol=1e-6, atol=1e-7)


def test_has_aux_nested_outputs_and_several_primals():
    y = RNG.normal(size=(3, 4)).astype(np.float32)

    def fun(a, b):
        return {"p": a * b, "q": [fkeras.ops.exp(a)]}, fkeras.ops.mean(b)

    out, tangent, aux = fkeras.ops.linalg.jvp(fun, (X, y), (T, T), has_aux=True)
    np.testing.assert_allclose(np.asarray(tangent["p"]), T * y + X * T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(tangent["q"][0]), np.exp(X) * T, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(out["p"]), X * y, rtol=1e-6)
    assert float(aux) == pytest.approx(float(np.mean(y)), rel=1e-6)
    scalar = fkeras.ops.jvp(fkeras.ops.sin, (np.float32(0.1),), (np.float32(0.2),))[1]
    assert float(scalar) == pytest.approx(0.2 * np.cos(0.1), rel=1e-6)


def test_a_layer_with_weights_inside_fun():
    dense = fkeras.layers.Dense(5, activation="tanh")
    dense.build((None, 4))
    _, tangent = fkeras.ops.jvp(dense, (X,), (T,))
    kernel, bias = (np.asarray(w) for w in dense.get_weights())
    pre = X @ kernel + bias
    np.testing.assert_allclose(np.asarray(tangent), (1 - np.tanh(pre) ** 2) * (T @ kernel), rtol=1e-5, atol=1e-6)


def test_inside_a_model_as_graph_ops(tmp_path):
    inputs = fkeras.Input((4,))
    directional = fkeras.layers.Lambda(
        lambda a: fkeras.ops.jvp(lambda v: fkeras.ops.tanh(v) * v, (a,), (fkeras.ops.ones_like(a),))[1])
    model = fkeras.Model(inputs, directional(inputs))
    expected = (1 - np.tanh(X) ** 2) * X + np.tanh(X)
    np.testing.assert_allclose(model.predict(X, verbose=0), expected, rtol=1e-5, atol=1e-6)
    model.export(tmp_path / "m.onnx")
    proto = onnx.load(tmp_path / "m.onnx")
    onnx.checker.check_model(proto, full_check=True)
    assert {op.domain for op in proto.opset_import} <= {"", "ai.onnx"}


def test_errors():
    with pytest.raises(ValueError, match="one tensor per primal"):
        fkeras.ops.jvp(fkeras.ops.sin, (X, X), (T,))
    with pytest.raises(ValueError, match="primal's shape"):
        fkeras.ops.jvp(fkeras.ops.sin, (X,), (T[:2],))
    with pytest.raises(TypeError, match="tuples or lists"):
        fkeras.ops.jvp(fkeras.ops.sin, X, T)
    with pytest.raises(NotImplementedError, match="Lambda layer"):
        fkeras.ops.jvp(fkeras.ops.sin, (fkeras.Input((4,)),), (fkeras.Input((4,)),))
