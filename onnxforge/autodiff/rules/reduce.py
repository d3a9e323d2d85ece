"""Gradient rules: reductions (ReduceSum ... ReduceL2), Softmax, LogSoftmax and CumSum.

Every Reduce* rule works the same way: bring the incoming gradient (and, where needed, the forward output)
back to keepdims form with ``_keep``, so it broadcasts against the input, then apply the op's local
derivative. Axes are the opset-18 ``axes`` input (constant or computed at run time); an ``axes`` attribute
(older opsets) is read too. Nothing needs a static size of a reduced axis.
"""
from __future__ import annotations

import numpy as np
import onnx

from ...graph import Value
from ..context import GradContext
from ..registry import register

__all__: list[str] = []

_I64 = onnx.TensorProto.INT64


# ------------------------------------------------------------------ helpers
def _axes(ctx: GradContext) -> Value | None:
    """The reduction axes as a value (``None`` when omitted): the input, or the pre-18 attribute."""
    if ctx.I(1) is not None:
        return ctx.I(1)
    attr = ctx.attr("axes")
    return None if attr is None else ctx.b.const(list(attr), _I64)


def _const_axes(ctx: GradContext) -> list[int] | None:
    """The axes when known while building (``[]`` when omitted), else ``None``."""
    if ctx.I(1) is None:
        return list(ctx.attr("axes", []) or [])
    value = ctx.const_input(1)
    return None if value is None else [int(a) for a in np.asarray(value).reshape(-1)]


def _is_noop(ctx: GradContext) -> bool:
    """Empty axes with ``noop_with_empty_axes=1``: the op is the identity (or elementwise for L2, ...)."""
    return bool(ctx.attr("noop_with_empty_axes", 0)) and _const_axes(ctx) == []


def _keep(ctx: GradContext, v: Value) -> Value:
    """``v``, shaped like the node's output, in keepdims form: broadcastable against the input."""
    if ctx.attr("keepdims", 1):
        return v
    axes = _axes(ctx)
    # Omitted or empty axes: either every axis was reduced (v is a scalar, which broadcasts as it is) or
    # none was (noop_with_empty_axes; v already has the input's shape).
    if axes is None or _const_axes(ctx) == []:
        return v
    # Unsqueeze's negative axes count from the end of its output, whose rank is the input's: the same
    # axes tensor works unchanged, even when it is only known at run time.
    return ctx.b.op("Unsqueeze", [v, axes])


def _reduce_again(ctx: GradContext, op: str, v: Value) -> Value:
    """``op`` over the node's own axes with keepdims=1 (the tie count of ReduceMax, ...)."""
    return ctx.b.op(op, [v, _axes(ctx)], keepdims=1,
                    noop_with_empty_axes=int(ctx.attr("noop_with_empty_axes", 0)))


def _expand(ctx: GradContext, g: Value) -> Value:
    x = ctx.I(0)
    return ctx.b.op("Expand", [g, ctx.b.op("Shape", [x])], shape=x.shape)


def _count(ctx: GradContext) -> Value | float:
    """How many elements each output element of a ReduceMean averages: a constant where the reduced
    dims are static, else ``Size(x) / Size(y)`` in the graph (one graph serves every batch size)."""
    x, y, b = ctx.I(0), ctx.O(0), ctx.b
    axes = _const_axes(ctx)
    if x.shape is not None and axes is not None:
        rank = len(x.shape)
        dims = [x.shape[a % rank] for a in axes] if axes else list(x.shape)
        if all(isinstance(d, int) for d in dims):
            return float(np.prod(dims, dtype=np.int64))
    # Max(.., 1) keeps an empty output (a zero-sized kept axis) from dividing by zero.
    count = b.op("Div", [b.op("Size", [x]), b.op("Max", [b.op("Size", [y]), b.const(1, _I64)])])
    return b.op("Cast", [count], to=x.dtype)


# ------------------------------------------------------------------ reductions
@register("ReduceSum")
def _reduce_sum(ctx):
    return [_expand(ctx, _keep(ctx, ctx.GO(0))), None]


@register("ReduceMean")
def _reduce_mean(ctx):
    if _is_noop(ctx):
        return [ctx.GO(0), None]
    count = _count(ctx)
    g = _keep(ctx, ctx.GO(0))
    return [_expand(ctx, g / count if not isinstance(count, float) or count != 1.0 else g), None]


