"""Small ONNX models for the serving and CLI tests, built with onnx.helper."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

W = (np.arange(12, dtype=np.float32).reshape(3, 4) - 5.5) / 4


def _model(nodes, inputs, outputs, initializers=(), **kw) -> onnx.ModelProto:
    g = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)], **kw)
    m.ir_version = 10
    return m


def matmul_relu(batch: str | int = "N") -> onnx.ModelProto:
    """y = Relu(x @ W): x [batch, 3] float32 -> y [batch, 4]."""
    return _model(
        [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Relu", ["m"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4])],
        [numpy_helper.from_array(W, "w")],
    )


def two_inputs() -> onnx.ModelProto:
    """y = Relu(x @ W) * scale, picked = Gather(table, ids): x [N,3], scale [N,1], ids [N] int64."""
    table = np.arange(10, dtype=np.float32).reshape(5, 2)
    return _model(
        [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Relu", ["m"], ["r"]),
         helper.make_node("Mul", ["r", "scale"], ["y"]), helper.make_node("Gather", ["table", "ids"], ["picked"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3]),
         helper.make_tensor_value_info("scale", TensorProto.FLOAT, ["N", 1]),
         helper.make_tensor_value_info("ids", TensorProto.INT64, ["N"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4]),
         helper.make_tensor_value_info("picked", TensorProto.FLOAT, ["N", 2])],
        [numpy_helper.from_array(W, "w"), numpy_helper.from_array(table, "table")],
    )


def column_sum() -> onnx.ModelProto:
    """total = ReduceSum(x, axis 0): the output has no batch axis, so requests cannot be stacked."""
    return _model(
        [helper.make_node("ReduceSum", ["x", "axes"], ["total"], keepdims=0)],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("total", TensorProto.FLOAT, [3])],
        [numpy_helper.from_array(np.array([0], np.int64), "axes")],
    )


def strings() -> onnx.ModelProto:
    """y = Identity(s): s [N, 3] string -> y [N, 3] string."""
    return _model(
        [helper.make_node("Identity", ["s"], ["y"])],
        [helper.make_tensor_value_info("s", TensorProto.STRING, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.STRING, ["N", 3])],
    )
