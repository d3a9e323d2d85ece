"""``import onnxforge as tf``: the tf.* functions added for TensorFlow's tutorials (``tf.broadcast_to``,
``tf.tensordot``, ``tf.unique``, ``tf.math.cumprod``, ``tf.math.count_nonzero``, ``tf.linalg.det``, ...,
``tf.while_loop``, ``tf.cond``, ``tf.map_fn``, ``tf.scan``) give TensorFlow's values, dtypes and shapes,
checked against TensorFlow itself, on arrays and inside a ``tf.function``."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf

X = np.array([[1.0, -2.0, 3.0], [4.0, 5.0, -6.0]], "float32")
U = np.array([[0.3, -0.2, 0.6], [0.1, 0.5, -0.9]], "float32")
I32 = np.array([1, 1, 2, 4, 4, 4, 7, 8, 8], "int32")
SPD = np.array([[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]], "float32")
M = np.array([[2.0, 1.0, 0.0], [1.0, 4.0, 1.0], [0.0, 2.0, 3.0]], "float32")
G = np.array([[1.0, -2.0], [3.0, 0.5], [-4.0, 2.0], [0.25, 1.5], [9.0, 9.0]], "float32")


@pytest.fixture(scope="module")
def rtf():
    return pytest.importorskip("tensorflow")


def _get(root, path):
    for part in path.split("."):
        root = getattr(root, part)
    return root


CASES = [
    ("broadcast_to", (np.array([1, 2, 3], "int32"), [2, 3]), {}), ("tensordot", (X, X.T), {"axes": 1}),
    ("tensordot", (X, X), {"axes": [[0, 1], [0, 1]]}), ("repeat", (np.array([1, 2], "int32"), 2), {}),
    ("repeat", (X, [1, 2]), {"axis": 0}), ("searchsorted", (np.array([1.0, 3.0, 5.0], "float32"),
                                                            np.array([0.0, 3.0, 6.0], "float32")), {}),
    ("scatter_nd", (np.array([[1], [3], [1]], "int32"), np.array([5.0, 6.0, 1.0], "float32"), [5]), {}),
    ("tan", (U,), {}), ("sinh", (U,), {}), ("cosh", (U,), {}), ("asin", (U,), {}), ("acos", (U,), {}),
    ("atan", (U,), {}), ("asinh", (X,), {}), ("acosh", (np.abs(X) + 1,), {}), ("atanh", (U,), {}),
    ("atan2", (U, X), {}), ("math.erf", (U,), {}), ("math.erfinv", (U,), {}), ("math.expm1", (U,), {}),
    ("math.softsign", (X,), {}), ("math.softmax", (X,), {}), ("math.log_softmax", (X,), {"axis": 0}),
    ("math.cumprod", (X,), {"axis": 1}), ("math.cumprod", (X,), {"axis": 1, "exclusive": True}),
    ("math.cumprod", (X,), {"exclusive": True, "reverse": True}),
    ("math.count_nonzero", (np.array([[0, 1], [2, 0]], "int32"),), {}),
    ("math.count_nonzero", (X > 0,), {"axis": 1}), ("math.xlogy", (np.array([0.0, 2.0], "float32"),
                                                                  np.array([0.0, 3.0], "float32")), {}),
    ("math.xdivy", (np.array([0.0, 2.0], "float32"), np.array([0.0, 4.0], "float32")), {}),
    ("math.floormod", (np.array([-7, 7], "int32"), np.array([3, -3], "int32")), {}),
    ("math.mod", (X, 4.0), {}), ("math.segment_sum", (X, [0, 0]), {}),
    ("math.unsorted_segment_sum", (np.array([1.0, 2.0, 3.0], "float32"), [0, 2, 0], 3), {}),
    ("math.unsorted_segment_max", (np.array([1.0, 2.0, 3.0], "float32"), [1, 1, 0], 2), {}),
    # keras.io's GNN aggregations: an empty segment (id 3), a dropped negative id, rows of features
    *[(f"math.unsorted_segment_{kind}", (G, [0, 2, 0, 2, -1], 4), {})
      for kind in ("mean", "sqrt_n", "min", "prod", "sum", "max")],
    *[(f"math.segment_{kind}", (G, [0, 0, 2, 2, 2]), {}) for kind in ("mean", "min", "max", "prod")],
    ("math.reduce_euclidean_norm", (X,), {"axis": 1}), ("math.multiply_no_nan",
                                                        (np.array([np.inf, 2.0], "float32"),
                                                         np.array([0.0, 3.0], "float32")), {}),
    ("math.reciprocal_no_nan", (np.array([0.0, 4.0], "float32"),), {}),
    ("math.bincount", (np.array([1, 1, 3], "int32"),), {}),
    ("math.in_top_k", (np.array([2, 0], "int32"), X), {"k": 2}),
    ("linalg.det", (M,), {}), ("linalg.inv", (M,), {}), ("linalg.inv", (M,), {"adjoint": True}),
    ("linalg.solve", (M, X.T[:, :2].copy()), {}), ("linalg.cholesky", (SPD,), {}), ("linalg.logdet", (SPD,), {}),
    ("linalg.slogdet", (M,), {}), ("linalg.trace", (np.stack([M, SPD]),), {}),
    ("linalg.diag", (X,), {}), ("linalg.diag_part", (M,), {}), ("linalg.band_part", (M, 0, 1), {}),
    ("linalg.band_part", (M, -1, 0), {}), ("linalg.matvec", (M, X[0]), {}),
    ("linalg.matvec", (M, X[0]), {"transpose_a": True}), ("linalg.adjoint", (X,), {}),
    ("linalg.triangular_solve", (np.tril(M), X.T[:, :2].copy()), {}),
    ("linalg.triangular_solve", (np.triu(M), X.T[:, :2].copy()), {"lower": False}),
    ("linalg.eigvalsh", (SPD,), {}), ("linalg.pinv", (X,), {}), ("linalg.cross", (X, U), {}),
    ("linalg.einsum", ("ij,jk->ik", X, M), {}), ("linalg.tensordot", (X, M), {"axes": 1}),
]


@pytest.mark.parametrize("path,args,kwargs", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_function_matches_tensorflow(rtf, path, args, kwargs):
    got, want = _get(tf, path)(*args, **kwargs), _get(rtf, path)(*args, **kwargs)
    for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
        w = w.numpy()
        assert np.asarray(g).dtype == w.dtype and np.shape(g) == w.shape, (path, np.asarray(g).dtype, w.dtype)
        np.testing.assert_allclose(np.asarray(g), w, rtol=2e-5, atol=2e-5)


def test_factorizations_rebuild_the_matrix(rtf):
    """``qr`` / ``svd`` / ``eigh`` are unique only up to signs: compare what TensorFlow's users rebuild."""
    q, r = tf.linalg.qr(M)
    np.testing.assert_allclose(np.asarray(q) @ np.asarray(r), M, atol=1e-5)
    s, u, v = tf.linalg.svd(X)
    np.testing.assert_allclose(np.asarray(u) @ np.diag(s) @ np.asarray(v).T, X, atol=1e-4)
    np.testing.assert_allclose(s, rtf.linalg.svd(X)[0].numpy(), rtol=1e-5)
    e, vec = tf.linalg.eigh(SPD)
    np.testing.assert_allclose(np.asarray(vec) @ np.diag(e) @ np.asarray(vec).T, SPD, atol=1e-4)


