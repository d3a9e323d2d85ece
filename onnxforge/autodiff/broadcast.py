"""Undo numpy-style broadcasting: sum a gradient back to the shape of the operand it flows to."""
from __future__ import annotations

__all__ = ["unbroadcast"]

import onnx

from ..graph import Shape, Value


def _same_dim(a, b) -> bool:
    return a == b and a is not None


def unbroadcast(grad: Value, target: Value, out_shape: Shape = None) -> Value:
    """Reduce ``grad`` (shaped like the broadcast result ``out_shape``) to ``target``'s shape.

    Static shapes decide the reduction at build time; where symbolic dims leave it open, the axes are
    computed in the graph, so one gradient graph serves every batch size.
    """
    b = grad.builder
    t_shape, g_shape = target.shape, out_shape if out_shape is not None else grad.shape
    if t_shape is None or g_shape is None:
        return _dynamic(grad, target)
    lead = len(g_shape) - len(t_shape)
    if lead < 0:
        return _dynamic(grad, target)
    inner: list[int] = []
    for k, t_dim in enumerate(t_shape):
        g_dim = g_shape[lead + k]
        if _same_dim(t_dim, g_dim):
            continue
        if t_dim == 1:
            inner.append(lead + k)  # summing over a size-1 result axis is harmless if no broadcast happened
        elif isinstance(t_dim, int) and isinstance(g_dim, int):
            raise ValueError(f"Cannot unbroadcast {g_shape} to {t_shape}.")
        else:
            return _dynamic(grad, target)
    out = grad
    if inner:
        out = b.op("ReduceSum", [out, b.const(inner, onnx.TensorProto.INT64)], keepdims=1)
    if lead:
        out = b.op("ReduceSum", [out, b.const(list(range(lead)), onnx.TensorProto.INT64)], keepdims=0)
    out.shape = t_shape
    return out


def _dynamic(grad: Value, target: Value) -> Value:
    """Reduction axes decided at run time: every axis where the target's (left-padded) dim differs."""
    b = grad.builder
    i64 = onnx.TensorProto.INT64
    g_shape = b.op("Shape", [grad])
    t_shape = b.op("Shape", [target])
    missing = b.op("Sub", [b.op("Size", [g_shape]), b.op("Size", [t_shape])])
    pads = b.op("Concat", [b.op("Reshape", [missing, b.const([1], i64)]), b.const([0], i64)], axis=0)
    padded = b.op("Pad", [t_shape, pads, b.const(1, i64)], mode="constant")
    differs = b.op("Not", [b.op("Equal", [padded, g_shape])])
    axes = b.op("Reshape", [b.op("NonZero", [differs]), b.const([-1], i64)])
    summed = b.op("ReduceSum", [grad, axes], keepdims=1, noop_with_empty_axes=1)
    return b.op("Reshape", [summed, t_shape], shape=target.shape)
