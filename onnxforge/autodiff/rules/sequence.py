"""Gradient rules: sequences of tensors (SplitToSequence, SequenceAt, SequenceConstruct, SequenceInsert,
SequenceErase, ConcatFromSequence).

The gradient of a sequence is a sequence of the same length, element ``i`` the gradient of element ``i``.
Sequences whose layout is known while building are rewritten into plain tensor ops before the walk
(``lowering.py``); these rules carry the rest: positions and lengths known only at run time.

* ``SequenceAt(S, i)``: zeros shaped like ``S``'s elements, with the incoming gradient put at ``i``
  (erase the zero there, insert the gradient).
* ``SequenceInsert`` / ``SequenceErase``: the gradient sequence with that position erased / a zero
  inserted; the inserted tensor's gradient is the element read back at its position.
* ``SplitToSequence`` <-> ``ConcatFromSequence``: each is the other's transpose.

Element-wise work on sequences (zeros like a sequence, the sum of two gradient sequences) is a
``SequenceMap`` over a one-node body.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from ...graph import GraphBuilder, Value
from ..context import GradContext
from ..registry import register

__all__ = ["add_sequences", "zeros_like_sequence"]

_I64 = onnx.TensorProto.INT64


# ------------------------------------------------------------------ element-wise helpers
def _map(b: GraphBuilder, sequences: list[Value], body_nodes, dtype: int | None, hint: str) -> Value:
    """``SequenceMap`` of ``sequences`` through a body of ``body_nodes(names) -> (nodes, out_name)`` whose
    output elements are of type ``dtype``."""
    names = [b.fresh(f"{hint}_in{k}") for k in range(len(sequences))]
    nodes, out = body_nodes(names)
    undefined = onnx.TensorProto.UNDEFINED
    body = helper.make_graph(nodes, b.fresh(f"{hint}_body"),
                             [helper.make_tensor_value_info(n, s.dtype or undefined, None)
                              for n, s in zip(names, sequences)],
                             [helper.make_tensor_value_info(out, dtype or undefined, None)])
    return b.op("SequenceMap", sequences, body=body, dtype=dtype)


def zeros_like_sequence(b: GraphBuilder, s: Value) -> Value:
    """A sequence as long as ``s`` whose elements are zeros shaped like ``s``'s."""
    def body(names):
        shape, out = b.fresh("zeros_shape"), b.fresh("zeros")
        if s.dtype is not None:
            zero = helper.make_tensor("value", s.dtype, [1], [0])
            return [helper.make_node("Shape", [names[0]], [shape]),
                    helper.make_node("ConstantOfShape", [shape], [out], value=zero)], out
        cast, scalar = b.fresh("zero_like"), b.fresh("zero_scalar")
        return [helper.make_node("Constant", [], [scalar], value=helper.make_tensor("z", 1, [], [0.0])),
                helper.make_node("CastLike", [scalar, names[0]], [cast]),
                helper.make_node("Shape", [names[0]], [shape]),
                helper.make_node("Expand", [cast, shape], [out])], out
    return _map(b, [s], body, s.dtype, "zeros_like")


def add_sequences(b: GraphBuilder, a: Value, c: Value) -> Value:
    """The element-wise sum of two sequences of equal length (gradients reaching one sequence twice)."""
    def body(names):
        out = b.fresh("sum")
        return [helper.make_node("Add", names, [out])], out
    return _map(b, [a, c], body, a.dtype or c.dtype, "add_sequences")


def _position(b: GraphBuilder, pos: Value | None, seq: Value, default_last: bool) -> Value:
    """``pos`` as a non-negative int64 scalar counted in ``seq`` (negative positions count from the end);
    omitted: the last position (``default_last``) or the end (one past the last)."""
    length = b.op("SequenceLength", [seq], dtype=_I64)
    if pos is None:
        return b.op("Sub", [length, b.const(np.asarray(1, np.int64))]) if default_last else length
    pos = pos if pos.dtype == _I64 else b.op("Cast", [pos], to=_I64)
    return b.op("Where", [b.op("Less", [pos, b.const(np.asarray(0, np.int64))]), b.op("Add", [pos, length]), pos],
                dtype=_I64)


