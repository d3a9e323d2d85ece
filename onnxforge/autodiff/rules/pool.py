"""Gradient rules: MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool (1-D to 3-D).

Max pooling routes each output gradient to the first maximum of its window (row-major window order), as
onnxruntime's forward and torch do, so ties break identically. Where the windows tile the input (kernel ==
strides, no pads or dilations: Keras's default pool 2 stride 2) the forward MaxPool stays Indices-free and
the rule rebuilds the indices from X and Y (a small MaxPool per tap, Equal, float arithmetic) for MaxUnpool:
asking onnxruntime for Indices picks a scalar kernel ~4x slower than the plain MaxPool (11.5 extra CPU-ms on
the seed CNN's first pool), and this saved 4-5 CPU-ms of its 85 ms step (paired A/B, 1 thread). Elsewhere
the rule reads the positions from the forward node's own Indices output and scatters (MaxUnpool where
windows cannot overlap, a ScatterElements sum where they can). Measured and dropped: SpaceToDepth or a
one-hot strided Conv with ArgMax or DepthToSpace, Where chains (Where costs ~30x a Mul in onnxruntime),
full-size masks with Resize-upsampled maxima.
Average pooling is linear: its gradient spreads ``dY / divisor`` back over each window with a depthwise
ones kernel (the Conv input-gradient machinery of ``conv.py``), the divisor counting the taps each window
averaged (pads included or not, ceil-mode windows clipped).
"""
from __future__ import annotations

import itertools

import numpy as np
import onnx

from ...graph import GraphBuilder, Value, np_dtype, protos
from ..context import GradContext
from ..registry import register
from .conv import _conv_input_grad, _conv_pads, _Geometry, _ints, _spatial

__all__: list[str] = []


def _pool_geometry(ctx: GradContext) -> _Geometry:
    kernel = tuple(ctx.attr("kernel_shape"))
    rank = len(kernel)
    geo = _Geometry(kernel, tuple(ctx.attr("strides") or [1] * rank), tuple(ctx.attr("dilations") or [1] * rank))
    if ctx.attr("auto_pad", "NOTSET") in ("SAME_UPPER", "SAME_LOWER") and any(d != 1 for d in geo.dilations):
        # onnxruntime pads these by the undilated kernel, against the spec and ONNX shape inference.
        raise ctx.fail(f"auto_pad={ctx.attr('auto_pad')} with dilations={list(geo.dilations)} is not "
                       "supported (onnxruntime and the ONNX spec disagree on its padding); use explicit pads")
    return geo