def test_unique_meshgrid_and_predicates(rtf):
    y, idx = tf.unique(I32)
    ry, ridx = rtf.unique(I32)
    assert y.dtype == ry.numpy().dtype and idx.dtype == ridx.numpy().dtype
    np.testing.assert_array_equal(y, ry.numpy())
    np.testing.assert_array_equal(idx, ridx.numpy())
    for indexing in ("xy", "ij"):
        for g, w in zip(tf.meshgrid(np.arange(3), np.arange(2), indexing=indexing),
                        rtf.meshgrid(np.arange(3), np.arange(2), indexing=indexing)):
            np.testing.assert_array_equal(g, w.numpy())
    assert tf.is_tensor(tf.constant(1.0)) and tf.is_tensor(tf.Variable(1.0)) and not tf.is_tensor(np.ones(2))
    assert tf.executing_eagerly()
    seen = []

    @tf.function
    def inside(x):
        seen.append(tf.executing_eagerly())
        return x

    inside(np.ones(2, "float32"))
    assert seen == [False]


def test_control_flow_matches_tensorflow(rtf):
    def program(t):
        def cond_fn(i, x):
            return i < 5

        def body(i, x):
            return i + 1, x * 1.5

        i, x = t.while_loop(cond_fn, body, [t.constant(0), t.constant([1.0, 2.0])])
        c = t.cond(t.reduce_sum(x) > 0, lambda: x * 2.0, lambda: x - 1.0)
        m = t.map_fn(lambda row: row * row, t.constant(X))
        s = t.scan(lambda acc, v: acc + v, t.constant([1.0, 2.0, 3.0]))
        s0 = t.scan(lambda acc, v: acc * v, t.constant([1.0, 2.0, 3.0]), initializer=t.constant(2.0))
        return [i, x, c, m, s, s0]

    want = [w.numpy() for w in program(rtf)]
    for got in (program(tf), tf.function(lambda: program(tf))()):
        for g, w in zip(got, want):
            assert np.asarray(g).dtype == w.dtype
            np.testing.assert_allclose(np.asarray(g), w, rtol=1e-6)


