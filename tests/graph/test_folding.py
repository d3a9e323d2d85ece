"""graph/folding.py: a value computed from constants only has its number while the graph is built."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from onnxforge.graph import GraphBuilder
from onnxforge.graph.folding import MAX_NODES, known_value


def test_a_size_computed_from_constants_is_known():
    b = GraphBuilder()
    ids = b.const(np.array([0, 2, 2, 1], np.int64))
    size = b.op("Add", [b.op("ReduceMax", [ids], keepdims=0), b.const(np.array(1, np.int64))])
    assert int(known_value(size)) == 3
    assert int(size) == 3 and list(range(size)) == [0, 1, 2]   # Value's conversions read it
    np.testing.assert_array_equal(np.asarray(b.op("Mul", [ids, ids])), [0, 4, 4, 1])


def test_inputs_draws_and_long_chains_have_no_value():
    b = GraphBuilder()
    x = b.input("x", onnx.TensorProto.FLOAT, (2,))
    assert known_value(b.op("Add", [x, x])) is None
    with pytest.raises(TypeError, match="needs the value of symbolic tensor"):
        float(b.op("ReduceSum", [x], keepdims=0))
    draw = b.op("RandomUniform", [], shape=(2,), dtype=onnx.TensorProto.FLOAT)
    draw.dtype = onnx.TensorProto.FLOAT
    assert known_value(b.op("Neg", [draw])) is None
    v = b.const(np.array(1.0, np.float32))
    for _ in range(MAX_NODES + 1):
        v = b.op("Neg", [v])
    assert known_value(v) is None


def test_a_float_tensor_is_no_python_integer():
    b = GraphBuilder()
    half = b.op("Div", [b.const(np.array(1.0, np.float32)), b.const(np.array(2.0, np.float32))])
    assert float(half) == 0.5
    with pytest.raises(TypeError, match="Only an integer scalar tensor"):
        range(half)