# ------------------------------------------------------------------ rules
@register("SequenceAt")
def _sequence_at(ctx: GradContext):
    b, s, dy = ctx.b, ctx.I(0), ctx.GO(0)
    at = _position(b, ctx.I(1), s, default_last=False)
    zeros = zeros_like_sequence(b, s)
    holed = b.op("SequenceErase", [zeros, at], dtype=s.dtype)
    return [b.op("SequenceInsert", [holed, dy, at], dtype=s.dtype), None]


@register("SequenceConstruct")
def _sequence_construct(ctx: GradContext):
    b, ds = ctx.b, ctx.GO(0)
    return [b.op("SequenceAt", [ds, b.const(np.asarray(i, np.int64))], dtype=ctx.I(i).dtype, shape=ctx.I(i).shape)
            if ctx.needs(i) else None for i in range(ctx.n_inputs)]


@register("SequenceInsert")
def _sequence_insert(ctx: GradContext):
    b, s, t, ds = ctx.b, ctx.I(0), ctx.I(1), ctx.GO(0)
    # Where the tensor landed, counted in the input sequence (the end when no position is given).
    at = _position(b, ctx.I(2), s, default_last=False)
    d_seq = b.op("SequenceErase", [ds, at], dtype=s.dtype) if ctx.needs(0) else None
    d_t = b.op("SequenceAt", [ds, at], dtype=t.dtype, shape=t.shape) if ctx.needs(1) else None
    return [d_seq, d_t, None]


@register("SequenceErase")
def _sequence_erase(ctx: GradContext):
    b, s, ds = ctx.b, ctx.I(0), ctx.GO(0)
    at = _position(b, ctx.I(1), s, default_last=True)
    gone = b.op("SequenceAt", [s, at], dtype=s.dtype)
    return [b.op("SequenceInsert", [ds, b.zeros_like(gone), at], dtype=s.dtype), None]


@register("SplitToSequence")
def _split_to_sequence(ctx: GradContext):
    # Without `split` and with keepdims=0 the pieces lost the split axis: stack them back (new_axis=1).
    squeezed = ctx.I(1) is None and not int(ctx.attr("keepdims", 1))
    x = ctx.I(0)
    dx = ctx.b.op("ConcatFromSequence", [ctx.GO(0)], axis=int(ctx.attr("axis", 0)), new_axis=int(squeezed),
                  dtype=x.dtype, shape=x.shape)
    return [dx, None]


@register("ConcatFromSequence")
def _concat_from_sequence(ctx: GradContext):
    b, s, dy = ctx.b, ctx.I(0), ctx.GO(0)
    axis, new_axis = int(ctx.attr("axis")), int(ctx.attr("new_axis", 0))
    if new_axis:  # each element is one slice of the new axis
        return [b.op("SplitToSequence", [dy], axis=axis, keepdims=0, dtype=s.dtype)]

    def body(names):  # each element's extent along the concatenation axis, as a 1-element tensor
        shape, index, out = b.fresh("shape"), b.fresh("axis"), b.fresh("extent")
        return [helper.make_node("Shape", [names[0]], [shape]),
                helper.make_node("Constant", [], [index], value=helper.make_tensor("a", _I64, [1], [axis])),
                helper.make_node("Gather", [shape, index], [out], axis=0)], out
    extents = _map(b, [s], body, _I64, "extent")
    lengths = b.op("ConcatFromSequence", [extents], axis=0, dtype=_I64)
    return [b.op("SplitToSequence", [dy, lengths], axis=axis, dtype=s.dtype)]


# Lengths and empty sequences carry no gradient.
register("SequenceLength", "SequenceEmpty")(lambda ctx: [None] * ctx.n_inputs)
