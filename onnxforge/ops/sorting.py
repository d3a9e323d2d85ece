"""Order statistics and running totals (``keras.ops.numpy``): ``sort`` / ``argsort``, quantiles and
``median``, ``searchsorted`` / ``digitize``, ``cumsum`` / ``cumprod`` / ``diff``, ``bincount`` / ``histogram``.

Sorting is ONNX ``TopK`` over the whole axis; sorted values are gathered by the sort order
(``GatherElements``), so they are differentiable like NumPy's (each entry's gradient goes to where it
came from).

Example:
    >>> import numpy as np
    >>> from onnxforge import ops
    >>> ops.sort(np.array([3.0, 1.0, 2.0])).tolist(), ops.cumsum(np.array([1, 2, 3])).tolist()
    ([1.0, 2.0, 3.0], [1, 3, 6])
"""
from __future__ import annotations

__all__ = [
    "sort",
    "argsort",
    "argpartition",
    "take_along_axis",
    "median",
    "percentile",
    "quantile",
    "searchsorted",
    "digitize",
    "cumsum",
    "cumprod",
    "diff",
    "trapezoid",
    "nonzero",
    "bincount",
    "histogram",
    "unravel_index",
]

import builtins
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..backend_config import floatx
from ..graph import FLOAT_TYPES, Value
from ..graph.dtypes import result_type
from ..graph.size_limits import check_constant
from ._arrays_util import BIG, BOOL, INT32, INT64, axis_index, dim, emit, rank_of, slice_axis, value
from ._util import as_value, builder_of, cast_value, dtype_enum, int_const, promote, symbolic
from .arrays_creation import linspace


def _topk(v: Value, axis: int, largest: bool, k: Any = None) -> tuple[Value, Value]:
    b = v.builder
    n = dim(v, axis) if k is None else as_value(np.int64(int(k)), b)
    n = emit(b, "Reshape", [n, int_const(b, [1])], shape=(1,))
    values, indices = emit(b, "TopK", [v, n], outputs=2, axis=axis, largest=int(largest), sorted=1)
    return values, indices


@symbolic
def sort(x: Any, axis: int = -1) -> Value:
    """Ascending sort along ``axis`` (differentiable: the values are gathered by the sort order)."""
    v = value(x)
    b = v.builder
    rank = rank_of(v, "sort")
    axis = axis_index(axis, rank, "sort")
    _, idx = _topk(v, axis, largest=False)
    return emit(b, "GatherElements", [v, idx], axis=axis, shape=v.shape)


@symbolic
def argsort(x: Any, axis: int = -1) -> Value:
    """Indices (int32, as Keras) that sort ``x`` ascending along ``axis`` (``None``: flattened)."""
    v = value(x)
    b = v.builder
    if axis is None:
        v, axis = emit(b, "Reshape", [v, int_const(b, [-1])]), 0
    axis = axis_index(axis, rank_of(v, "argsort"), "argsort")
    _, idx = _topk(v, axis, largest=False)
    return cast_value(idx, 6)


@symbolic
def argpartition(x: Any, kth: int, axis: int = -1) -> Value:
    """A full argsort is one valid partition around ``kth``."""
    return argsort(x, axis)


@symbolic
def take_along_axis(x: Any, indices: Any, axis: int | None = None) -> Value:
    b = builder_of(x, indices)
    v = as_value(x, b)
    idx = cast_value(as_value(indices, b), INT64)
    if axis is None:
        v, axis = emit(b, "Reshape", [v, int_const(b, [-1])]), 0
    rank = rank_of(v, "take_along_axis")
    axis = axis_index(axis, rank, "take_along_axis")
    # NumPy broadcasts the non-axis dims of the two; negative indices count from the end.
    n = dim(v, axis)
    idx = emit(b, "Where", [emit(b, "Less", [idx, as_value(np.int64(0), b)]), idx + n, idx], dtype=INT64)
    shape_v, shape_i = emit(b, "Shape", [v]), emit(b, "Shape", [idx])
    big_v = emit(b, "Max", [shape_v, shape_i])
    ones_axis = np.ones(rank, np.int64)
    keep = np.ones(rank, np.int64)
    keep[axis] = 0
    target_v = emit(b, "Add", [emit(b, "Mul", [big_v, int_const(b, keep.tolist())]),
                            emit(b, "Mul", [shape_v, int_const(b, (ones_axis - keep).tolist())])])
    target_i = emit(b, "Add", [emit(b, "Mul", [big_v, int_const(b, keep.tolist())]),
                            emit(b, "Mul", [shape_i, int_const(b, (ones_axis - keep).tolist())])])
    return emit(b, "GatherElements", [emit(b, "Expand", [v, target_v]), emit(b, "Expand", [idx, target_i])], axis=axis)


