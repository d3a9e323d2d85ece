"""What the row-independence analysis tracks per value (which axis carries the rows, constants, shapes) and
the op tables and small helpers its rules share."""
from __future__ import annotations

__all__ = ["CONST", "Rows", "Shape"]

from typing import TYPE_CHECKING, Any, NamedTuple

import onnx

from . import protos

if TYPE_CHECKING:  # the analyzer uses these helpers; they only name its type
    from .row_independence import _Analyzer


CONST = "const"


class Rows(NamedTuple):
    """A value carrying the batch on ``axis``."""

    axis: int


class Shape(NamedTuple):
    """A small integer tensor with known entries: ints, ``"B"`` (batch size) or ``"D"`` (row-independent)."""

    elems: tuple
    scalar: bool = False


class _Taint(Exception):
    pass


_UNARY = {
    "Abs", "Acos", "Acosh", "Asin", "Asinh", "Atan", "Atanh", "Ceil", "Celu", "Cos", "Cosh", "Elu", "Erf", "Exp",
    "Floor", "Gelu", "HardSigmoid", "HardSwish", "IsInf", "IsNaN", "LeakyRelu", "Log", "Mish", "Neg", "Not",
    "Reciprocal", "Relu", "Round", "Selu", "Shrink", "Sigmoid", "Sign", "Sin", "Sinh", "Softplus", "Softsign",
    "Sqrt", "Tan", "Tanh", "ThresholdedRelu", "BitwiseNot",
}
_BROADCAST = {
    "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Equal", "Greater", "GreaterOrEqual",
    "Less", "LessOrEqual", "And", "Or", "Xor", "Where", "PRelu", "Mod", "BitShift", "BitwiseAnd", "BitwiseOr",
    "BitwiseXor", "Clip",
}
#: Ops whose first input is NCHW-like with the batch on axis 0 and whose other inputs are parameters.
_BATCH_FIRST = {
    "Conv", "ConvTranspose", "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool",
    "InstanceNormalization", "LRN", "DepthToSpace", "SpaceToDepth", "GroupNormalization", "MaxPool",
}
_REDUCE = {"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
           "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"}


def _attr(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    for a in node.attribute:
        if a.name == name:
            return protos.attribute_value(a)
    return default


def _label(node: onnx.NodeProto) -> str:
    return f"node '{node.name or node.op_type}' ({node.op_type})"


def _is_const(s: Any) -> bool:
    return s == CONST or (isinstance(s, Shape) and "B" not in s.elems)


def _const_state(t: onnx.TensorProto) -> Any:
    """Small integer constants keep their values (axes, shapes, pads); everything else is CONST."""
    if t.data_type in (onnx.TensorProto.INT64, onnx.TensorProto.INT32) and len(t.dims) <= 1 and \
            (not t.dims or t.dims[0] <= 64) and t.data_location != onnx.TensorProto.EXTERNAL:
        try:
            values = protos.array_from_tensor(t)
        except Exception:  # noqa: BLE001 - an unreadable constant is simply not a known one
            return CONST
        return Shape(tuple(int(v) for v in values.reshape(-1)), scalar=values.ndim == 0)
    return CONST


def _rows(s: Any, node: onnx.NodeProto, an: _Analyzer) -> int:
    if not isinstance(s, Rows):
        an.fail(node, "takes the batch size as a number")
    return s.axis


def _norm(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis
