"""``keras.ops.math``: ``top_k`` / ``in_top_k``, segment reductions, ``extract_sequences``, and the Fourier
transforms ``fft`` / ``ifft`` / ``fft2`` / ``ifft2`` / ``rfft`` / ``irfft`` on ``(real, imag)`` pairs.

The transforms multiply by constant DFT matrices (cosine and sine tables) along static axes, so they are
plain ``MatMul`` nodes: exact to float32 round-off, differentiable, and run by every ONNX runtime.

Example:
    >>> import numpy as np
    >>> from onnxforge import ops
    >>> values, indices = ops.top_k(np.array([1.0, 4.0, 2.0]), k=2)
    >>> values.tolist(), indices.tolist()
    ([4.0, 2.0], [1, 2])
"""
from __future__ import annotations

__all__ = ["top_k", "in_top_k", "segment_sum", "segment_max", "segment_min", "segment_prod",
           "extract_sequences", "fft", "ifft", "fft2", "ifft2", "rfft", "irfft", "logdet"]

import operator
from typing import Any

import numpy as np

from ..graph import FLOAT_TYPES, Value, np_dtype
from ..graph.size_limits import check_constant
from ._arrays_util import emit
from ._util import as_value, builder_of, cast_value, int_const, promote, symbolic


# ------------------------------------------------------------------------------------------ top k
def _integer(k: Any) -> int | None:
    """``k`` as an int (Python, numpy or 0-d tensor), ``None`` for a bool or a non-integral number."""
    if isinstance(k, bool):
        return None
    if isinstance(k, Value) or hasattr(k, "__onnx_value__"):
        return int(k)   # raises Value's own explanation: k must be known while the graph is built
    try:
        return operator.index(k)
    except TypeError:
        try:
            number = float(k)
        except (TypeError, ValueError):
            return None
        return int(number) if number.is_integer() and not isinstance(k, float) else None


@symbolic
def top_k(x: Any, k: int, sorted: bool = True) -> tuple[Value, Value]:  # noqa: A002
    """The ``k`` largest entries along the last axis and their int32 indices (values differentiable)."""
    b = builder_of(x)
    v = as_value(x, b)
    last = v.shape[-1] if v.shape else None
    count = _integer(k)
    if count is None or count < 0 or (isinstance(last, int) and count > last):
        raise ValueError(f"ops.top_k: `k` must be an integer between 0 and the size of the last axis ({last}). "
                         f"Received: k={k!r} for x of shape {v.shape}")
    _, idx = emit(b, "TopK", [v, int_const(b, [count])], outputs=2, axis=-1, largest=1, sorted=1)
    # Gathering by the indices makes the values differentiable (TopK itself has no gradient rule).
    values = emit(b, "GatherElements", [v, idx], axis=-1)
    return values, cast_value(idx, 6)


@symbolic
def in_top_k(targets: Any, predictions: Any, k: int) -> Value:
    """Whether each row's target class is among its ``k`` highest predictions (ties count as in)."""
    b = builder_of(targets, predictions)
    p = as_value(predictions, b)
    t = cast_value(as_value(targets, b), 7)
    target_score = emit(b, "GatherElements", [p, emit(b, "Unsqueeze", [t, int_const(b, [-1])])], axis=-1)
    higher = emit(b, "ReduceSum", [cast_value(emit(b, "Greater", [p, target_score]), 7), int_const(b, [-1])],
                  keepdims=0)
    return emit(b, "Less", [higher, as_value(np.int64(int(k)), b)])


# ------------------------------------------------------------------------------------------ segments
def _segments(data: Any, segment_ids: Any, num_segments: Any, name: str) -> tuple[Any, Value, Value, int]:
    b = builder_of(data, segment_ids)
    v = as_value(data, b)
    ids = cast_value(as_value(segment_ids, b), 7)
    if num_segments is None:
        raise ValueError(f"ops.{name} in a graph needs num_segments: the output size cannot depend on the "
                         "data (eager calls on arrays find it from the ids).")
    n = int(num_segments)
    check_constant((n,), 8, f"ops.{name}'s segment ids")   # before the list of them is made
    hits = emit(b, "Equal", [emit(b, "Unsqueeze", [ids, int_const(b, [-1])]), int_const(b, list(range(n)))])
    return b, v, hits, n   # hits: (N, n) bool


