"""Gradient rules: normalizations, Dropout and the classification losses.

The normalizations share one backward (``_normalized_grad``): with ``xhat = (x - mean) * inv`` over some
axes and ``g`` the gradient reaching ``xhat``, ``dx = inv * (g - mean(g) - xhat * mean(g * xhat))``. Means
are ``ReduceMean`` over the normalized axes, so no rule needs a static batch, spatial or sequence size.
The losses share ``_loss_coefficients``: the weight each label position carries (class weight, 0 where
``ignore_index``), times the upstream gradient, divided by the weight sum for ``reduction="mean"``.
"""
from __future__ import annotations

from collections.abc import Sequence

import onnx

from ...graph import Value
from ..broadcast import unbroadcast
from ..context import GradContext
from ..registry import register

__all__: list[str] = []

_I64 = onnx.TensorProto.INT64
_F32 = onnx.TensorProto.FLOAT
_HALF = (onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16)


# ------------------------------------------------------------------ helpers
def _rank(ctx: GradContext, v: Value) -> int:
    if v.rank is None:
        raise ctx.fail(f"the rank of input {v.name!r} must be known while building the gradient graph")
    return v.rank


def _ints(ctx: GradContext, values: Sequence[int]) -> Value:
    return ctx.b.const([int(v) for v in values], _I64)


def _mean(ctx: GradContext, v: Value, axes: Sequence[int]) -> Value:
    return ctx.b.op("ReduceMean", [v, _ints(ctx, axes)], keepdims=1)


def _sum(ctx: GradContext, v: Value, axes: Sequence[int], keepdims: int = 0) -> Value:
    return ctx.b.op("ReduceSum", [v, _ints(ctx, axes)], keepdims=keepdims)


def _cast(ctx: GradContext, v: Value | None, dtype: int) -> Value | None:
    if v is None or v.dtype == dtype:
        return v
    return ctx.b.op("Cast", [v], to=dtype, shape=v.shape)


def _per_channel(ctx: GradContext, v: Value, rank: int) -> Value:
    """A ``(C,)`` vector as ``(C, 1, ..., 1)``: broadcasts along axis 1 of a rank-``rank`` ``(N, C, ...)``."""
    if rank <= 2:
        return v
    return ctx.b.op("Unsqueeze", [v, _ints(ctx, range(1, rank - 1))])


def _count(ctx: GradContext, x: Value, reduced: Value) -> Value:
    """How many elements of ``x`` each element of the keepdims reduction ``reduced`` averages (at run time)."""
    b = ctx.b
    return b.op("Cast", [b.op("Div", [b.op("Size", [x]), b.op("Size", [reduced])])], to=x.dtype)


def _normalized_grad(ctx: GradContext, g: Value, xhat: Value, inv: Value, axes: Sequence[int]) -> Value:
    """``d loss / d x`` of ``xhat = (x - mean(x)) * inv`` with ``inv = 1 / sqrt(var(x) + eps)``, given
    ``g = d loss / d xhat`` (means and variance over ``axes``)."""
    return inv * (g - _mean(ctx, g, axes) - xhat * _mean(ctx, g * xhat, axes))


def _statistics(ctx: GradContext, x: Value, axes: Sequence[int], eps: float) -> tuple[Value, Value]:
    """Mean and ``1 / sqrt(var + eps)`` over ``axes`` (keepdims), recomputed in ``x``'s precision."""
    mean = _mean(ctx, x, axes)
    centered = x - mean
    inv = ctx.b.op("Reciprocal", [ctx.b.op("Sqrt", [_mean(ctx, centered * centered, axes) + eps])])
    return mean, inv


