"""Gradient rules: shape and data-movement ops (Reshape, Slice, Gather, Pad, Resize, ...).

Every op here moves or copies input elements (Resize mixes them linearly), so each gradient is the
transpose of a data movement: undo the reshape, scatter-add back to the source positions, or sum the
copies. Shapes are read in the graph (``Shape``) where they are not static, so one gradient graph serves
every batch size.

Two tricks carry the irregular ops:

* **iota**: run the forward op on ``arange(size(x))`` shaped like ``x``; the result says, for each output
  element, which flat input element it copies. Scatter-adding the upstream gradient to those positions
  is the exact gradient for any attribute combination the forward op accepts (Slice with any steps,
  Pad reflect/edge/wrap, GatherND with batch_dims).
* **Resize on an identity matrix**: Resize is separable and linear, so resizing ``eye(n)`` along one axis
  gives that axis's interpolation matrix, with the forward node's own mode and coordinate convention;
  the gradient is a MatMul with it (its transpose) per resized axis.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from onnx import TensorProto

from ...graph import GraphBuilder, Value, np_dtype, protos
from ..broadcast import unbroadcast
from ..context import GradContext
from ..registry import register

__all__: list[str] = []

I64 = TensorProto.INT64


# ------------------------------------------------------------------ helpers
def _i64(b: GraphBuilder, values) -> Value:
    return b.const(np.asarray(values, dtype=np.int64))


def _dim(b: GraphBuilder, x: Value, axis: int) -> Value:
    """``x.shape[axis]`` as a 1-element int64 tensor: a constant when static, else read in the graph."""
    if x.shape is not None and -len(x.shape) <= axis < len(x.shape) and isinstance(x.shape[axis], int):
        return _i64(b, [x.shape[axis]])
    return b.op("Gather", [b.op("Shape", [x]), _i64(b, [axis])], axis=0)


def _shape(b: GraphBuilder, x: Value) -> Value:
    """``x``'s shape as an int64 tensor: a constant when static."""
    static = x.static_shape()
    return _i64(b, list(static)) if static is not None else b.op("Shape", [x])


def _reshape_to(b: GraphBuilder, g: Value, x: Value) -> Value:
    # allowzero=1: the target is a real shape (no -1), so a 0 in it means an empty axis, not "copy".
    return b.op("Reshape", [g, _shape(b, x)], allowzero=1, shape=x.shape)


def _zeros(b: GraphBuilder, shape: Value, dtype: int) -> Value:
    return b.op("ConstantOfShape", [shape], value=protos.tensor("zero", dtype, [1], [0]), dtype=dtype)


def _op(b: GraphBuilder, op_type: str, inputs: list, **attrs) -> Value:
    """``b.op`` with trailing omitted (``None``) optional inputs left out rather than named ``""``."""
    inputs = list(inputs)
    while inputs and inputs[-1] is None:
        inputs.pop()
    return b.op(op_type, inputs, **attrs)


def _as_i64(b: GraphBuilder, v: Value) -> Value:
    return v if v.dtype == I64 else b.op("Cast", [v], to=I64)


def _iota(b: GraphBuilder, x: Value) -> Value:
    """``arange(size(x))`` shaped like ``x`` (int64): each element's own flat index."""
    flat = b.op("Range", [_i64(b, 0), b.op("Size", [x]), _i64(b, 1)])
    return b.op("Reshape", [flat, _shape(b, x)])


def _scatter_flat(b: GraphBuilder, x: Value, flat_index: Value, g: Value) -> Value:
    """Add each element of ``g`` into a zero tensor shaped like ``x`` at flat position ``flat_index``."""
    minus1 = _i64(b, [-1])
    zeros = _zeros(b, b.op("Reshape", [b.op("Size", [x]), _i64(b, [1])]), x.dtype)
    summed = b.op("ScatterElements", [zeros, b.op("Reshape", [flat_index, minus1]), b.op("Reshape", [g, minus1])],
                  axis=0, reduction="add")
    return _reshape_to(b, summed, x)


def _through_iota(ctx: GradContext, op_type: str, rest: Sequence, **attrs) -> Value:
    """Gradient of a copying op: run it on x's iota, scatter-add the upstream gradient to the sources."""
    b, x = ctx.b, ctx.I(0)
    source = _op(b, op_type, [_iota(b, x), *rest], **attrs)
    return _scatter_flat(b, x, source, ctx.GO(0))