@symbolic
def median(x: Any, axis: Any = None, keepdims: bool = False) -> Value:
    return quantile(x, 0.5, axis=axis, keepdims=keepdims)


@symbolic
def percentile(x: Any, q: Any, axis: Any = None, method: str = "linear", keepdims: bool = False) -> Value:
    qs = np.asarray(q, np.float64) / 100.0
    return quantile(x, qs if qs.ndim else float(qs), axis=axis, method=method, keepdims=keepdims)


@symbolic
def quantile(x: Any, q: Any, axis: Any = None, method: str = "linear", keepdims: bool = False) -> Value:
    """NumPy's quantiles (``method="linear"``, ``"lower"``, ``"higher"``, ``"nearest"``, ``"midpoint"``)
    along one axis or all; ``q`` is a number or a 1-D list (a leading axis of the result)."""
    v = value(x)
    b = v.builder
    if v.dtype not in FLOAT_TYPES:
        v = cast_value(v, dtype_enum(floatx()))
    rank = rank_of(v, "quantile")
    if axis is None:
        v, ax, rank_used = emit(b, "Reshape", [v, int_const(b, [-1])]), 0, 1
    elif isinstance(axis, (list, tuple)):
        if len(axis) != 1:
            raise ValueError("ops.quantile takes one axis or None.")
        ax, rank_used = axis_index(int(axis[0]), rank, "quantile"), rank
    else:
        ax, rank_used = axis_index(int(axis), rank, "quantile"), rank
    n = v.shape[ax]
    if not isinstance(n, int):
        raise ValueError("ops.quantile needs a static size along the reduced axis.")
    s = sort(v, axis=ax)
    qs = np.atleast_1d(np.asarray(q, np.float64))
    outs = []
    for qq in qs:
        pos = qq * (n - 1)
        lo, hi = int(np.floor(pos)), int(np.ceil(pos))
        frac = pos - lo
        if method == "lower":
            hi, frac = lo, 0.0
        elif method == "higher":
            lo, frac = hi, 0.0
        elif method == "nearest":
            lo = hi = int(np.round(pos))
            frac = 0.0
        elif method == "midpoint":
            frac = 0.5 if hi != lo else 0.0
        elif method != "linear":
            raise ValueError(f"ops.quantile: unknown method {method!r}.")
        a = emit(b, "Gather", [s, int_const(b, [lo])], axis=ax)
        c = emit(b, "Gather", [s, int_const(b, [hi])], axis=ax)
        outs.append(a + (c - a) * float(frac) if frac else a)
    out = outs[0] if len(outs) == 1 else emit(b, "Concat", outs, axis=ax)
    if not keepdims:
        if len(outs) == 1 or np.ndim(q) == 0:
            out = emit(b, "Squeeze", [out, int_const(b, [ax])])
        else:
            from .numpy import transpose

            perm = [ax] + [i for i in range(rank_used) if i != ax]
            out = transpose(out, perm)
    elif axis is None:
        shape = [1] * rank
        out = emit(b, "Reshape", [out, int_const(b, ([len(outs)] if np.ndim(q) else []) + shape)])
    return out


@symbolic
def searchsorted(sorted_sequence: Any, values: Any, side: str = "left") -> Value:
    """Insertion indices of ``values`` into the 1-D ascending ``sorted_sequence``: int32, as Keras gives them,
    or int64 where the sequence's length is not known while tracing (Keras's rule too)."""
    b = builder_of(sorted_sequence, values)
    seq, vals = promote(b, sorted_sequence, values)
    flat = emit(b, "Reshape", [vals, int_const(b, [-1, 1])])
    cmp = emit(b, "Less" if side == "left" else "LessOrEqual", [seq, flat])   # [n_values, n_seq]
    counts = emit(b, "ReduceSum", [cast_value(cmp, INT64), int_const(b, [1])], keepdims=0)
    static = seq.shape is not None and len(seq.shape) == 1 and isinstance(seq.shape[0], int)
    out = emit(b, "Reshape", [counts, emit(b, "Shape", [vals])])
    return cast_value(out, INT32) if static else out


@symbolic
def digitize(x: Any, bins: Any) -> Value:
    """Bin index of each entry for ascending ``bins`` (NumPy's ``right=False``): ``searchsorted(..., 'right')``."""
    return cast_value(searchsorted(bins, x, side="right"), 6)


@symbolic
def cumsum(x: Any, axis: int | None = None, dtype: Any = None) -> Value:
    v = value(x)
    b = v.builder
    if dtype is not None:
        v = cast_value(v, dtype_enum(dtype))
    elif v.dtype == BOOL:
        v = cast_value(v, 6)
    if axis is None:
        v, axis = emit(b, "Reshape", [v, int_const(b, [-1])]), 0
    return emit(b, "CumSum", [v, as_value(np.int64(int(axis)), b)], shape=v.shape)


@symbolic
def cumprod(x: Any, axis: int | None = None, dtype: Any = None) -> Value:
    """Cumulative product: ``exp(cumsum(log|x|))`` with the sign and zeros tracked separately, so it is exact
    in sign, right at zeros and differentiable away from them."""
    v = value(x)
    b = v.builder
    if dtype is not None:
        v = cast_value(v, dtype_enum(dtype))
    if axis is None:
        v, axis = emit(b, "Reshape", [v, int_const(b, [-1])]), 0
    integer = v.dtype not in FLOAT_TYPES
    f = cast_value(v, 11) if integer else v
    zero = as_value(0.0, b, like=f)
    is_zero = emit(b, "Equal", [f, zero])
    mag = emit(b, "Exp", [emit(b, "CumSum", [emit(b, "Log", [emit(b, "Where", [is_zero, as_value(1.0, b, like=f),
                                                                  emit(b, "Abs", [f])])]),
                                       as_value(np.int64(int(axis)), b)])])
    negatives = emit(b, "CumSum", [cast_value(emit(b, "Less", [f, zero]), INT64), as_value(np.int64(int(axis)), b)])
    sign = as_value(1.0, b, like=f) - cast_value(emit(b, "Mod", [negatives, as_value(np.int64(2), b)], fmod=0),
                                                 f.dtype) * 2.0
    zeros_seen = emit(b, "CumSum", [cast_value(is_zero, INT64), as_value(np.int64(int(axis)), b)])
    out = emit(b, "Where", [emit(b, "Greater", [zeros_seen, as_value(np.int64(0), b)]), zero, mag * sign], dtype=f.dtype)
    return cast_value(emit(b, "Round", [out]), v.dtype) if integer else out


@symbolic
def diff(a: Any, n: int = 1, axis: int = -1) -> Value:
    v = value(a)
    rank = rank_of(v, "diff")
    axis = axis_index(axis, rank, "diff")
    for _ in range(int(n)):
        v = slice_axis(v, axis, 1, BIG) - slice_axis(v, axis, 0, -1)
    return v


@symbolic
def trapezoid(y: Any, x: Any = None, dx: float = 1.0, axis: int = -1) -> Value:
    v = value(y)
    b = v.builder
    rank = rank_of(v, "trapezoid")
    axis = axis_index(axis, rank, "trapezoid")
    mid = (slice_axis(v, axis, 1, BIG) + slice_axis(v, axis, 0, -1)) * 0.5
    if x is None:
        widths = mid * float(dx)
    else:
        xv = as_value(x, b, like=v)
        widths = mid * diff(xv, 1, -1 if len(xv.shape or ()) == 1 else axis)
    return emit(b, "ReduceSum", [widths, int_const(b, [axis])], keepdims=0)


@symbolic
def nonzero(x: Any) -> tuple[Value, ...]:
    """Indices of the nonzero entries, one int32 vector per axis as in Keras (a data-dependent size: eager use
    and graphs that only reduce it)."""
    v = value(x)
    b = v.builder
    idx = cast_value(emit(b, "NonZero", [v]), INT32)
    rank = rank_of(v, "nonzero")
    return tuple(emit(b, "Squeeze", [slice_axis(idx, 0, i, i + 1), int_const(b, [0])]) for i in range(rank))