# ------------------------------------------------------------------ BatchNormalization
@register("BatchNormalization")
def _batch_norm(ctx: GradContext):
    # Inputs X, scale, B, input_mean, input_var; outputs Y and, in training mode, running_mean / var.
    x, scale, mean_in, var_in = ctx.I(0), ctx.I(1), ctx.I(3), ctx.I(4)
    b = ctx.b
    rank = _rank(ctx, x)
    axes = [0, *range(2, rank)]
    eps = float(ctx.attr("epsilon", 1e-5))
    dy = ctx.GO(0)
    if not ctx.attr("training_mode", 0):
        # Y = (X - mean) * inv * scale + B with the given statistics: every input is a plain operand.
        dy = ctx.GO_or_zeros(0)
        inv = b.op("Reciprocal", [b.op("Sqrt", [var_in + eps])])
        xhat = (x - _per_channel(ctx, mean_in, rank)) * _per_channel(ctx, inv, rank)
        dxhat_sum = _sum(ctx, dy * xhat, axes) if ctx.needs(1) or ctx.needs(4) else None
        dbias = _sum(ctx, dy, axes) if any(ctx.needs(i) for i in (2, 3)) else None
        return [
            dy * _per_channel(ctx, scale * inv, rank) if ctx.needs(0) else None,
            dxhat_sum if ctx.needs(1) else None,
            dbias if ctx.needs(2) else None,
            -(dbias * scale * inv) if ctx.needs(3) else None,
            dxhat_sum * scale * inv * inv * -0.5 if ctx.needs(4) else None,
        ]
    # Training mode: batch statistics over N and the spatial axes; running stats blend them in with
    # weight (1 - momentum), so they pass gradient to X and (momentum-scaled) to input_mean / input_var.
    momentum = float(ctx.attr("momentum", 0.9))
    g_mean, g_var = ctx.GO(1), ctx.GO(2)
    need_x = ctx.needs(0) and (dy is not None or g_mean is not None or g_var is not None)
    xhat = inv = count = None
    if need_x or (dy is not None and ctx.needs(1)):
        xhat, inv = _batch_xhat(ctx, x, eps, momentum)
        count = _per_channel_count(ctx, x)
    dy_sum = _sum(ctx, dy, axes) if dy is not None and (ctx.needs(0) or ctx.needs(2)) else None
    dy_xhat_sum = _sum(ctx, dy * xhat, axes) if dy is not None and xhat is not None else None
    dx = None
    if need_x and dy is not None:
        # dx = scale * inv * (dy - mean(dy) - xhat * mean(dy * xhat)) = a * dy + b * xhat + c per channel,
        # folded so that only dy * xhat (above) and these three full-size products and sums touch X's size.
        a = scale * inv
        coef_xhat, shift = -(a * dy_xhat_sum) / count, -(a * dy_sum) / count
        if x.dtype in (_F32, onnx.TensorProto.DOUBLE):
            # b * xhat + c as an inference-mode BatchNormalization with mean 0, variance 1 and epsilon 0: one
            # pass instead of a Mul and an Add (1.06 vs 2.03 CPU-ms on 128x16x32x32, 1 thread).
            channel = b.op("Slice", [b.op("Shape", [x]), _ints(ctx, [1]), _ints(ctx, [2])])
            affine = b.op("BatchNormalization", [xhat, coef_xhat, shift, b.fill(channel, x, 0.0),
                                                 b.fill(channel, x, 1.0)], epsilon=0.0)
            affine.shape, affine.dtype = x.shape, x.dtype
        else:
            affine = xhat * _per_channel(ctx, coef_xhat, rank) + _per_channel(ctx, shift, rank)
        dx = dy * _per_channel(ctx, a, rank) + affine
    if need_x and (g_mean is not None or g_var is not None):
        # d batch_mean / dx = 1 / M; d batch_var / dx = 2 (x - mean) / M = 2 xhat / (inv M).
        weight = (1.0 - momentum) / count
        per = None
        if g_var is not None:
            per = xhat * _per_channel(ctx, g_var * 2.0 * weight / inv, rank)
        if g_mean is not None:
            shift = _per_channel(ctx, g_mean * weight, rank)
            per = b.op("Expand", [shift, b.op("Shape", [x])]) if per is None else per + shift
        dx = per if dx is None else dx + per
    return [
        dx,
        dy_xhat_sum if dy is not None and ctx.needs(1) else None,
        dy_sum if dy is not None and ctx.needs(2) else None,
        g_mean * momentum if g_mean is not None and ctx.needs(3) else None,
        g_var * momentum if g_var is not None and ctx.needs(4) else None,
    ]


