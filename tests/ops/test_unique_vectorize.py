"""``ops.unique`` against Keras 3 on TensorFlow (a child process) and NumPy, eagerly and traced into a graph that
passes the full checker; ``ops.vectorize`` against ``numpy.vectorize``, eagerly and traced; their errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from onnxforge import ops
from onnxforge.eager.executor import op_array
from onnxforge.graph import GraphBuilder, onnx_dtype
from onnxforge.tracing import TraceContext

from ..conftest import check_full
from . import unique_vectorize_cases as cases
from tests import tf_server

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def keras_tf(tmp_path_factory):
    pytest.importorskip("tensorflow")
    path = tmp_path_factory.mktemp("unique") / "ref.npz"
    tf_server.run(["-m", "tests.ops.unique_vectorize_cases", str(path)], cwd=ROOT, env={"PYTHONPATH": str(ROOT)},
                  check=True, timeout=300)
    return dict(np.load(path))


def _traced(fn, *arrays):
    """``fn`` traced on graph inputs shaped like ``arrays``, checked, and run by onnxruntime."""
    b = GraphBuilder()
    with TraceContext(b, training=False).active():
        xs = [b.input(f"x{k}", onnx_dtype(a.dtype), a.shape) for k, a in enumerate(arrays)]
        out = fn(*xs)
    outs = out if isinstance(out, tuple) else (out,)
    for k, v in enumerate(outs):
        b.output(v, f"y{k}")
    model = check_full(b.to_model())
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {f"x{k}": a for k, a in enumerate(arrays)}), model


def test_unique_matches_keras_tensorflow(keras_tf):
    ours = cases.unique_results(ops)
    assert set(ours) == set(keras_tf)
    for key, ref in keras_tf.items():
        assert ours[key].dtype == ref.dtype and ours[key].shape == ref.shape, key
        np.testing.assert_array_equal(ours[key], ref, err_msg=key)


def test_unique_traced_matches_eager():
    for name, (x, kwargs) in cases.UNIQUE.items():
        eager = ops.unique(x, **kwargs)
        eager = eager if isinstance(eager, tuple) else (eager,)
        got, model = _traced(lambda v: ops.unique(v, **kwargs), x)
        for a, b in zip(got, eager):
            np.testing.assert_array_equal(a, b, err_msg=name)
        if "size" in kwargs:   # a fixed size is a static shape in the graph
            assert model.graph.output[0].type.tensor_type.shape.dim[kwargs.get("axis") or 0].dim_value == kwargs["size"]


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.bool_, np.float64])
def test_unique_types_onnxruntime_lacks_match_numpy(dtype):
    x = np.array([[4, 0, 4], [1, 0, 1], [4, 0, 4]]).astype(dtype)
    values, index, inverse, counts = ops.unique(x, return_index=True, return_inverse=True, return_counts=True)
    ref = np.unique(x, return_index=True, return_inverse=True, return_counts=True)
    # Eager ops compute narrow ints as int32 and float64 as float32 (onnxforge's eager convention); a graph keeps
    # the type it is given.
    assert values.dtype == op_array(x).dtype and inverse.shape == x.shape
    assert _traced(lambda v: ops.unique(v), x)[0][0].dtype == x.dtype
    for a, b in zip((values, index, inverse, counts), ref):
        np.testing.assert_array_equal(a, np.reshape(b, np.shape(a)))
    rows = ops.unique(x, axis=0)
    np.testing.assert_array_equal(rows, np.unique(x, axis=0))


def test_unique_errors():
    with pytest.raises(ValueError, match="axis"):
        ops.unique(cases.V, axis=1)
    with pytest.raises(ValueError, match="size"):
        ops.unique(cases.V, size=-1)
    with pytest.raises(TypeError, match="sorted"):
        ops.unique(cases.V, sorted="yes")


def test_vectorize_matches_numpy_eager_and_traced():
    ours, ref = cases.vectorize_cases(ops), cases.vectorize_cases(np)
    for name, (fn, args) in ours.items():
        want = ref[name][0](*args)
        want = want if isinstance(want, tuple) else (want,)
        got = fn(*args)
        got = got if isinstance(got, tuple) else (got,)
        arrays = [np.asarray(a) for a in args]
        traced, _ = _traced(fn, *arrays)
        for g, t, w in zip(got, traced, want):
            np.testing.assert_allclose(g, w, rtol=1e-6, err_msg=name)
            np.testing.assert_allclose(t, w, rtol=1e-6, err_msg=name)
            assert np.shape(g) == np.shape(w) == np.shape(t)


def test_vectorize_excluded_and_errors():
    power = ops.vectorize(lambda x, p: x ** p, excluded={1})
    x = np.arange(4, dtype=np.float32).reshape(2, 2)
    np.testing.assert_allclose(power(x, 3), np.vectorize(lambda x, p: x ** p, excluded={1})(x, 3))
    with pytest.raises(ValueError, match="pyfunc"):
        ops.vectorize(3)
    with pytest.raises(ValueError, match="signature"):
        ops.vectorize(lambda a: a, signature="(n)")
    with pytest.raises(ValueError, match="size 0"):
        ops.vectorize(lambda a: a)(np.zeros((0,), np.float32))
    b = GraphBuilder()
    with TraceContext(b, training=False).active():
        v = b.input("x", onnx.TensorProto.FLOAT, ("batch", 3))
        with pytest.raises(ValueError, match="static loop dims"):
            ops.vectorize(lambda a: a * 2.0)(v)
        rows = ops.vectorize(lambda r: ops.sum(r), signature="(n)->()")
        with pytest.raises(ValueError, match="static loop dims"):
            rows(v)
