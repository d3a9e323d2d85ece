"""Python operators and indexing on graph values: NumPy's results and NumPy's shapes, known while tracing."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from onnxforge.graph import GraphBuilder
from tests.conftest import check_full

F = onnx.TensorProto.FLOAT
I64 = onnx.TensorProto.INT64


def _run(fn, *arrays, symbolic_batch=True):
    """``fn`` on graph inputs shaped like ``arrays`` (leading dim symbolic); its value and traced shape."""
    b = GraphBuilder()
    xs = []
    for k, a in enumerate(arrays):
        shape = (("batch",) + a.shape[1:]) if symbolic_batch and a.ndim else a.shape
        xs.append(b.input(f"x{k}", onnx.helper.np_dtype_to_tensor_dtype(a.dtype), shape))
    y = fn(*xs)
    traced = y.shape
    b.output(y, "y")
    model = check_full(b.to_model())
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    out = sess.run(["y"], {f"x{k}": a for k, a in enumerate(arrays)})[0]
    return out, traced


def _static(traced, batch):
    return tuple(batch if d == "batch" else d for d in traced)


A = np.random.default_rng(0).normal(size=(3, 4, 5)).astype(np.float32)
B = np.random.default_rng(1).normal(size=(3, 4, 5)).astype(np.float32)
ROW = np.random.default_rng(2).normal(size=(5,)).astype(np.float32)

BINARY = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b, "div": lambda a, b: a / b,
    "radd": lambda a, b: 2.0 + a, "rsub": lambda a, b: 1.5 - a, "rmul": lambda a, b: 3.0 * a,
    "rdiv": lambda a, b: 1.0 / (a * a + 1.0), "pow": lambda a, b: abs(a) ** 1.5, "rpow": lambda a, b: 2.0 ** a,
    "neg": lambda a, b: -a, "abs": lambda a, b: abs(a), "mod": lambda a, b: a % 0.7, "rmod": lambda a, b: 3.0 % (abs(a) + 0.5),
    "floordiv": lambda a, b: a // 0.3,
}


@pytest.mark.parametrize("name", sorted(BINARY))
def test_arithmetic_matches_numpy_and_keeps_the_shape(name):
    fn = BINARY[name]
    out, traced = _run(fn, A, B)
    expected = fn(A, B)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert traced == ("batch", 4, 5)


@pytest.mark.parametrize("fn", [lambda a, r: a + r, lambda a, r: r * a, lambda a, r: a - a[:, :1]])
def test_broadcast_shapes(fn):
    out, traced = _run(fn, A, ROW, symbolic_batch=False)
    assert out.shape == fn(A, ROW).shape and traced == out.shape
    np.testing.assert_allclose(out, fn(A, ROW), rtol=1e-6)


def test_comparisons_are_bool_and_shaped():
    for fn in (lambda a, b: a > b, lambda a, b: a <= 0.0, lambda a, b: 0.0 < a, lambda a, b: a >= b):
        out, traced = _run(fn, A, B)
        assert out.dtype == np.bool_ and traced == ("batch", 4, 5)
        np.testing.assert_array_equal(out, fn(A, B))


def test_matmul_shapes():
    w = np.random.default_rng(3).normal(size=(5, 2)).astype(np.float32)
    out, traced = _run(lambda a, c: a @ c, A, w, symbolic_batch=False)
    np.testing.assert_allclose(out, A @ w, rtol=1e-5)
    assert traced == (3, 4, 2)
    out, traced = _run(lambda a, c: a @ c, w.T.copy(), A[0].T.copy(), symbolic_batch=False)
    assert traced == out.shape == (2, 4)
    out, traced = _run(lambda a: w.T @ a, A[0].T.copy(), symbolic_batch=False)   # ndarray @ value
    assert traced == out.shape == (2, 4)
    np.testing.assert_allclose(out, w.T @ A[0].T, rtol=1e-5)
    v = np.ones(5, np.float32)
    out, traced = _run(lambda a, c: a @ c, A, v, symbolic_batch=False)
    assert traced == out.shape == (3, 4)


def test_integer_floor_division_and_modulo_follow_python():
    x = np.array([-7, -3, 0, 5, 9], np.int64)
    for fn in (lambda a: a // 3, lambda a: a % 3, lambda a: a // -2, lambda a: a % -4, lambda a: 17 // (a * a + 1)):
        out, _ = _run(fn, x, symbolic_batch=False)
        np.testing.assert_array_equal(out, fn(x))


def test_int_tensor_with_python_float_becomes_float_and_true_division_of_ints():
    x = np.array([1, 2, 3], np.int64)
    out, _ = _run(lambda a: a * 0.5, x, symbolic_batch=False)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, x * 0.5)
    out, _ = _run(lambda a: a / 2, x, symbolic_batch=False)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, x / 2)


def test_mixed_float_precisions_promote_to_the_wider():
    half = A.astype(np.float16)
    out, _ = _run(lambda a, b: a + b, half, B)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, half.astype(np.float32) + B, rtol=1e-6)


KEYS = [
    (slice(None), 0), (Ellipsis, 1), (slice(None), slice(1, 3)), (slice(None), slice(None, None, -1)),
    (slice(None), None, -1), (Ellipsis, slice(1, None, 2)), (slice(None), -1, slice(None, 2)),
    (slice(None), 1, 2), (slice(None), slice(-3, -1), None), (Ellipsis, None), (slice(None), slice(3, 0, -2)),
    (slice(1, None),), (0,), (-1, 2), (slice(None), [0, 2]), (Ellipsis, np.array([4, 0, 1])),
]


@pytest.mark.parametrize("key", KEYS, ids=[repr(k) for k in KEYS])
def test_indexing_matches_numpy(key):
    out, traced = _run(lambda a, b: a[key], A, B)
    expected = A[key]
    np.testing.assert_array_equal(out, expected)
    assert len(traced) == expected.ndim
    for got, want in zip(traced, expected.shape):
        assert got == want or (got == "batch" and want == 3) or got is None


def test_full_slices_keep_symbolic_dims():
    _, traced = _run(lambda a, b: a[:, 1:3], A, B)
    assert traced == ("batch", 2, 5)
    _, traced = _run(lambda a, b: a[..., None], A, B)
    assert traced == ("batch", 4, 5, 1)


def test_tensor_indices_and_bounds():
    b = GraphBuilder()
    x = b.input("x", F, ("batch", 4, 5))
    i = b.input("i", I64, ())
    y = x[:, i]
    assert y.shape == ("batch", 5)
    z = x[:, 1:i]
    assert z.shape == ("batch", None, 5)
    b.output(y, "y")
    b.output(z, "z")
    sess = ort.InferenceSession(check_full(b.to_model()).SerializeToString(), providers=["CPUExecutionProvider"])
    y_, z_ = sess.run(["y", "z"], {"x": A, "i": np.array(3, np.int64)})
    np.testing.assert_array_equal(y_, A[:, 3])
    np.testing.assert_array_equal(z_, A[:, 1:3])


def test_bad_indices_are_clear_errors():
    b = GraphBuilder()
    x = b.input("x", F, ("batch", 4))
    with pytest.raises(IndexError, match="out of bounds for axis 1 with size 4"):
        x[:, 4]
    with pytest.raises(IndexError, match="Too many indices"):
        x[:, 0, 0]
    with pytest.raises(IndexError, match="single ellipsis"):
        x[..., ...]
    with pytest.raises(TypeError, match="valid indices"):
        x["a"]
    with pytest.raises(IndexError, match="Boolean-mask"):
        x[:, np.array([True, False, True, True])]


def test_bool_tensors_promote_like_keras():
    out, _ = _run(lambda a, b: (a > 0.0) * 1.5, A, B)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, (A > 0) * 1.5)
    out, _ = _run(lambda a, b: (a > 0.0) + 1, A, B)
    assert out.dtype == np.int32                     # keras.ops.add(bool_tensor, 1): int32
    np.testing.assert_array_equal(out, (A > 0) + 1)
    out, _ = _run(lambda a, b: (a > 0.0) * b, A, B)
    assert out.dtype == np.float32


def test_equality_is_elementwise_with_tensors_numbers_and_arrays():
    """``y_true != 0`` in a loss must be a bool tensor: an identity ``==`` made masks constant True."""
    a = A.copy()
    a[:, 0] = B[:, 0]
    cases = (lambda x, y: x == y, lambda x, y: x != y, lambda x, y: x == 0.5, lambda x, y: 0.0 != x,
             lambda x, y: x == ROW, lambda x, y: ROW != x)
    for fn in cases:
        out, traced = _run(fn, a, B)
        assert out.dtype == np.bool_ and traced == ("batch", 4, 5)
        np.testing.assert_array_equal(out, fn(a, B))
    ints, _ = _run(lambda x: x == 2.0, np.arange(6, dtype=np.int64).reshape(2, 3))   # promoted like `>`
    np.testing.assert_array_equal(ints, np.arange(6).reshape(2, 3) == 2)


def test_values_hash_by_identity_and_compare_with_non_tensors_by_identity():
    b = GraphBuilder()
    x = b.input("x", F, ("batch", 3))
    y = b.input("y", F, ("batch", 3))
    table = {x: 1, y: 2}
    assert table[x] == 1 and table[y] == 2 and len({x, y, x}) == 2
    assert (x == None) is False and (x != None) is True and (x == "x") is False  # noqa: E711
    assert x in [x] and x in {x, y}


def test_ndim_and_transpose():
    out, traced = _run(lambda x: x.T, A)
    np.testing.assert_array_equal(out, A.T)
    assert traced == (5, 4, "batch")
    b = GraphBuilder()
    assert b.input("x", F, ("batch", 3)).ndim == 2 and b.input("u", F, None).ndim is None