def _fold(b: GraphBuilder, g: Value, x: Value, factors: Value | np.ndarray, copies_outer: bool) -> Value:
    """Sum the copies of a tensor whose axis k holds ``factors[k]`` back-to-back copies of ``x``'s axis k.

    ``g`` is reshaped to ``(f0, d0, f1, d1, ...)`` (copies outside, like Tile) or ``(d0, f0, d1, f1, ...)``
    (each element repeated in place, like nearest upsampling) and the copy axes are summed away.
    """
    rank = x.rank
    dims = _shape(b, x)
    pair = (factors, dims) if copies_outer else (dims, factors)
    static = [b.constant_value(p.name) if isinstance(p, Value) else p for p in pair]
    if all(s is not None for s in static):
        inter = _i64(b, np.stack([np.asarray(s, np.int64) for s in static], axis=1).reshape(-1))
    else:
        cols = [b.op("Unsqueeze", [p if isinstance(p, Value) else _i64(b, p), _i64(b, [1])]) for p in pair]
        inter = b.op("Reshape", [b.op("Concat", cols, axis=1), _i64(b, [-1])])
    copy_axes = list(range(0 if copies_outer else 1, 2 * rank, 2))
    split = b.op("Reshape", [g, inter])
    return b.op("ReduceSum", [split, _i64(b, copy_axes)], keepdims=0, shape=x.shape)


def _needs_rank(ctx: GradContext, x: Value) -> int:
    if x.rank is None:
        raise ctx.fail(f"the rank of input {x.name!r} is unknown; this rule needs it.")
    return x.rank


# ---------------------------------------------------- reshapes (one-to-one)
@register("Reshape", "Flatten", "Squeeze", "Unsqueeze")
def _reshape(ctx):
    # All four only relabel the same elements in the same order: reshape the gradient back.
    return [_reshape_to(ctx.b, ctx.GO(0), ctx.I(0))] + [None] * (ctx.n_inputs - 1)


@register("Transpose")
def _transpose(ctx):
    perm = ctx.attr("perm")
    if perm is None:  # default reverses the axes, which is its own inverse: no rank needed
        return [ctx.b.op("Transpose", [ctx.GO(0)], shape=ctx.I(0).shape)]
    return [ctx.b.op("Transpose", [ctx.GO(0)], perm=[int(i) for i in np.argsort(perm)], shape=ctx.I(0).shape)]


# ----------------------------------------------------------- split / concat
@register("Concat")
def _concat(ctx):
    b, axis, n = ctx.b, ctx.attr("axis"), ctx.n_inputs
    if n == 1:
        return [ctx.GO(0)]
    sizes = [_dim(b, ctx.I(i), axis) for i in range(n)]
    static = [b.constant_value(s.name) for s in sizes]
    split = _i64(b, np.concatenate(static)) if all(s is not None for s in static) \
        else b.op("Concat", sizes, axis=0)
    parts = b.op("Split", [ctx.GO(0), split], outputs=n, axis=axis)
    return [p if ctx.needs(i) else None for i, p in enumerate(parts)]


@register("Split")
def _split(ctx):
    b, x = ctx.b, ctx.I(0)
    parts = []
    for i in range(len(ctx.node.output)):
        g = ctx.GO(i)
        if g is None:  # an output nobody differentiates still occupies its slot: zeros of its shape
            g = _zeros(b, b.op("Shape", [ctx.O(i)]), x.dtype)
        parts.append(g)
    grad = parts[0] if len(parts) == 1 else b.op("Concat", parts, axis=ctx.attr("axis", 0), shape=x.shape)
    return [grad, None]


# -------------------------------------------------------------------- slice
@register("Slice")
def _slice(ctx):
    steps = None if ctx.I(4) is None else ctx.const_input(4)
    if ctx.I(4) is None or (steps is not None and np.all(steps == 1)):
        return [_slice_unit_step(ctx), None, None, None, None]
    # Any other step (negative, strided, or only known at run time): the general scatter.
    rest = [ctx.I(i) for i in range(1, ctx.n_inputs)]
    return [_through_iota(ctx, "Slice", rest), None, None, None, None]


def _slice_unit_step(ctx: GradContext) -> Value:
    """Step 1: the gradient is the upstream gradient zero-padded by the clamped start and end."""
    b, x, dy = ctx.b, ctx.I(0), ctx.GO(0)
    starts, ends = _as_i64(b, ctx.I(1)), _as_i64(b, ctx.I(2))
    axes = ctx.I(3)
    if axes is None:
        axes = b.op("Range", [_i64(b, 0), b.op("Size", [starts]), _i64(b, 1)])
    dims = b.op("Gather", [b.op("Shape", [x]), axes], axis=0)
    zero = _i64(b, 0)

    def clamp(v: Value) -> Value:  # ONNX: a negative index counts from the end, then clamp to [0, dim]
        v = b.op("Where", [b.op("Less", [v, zero]), b.op("Add", [v, dims]), v])
        return b.op("Max", [b.op("Min", [v, dims]), zero])

    begin = clamp(starts)
    end = b.op("Max", [clamp(ends), begin])  # an empty slice (end <= start) still pads to full size
    return _pad_on_axes(b, dy, begin, b.op("Sub", [dims, end]), axes, x.shape)


def _pad_on_axes(b: GraphBuilder, x: Value, begin: Value, end: Value, axes: Value, shape=None) -> Value:
    """Zero-pad ``x`` by ``begin`` / ``end`` on ``axes``, as a Pad over every axis (no ``axes`` input).

    onnxruntime's transpose optimizer (1.32, from the basic level up) moves a Transpose through a Pad as if
    its pads covered every axis, ignoring ``axes``: with run-time pads it gathers past their end (NASNet's
    Cropping2D after a channels-first conv). Scattering the pads over all axes sidesteps it.
    """
    rank = b.op("Size", [b.op("Shape", [x])])
    axes = b.op("Where", [b.op("Less", [axes, _i64(b, 0)]), b.op("Add", [axes, rank]), axes])
    where = b.op("Concat", [axes, b.op("Add", [axes, rank])], axis=0)
    zeros = b.op("Expand", [_i64(b, [0]), b.op("Reshape", [b.op("Add", [rank, rank]), _i64(b, [1])])])
    pads = b.op("ScatterElements", [zeros, where, b.op("Concat", [begin, end], axis=0)], axis=0)
    return b.op("Pad", [x, pads], mode="constant", shape=shape)


# ------------------------------------------------------------------- gather
def _wrap_negative(b: GraphBuilder, index: Value, dims: Value) -> Value:
    """Negative indices count from the end; ScatterND wants them in [0, dim)."""
    index = _as_i64(b, index)
    return b.op("Where", [b.op("Less", [index, _i64(b, 0)]), b.op("Add", [index, dims]), index])


@register("Gather")
def _gather(ctx):
    b, x, index, dy = ctx.b, ctx.I(0), ctx.I(1), ctx.GO(0)
    axis = ctx.attr("axis", 0)
    if x.rank is not None and axis % x.rank == 0 and index.rank is not None:
        # The embedding case: scatter-add rows straight into a zero table (repeated rows accumulate).
        # A scalar dim, so that a scalar index stays a scalar (a (1,) dim would broadcast it to (1,)).
        dim0 = b.op("Squeeze", [_dim(b, x, 0), _i64(b, [0])])
        rows = b.op("Unsqueeze", [_wrap_negative(b, index, dim0), _i64(b, [-1])])
        zeros = _zeros(b, _shape(b, x), x.dtype)
        return [b.op("ScatterND", [zeros, rows, dy], reduction="add", shape=x.shape), None]
    return [_through_iota(ctx, "Gather", [index], axis=axis), None]


@register("GatherElements")
def _gather_elements(ctx):
    b, x = ctx.b, ctx.I(0)
    zeros = _zeros(b, _shape(b, x), x.dtype)
    return [b.op("ScatterElements", [zeros, ctx.I(1), ctx.GO(0)], axis=ctx.attr("axis", 0), reduction="add",
                 shape=x.shape), None]


@register("GatherND")
def _gather_nd(ctx):
    b, x, index = ctx.b, ctx.I(0), ctx.I(1)
    batch_dims = ctx.attr("batch_dims", 0)
    if batch_dims:  # ScatterND has no batch_dims: index the flat positions instead
        return [_through_iota(ctx, "GatherND", [index], batch_dims=batch_dims), None]
    depth = b.op("Shape", [index], start=-1)  # how many leading axes of x each index tuple addresses
    dims = b.op("Slice", [b.op("Shape", [x]), _i64(b, [0]), depth])
    zeros = _zeros(b, _shape(b, x), x.dtype)
    return [b.op("ScatterND", [zeros, _wrap_negative(b, index, dims), ctx.GO(0)], reduction="add",
                 shape=x.shape), None]