def _batch_xhat(ctx: GradContext, x: Value, eps: float, momentum: float) -> tuple[Value, Value]:
    """``xhat = (x - mean) / sqrt(var + eps)`` over axis 1's complement and ``inv = 1 / sqrt(var + eps)``
    as a ``(C,)`` vector, for a training-mode BatchNormalization's gradient.

    For float and double: with ``momentum=0`` (how ``layers.BatchNormalization`` emits its fused training op)
    the forward node's running-statistics outputs are exactly the batch mean and biased variance, so xhat is
    one inference-mode BatchNormalization with them (one pass over X; 1.06 vs 2.14 CPU-ms for the training-mode
    recompute on 128x16x32x32, 1 thread). Otherwise one more training-mode BatchNormalization with unit scale,
    zero bias and momentum 0 returns exactly these (its running statistics are then the batch mean and biased
    variance, whatever the input statistics): one kernel, against five passes for the same in elementwise ops.
    """
    b = ctx.b
    rank = _rank(ctx, x)
    axes = [0, *range(2, rank)]
    if x.dtype in (_F32, onnx.TensorProto.DOUBLE) and momentum == 0.0:
        mean, var = ctx.O(1), ctx.O(2)
        mean.dtype = var.dtype = x.dtype
        channel = b.op("Slice", [b.op("Shape", [x]), _ints(ctx, [1]), _ints(ctx, [2])])
        xhat = b.op("BatchNormalization", [x, b.fill(channel, x, 1.0), b.fill(channel, x, 0.0), mean, var],
                    epsilon=eps)
        xhat.shape, xhat.dtype = x.shape, x.dtype
        return xhat, b.op("Reciprocal", [b.op("Sqrt", [var + eps])])
    if x.dtype in (_F32, onnx.TensorProto.DOUBLE):
        channel = b.op("Slice", [b.op("Shape", [x]), _ints(ctx, [1]), _ints(ctx, [2])])
        # Four distinct buffers: onnxruntime may write the running statistics in place over the input ones,
        # and a buffer shared with the scale or bias would then be read after it changed.
        scale, bias, mean_in, var_in = (b.fill(channel, x, v) for v in (1.0, 0.0, 2.0, 3.0))
        xhat, _, var = b.op("BatchNormalization", [x, scale, bias, mean_in, var_in], outputs=3, training_mode=1,
                            momentum=0.0, epsilon=eps)
        xhat.shape, xhat.dtype, var.dtype = x.shape, x.dtype, x.dtype
        return xhat, b.op("Reciprocal", [b.op("Sqrt", [var + eps])])
    mean, inv = _statistics(ctx, x, axes, eps)
    flat = b.op("Reshape", [inv, b.op("Slice", [b.op("Shape", [x]), _ints(ctx, [1]), _ints(ctx, [2])])])
    return (x - mean) * inv, flat


def _per_channel_count(ctx: GradContext, x: Value) -> Value:
    """How many elements of ``x`` share each channel of axis 1 (``N * spatial``), as a scalar of x's dtype."""
    b = ctx.b
    shape = b.op("Shape", [x])
    return b.op("Cast", [b.op("Div", [b.op("Size", [x]), b.op("Gather", [shape, _ints(ctx, [1])])])], to=x.dtype)


