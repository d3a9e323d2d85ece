"""Result dtypes of ops against Keras 3 (torch backend): the promotion lattice, integer ops that keep int32,
reductions over bools, int32 indices; and the symbolic dtype a functional tensor claims is the one its graph
computes (a mismatch fails only at session load)."""
from __future__ import annotations

import os

import numpy as np
import onnx
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

import onnxforge.keras as ok  # noqa: E402
from onnxforge import ops  # noqa: E402
from onnxforge.graph import np_dtype  # noqa: E402
from onnxforge.graph.dtypes import result_type  # noqa: E402

DTYPES = ["bool", "int8", "int16", "uint8", "uint16", "int32", "int64", "float16", "bfloat16", "float32", "float64"]
# Keras narrows 64-bit results to 32 bits except on TensorFlow; onnxforge keeps them, as TF and NumPy do.
_KERAS_NARROWING = {"int64": "int32", "float64": "float32", "uint64": "uint32"}


def _enum(name):
    return onnx.helper.np_dtype_to_tensor_dtype(np.dtype(name)) if name != "bfloat16" else onnx.TensorProto.BFLOAT16


def _name(enum):
    return "bfloat16" if enum == onnx.TensorProto.BFLOAT16 else np_dtype(enum).name


@pytest.mark.parametrize("a", DTYPES)
def test_result_type_is_keras_lattice(a):
    for b in DTYPES:
        want = keras.backend.result_type(a, b)
        got = _name(result_type([_enum(a), _enum(b)]))
        assert _KERAS_NARROWING.get(got, got) == want, (a, b)
    for weak in (int, float, bool):
        want = keras.backend.result_type(a, weak)
        got = _name(result_type([_enum(a)], weak=[weak]))
        assert _KERAS_NARROWING.get(got, got) == want, (a, weak)
    assert result_type([onnx.TensorProto.INT32, onnx.TensorProto.INT64]) == onnx.TensorProto.INT64


I32 = np.array([[1, 2, 3], [0, 4, 2]], "int32")
F = np.array([[0.1, 0.7, 0.3], [0.9, 0.2, 0.6]], "float32")
CASES = [
    ("add", lambda o: o.add(I32, I32)), ("multiply_int", lambda o: o.multiply(I32, 2)),
    ("multiply_float", lambda o: o.multiply(I32, 0.5)), ("floor_divide", lambda o: o.floor_divide(I32, 2)),
    ("matmul", lambda o: o.matmul(I32, I32.T)), ("power", lambda o: o.power(I32, 2)),
    ("full_like", lambda o: o.full_like(I32, 2)), ("argmax", lambda o: o.argmax(F, axis=-1)),
    ("argmin_flat", lambda o: o.argmin(F)), ("sum_bool", lambda o: o.sum(F > 0.5, axis=-1)),
    ("sum_int8", lambda o: o.sum(I32.astype("int8"))), ("prod_bool", lambda o: o.prod(F > 0.05, axis=0)),
    ("max_bool", lambda o: o.max(F > 0.5, axis=1)), ("min_bool", lambda o: o.min(F > 0.5)),
    ("mean_bool", lambda o: o.mean(F > 0.5)), ("mean_int", lambda o: o.mean(I32, axis=0)),
    ("bool_plus_int", lambda o: o.add(F > 0.5, 1)), ("bool_plus_int32", lambda o: o.add(F > 0.5, I32)),
    ("where_int", lambda o: o.where(F > 0.5, I32, 0)), ("count_nonzero", lambda o: o.count_nonzero(I32, axis=0)), ("concatenate_mixed", lambda o: o.concatenate(
        [I32, I32.astype("int64")], axis=0)),
]


@pytest.mark.parametrize("fn", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_eager_result_dtype_and_values_match_keras(fn):
    want = keras.ops.convert_to_numpy(fn(keras.ops))
    got = np.asarray(fn(ops))
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_symbolic_dtypes_are_what_the_graph_computes():
    ids, x = ok.Input((3,), dtype="int32"), ok.Input((3,))
    wide = ok.Input((3,), dtype="int64")
    outs = [ops.concatenate([ids, ops.expand_dims(ops.argmax(x, axis=-1), -1)], axis=-1),
            ops.sum(x > 0.5, axis=-1), ids + wide, ops.multiply(ids, 2), ops.where(x > 0.5, ids, wide),
            ops.max(x > 0.5, axis=-1)]
    model = ok.Model([ids, x, wide], outs)
    got = model.predict([I32, F, I32.astype("int64")], verbose=0)
    assert [str(o.dtype) for o in outs] == ["int32", "int32", "int64", "int32", "int64", "bool"]
    for out, value in zip(outs, got):
        assert value.dtype == np.dtype(out.dtype)
    np.testing.assert_array_equal(got[0], np.concatenate([I32, F.argmax(-1)[:, None]], -1))
    np.testing.assert_array_equal(got[1], (F > 0.5).sum(-1))