@symbolic
def bincount(x: Any, weights: Any = None, minlength: int = 0, sparse: bool = False) -> Value:
    """Counts of each non-negative integer in ``x`` (1-D, or 2-D counted per row as Keras), ``max(x) + 1``
    of them or ``minlength`` if that is more. With ``minlength`` >= max + 1 the length is static; without,
    it follows the data (as on arrays in Keras), so a graph knows it only at run time."""
    b = builder_of(x, weights)
    v = as_value(x, b)
    x_dtype, v = v.dtype, cast_value(v, INT64)
    if minlength:
        check_constant((int(minlength),), 8, "ops.bincount's classes")   # before the list of them is made
        classes = int_const(b, list(range(int(minlength))))
    else:
        top = emit(b, "Add", [emit(b, "ReduceMax", [v], keepdims=0), b.const(np.asarray(1, np.int64))])
        top = emit(b, "Max", [top, b.const(np.asarray(0, np.int64))])   # empty x: no counts
        classes = emit(b, "Range", [b.const(np.asarray(0, np.int64)), top, b.const(np.asarray(1, np.int64))])
    hits = emit(b, "Equal", [emit(b, "Unsqueeze", [v, int_const(b, [-1])]), classes])
    if weights is None:   # int32 counts, as Keras gives them (summed in int64: ReduceSum has no bool kernel)
        counts = cast_value(hits, INT64)
        return cast_value(emit(b, "ReduceSum", [counts, int_const(b, [-2])], keepdims=0), INT32)
    w = as_value(weights, b)
    # Keras's type for weighted counts: x's and the weights' types promoted (int32 ids, float32 weights: float32)
    w = cast_value(w, result_type([x_dtype, w.dtype]))
    counts = cast_value(hits, w.dtype) * emit(b, "Unsqueeze", [w, int_const(b, [-1])])
    return emit(b, "ReduceSum", [counts, int_const(b, [-2])], keepdims=0)


@symbolic
def histogram(x: Any, bins: int = 10, range: Any = None) -> tuple[Value, Value]:  # noqa: A002
    """Counts in ``bins`` equal bins over ``range`` (default: the data's min and max) and the bin edges."""
    v = value(x)
    b = v.builder
    f = v if v.dtype in FLOAT_TYPES else cast_value(v, dtype_enum(floatx()))
    flat = emit(b, "Reshape", [f, int_const(b, [-1])])
    if range is None:
        lo, hi = emit(b, "ReduceMin", [flat], keepdims=0), emit(b, "ReduceMax", [flat], keepdims=0)
    else:
        lo, hi = (as_value(float(r), b, like=f) for r in range)
    edges = linspace(lo, hi, int(bins) + 1)
    width = (hi - lo) / float(bins)
    pos = emit(b, "Floor", [(flat - lo) / width])
    pos = emit(b, "Min", [pos, as_value(float(bins - 1), b, like=f)])
    inside = emit(b, "And", [emit(b, "GreaterOrEqual", [flat, lo]), emit(b, "LessOrEqual", [flat, hi])])
    hits = emit(b, "And", [emit(b, "Equal", [emit(b, "Unsqueeze", [pos, int_const(b, [-1])]),
                                       cast_value(int_const(b, list(builtins.range(int(bins)))), f.dtype)]),
                        emit(b, "Unsqueeze", [inside, int_const(b, [-1])])])
    return emit(b, "ReduceSum", [cast_value(hits, INT64), int_const(b, [0])], keepdims=0), edges


@symbolic
def unravel_index(indices: Any, shape: Sequence[int]) -> tuple[Value, ...]:
    b = builder_of(indices)
    v = cast_value(as_value(indices, b), INT64)
    out = []
    strides = np.cumprod([1] + list(shape[::-1]))[:-1][::-1]
    for s, n in zip(strides, shape):
        out.append(emit(b, "Mod", [emit(b, "Div", [v, as_value(np.int64(s), b)]), as_value(np.int64(n), b)], fmod=0))
    return tuple(out)