# ------------------------------------------------------------------ InstanceNormalization
@register("InstanceNormalization")
def _instance_norm(ctx: GradContext):
    x, scale = ctx.I(0), ctx.I(1)
    rank = _rank(ctx, x)
    axes = list(range(2, rank))
    dy = ctx.GO(0)
    mean, inv = _statistics(ctx, x, axes, float(ctx.attr("epsilon", 1e-5)))
    xhat = (x - mean) * inv
    return [
        _normalized_grad(ctx, dy * _per_channel(ctx, scale, rank), xhat, inv, axes) if ctx.needs(0) else None,
        _sum(ctx, dy * xhat, [0, *axes]) if ctx.needs(1) else None,
        _sum(ctx, dy, [0, *axes]) if ctx.needs(2) else None,
    ]


# ------------------------------------------------------------------ LayerNormalization
@register("LayerNormalization")
def _layer_norm(ctx: GradContext):
    x, scale, bias = ctx.I(0), ctx.I(1), ctx.I(2)
    rank = _rank(ctx, x)
    axis = int(ctx.attr("axis", -1)) % rank
    axes = list(range(axis, rank))
    stash = int(ctx.attr("stash_type", 1))
    # Work where the forward pass did its statistics: float32 for half inputs under stash_type=1.
    work = stash if x.dtype in _HALF and stash == _F32 else x.dtype
    xw, dy, sw = _cast(ctx, x, work), _cast(ctx, ctx.GO_or_zeros(0), work), _cast(ctx, scale, work)
    if work == stash:
        # The forward node already computes Mean and InvStdDev (its optional outputs): reuse them.
        mean, inv = ctx.O(1, stash), ctx.O(2, stash)
    else:
        mean, inv = _statistics(ctx, xw, axes, float(ctx.attr("epsilon", 1e-5)))
    xhat = (xw - mean) * inv
    dx = None
    if ctx.needs(0):
        dx = _normalized_grad(ctx, dy * sw, xhat, inv, axes)
        g_mean, g_inv = _cast(ctx, ctx.GO(1), work), _cast(ctx, ctx.GO(2), work)
        if g_mean is not None or g_inv is not None:
            # d mean / dx = 1 / M, d inv / dx = -inv^2 * xhat / M (M elements per normalized slice).
            parts = [g for g in (g_mean, None if g_inv is None else -(g_inv * inv * inv) * xhat) if g is not None]
            dx = dx + (parts[0] if len(parts) == 1 else parts[0] + parts[1]) / _count(ctx, xw, mean)
    out_shape = x.shape
    return [
        _cast(ctx, dx, x.dtype),
        _cast(ctx, unbroadcast(dy * xhat, sw, out_shape), scale.dtype) if ctx.needs(1) else None,
        _cast(ctx, unbroadcast(dy, _cast(ctx, bias, work), out_shape), bias.dtype) if ctx.needs(2) else None,
    ]


# ------------------------------------------------------------------ Dropout
@register("Dropout")
def _dropout(ctx: GradContext):
    # Inputs data, ratio, training_mode; y = x * mask / (1 - ratio) when training, else y = x.
    dy, x, b = ctx.GO(0), ctx.I(0), ctx.b
    training = ctx.I(2)
    flag = ctx.const_input(2)
    if training is None or (flag is not None and not bool(flag)):
        return [dy, None, None]
    if ctx.I(1) is None:
        scale: Value | float = 2.0  # the default ratio is 0.5
    elif ctx.const_input(1) is not None:
        ratio = float(ctx.const_input(1))
        scale = 1.0 if ratio == 0.0 else 1.0 / (1.0 - ratio)  # ratio 0 is the identity, even if training
    else:
        scale = b.op("Reciprocal", [1.0 - _cast(ctx, ctx.I(1), x.dtype)])
    if flag is None:
        # training_mode known only at run time: the scale applies only when it is true (the mask output
        # is all ones otherwise).
        one = b.const(1.0, x.dtype)
        scale = b.op("Where", [training, scale if isinstance(scale, Value) else b.const(scale, x.dtype), one],
                     dtype=x.dtype)
    mask = b.op("Cast", [ctx.O(1, onnx.TensorProto.BOOL)], to=x.dtype)
    return [dy * mask * scale, None, None]