@register("ReduceSumSquare")
def _reduce_sum_square(ctx):
    x = ctx.I(0)
    return [x * (_keep(ctx, ctx.GO(0)) * 2.0), None]


@register("ReduceL2")
def _reduce_l2(ctx):
    # d|x| / dx = x / |x|; at |x| = 0 the gradient is 0, as torch's norm backward masks it. With
    # noop_with_empty_axes and no axes nothing is reduced: y = |x| element by element, the same formula
    # with the incoming gradient already shaped like x.
    x, y, b = ctx.I(0), ctx.O(0), ctx.b
    zero = b.op("Equal", [y, b.const(0.0, y.dtype)])
    safe = b.op("Where", [zero, b.const(1.0, y.dtype), y], dtype=y.dtype)
    scale = b.op("Where", [zero, b.const(0.0, y.dtype), ctx.GO(0) / safe], dtype=y.dtype)
    return [x * (scale if _is_noop(ctx) else _keep(ctx, scale)), None]


@register("ReduceLogSumExp")
def _reduce_log_sum_exp(ctx):
    if _is_noop(ctx):
        return [ctx.GO(0), None]
    x, b = ctx.I(0), ctx.b
    softmax = b.op("Exp", [x - _keep(ctx, ctx.O(0))])
    return [softmax * _keep(ctx, ctx.GO(0)), None]


@register("ReduceMax", "ReduceMin")
def _reduce_max_min(ctx):
    # torch.amax / amin: the gradient is shared evenly among the elements that attain the extremum.
    if _is_noop(ctx):
        return [ctx.GO(0), None]
    x, b = ctx.I(0), ctx.b
    hit = b.op("Cast", [b.op("Equal", [x, _keep(ctx, ctx.O(0))])], to=x.dtype)
    ties = _reduce_again(ctx, "ReduceSum", hit)
    return [hit * (_keep(ctx, ctx.GO(0)) / ties), None]


@register("ReduceProd")
def _reduce_prod(ctx):
    # d prod / dx_i is the product of the other elements. y / x_i breaks at zeros, so count the zeros:
    # none -> P / x_i; one -> P (of the nonzero rest) at the zero and 0 elsewhere; more -> 0 everywhere.
    if _is_noop(ctx):
        return [ctx.GO(0), None]
    x, b = ctx.I(0), ctx.b
    zero, one = b.const(0.0, x.dtype), b.const(1.0, x.dtype)
    is_zero = b.op("Equal", [x, zero])
    safe = b.op("Where", [is_zero, one, x], dtype=x.dtype)
    rest = _reduce_again(ctx, "ReduceProd", safe)
    zeros = _reduce_again(ctx, "ReduceSum", b.op("Cast", [is_zero], to=x.dtype))
    at_zero = b.op("Where", [b.op("Equal", [zeros, one]), rest, zero], dtype=x.dtype)
    elsewhere = b.op("Where", [b.op("Equal", [zeros, zero]), rest / safe, zero], dtype=x.dtype)
    others = b.op("Where", [is_zero, at_zero, elsewhere], dtype=x.dtype, shape=x.shape)
    return [others * _keep(ctx, ctx.GO(0)), None]


# ------------------------------------------------------------------ softmax family
@register("Softmax")
def _softmax(ctx):
    y, g, b = ctx.O(0), ctx.GO(0), ctx.b
    axes = b.const([int(ctx.attr("axis", -1))], _I64)
    gy = g * y
    return [gy - y * b.op("ReduceSum", [gy, axes], keepdims=1)]


@register("LogSoftmax")
def _log_softmax(ctx):
    y, g, b = ctx.O(0), ctx.GO(0), ctx.b
    axes = b.const([int(ctx.attr("axis", -1))], _I64)
    return [g - b.op("Exp", [y]) * b.op("ReduceSum", [g, axes], keepdims=1)]


@register("CumSum")
def _cumsum(ctx):
    # Each input element feeds the outputs after it (before it when reversed): the gradient is the
    # cumulative sum of the output gradient in the other direction, with the same exclusivity.
    reverse = int(ctx.attr("reverse", 0))
    g = ctx.b.op("CumSum", [ctx.GO(0), ctx.I(1)], exclusive=int(ctx.attr("exclusive", 0)),
                 reverse=1 - reverse, shape=ctx.I(0).shape)
    return [g, None]