@register("ScatterElements")
def _scatter_elements(ctx):
    b, data, index, updates, dy = ctx.b, ctx.I(0), ctx.I(1), ctx.I(2), ctx.GO(0)
    axis, reduction = ctx.attr("axis", 0), ctx.attr("reduction", "none")

    def gather(t: Value) -> Value:
        return b.op("GatherElements", [t, index], axis=axis)

    if reduction == "none":  # overwritten positions lose their data gradient to the update written there
        d_data = b.op("ScatterElements", [dy, index, _zeros(b, b.op("Shape", [updates]), dy.dtype)], axis=axis)
        return [d_data, None, gather(dy)]
    if reduction == "add":
        return [dy, None, gather(dy)]
    if reduction == "mul":
        if ctx.needs(2):
            raise ctx.fail("reduction='mul' has no division-free gradient for updates (it needs the product "
                           "of the other factors written to the same position); only data is supported.")
        ones = b.op("ConstantOfShape", [b.op("Shape", [data])], value=protos.tensor("one", dy.dtype, [1], [1]))
        return [dy * b.op("ScatterElements", [ones, index, updates], axis=axis, reduction="mul"), None, None]
    if reduction in ("max", "min"):
        # The winner takes the gradient; ties share it evenly (as torch.scatter_reduce amax/amin does).
        out = ctx.O(0)
        hit_data = b.op("Cast", [b.op("Equal", [out, data])], to=dy.dtype)
        hit_upd = b.op("Cast", [b.op("Equal", [gather(out), updates])], to=dy.dtype)
        share = dy / b.op("ScatterElements", [hit_data, index, hit_upd], axis=axis, reduction="add")
        return [share * hit_data, None, gather(share) * hit_upd]
    raise ctx.fail(f"unknown reduction={reduction!r}.")


@register("ScatterND")
def _scatter_nd(ctx):
    b, data, index, updates, dy = ctx.b, ctx.I(0), ctx.I(1), ctx.I(2), ctx.GO(0)
    reduction = ctx.attr("reduction", "none")

    def gather(t: Value) -> Value:
        return b.op("GatherND", [t, index])

    if reduction == "none":  # overwritten positions lose their data gradient to the update written there
        d_data = b.op("ScatterND", [dy, index, _zeros(b, b.op("Shape", [updates]), dy.dtype)], shape=data.shape)
        return [d_data, None, gather(dy)]
    if reduction == "add":
        return [dy, None, gather(dy)]
    if reduction == "mul":
        if ctx.needs(2):
            raise ctx.fail("reduction='mul' has no division-free gradient for updates (it needs the product "
                           "of the other factors written to the same position); only data is supported.")
        ones = b.op("ConstantOfShape", [b.op("Shape", [data])], value=protos.tensor("one", dy.dtype, [1], [1]))
        return [dy * b.op("ScatterND", [ones, index, updates], reduction="mul"), None, None]
    if reduction in ("max", "min"):
        # The winner takes the gradient; ties share it evenly, as for ScatterElements.
        out = ctx.O(0)
        hit_data = b.op("Cast", [b.op("Equal", [out, data])], to=dy.dtype)
        hit_upd = b.op("Cast", [b.op("Equal", [gather(out), updates])], to=dy.dtype)
        share = dy / b.op("ScatterND", [hit_data, index, hit_upd], reduction="add")
        return [share * hit_data, None, gather(share) * hit_upd]
    raise ctx.fail(f"unknown reduction={reduction!r}.")


# ------------------------------------------------------------ broadcast/tile
@register("Expand")
def _expand(ctx):
    return [unbroadcast(ctx.GO(0), ctx.I(0), ctx.O(0).shape), None]


@register("Tile")
def _tile(ctx):
    x = ctx.I(0)
    _needs_rank(ctx, x)
    repeats = ctx.const_input(1)
    factors = repeats if repeats is not None else _as_i64(ctx.b, ctx.I(1))
    return [_fold(ctx.b, ctx.GO(0), x, factors, copies_outer=True), None]


# ---------------------------------------------------------------------- pad
@register("Pad")
def _pad(ctx):
    b, x, dy = ctx.b, ctx.I(0), ctx.GO(0)
    mode = ctx.attr("mode", "constant")
    axes = ctx.I(3)
    if mode != "constant":  # reflect / edge / wrap copy input elements: scatter-add them back
        if mode not in ("reflect", "edge", "wrap"):
            raise ctx.fail(f"unknown mode={mode!r}.")
        return [_through_iota(ctx, "Pad", [ctx.I(1), None, axes], mode=mode) if ctx.needs(0) else None,
                None, None, None]
    d_x = _pad_constant_grad(ctx)
    d_value = None
    if ctx.needs(2):  # every padded position holds the constant: it gets the sum of their gradients
        total = b.op("ReduceSum", [dy], keepdims=0)
        d_value = b.op("Reshape", [total - b.op("ReduceSum", [d_x], keepdims=0), b.op("Shape", [ctx.I(2)])])
    return [d_x, None, d_value, None]