def _out_spatial(ctx: GradContext, geo: _Geometry, spatial: tuple | None, pads) -> tuple | None:
    """The pooled spatial dims (floor or ceil mode), or ``None`` where they are not known statically."""
    if spatial is None or pads is None:
        return None
    if ctx.attr("auto_pad", "NOTSET") in ("SAME_UPPER", "SAME_LOWER"):
        return tuple(-(-i // s) for i, s in zip(spatial, geo.strides))
    out = []
    for i, pb, pe, e, s in zip(spatial, *pads, geo.extent, geo.strides):
        span = i + pb + pe - e
        o = (-(-span // s) if ctx.attr("ceil_mode", 0) else span // s) + 1
        if ctx.attr("ceil_mode", 0) and (o - 1) * s >= i + pb:
            o -= 1  # a window must start inside the input or its begin pad
        out.append(o)
    declared = ctx.O(0).shape
    if declared is not None and all(isinstance(d, int) for d in declared[2:]) and tuple(declared[2:]) != tuple(out):
        # ONNX shape inference skips the rule above; the graph's shapes then contradict onnxruntime's.
        raise ctx.fail(f"the graph declares output spatial dims {tuple(declared[2:])} where onnxruntime "
                       f"computes {tuple(out)} (ceil_mode with a last window starting in the end padding)")
    return tuple(out)


def _channels(ctx: GradContext, x: Value) -> int:
    if x.shape is None or len(x.shape) < 3 or not isinstance(x.shape[1], int):
        raise ctx.fail(f"the channel dim of X must be known while building the graph. Received: {x.shape}")
    return x.shape[1]


# ------------------------------------------------------------------------ max pool
def _row_major(b: GraphBuilder, idx: Value, spatial: tuple) -> Value:
    """Indices from ``storage_order=1`` (column-major within each plane) to row-major flat indices."""
    plane = int(np.prod(spatial))
    base = b.op("Mul", [b.op("Div", [idx, _ints(b, plane)]), _ints(b, plane)])
    within = b.op("Mod", [idx, _ints(b, plane)])
    col_stride, row = 1, base
    row_strides = [int(np.prod(spatial[k + 1:])) for k in range(len(spatial))]
    for dim, row_stride in zip(spatial, row_strides):
        coord = b.op("Mod", [b.op("Div", [within, _ints(b, col_stride)]), _ints(b, dim)])
        row = b.op("Add", [row, b.op("Mul", [coord, _ints(b, row_stride)])])
        col_stride *= dim
    return row


def _scatter_by_indices(ctx: GradContext, x: Value, dy: Value, geo: _Geometry, pads, spatial) -> Value:
    """Send each ``dY`` element to the input position the forward MaxPool's Indices output names."""
    b = ctx.b
    idx = ctx.O(1, onnx.TensorProto.INT64)
    if ctx.attr("storage_order", 0):
        if spatial is None:
            raise ctx.fail(f"storage_order=1 needs X's spatial dims known while building. Received: {x.shape}")
        idx = _row_major(b, idx, spatial)
    out = _out_spatial(ctx, geo, spatial, pads)
    disjoint = all(s >= e for s, e in zip(geo.strides, geo.extent))
    if disjoint and out is not None:
        # Windows never share a pixel: MaxUnpool places each gradient. Its own geometry attributes only
        # size the output; these make that size X's exactly (onnxruntime refuses a smaller output_shape and
        # the reference evaluator mis-places values when output_shape differs from the inferred one).
        unpool = {"kernel_shape": [max(i - o + 1, 1) for i, o in zip(spatial, out)],
                  "pads": [max(o - i, 0) for i, o in zip(spatial, out)] + [0] * len(out)}
        return b.op("MaxUnpool", [dy, idx, b.op("Shape", [x])], shape=x.shape, **unpool)
    # Overlapping windows may pick one pixel several times: sum their gradients.
    zero = protos.tensor("zero", dy.dtype or onnx.TensorProto.FLOAT, [1], [0])
    flat = b.op("ConstantOfShape", [b.op("Reshape", [b.op("Size", [x]), _ints(b, [1])])], value=zero,
                dtype=dy.dtype)
    summed = b.op("ScatterElements", [flat, b.op("Reshape", [idx, _ints(b, [-1])]),
                                      b.op("Reshape", [dy, _ints(b, [-1])])], axis=0, reduction="add")
    return b.op("Reshape", [summed, b.op("Shape", [x])], shape=x.shape)


_MAX_TILE_TAPS = 9  # past 3x3 windows the per-tap comparisons cost more than asking MaxPool for Indices


def _tiles(ctx: GradContext, x: Value, geo: _Geometry, pads, spatial) -> tuple | None:
    """The pooled spatial dims when the windows tile X exactly as far as they reach (kernel == strides, no
    dilation, no pads, floor mode, static dims), so each pixel belongs to at most one window; else ``None``."""
    if spatial is None or pads is None or any(pads[0] + pads[1]) or ctx.attr("ceil_mode", 0):
        return None
    if x.shape is None or not isinstance(x.shape[1], int) or ctx.has_output(1):
        return None  # Indices the model computes anyway are cheaper to reuse than to recompute
    taps = int(np.prod(geo.kernel))
    if geo.kernel != geo.strides or any(d != 1 for d in geo.dilations) or not 1 < taps <= _MAX_TILE_TAPS:
        return None
    out = tuple(i // k for i, k in zip(spatial, geo.kernel))
    return out if all(o > 0 for o in out) else None


_FLOAT_EXACT = 2 ** 24  # float32 holds every integer below this exactly


def _first_max_indices(ctx: GradContext, x: Value, y: Value, kernel: tuple, spatial: tuple, out: tuple) -> Value:
    """The flat index into X of each window's first maximum (row-major window order, as onnxruntime's
    MaxPool with Indices and torch pick it), from X and the pooled Y alone.

    Every tap but the last is tested against Y through the max of its box (``_box_max``); the box of tap t
    holds only taps at or before t, so ``reached_t = Or(box_0 == Y, ..., box_t == Y)`` says whether the first
    maximum lies at or before t. The first maximum's offset is then ``o_last + sum_t (o_t - o_{t+1}) *
    reached_t``: one Cast and one Add or Sub per tap (a Mul too where the step is not +-1), the booleans
    combined by Or (1-byte tensors). Each window's offset within its sample (the channel plane and window
    corner, a constant) is added in float32 too while those indices stay exact, so the only int64 work is
    the Cast and the batch base. Seed CNN, both pools: 1.8 CPU-ms less than the Sub/Mul chain this replaced
    (first pool, forward + backward, 1 thread); Where would cost ~30x a Mul in onnxruntime.
    """
    b = ctx.b
    rank = len(kernel)
    row_strides = [int(np.prod(spatial[d + 1:])) for d in range(rank)]
    taps = list(itertools.product(*(range(k) for k in kernel)))  # row-major, the order ties resolve in
    offsets = [int(sum(a * st for a, st in zip(t, row_strides))) for t in taps]
    channels, plane = x.shape[1], int(np.prod(spatial))
    grid = np.zeros((1, channels) + tuple(out), np.int64) + np.arange(channels).reshape((1, channels) + (1,) * rank) * plane
    for d in range(rank):
        shape = [1] * (rank + 2)
        shape[d + 2] = out[d]
        grid = grid + (np.arange(out[d]) * kernel[d] * row_strides[d]).reshape(shape)
    fold = channels * plane < _FLOAT_EXACT  # the window corners can ride along in float32
    f32 = onnx.TensorProto.FLOAT
    off: Value | None = None
    base = grid + offsets[-1] if fold else np.asarray(offsets[-1])
    reached = None
    for t, o, o_next in zip(taps[:-1], offsets[:-1], offsets[1:]):
        hit = b.op("Equal", [_box_max(b, x, t, kernel, spatial, out, y.shape), y])
        reached = hit if reached is None else b.op("Or", [reached, hit])
        term = b.op("Cast", [reached], to=f32)
        step = o - o_next
        if step not in (1, -1):
            term, step = b.op("Mul", [term, b.const(np.float32(abs(step)))]), (1 if step > 0 else -1)
        acc = b.const(base.astype(np.float32)) if off is None else off
        off = b.op("Add", [acc, term]) if step > 0 else b.op("Sub", [acc, term])
    local = b.op("Cast", [off], to=onnx.TensorProto.INT64)
    if not fold:
        local = b.op("Add", [local, b.const(grid)])
    batch = b.op("Squeeze", [b.op("Slice", [b.op("Shape", [x]), _ints(b, [0]), _ints(b, [1])]), _ints(b, [0])])
    first = b.op("Mul", [b.op("Range", [_ints(b, 0), batch, _ints(b, 1)]), _ints(b, channels * plane)])
    first = b.op("Reshape", [first, _ints(b, [-1] + [1] * (rank + 1))])
    return b.op("Add", [local, first], shape=y.shape)


def _box_max(b: GraphBuilder, x: Value, tap: tuple, kernel: tuple, spatial: tuple, out: tuple, shape) -> Value:
    """Per window, the max over the taps from the window's start up to ``tap`` on every axis: a MaxPool with
    kernel ``tap + 1`` and the windows' strides, cropped to the pooled dims. Every tap in that box comes at or
    before ``tap`` in row-major order, so once the earlier taps are known to fall short of the window's max
    Y, the box reaches Y exactly when ``tap`` does. (Cheaper than a strided Slice of the tap itself: 2.7 vs
    3.5 CPU-ms for the three taps of the seed CNN's first pool, and onnxruntime runs pools on all threads.)"""
    box = [a + 1 for a in tap]
    got = [(i - k) // s + 1 for i, k, s in zip(spatial, box, kernel)]
    pooled = b.op("MaxPool", [x], kernel_shape=box, strides=list(kernel), shape=(*shape[:2], *got))
    if tuple(got) == tuple(out):
        return pooled
    rank = len(kernel)  # leftover pixels past the last full window give the smaller boxes an extra output
    return b.op("Slice", [pooled, _ints(b, [0] * rank), _ints(b, list(out)), _ints(b, list(range(2, rank + 2)))],
                shape=shape)


@register("MaxPool")
def _max_pool(ctx: GradContext):
    x, dy = ctx.I(0), ctx.GO(0)
    if dy is None:  # only the integer Indices output is used downstream
        return [None]
    geo = _pool_geometry(ctx)
    spatial = _spatial(x)
    pads = _conv_pads(ctx, geo, spatial)
    out = _tiles(ctx, x, geo, pads, spatial)
    if out is not None:
        # Keras's default (pool 2, stride 2): the forward MaxPool stays Indices-free (asking for Indices picks
        # a scalar kernel ~4x slower than the plain one) and the indices are rebuilt from X and Y.
        idx = _first_max_indices(ctx, x, ctx.O(0), geo.kernel, spatial, out)
        unpool = {"kernel_shape": [max(i - o + 1, 1) for i, o in zip(spatial, out)]}
        return [ctx.b.op("MaxUnpool", [dy, idx, ctx.b.op("Shape", [x])], shape=x.shape, **unpool)]
    return [_scatter_by_indices(ctx, x, dy, geo, pads, spatial)]


# -------------------------------------------------------------------- average pool
def _divisor(ctx: GradContext, geo: _Geometry, spatial: tuple | None, pads, out: tuple | None):
    """How many taps each output averaged: a Python number when the same for all, else an array."""
    include_pad = ctx.attr("count_include_pad", 0)
    taps = int(np.prod(geo.kernel))
    same = ctx.attr("auto_pad", "NOTSET") in ("SAME_UPPER", "SAME_LOWER")
    no_pads = pads is not None and not any(pads[0] + pads[1])
    if not ctx.attr("ceil_mode", 0) and not same and (include_pad or no_pads):
        return taps  # every window lies inside the (padded) input
    if out is None:
        raise ctx.fail("its divisor varies per window (pads, ceil_mode or auto_pad with count_include_pad="
                       f"{include_pad}); that needs X's spatial dims known while building. Received: "
                       f"X spatial={spatial}")
    counts = []
    for i, o, pb, pe, k, s, d in zip(spatial, out, *pads, geo.kernel, geo.strides, geo.dilations):
        lo, hi = (-pb, i + pe) if include_pad else (0, i)
        start = np.arange(o)[:, None] * s + np.arange(k)[None, :] * d - pb
        counts.append(((start >= lo) & (start < hi)).sum(axis=1))
    grid = counts[0]
    for c in counts[1:]:
        grid = np.multiply.outer(grid, c)
    return grid if np.any(grid != taps) else taps


def _spread(ctx: GradContext, scaled: Value, x: Value, geo: _Geometry, out: tuple | None) -> Value:
    """The adjoint of a window sum: each output's value added to every input tap of its window."""
    b = ctx.b
    channels = _channels(ctx, x)
    ones = b.const(np.ones((channels, 1) + geo.kernel, dtype=np_dtype(scaled.dtype or onnx.TensorProto.FLOAT)))
    return _conv_input_grad(ctx, scaled, ones, x, geo, channels, out=out)


@register("AveragePool")
def _average_pool(ctx: GradContext):
    x, dy = ctx.I(0), ctx.GO(0)
    geo = _pool_geometry(ctx)
    spatial = _spatial(x)
    pads = _conv_pads(ctx, geo, spatial)
    out = _out_spatial(ctx, geo, spatial, pads)
    divisor = _divisor(ctx, geo, spatial, pads, out)
    dtype = np_dtype(dy.dtype or onnx.TensorProto.FLOAT)
    scale = np.asarray(1.0 / divisor, dtype=dtype)
    scaled = ctx.b.op("Mul", [dy, ctx.b.const(scale if scale.ndim == 0 else scale[None, None])])
    return [_spread(ctx, scaled, x, geo, out)]


# ------------------------------------------------------------------------- global
def _spatial_size(b: GraphBuilder, x: Value) -> Value:
    """The number of spatial positions of X as a scalar of X's dtype (static when known)."""
    spatial = _spatial(x)
    dtype = np_dtype(x.dtype or onnx.TensorProto.FLOAT)
    if spatial is not None:
        return b.const(np.asarray(np.prod(spatial), dtype=dtype))
    dims = b.op("Slice", [b.op("Shape", [x]), _ints(b, [2]), _ints(b, [2 ** 62])])
    return b.op("Cast", [b.op("ReduceProd", [dims], keepdims=0)], to=x.dtype)


@register("GlobalAveragePool")
def _global_average_pool(ctx: GradContext):
    x, dy = ctx.I(0), ctx.GO(0)
    b = ctx.b
    return [b.op("Expand", [b.op("Div", [dy, _spatial_size(b, x)]), b.op("Shape", [x])], shape=x.shape)]


@register("GlobalMaxPool")
def _global_max_pool(ctx: GradContext):
    x, dy = ctx.I(0), ctx.GO(0)
    b = ctx.b
    flat = b.op("Reshape", [x, _ints(b, [0, 0, -1])])
    first = b.op("ArgMax", [flat], axis=2, keepdims=1)  # the first maximum, as the forward pool's ties go
    length = b.op("Gather", [b.op("Shape", [flat]), _ints(b, 2)], axis=0)
    hit = b.op("Equal", [b.op("Range", [_ints(b, 0), length, _ints(b, 1)]), first])
    routed = b.op("Where", [hit, b.op("Reshape", [dy, _ints(b, [0, 0, 1])]), b.const(np.zeros((), np_dtype(dy.dtype)))])
    return [b.op("Reshape", [routed, b.op("Shape", [x])], shape=x.shape)]