def _with_num_segments(fn: Any) -> Any:
    """Eager calls may leave ``num_segments`` out (found from the ids, as Keras does)."""
    import functools

    @functools.wraps(fn)
    def call(data: Any, segment_ids: Any, num_segments: Any = None, sorted: bool = False) -> Any:  # noqa: A002
        if num_segments is None and isinstance(segment_ids, np.ndarray):
            num_segments = int(segment_ids.max()) + 1 if segment_ids.size else 0
        return fn(data, segment_ids, num_segments, sorted)

    return call


@_with_num_segments
@symbolic
def segment_sum(data: Any, segment_ids: Any, num_segments: Any = None, sorted: bool = False) -> Value:  # noqa: A002
    """Sums of the rows of ``data`` that share a segment id (masked rows summed: differentiable)."""
    b, v, hits, n = _segments(data, segment_ids, num_segments, "segment_sum")
    if v.dtype not in FLOAT_TYPES:
        onehot = cast_value(hits, v.dtype if v.dtype is not None else 1)
        letters = "abcdefghij"[:len(v.shape) - 1]
        return emit(b, "Einsum", [onehot, v], equation=f"nk,n{letters}->k{letters}")
    # Not a one-hot contraction for floats: 0 * nan is nan, so a nan would reach every segment (Keras's holds
    # it to its own).
    mask = emit(b, "Reshape", [hits, int_const(b, [0, n] + [1] * (len(v.shape) - 1))], allowzero=0)
    filled = emit(b, "Where", [mask, emit(b, "Unsqueeze", [v, int_const(b, [1])]), as_value(0, b, like=v)])
    return emit(b, "ReduceSum", [filled, int_const(b, [0])], keepdims=0)


def _masked_extreme(data: Any, segment_ids: Any, num_segments: Any, name: str, largest: bool) -> Value:
    b, v, hits, n = _segments(data, segment_ids, num_segments, name)
    rank = len(v.shape)
    mask = emit(b, "Reshape", [hits, int_const(b, [0, n] + [1] * (rank - 1))], allowzero=0)   # (N, n, 1, ...)
    expanded = emit(b, "Unsqueeze", [v, int_const(b, [1])])                                 # (N, 1, ...)
    if v.dtype in FLOAT_TYPES:
        fill = np.finfo(np_dtype(v.dtype)).min if largest else np.finfo(np_dtype(v.dtype)).max
    else:
        fill = np.iinfo(np_dtype(v.dtype)).min if largest else np.iinfo(np_dtype(v.dtype)).max
    filled = emit(b, "Where", [mask, expanded, as_value(fill, b, like=v)])
    out = emit(b, "ReduceMax" if largest else "ReduceMin", [filled, int_const(b, [0])], keepdims=0)
    if v.dtype not in FLOAT_TYPES:
        return out
    # onnxruntime's ReduceMax skips nan; Keras's segment_max answers nan for a segment holding one.
    nan = emit(b, "ReduceMax", [cast_value(emit(b, "IsNaN", [filled]), 7), int_const(b, [0])], keepdims=0)
    nan = emit(b, "Greater", [nan, as_value(np.int64(0), b)])
    return emit(b, "Where", [nan, as_value(np.nan, b, like=v), out])


@_with_num_segments
@symbolic
def segment_max(data: Any, segment_ids: Any, num_segments: Any = None, sorted: bool = False) -> Value:  # noqa: A002
    """The largest row per segment (empty segments hold the dtype's lowest value, as in TensorFlow)."""
    return _masked_extreme(data, segment_ids, num_segments, "segment_max", True)