def _pad_constant_grad(ctx: GradContext) -> Value:
    """Crop the padding off the upstream gradient; where the pad was negative (cropping), pad zeros back.

    Slice and Pad read ``axes`` the same way (omitted: all axes, as many as the pads' halves), so the
    node's own ``axes`` input is passed through.
    """
    b, x, dy, axes = ctx.b, ctx.I(0), ctx.GO(0), ctx.I(3)
    pads = ctx.const_input(1)
    if pads is not None:
        lo, hi = np.split(pads.astype(np.int64), 2)
        begin = _i64(b, np.maximum(lo, 0))
        # Count the end from the back (-pad), or run to the end where nothing was padded there.
        ends = _i64(b, np.where(hi > 0, -hi, np.iinfo(np.int64).max))
        refill = None if (lo >= 0).all() and (hi >= 0).all() else _i64(b, np.maximum(-pads, 0))
    else:
        zero = _i64(b, 0)
        pads = ctx.I(1)
        lo, hi = b.op("Split", [pads], outputs=2, axis=0, num_outputs=2)
        begin = b.op("Max", [lo, zero])
        out_dims = b.op("Shape", [dy]) if axes is None else b.op("Gather", [b.op("Shape", [dy]), axes], axis=0)
        ends = b.op("Sub", [out_dims, b.op("Max", [hi, zero])])
        refill = b.op("Max", [b.op("Neg", [pads]), zero])
    g = _op(b, "Slice", [dy, begin, ends, axes])
    if refill is not None and axes is None:
        g = _op(b, "Pad", [g, refill], mode="constant")
    elif refill is not None:
        lo, hi = b.op("Split", [refill], outputs=2, axis=0, num_outputs=2)
        g = _pad_on_axes(b, g, lo, hi, axes)
    g.shape = x.shape
    return g


# ------------------------------------------------------------------- resize
#: (coordinate_transformation_mode, nearest_mode) pairs for which nearest upsampling by an integer factor
#: copies each input element into one contiguous block: (o + 0.5) / s - 0.5 stays within 0.5 of o // s,
#: and o / s floors to o // s.
_BLOCK_NEAREST = {("half_pixel", "round_prefer_floor"), ("half_pixel", "round_prefer_ceil"),
                  ("pytorch_half_pixel", "round_prefer_floor"), ("pytorch_half_pixel", "round_prefer_ceil"),
                  ("asymmetric", "floor")}


@register("Resize")
def _resize(ctx):
    b, x, dy = ctx.b, ctx.I(0), ctx.GO(0)
    rank = _needs_rank(ctx, x)
    mode = ctx.attr("mode", "nearest")
    ctm = ctx.attr("coordinate_transformation_mode", "half_pixel")
    if mode not in ("nearest", "linear", "cubic"):
        raise ctx.fail(f"unknown mode={mode!r}.")
    sizes = ctx.I(3)
    if sizes is not None and ctx.attr("keep_aspect_ratio_policy", "stretch") != "stretch":
        raise ctx.fail(f"keep_aspect_ratio_policy={ctx.attr('keep_aspect_ratio_policy')!r} is not supported "
                       "(its shared scale and rounded sizes are not reproducible per axis); use 'stretch'.")
    axes = [a % rank for a in (ctx.attr("axes") or range(rank))]
    scales = None if sizes is not None else ctx.const_input(2)

    factors = _integer_factors(ctx, x, axes, scales)
    if (mode == "nearest" and factors is not None
            and (ctm, ctx.attr("nearest_mode", "round_prefer_floor")) in _BLOCK_NEAREST):
        return [_fold(b, dy, x, factors, copies_outer=False), None, None, None]

    g = dy
    for k, a in enumerate(axes):
        if ctm != "tf_crop_and_resize" and _is_identity_axis(ctx, x, k, a, scales):
            continue
        last = a == rank - 1
        w = _axis_matrix(ctx, k, a, out_first=last)
        if last:  # g[..., o] @ W[o, i]
            g = b.op("MatMul", [g, w])
        else:  # W^T[i, o] @ g[..., o, j] with axis a moved to the second-last place
            perm = list(range(rank))
            perm[a], perm[rank - 2] = perm[rank - 2], perm[a]
            moved = g if a == rank - 2 else b.op("Transpose", [g], perm=perm)
            g = b.op("MatMul", [w, moved])
            g = g if a == rank - 2 else b.op("Transpose", [g], perm=perm)
    g.shape = x.shape
    return [g, None, None, None]


