"""Graph pieces shared by the attention layers: causal and banded masks, masked softmax, mask broadcasting."""
from __future__ import annotations

__all__ = ["seq_len", "causal_mask", "band_mask", "masked_softmax", "expand_mask", "as_bool", "LARGE_NEGATIVE",
           "SDPA_NEGATIVE"]

from collections.abc import Sequence

import numpy as np
import onnx

from ...graph import Value
from ...graph import emit as _ops
from ...graph.size_limits import check_constant

_BOOL = onnx.TensorProto.BOOL
_I64 = onnx.TensorProto.INT64
#: What Keras's Softmax layer writes at masked positions (float32).
LARGE_NEGATIVE = -1e9
#: What Keras's torch ``dot_product_attention`` adds at masked positions (0.7 x the float32 maximum).
SDPA_NEGATIVE = -0.7 * 3.38953e38


def seq_len(x: Value, axis: int) -> int | Value:
    """``x.shape[axis]`` as an int when static, else a 1-element int64 tensor."""
    d = x.shape[axis] if x.shape is not None else None
    if isinstance(d, int):
        return d
    b = x.builder
    return b.op("Gather", [b.op("Shape", [x]), _ops.ints(b, [axis % len(x.shape)])], axis=0, shape=(1,))


def _positions(b, n: int | Value) -> Value:
    if isinstance(n, int):
        return _ops.ints(b, list(range(n)))
    zero, one = b.const(np.asarray(0, np.int64)), b.const(np.asarray(1, np.int64))
    limit = b.op("Squeeze", [n, _ops.ints(b, [0])], shape=())
    return b.op("Range", [zero, limit, one], shape=(None,))


def _row_col(b, t: int | Value, s: int | Value) -> tuple[Value, Value]:
    rows = b.op("Unsqueeze", [_positions(b, t), _ops.ints(b, [0, 2])])  # (1, T, 1)
    cols = b.op("Unsqueeze", [_positions(b, s), _ops.ints(b, [0, 1])])  # (1, 1, S)
    return rows, cols


def causal_mask(b, t: int | Value, s: int | Value) -> Value:
    """Bool ``(1, T, S)``: query step ``i`` sees key steps ``j <= i`` (Keras's lower-triangular mask)."""
    if isinstance(t, int) and isinstance(s, int):
        check_constant((t, s), 1, "the causal mask")   # before numpy allocates it
        return b.const(np.tril(np.ones((t, s), bool))[None], _BOOL)
    rows, cols = _row_col(b, t, s)
    return b.op("GreaterOrEqual", [rows, cols], shape=(1, None, None))


def band_mask(b, t: int | Value, s: int | Value, window: int) -> Value:
    """Bool ``(1, T, S)``: ``|i - j| < window`` (Keras's sliding-window band)."""
    if isinstance(t, int) and isinstance(s, int):
        check_constant((t, s), 8, "the sliding-window mask")   # before numpy allocates it (int64 i - j)
        i, j = np.arange(t)[:, None], np.arange(s)[None, :]
        return b.const((np.abs(i - j) < window)[None], _BOOL)
    rows, cols = _row_col(b, t, s)
    return b.op("Less", [b.op("Abs", [b.op("Sub", [rows, cols])]), b.const(np.asarray(window, np.int64))],
                shape=(1, None, None))


def as_bool(mask: Value) -> Value:
    """A mask as bool (Keras keeps entries > 0.5 of a float mask, and non-zero ints)."""
    if mask.dtype == _BOOL:
        return mask
    b = mask.builder
    if mask.is_float:
        return b.op("Greater", [mask, 0.5], shape=mask.shape)
    return b.op("Not", [b.op("Equal", [mask, b.const(np.asarray(0), mask.dtype)])], shape=mask.shape)


def both(a: Value | None, m: Value | None) -> Value | None:
    if a is None:
        return m
    if m is None:
        return a
    return a.builder.op("And", [a, m])


def expand_mask(mask: Value, rank: int, axis: int) -> Value:
    """Insert length-1 axes at ``axis`` (negative, Keras's ``expand_dims`` loop) until ``mask`` has ``rank``."""
    b = mask.builder
    while mask.rank is not None and mask.rank < rank:
        at = axis % (mask.rank + 1)
        shape = None if mask.shape is None else (*mask.shape[:at], 1, *mask.shape[at:])
        mask = b.op("Unsqueeze", [mask, _ops.ints(b, [at])], shape=shape)
    return mask


def masked_softmax(scores: Value, mask: Value | None, axes: Sequence[int], zero_masked: bool = True,
                   fill: float = LARGE_NEGATIVE, additive: bool = False, rank: int | None = None) -> Value:
    """Softmax of ``scores`` over ``axes`` where ``mask`` is True.

    ``zero_masked`` (Keras's ``Softmax`` layer): masked entries become ``fill`` before and 0 after the
    softmax. ``additive`` (Keras's ``dot_product_attention``): ``fill`` is added where masked, nothing zeroed.
    """
    b = scores.builder
    rank = rank if rank is not None else len(scores.shape)
    axes = sorted(a % rank for a in axes)
    if mask is not None:
        if additive:
            bias = b.op("Where", [mask, b.const(np.asarray(0.0, np.float32), scores.dtype),
                                  b.const(np.asarray(fill, np.float32), scores.dtype)], dtype=scores.dtype)
            scores = scores + bias
        else:
            scores = b.op("Where", [mask, scores, b.const(np.asarray(fill, np.float32), scores.dtype)],
                          dtype=scores.dtype)
    if len(axes) == 1:
        probs = b.op("Softmax", [scores], axis=axes[0])
    else:  # Keras: exp(x - logsumexp(x)) over several axes
        probs = b.op("Exp", [scores - _ops.reduce("ReduceLogSumExp", scores, axes, keepdims=True)],
                     dtype=scores.dtype)
    if mask is not None and zero_masked and not additive:
        probs = b.op("Where", [mask, probs, b.const(np.asarray(0.0, np.float32), scores.dtype)], dtype=scores.dtype)
    return probs
