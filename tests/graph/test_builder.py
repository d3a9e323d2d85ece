"""The graph builder: naming, constants, pruning, typed outputs, Value arithmetic."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto

from onnxforge.graph import DEFAULT_OPSET, GraphBuilder, check_opset
from tests.conftest import check_full


def _run(model: onnx.ModelProto, **feeds):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def test_value_arithmetic_emits_nodes_with_scalar_constants_in_the_values_dtype():
    b = GraphBuilder()
    x = b.input("x", TensorProto.DOUBLE, ("batch", 2))
    y = (x * 2.0 + 1.0) / 4.0 - x
    b.output(-y, "y")
    model = check_full(b.to_model())
    assert all(t.data_type == TensorProto.DOUBLE for t in model.graph.initializer)
    xv = np.array([[1.0, 2.0], [3.0, -1.0]])
    np.testing.assert_allclose(_run(model, x=xv)[0], -((xv * 2 + 1) / 4 - xv))


def test_constants_are_deduplicated_and_names_stay_unique():
    b = GraphBuilder()
    c1, c2 = b.const([1.0, 2.0]), b.const([1.0, 2.0])
    assert c1 is c2
    assert b.const([1.0, 2.0], TensorProto.DOUBLE) is not c1
    names = {b.fresh("v") for _ in range(50)}
    assert len(names) == 50
    with pytest.raises(ValueError, match="already used"):
        b.reserve(c1.name)


def test_to_model_prunes_dead_nodes_and_initializers_and_types_outputs():
    b = GraphBuilder()
    x = b.input("x", TensorProto.FLOAT, ("n", 3))
    b.op("Exp", [x * 3.0])  # dead
    b.output(b.op("Relu", [x]), "y")
    model = check_full(b.to_model())
    assert [n.op_type for n in model.graph.node] == ["Relu", "Identity"]  # Identity names the output
    assert not model.graph.initializer
    assert model.opset_import[0].version == DEFAULT_OPSET
    out = model.graph.output[0].type.tensor_type
    assert out.elem_type == TensorProto.FLOAT and out.shape.dim[0].dim_param == "n"


def test_symbolic_values_refuse_python_truth_tests():
    b = GraphBuilder()
    x = b.input("x", TensorProto.FLOAT, (2,))
    with pytest.raises(TypeError, match="truth value of symbolic tensor 'x'"):
        if x:
            pass


def test_from_model_reads_types_and_constant_values():
    b = GraphBuilder()
    x = b.input("x", TensorProto.FLOAT, ("n", 4))
    w = b.initializer("w", np.arange(8, dtype=np.float32).reshape(4, 2))
    b.output(x @ w, "y")
    again = GraphBuilder.from_model(b.to_model())
    assert again.value("y").shape == ("n", 2)
    np.testing.assert_array_equal(again.constant_value("w"), np.arange(8).reshape(4, 2))
    assert again.constant_value("x") is None


def test_opset_range_is_checked_with_a_clear_error():
    assert check_opset(DEFAULT_OPSET) == DEFAULT_OPSET
    with pytest.raises(ValueError, match=r"opset must be an int in \[18, 24\].*Received: opset=9"):
        check_opset(9)


def test_operands_of_two_dtypes_are_an_error_where_the_op_is_built():
    """onnxruntime would refuse such a graph only at load time, far from the code that built the node."""
    b = GraphBuilder()
    i32 = b.input("a", onnx.TensorProto.INT32, (2,))
    i64 = b.input("c", onnx.TensorProto.INT64, (2,))
    for op, inputs in [("Add", [i32, i64]), ("Concat", [i32, i64]), ("Where", [b.op("Less", [i32, 0]), i32, i64])]:
        with pytest.raises(TypeError, match=r"dtypes=\['int32', 'int64'\]"):
            b.op(op, inputs, **({"axis": 0} if op == "Concat" else {}))
    assert (i32 + i64).dtype == onnx.TensorProto.INT64   # the Value operators promote, as Keras does