def _integer_factors(ctx: GradContext, x: Value, axes: list[int], scales: np.ndarray | None) -> np.ndarray | None:
    """Per-axis integer upsampling factors, when the constant scales (or sizes over static dims) are."""
    if scales is None:
        sizes = ctx.const_input(3) if ctx.I(3) is not None else None
        dims = [x.shape[a] for a in axes] if x.shape is not None else [None]
        if sizes is None or not all(isinstance(d, int) and d > 0 for d in dims):
            return None
        scales = np.asarray(sizes, np.float64) / np.asarray(dims, np.float64)
    if not (np.all(scales >= 1) and np.all(scales == np.round(scales))):
        return None
    factors = np.ones(x.rank, np.int64)
    factors[axes] = np.asarray(scales, np.int64)
    return factors


def _is_identity_axis(ctx: GradContext, x: Value, k: int, a: int, scales: np.ndarray | None) -> bool:
    if scales is not None:
        return bool(scales[k] == 1)
    sizes = ctx.const_input(3) if ctx.I(3) is not None else None
    return sizes is not None and x.shape is not None and x.shape[a] == int(sizes[k])


def _axis_matrix(ctx: GradContext, k: int, a: int, out_first: bool) -> Value:
    """Axis ``a``'s interpolation matrix W (out x in) if ``out_first``, else W^T (in x out).

    Made by resizing an identity matrix along one of its axes with the forward node's own attributes:
    row/column i of the result is W applied to the unit vector e_i.
    """
    b, x = ctx.b, ctx.I(0)
    n = _dim(b, x, a)
    if isinstance(x.shape[a], int):
        eye = b.const(np.eye(x.shape[a], dtype=np_dtype(x.dtype)))
    else:
        square = b.op("Concat", [n, n], axis=0)
        eye = b.op("EyeLike", [b.op("ConstantOfShape", [square], value=protos.tensor("z", x.dtype, [1], [0]))])

    def along(v: Value, other: Value) -> Value:  # a length-2 vector: v on the resized eye axis
        pair = [v, other] if out_first else [other, v]
        known = [b.constant_value(p.name) for p in pair]
        if all(c is not None for c in known):
            return b.const(np.concatenate(known))
        return b.op("Concat", pair, axis=0)

    pick = _i64(b, [k])
    sizes = ctx.I(3)
    roi = scales = size2 = None
    if sizes is not None:
        known = ctx.const_input(3)
        size = _i64(b, [known[k]]) if known is not None else b.op("Gather", [_as_i64(b, sizes), pick], axis=0)
        size2 = along(size, n)
    else:
        known = ctx.const_input(2)
        scale = b.const(known[k:k + 1]) if known is not None else b.op("Gather", [ctx.I(2), pick], axis=0)
        scales = along(scale, b.const(np.ones(1, np.float32)))
    mode = ctx.attr("mode", "nearest")
    attrs = {"mode": mode,
             "coordinate_transformation_mode": ctx.attr("coordinate_transformation_mode", "half_pixel")}
    if attrs["coordinate_transformation_mode"] == "tf_crop_and_resize":
        r = ctx.I(1)
        n_axes = len(ctx.attr("axes") or range(x.rank))
        lo = b.op("Gather", [r, pick], axis=0)
        hi = b.op("Gather", [r, _i64(b, [n_axes + k])], axis=0)
        z, one = b.const(np.zeros(1), r.dtype), b.const(np.ones(1), r.dtype)
        roi = b.op("Concat", [lo, z, hi, one] if out_first else [z, lo, one, hi], axis=0)
        attrs["extrapolation_value"] = 0.0  # the fill is a constant: it carries no gradient
    if mode == "nearest":
        attrs["nearest_mode"] = ctx.attr("nearest_mode", "round_prefer_floor")
    else:
        attrs["antialias"] = ctx.attr("antialias", 0)
    if mode == "cubic":
        attrs["cubic_coeff_a"] = ctx.attr("cubic_coeff_a", -0.75)
        attrs["exclude_outside"] = ctx.attr("exclude_outside", 0)
    return _op(b, "Resize", [eye, roi, scales, size2], **attrs)
