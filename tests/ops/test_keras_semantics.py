"""Ops whose arguments Keras reads in a way easy to miss: a one-element ``repeats`` list broadcasts, one_hot takes
any integer (or float) indices, and the graph each builds loads in onnxruntime. Compared with Keras 3 (torch
backend) or NumPy on small inputs."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

import onnxforge.keras as ok  # noqa: E402
from onnxforge import ops  # noqa: E402

X = np.arange(6, dtype="float32").reshape(2, 3)


# ------------------------------------------------------------------------------------------ repeat
# Arrays reach the eager graph as inputs, so np.array counts exercise the counts-known-at-run-time paths.
@pytest.mark.parametrize("repeats,axis", [([2], None), ([2], 1), ((2,), -1), ([1, 0, 2], 1), (np.array([3]), 0),
                                          (np.array(2), 1), (np.array([1, 0, 2]), 1), (np.array([2, 1]), 0)])
def test_repeat_broadcasts_a_single_count_like_numpy(repeats, axis):
    np.testing.assert_array_equal(np.asarray(ops.repeat(X, repeats, axis=axis)), np.repeat(X, repeats, axis=axis))


def test_repeat_of_a_one_element_list_keeps_the_static_shape():
    inp = ok.Input((3,))
    out = ops.repeat(inp, [4], axis=1)
    assert tuple(out.shape) == (None, 12)
    model = ok.Model(inp, out)
    np.testing.assert_array_equal(model.predict(X, verbose=0), np.repeat(X, 4, axis=1))


def test_repeat_counts_of_the_wrong_length_are_an_error():
    with pytest.raises(ValueError, match="repeats of length 2"):
        ops.repeat(X, [1, 2], axis=1)


# ------------------------------------------------------------------------------------------ one_hot
@pytest.mark.parametrize("index_dtype", ["int32", "int64", "float32"])
@pytest.mark.parametrize("dtype", [None, "int32", "int64", "bool", "float64"])
def test_one_hot_matches_keras_for_index_and_output_dtypes(index_dtype, dtype):
    idx = np.array([[0, 2], [1, -1]], index_dtype)          # a negative index is an all-zero row in Keras
    want = keras.ops.convert_to_numpy(keras.ops.one_hot(idx, 3, dtype=dtype))
    got = np.asarray(ops.one_hot(idx, 3, dtype=dtype))
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_one_hot_of_int32_graph_indices_loads_in_onnxruntime():
    inp = ok.Input((4,), dtype="int32")
    floats = ok.Input((4,))
    _, top = ops.top_k(floats, 2)
    model = ok.Model([inp, floats], [ops.one_hot(inp, 5), ops.one_hot(top, 4)])
    a, b = model.predict([np.array([[1, 2, 3, 4]], "int32"), np.array([[0.1, 0.9, 0.5, 0.2]], "float32")],
                         verbose=0)
    np.testing.assert_array_equal(a, np.eye(5, dtype="float32")[[[1, 2, 3, 4]]])
    np.testing.assert_array_equal(b, np.eye(4, dtype="float32")[[[1, 2]]])


# ------------------------------------------------------------------------------------------ the graphs
def test_graphs_pass_the_full_checker_and_run():
    """repeat with run-time counts and one_hot of int32 indices, traced into one graph: ai.onnx only, valid."""
    import onnx
    import onnxruntime as ort

    from onnxforge.graph import GraphBuilder
    from onnxforge.tracing import TraceContext
    from tests.conftest import check_full

    b = GraphBuilder()
    with TraceContext(b, training=False).active():
        x = b.input("x", onnx.TensorProto.FLOAT, ("batch", 3))
        counts = b.input("counts", onnx.TensorProto.INT32, (3,))
        idx = b.input("idx", onnx.TensorProto.INT32, ("batch", 2))
        b.output(ops.repeat(x, counts, axis=1), "repeated")
        b.output(ops.one_hot(idx, 4), "hot")
    model = check_full(b.to_model())
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    idx = np.array([[0, 3], [2, -1]], "int32")
    repeated, hot = sess.run(None, {"x": X, "counts": np.array([0, 3, 1], "int32"), "idx": idx})
    np.testing.assert_array_equal(repeated, np.repeat(X, [0, 3, 1], axis=1))
    np.testing.assert_array_equal(hot, keras.ops.convert_to_numpy(keras.ops.one_hot(idx, 4)))


# ------------------------------------------------------------------------------------------ softmax axes
X3 = np.random.default_rng(0).normal(size=(2, 3, 4)).astype("float32")


@pytest.mark.parametrize("axis", [(1, 2), (0, 2), (0, 1, 2)])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_over_a_tuple_of_axes_matches_keras(name, axis):
    want = keras.ops.convert_to_numpy(getattr(keras.ops, name)(X3, axis=axis))
    np.testing.assert_allclose(np.asarray(getattr(ops, name)(X3, axis=axis)), want, rtol=1e-5, atol=1e-6)


def test_softmax_over_a_tuple_of_axes_has_torch_gradients():
    torch = pytest.importorskip("torch")
    import onnxruntime as ort

    import onnxforge as of
    from onnxforge.graph import GraphBuilder
    from onnxforge.tracing import TraceContext
    from tests.conftest import check_full

    w = np.random.default_rng(1).normal(size=X3.shape).astype("float32")
    b = GraphBuilder()
    with TraceContext(b, training=True).active():
        x = b.input("x", 1, ("batch", 3, 4))
        with of.GradientTape() as tape:
            tape.watch(x)
            loss = ops.sum(ops.softmax(x, axis=(1, 2)) * w)
        b.output(tape.gradient(loss, x), "grad")
    model = check_full(b.to_model())
    got, = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": X3})
    tx = torch.tensor(X3, dtype=torch.float64, requires_grad=True)
    (torch.softmax(tx.reshape(2, -1), -1).reshape(2, 3, 4) * torch.tensor(w, dtype=torch.float64)).sum().backward()
    np.testing.assert_allclose(got, tx.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_softmax_over_negative_axes_matches_numpy():
    e = np.exp(X3 - X3.max(axis=(1, 2), keepdims=True))   # Keras's torch backend rejects negative tuple axes
    np.testing.assert_allclose(np.asarray(ops.softmax(X3, axis=(-1, -2))), e / e.sum(axis=(1, 2), keepdims=True),
                               rtol=1e-5, atol=1e-7)