def test_loops_and_conditions_on_traced_tensors(rtf):
    """A condition on a function's argument: cond runs one branch (an If), while_loop runs until its
    condition fails or maximum_iterations (a Loop), bounded or not."""
    def program(t, n, x):
        i, y = t.while_loop(lambda i, y: i < n, lambda i, y: (i + 1, y * 2.0), (t.constant(0), x),
                            maximum_iterations=8)
        z = t.cond(t.reduce_sum(x) > 0, lambda: x * 3.0, lambda: x - 1.0)
        return i, y, z

    for n, x in ((np.array(5, "int32"), np.array([1.0, 2.0], "float32")),
                 (np.array(20, "int32"), np.array([-1.0, 0.5], "float32"))):
        want = [w.numpy() for w in rtf.function(lambda n, x: program(rtf, n, x))(n, x)]
        got = tf.function(lambda n, x: program(tf, n, x))(n, x)
        for g, w in zip(got, want):
            assert np.asarray(g).dtype == w.dtype
            np.testing.assert_allclose(np.asarray(g), w)

    @tf.function
    def unbounded(n):
        return tf.while_loop(lambda i: i < n, lambda i: i + 1, [tf.constant(0)])

    assert [int(unbounded(np.array(n, "int32"))[0]) for n in (0, 3, 50)] == [0, 3, 50]


def test_gradient_through_a_traced_cond(rtf):
    def program(t, x):
        with t.GradientTape() as tape:
            tape.watch(x)
            y = t.cond(t.reduce_sum(x) > 0, lambda: t.reduce_sum(x * x), lambda: t.reduce_sum(-x))
        return tape.gradient(y, x)

    for x in (np.array([1.0, 2.0], "float32"), np.array([-1.0, -2.0], "float32")):
        want = rtf.function(lambda x: program(rtf, x))(x).numpy()
        np.testing.assert_allclose(tf.function(lambda x: program(tf, x))(x), want)


def test_unsupported_arguments_raise():
    with pytest.raises(TypeError, match="true_fn"):
        tf.cond(True, lambda: 1.0)
    with pytest.raises(NotImplementedError, match="num_rows"):
        tf.linalg.diag(X, num_rows=4)


def test_scalar_elements_hash_by_value_as_numpy_scalars_do():
    # Indexing a tensor gives a 0-d tensor now (``.numpy()`` works); it must still serve as a set member and a
    # dict key, as the numpy scalar did: ``set(np.unique(labels))``, ``counts[label] += 1``.
    from onnxforge.eager_tensor import EagerTensor

    t = EagerTensor(np.array([2, 0, 2, 1], np.int64))
    assert isinstance(t[0], EagerTensor)
    assert set(np.unique(t)) == {0, 1, 2}
    counts: dict = {}
    for label in t:
        counts[label] = counts.get(label, 0) + 1
    assert counts == {2: 2, 0: 1, 1: 1}
    with pytest.raises(TypeError, match="only scalars hash"):
        hash(t)