# ------------------------------------------------------------------ losses
def _loss_coefficients(ctx: GradContext, dtype: int) -> tuple[Value, Value]:
    """``(labels, coef)``: labels safe to compare with class indices (ignored ones replaced by 0) and the
    gradient factor per label position, ``upstream * weight / (sum of weights if reduction is mean)``,
    broadcastable against ``(N, C, d1, ...)``: a scalar, or the labels' shape with axis 1 inserted."""
    b = ctx.b
    labels = _cast(ctx, ctx.I(1), _I64)
    weights = ctx.I(2)
    reduction = ctx.attr("reduction", "mean")
    if reduction not in ("none", "sum", "mean"):
        raise ctx.fail(f"unknown reduction {reduction!r} (expected 'none', 'sum' or 'mean')")
    ignore = ctx.attr("ignore_index")
    keep = None
    if ignore is not None:
        keep = b.op("Not", [b.op("Equal", [labels, b.const(int(ignore), _I64)])])
        labels = b.op("Where", [keep, labels, b.const(0, _I64)], dtype=_I64)
    w = None
    if weights is not None:
        w = b.op("Gather", [weights, labels], axis=0)
    if keep is not None:
        kept = b.op("Cast", [keep], to=dtype)
        w = kept if w is None else w * kept
    g = ctx.GO(0)
    if reduction == "mean":
        total = b.op("Cast", [b.op("Size", [labels])], to=dtype) if w is None else b.op("ReduceSum", [w], keepdims=0)
        g = g / total
    if w is None and reduction != "none":
        return labels, g  # one scalar factor for every position
    coef = g if w is None else g * w
    return labels, b.op("Unsqueeze", [coef, _ints(ctx, [1])])


def _onehot_coef(ctx: GradContext, labels: Value, coef: Value, like: Value) -> Value:
    """``onehot(labels) * coef`` with the classes along axis 1, shaped like ``like`` ``(N, C, d1, ...)``."""
    b = ctx.b
    rank = _rank(ctx, like)
    classes = b.op("Range", [b.const(0, _I64), b.op("Gather", [b.op("Shape", [like]), b.const(1, _I64)], axis=0),
                             b.const(1, _I64)])
    classes = b.op("Reshape", [classes, _ints(ctx, [-1] + [1] * (rank - 2))])
    hit = b.op("Equal", [b.op("Unsqueeze", [labels, _ints(ctx, [1])]), classes])
    return b.op("Cast", [hit], to=like.dtype) * coef


@register("NegativeLogLikelihoodLoss")
def _nll_loss(ctx: GradContext):
    # loss_i = -input[i, label_i] * w_i: the gradient lands on each label's class only.
    x = ctx.I(0)
    labels, coef = _loss_coefficients(ctx, x.dtype)
    return [-_onehot_coef(ctx, labels, coef, x), None, None]


@register("SoftmaxCrossEntropyLoss")
def _softmax_cross_entropy(ctx: GradContext):
    # loss_i = -log_softmax(scores)[i, label_i] * w_i, so d/dscores = coef * (softmax - onehot); a gradient
    # reaching the log_prob output adds log-softmax's own backward, g - softmax * sum(g).
    scores, b = ctx.I(0), ctx.b
    prob = b.op("Exp", [ctx.O(1, scores.dtype)])
    grad = None
    if ctx.GO(0) is not None:
        labels, coef = _loss_coefficients(ctx, scores.dtype)
        placed = _onehot_coef(ctx, labels, coef, scores)
        grad = prob * coef - placed
    g_log = ctx.GO(1)
    if g_log is not None:
        extra = g_log - prob * _sum(ctx, g_log, [1], keepdims=1)
        grad = extra if grad is None else grad + extra
    return [grad, None, None]