@_with_num_segments
@symbolic
def segment_min(data: Any, segment_ids: Any, num_segments: Any = None, sorted: bool = False) -> Value:  # noqa: A002
    return _masked_extreme(data, segment_ids, num_segments, "segment_min", False)


@_with_num_segments
@symbolic
def segment_prod(data: Any, segment_ids: Any, num_segments: Any = None, sorted: bool = False) -> Value:  # noqa: A002
    b, v, hits, n = _segments(data, segment_ids, num_segments, "segment_prod")
    rank = len(v.shape)
    mask = emit(b, "Reshape", [hits, int_const(b, [0, n] + [1] * (rank - 1))])
    filled = emit(b, "Where", [mask, emit(b, "Unsqueeze", [v, int_const(b, [1])]), as_value(1, b, like=v)])
    return emit(b, "ReduceProd", [filled, int_const(b, [0])], keepdims=0)


# ------------------------------------------------------------------------------------------ framing
@symbolic
def extract_sequences(x: Any, sequence_length: int, sequence_stride: int) -> Value:
    """Frames of the last axis: ``(..., num_sequences, sequence_length)``."""
    b = builder_of(x)
    v = as_value(x, b)
    n = v.shape[-1]
    if not isinstance(n, int):
        raise ValueError("ops.extract_sequences needs a static size along the last axis.")
    count = 1 + (n - int(sequence_length)) // int(sequence_stride)
    check_constant((count, int(sequence_length)), 8, "ops.extract_sequences's frame index")   # pre-alloc
    index = np.arange(count)[:, None] * int(sequence_stride) + np.arange(int(sequence_length))[None, :]
    return emit(b, "Gather", [v, as_value(index.astype(np.int64), b)], axis=-1)


# ------------------------------------------------------------------------------------------ Fourier
def _pair(x: Any, name: str) -> tuple[Any, Value, Value]:
    if not isinstance(x, (tuple, list)) or len(x) != 2:
        raise ValueError(f"ops.{name} takes a tuple (real, imag) of two tensors. Received: {x!r}")
    b = builder_of(*x)
    re, im = promote(b, *x)
    if re.dtype not in FLOAT_TYPES:
        re, im = cast_value(re, 1), cast_value(im, 1)
    return b, re, im


def _dft(b: Any, n_in: int, n_out: int, like: Value, inverse: bool) -> tuple[Value, Value]:
    """Cosine and sine tables ``(n_in, n_out)`` of the (inverse) DFT: ``X_k = sum_j x_j e^{-+2 pi i jk/n}``."""
    check_constant((n_in, n_out), 8, "the DFT table of a Fourier op")   # pre-alloc
    j = np.arange(n_in)[:, None]
    k = np.arange(n_out)[None, :]
    n = max(n_in, n_out)
    angle = 2.0 * np.pi * ((j * k) % n) / n
    cos, sin = np.cos(angle), np.sin(angle) * (1.0 if inverse else -1.0)
    if inverse:
        cos, sin = cos / n, sin / n
    dtype = np_dtype(like.dtype)
    return as_value(cos.astype(dtype), b), as_value(sin.astype(dtype), b)


def _last_axis_dft(b: Any, re: Value, im: Value, inverse: bool) -> tuple[Value, Value]:
    n = re.shape[-1]
    if not isinstance(n, int):
        raise ValueError("The Fourier ops need a static size along the transformed axes.")
    c, s = _dft(b, n, n, re, inverse)
    out_re = emit(b, "MatMul", [re, c]) - emit(b, "MatMul", [im, s])
    out_im = emit(b, "MatMul", [re, s]) + emit(b, "MatMul", [im, c])
    return out_re, out_im


def _swap_last_two(b: Any, v: Value) -> Value:
    r = len(v.shape)
    return emit(b, "Transpose", [v], perm=[*range(r - 2), r - 1, r - 2])


