"""Helpers shared by the array-manipulation ops: emitting with shapes inferred at once, axes, sizes, slices."""
from __future__ import annotations

__all__ = ["emit", "value", "rank_of", "axis_index", "dim", "slice_axis", "BIG", "BOOL", "INT32", "INT64"]

from typing import Any

import numpy as np

from ..graph import Value
from ._util import as_value, builder_of, cast_value, int_const

BOOL, INT32, INT64 = 9, 6, 7
BIG = np.iinfo(np.int64).max   # a Slice end meaning "to the end"


def emit(b: Any, op_type: str, inputs: list, **kwargs: Any) -> Any:
    """Emit one node and give its outputs ONNX's inferred shapes at once (later steps read ranks)."""
    from ..graph.shape_inference import fill_shapes

    start = len(b.nodes)
    out = b.op(op_type, inputs, **kwargs)
    fill_shapes(b, start)
    return out


def value(x: Any) -> Value:
    return as_value(x, builder_of(x))


def rank_of(v: Value, name: str) -> int:
    if v.shape is None:
        raise ValueError(f"ops.{name} needs a tensor of known rank. Received a tensor of unknown shape.")
    return len(v.shape)


def axis_index(axis: int, ndim: int, name: str) -> int:
    """``axis`` in ``[0, ndim)``, or a clear error naming the op."""
    if not -ndim <= axis < max(ndim, 1):
        raise ValueError(f"ops.{name}: axis {axis} is out of bounds for a tensor of rank {ndim}.")
    return axis % ndim if ndim else 0


def dim(v: Value, axis: int) -> Value:
    """The size of ``axis`` as an int64 scalar (a constant when static)."""
    b = v.builder
    d = v.shape[axis] if v.shape is not None else None
    if isinstance(d, int):
        return as_value(np.int64(d), b)
    size = emit(b, "Gather", [emit(b, "Shape", [v]), int_const(b, [axis])], axis=0)
    return emit(b, "Squeeze", [size, int_const(b, [0])])


def slice_axis(v: Value, axis: int, start: Any, stop: Any, step: int = 1) -> Value:
    """``v[start:stop:step]`` along ``axis`` (bounds may be int64 scalar tensors)."""
    b = v.builder

    def vec(i: Any) -> Value:
        if isinstance(i, Value):
            return emit(b, "Reshape", [cast_value(i, INT64), int_const(b, [1])])
        return int_const(b, [int(i)])

    return emit(b, "Slice", [v, vec(start), vec(stop), int_const(b, [axis]), int_const(b, [step])])
