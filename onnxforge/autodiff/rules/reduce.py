"""Gradient rules: reductions (ReduceSum, ReduceMean, ReduceMax, ... )."""
from __future__ import annotations

import onnx

from ..context import GradContext
from ..registry import register

__all__: list[str] = []


def _restore(ctx: GradContext, g):
    """Bring a reduced-shape tensor back to broadcastable rank: re-insert reduced axes if keepdims=0."""
    if ctx.attr("keepdims", 1):
        return g
    axes = ctx.I(1)
    if axes is None:  # all axes reduced: a scalar broadcasts as it is
        return g
    return ctx.b.op("Unsqueeze", [g, axes])


@register("ReduceSum")
def _reduce_sum(ctx):
    x = ctx.I(0)
    b = ctx.b
    return [b.op("Expand", [_restore(ctx, ctx.GO(0)), b.op("Shape", [x])], shape=x.shape), None]