@symbolic
def fft(x: Any) -> tuple[Value, Value]:
    """The DFT along the last axis of ``x = (real, imag)``."""
    b, re, im = _pair(x, "fft")
    return _last_axis_dft(b, re, im, False)


@symbolic
def ifft(x: Any) -> tuple[Value, Value]:
    b, re, im = _pair(x, "ifft")
    return _last_axis_dft(b, re, im, True)


def _fft2(x: Any, inverse: bool, name: str) -> tuple[Value, Value]:
    b, re, im = _pair(x, name)
    re, im = _last_axis_dft(b, re, im, inverse)
    re, im = _last_axis_dft(b, _swap_last_two(b, re), _swap_last_two(b, im), inverse)
    return _swap_last_two(b, re), _swap_last_two(b, im)


@symbolic
def fft2(x: Any) -> tuple[Value, Value]:
    """The 2-D DFT over the last two axes of ``x = (real, imag)``."""
    return _fft2(x, False, "fft2")


@symbolic
def ifft2(x: Any) -> tuple[Value, Value]:
    return _fft2(x, True, "ifft2")


@symbolic
def rfft(x: Any, fft_length: int | None = None) -> tuple[Value, Value]:
    """The DFT of real ``x`` along its last axis, ``fft_length // 2 + 1`` frequencies (zero-padded or cut
    to ``fft_length`` first)."""
    b = builder_of(x)
    v = as_value(x, b)
    if v.dtype not in FLOAT_TYPES:
        v = cast_value(v, 1)
    n = v.shape[-1]
    length = n if fft_length is None else int(fft_length)
    if not isinstance(length, int):
        raise ValueError("ops.rfft needs a static size along the last axis (or fft_length).")
    check_constant((n, length // 2 + 1), 8, "ops.rfft's DFT table")   # pre-alloc
    j = np.arange(n)[:, None]
    k = np.arange(length // 2 + 1)[None, :]
    angle = 2.0 * np.pi * ((j * k) % length) / length
    keep = (j < length).astype(np.float64)
    dtype = np_dtype(v.dtype)
    cos = as_value((np.cos(angle) * keep).astype(dtype), b)
    sin = as_value((-np.sin(angle) * keep).astype(dtype), b)
    return emit(b, "MatMul", [v, cos]), emit(b, "MatMul", [v, sin])


@symbolic
def irfft(x: Any, fft_length: int | None = None) -> Value:
    """The real inverse of ``rfft``: ``x = (real, imag)`` of ``m`` frequencies gives ``fft_length`` samples
    (default ``2 (m - 1)``)."""
    b, re, im = _pair(x, "irfft")
    m = re.shape[-1]
    if not isinstance(m, int):
        raise ValueError("ops.irfft needs a static number of frequencies.")
    n = 2 * (m - 1) if fft_length is None else int(fft_length)
    check_constant((m, n), 8, "ops.irfft's DFT table")   # pre-alloc
    k = np.arange(m)[:, None]
    t = np.arange(n)[None, :]
    # Hermitian symmetry: the frequencies strictly between 0 and n/2 stand for two (weight 2).
    weight = np.where((k == 0) | ((n % 2 == 0) & (k == n // 2)), 1.0, 2.0) * (k <= n // 2)
    angle = 2.0 * np.pi * ((k * t) % n) / n
    dtype = np_dtype(re.dtype)
    cos = as_value((weight * np.cos(angle) / n).astype(dtype), b)
    sin = as_value((-weight * np.sin(angle) / n).astype(dtype), b)
    return emit(b, "MatMul", [re, cos]) + emit(b, "MatMul", [im, sin])


@symbolic
def logdet(x: Any) -> Value:
    """``log(det(x))`` of (batches of) symmetric positive-definite matrices, from ONNX ``Det``."""
    b = builder_of(x)
    v = as_value(x, b)
    return emit(b, "Log", [emit(b, "Det", [v])])
