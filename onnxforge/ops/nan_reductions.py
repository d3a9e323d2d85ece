"""NaN-ignoring reductions (``keras.ops.numpy.nansum`` ... ``nanquantile``): NumPy's ``nan*`` functions.

Each one masks NaNs with the value that leaves its reduction unchanged (0 for sums, 1 for products, -inf /
+inf for maxima / minima) and reduces with the ordinary op, so gradients flow to the non-NaN entries through
the existing rules. All-NaN slices give what Keras gives: NaN for the max, min, mean, variance and quantiles,
0 for the sum, 1 for the product, and -1 for ``nanargmax`` / ``nanargmin`` (where NumPy raises). Integer and
bool tensors hold no NaN: they reduce as the plain ops do.

Example:
    >>> import numpy as np
    >>> from onnxforge import ops
    >>> x = np.array([[1.0, np.nan], [3.0, 4.0]])
    >>> ops.nansum(x, axis=1).tolist(), round(float(ops.nanmean(x)), 4), ops.nanargmax(x, axis=0).tolist()
    ([1.0, 7.0], 2.6667, [1, 1])
"""
from __future__ import annotations

__all__ = ["nansum", "nanmean", "nanmax", "nanmin", "nanprod", "nanvar", "nanstd", "nanargmax", "nanargmin",
           "nancumsum", "nancumprod", "nanmedian", "nanpercentile", "nanquantile"]

import math
from typing import Any

import numpy as np

from ..backend_config import floatx
from ..graph import FLOAT_TYPES, Value
from ._arrays_util import BOOL, INT32, INT64, axis_index, emit, rank_of, value
from ._util import as_value, cast_value, dtype_enum, int_const, symbolic
from .numpy import _reduce, argmax, argmin, max, mean, min, prod, sum  # noqa: A004  (keras.ops names)
from .numpy_shapes import _axes
from .sorting import cumprod, cumsum, sort

_METHODS = ("linear", "lower", "higher", "nearest", "midpoint")


def _masked(v: Value, fill: float) -> Value:
    """``v`` with its NaNs replaced by ``fill`` (``v`` is a float tensor)."""
    b = v.builder
    return emit(b, "Where", [emit(b, "IsNaN", [v]), as_value(fill, b, like=v), v])


def _all_nan(v: Value, axis: Any, keepdims: bool) -> Value:
    """True where every entry of the reduced slice is NaN (an empty slice counts as all-NaN)."""
    valid = cast_value(emit(v.builder, "Not", [emit(v.builder, "IsNaN", [v])]), INT32)
    return emit(v.builder, "Equal", [_reduce("ReduceMax", valid, axis, keepdims), as_value(0, v.builder, dtype="int32")])


def _nan_like(v: Value, where: Value, out: Value) -> Value:
    return emit(v.builder, "Where", [where, as_value(float("nan"), v.builder, like=out), out])


def _float(v: Value) -> Value:
    return v if v.dtype in FLOAT_TYPES else cast_value(v, dtype_enum(floatx()))


def _count(v: Value, axis: Any, keepdims: bool) -> Value:
    """How many non-NaN entries each reduced slice has, in ``v``'s float type."""
    valid = cast_value(emit(v.builder, "Not", [emit(v.builder, "IsNaN", [v])]), v.dtype)
    return _reduce("ReduceSum", valid, axis, keepdims)


# ------------------------------------------------------------------------------------------ sums and products
@symbolic
def nansum(x: Any, axis: Any = None, keepdims: bool = False) -> Value:
    """Sum over ``axis`` treating NaNs as zero (bools and narrow integers are summed in int32, as ``sum``)."""
    v = value(x)
    return sum(_masked(v, 0.0) if v.dtype in FLOAT_TYPES else v, axis=axis, keepdims=keepdims)


@symbolic
def nanprod(x: Any, axis: Any = None, keepdims: bool = False) -> Value:
    """Product over ``axis`` treating NaNs as one."""
    v = value(x)
    return prod(_masked(v, 1.0) if v.dtype in FLOAT_TYPES else v, axis=axis, keepdims=keepdims)


@symbolic
def nanmean(x: Any, axis: Any = None, keepdims: bool = False) -> Value:
    """Mean of the non-NaN entries over ``axis`` (NaN for an all-NaN slice; integers averaged as floats)."""
    v = value(x)
    if v.dtype not in FLOAT_TYPES:
        return mean(v, axis=axis, keepdims=keepdims)
    if axis in ((), []):
        return v
    return _reduce("ReduceSum", _masked(v, 0.0), axis, keepdims) / _count(v, axis, keepdims)


@symbolic
def nanvar(x: Any, axis: Any = None, keepdims: bool = False) -> Value:
    """Population variance of the non-NaN entries over ``axis`` (``ddof=0``; NaN for an all-NaN slice)."""
    v = _float(value(x))
    b = v.builder
    centered = _masked(v - nanmean(v, axis=axis, keepdims=True), 0.0)
    # The NaN entries are zero after masking, so they add nothing; the count leaves them out.
    squares = _masked(emit(b, "Mul", [centered, centered]), 0.0)
    return _reduce("ReduceSum", squares, axis, keepdims) / _count(v, axis, keepdims)


@symbolic
def nanstd(x: Any, axis: Any = None, keepdims: bool = False) -> Value:
    """Population standard deviation of the non-NaN entries over ``axis``."""
    out = nanvar(x, axis=axis, keepdims=keepdims)
    return emit(out.builder, "Sqrt", [out])


# ------------------------------------------------------------------------------------------ extrema
def _extremum(x: Any, axis: Any, keepdims: bool, largest: bool) -> Value:
    v = value(x)
    if v.dtype == BOOL:
        reduced = _reduce("ReduceMax" if largest else "ReduceMin", cast_value(v, INT32), axis, keepdims)
        return cast_value(reduced, BOOL)
    if v.dtype not in FLOAT_TYPES:
        return (max if largest else min)(v, axis=axis, keepdims=keepdims)
    reduced = (max if largest else min)(_masked(v, -math.inf if largest else math.inf), axis=axis, keepdims=keepdims)
    return _nan_like(v, _all_nan(v, axis, keepdims), reduced)


@symbolic
def nanmax(x: Any, axis: Any = None, keepdims: bool = False) -> Value:
    """Maximum over ``axis`` ignoring NaNs (NaN for an all-NaN slice)."""
    return _extremum(x, axis, keepdims, largest=True)


@symbolic
def nanmin(x: Any, axis: Any = None, keepdims: bool = False) -> Value:
    """Minimum over ``axis`` ignoring NaNs (NaN for an all-NaN slice)."""
    return _extremum(x, axis, keepdims, largest=False)


def _arg_extremum(x: Any, axis: Any, keepdims: bool, largest: bool) -> Value:
    v = value(x)
    pick = argmax if largest else argmin
    if v.dtype not in FLOAT_TYPES:
        return pick(v, axis=axis, keepdims=keepdims)
    index = pick(_masked(v, -math.inf if largest else math.inf), axis=axis, keepdims=keepdims)
    b = v.builder
    # Keras returns -1 for an all-NaN slice (NumPy raises); the test reduces like the argmax does.
    empty = _all_nan(v, None if axis is None else [int(axis)], keepdims if axis is not None else False)
    if axis is None and keepdims:
        empty = emit(b, "Reshape", [empty, int_const(b, [1] * rank_of(v, "nanargmax"))])
    return emit(b, "Where", [empty, as_value(-1, b, dtype="int32"), index])


@symbolic
def nanargmax(x: Any, axis: int | None = None, keepdims: bool = False) -> Value:
    """Index (int32) of the largest non-NaN entry along ``axis`` (-1 for an all-NaN slice, as in Keras)."""
    return _arg_extremum(x, axis, keepdims, largest=True)


@symbolic
def nanargmin(x: Any, axis: int | None = None, keepdims: bool = False) -> Value:
    """Index (int32) of the smallest non-NaN entry along ``axis`` (-1 for an all-NaN slice, as in Keras)."""
    return _arg_extremum(x, axis, keepdims, largest=False)


# ------------------------------------------------------------------------------------------ running totals
def _cumulative_input(x: Any, axis: int | None, name: str) -> Value:
    v = value(x)
    if axis is not None:
        axis_index(int(axis), rank_of(v, name), name)
    return v


@symbolic
def nancumsum(x: Any, axis: int | None = None, dtype: Any = None) -> Value:
    """Cumulative sum treating NaNs as zero (``None``: of the flattened tensor)."""
    v = _cumulative_input(x, axis, "nancumsum")
    return cumsum(_masked(v, 0.0) if v.dtype in FLOAT_TYPES else v, axis=axis, dtype=dtype)


@symbolic
def nancumprod(x: Any, axis: int | None = None, dtype: Any = None) -> Value:
    """Cumulative product treating NaNs as one (``None``: of the flattened tensor)."""
    v = _cumulative_input(x, axis, "nancumprod")
    return cumprod(_masked(v, 1.0) if v.dtype in FLOAT_TYPES else v, axis=axis, dtype=dtype)


# ------------------------------------------------------------------------------------------ quantiles
def _rows(v: Value, axes: list[int]) -> Value:
    """``v`` with the reduced ``axes`` moved last and flattened into one: shape ``(*kept, n)``."""
    b = v.builder
    rank = len(v.shape)
    kept = [i for i in range(rank) if i not in axes]
    moved = emit(b, "Transpose", [v], perm=kept + axes) if kept + axes != list(range(rank)) else v
    if kept:
        head = emit(b, "Slice", [emit(b, "Shape", [moved]), int_const(b, [0]), int_const(b, [len(kept)])])
        target = emit(b, "Concat", [head, int_const(b, [-1])], axis=0)
    else:
        target = int_const(b, [-1])
    reduced = [v.shape[a] for a in axes]
    flat = math.prod(reduced) if all(isinstance(d, int) for d in reduced) else None
    return emit(b, "Reshape", [moved, target], shape=(*(v.shape[i] for i in kept), flat))


def _pick(sorted_rows: Value, index: Value) -> Value:
    b = sorted_rows.builder
    return emit(b, "GatherElements", [sorted_rows, cast_value(index, INT64)], axis=-1)


def _quantile_of_rows(rows: Value, q: float, method: str) -> Value:
    """The ``q`` quantile of each row's non-NaN entries, shape ``(*kept, 1)``; NaN for an all-NaN row."""
    b = rows.builder
    count = _count(rows, [-1], True)
    # NaNs sort after everything as +inf; the positions used stay below the count of real entries.
    ordered = sort(_masked(rows, math.inf), axis=-1)
    zero = as_value(0.0, b, like=rows)
    pos = emit(b, "Max", [(count - 1.0) * float(q), zero])
    lo, hi = emit(b, "Floor", [pos]), emit(b, "Ceil", [pos])
    if method == "lower":
        hi = lo
    elif method == "higher":
        lo = hi
    elif method == "nearest":
        lo = hi = emit(b, "Round", [pos])   # half to even, as NumPy and Keras
    a, c = _pick(ordered, lo), _pick(ordered, hi)
    if lo is hi:
        out = a
    else:
        frac = pos - lo if method == "linear" else as_value(0.5, b, like=rows)
        tied = emit(b, "Equal", [lo, hi])
        # Where the position is whole the entry is the answer as is (an infinite entry stays infinite).
        out = emit(b, "Where", [tied, a, a + (c - a) * frac])
    return _nan_like(rows, emit(b, "Equal", [count, zero]), out)


@symbolic
def nanquantile(x: Any, q: Any, axis: Any = None, method: str = "linear", keepdims: bool = False) -> Value:
    """NumPy's ``nanquantile``: the ``q`` quantiles (a number or 1-D list in ``[0, 1]``) of the non-NaN
    entries over ``axis`` (an int, a tuple, or ``None`` for all); a list ``q`` adds a leading axis.

    ``method`` is ``"linear"``, ``"lower"``, ``"higher"``, ``"nearest"`` or ``"midpoint"``. Integers
    compute in ``floatx()``; an all-NaN slice gives NaN.
    """
    if method not in _METHODS:
        raise ValueError(f"ops.nanquantile: `method` must be one of {_METHODS}. Received: method={method!r}")
    if isinstance(q, Value) or hasattr(q, "__onnx_value__"):
        raise ValueError("ops.nanquantile: `q` must be a number or a list of numbers (it fixes the output's "
                         "shape). Received: a symbolic tensor")
    qs = np.asarray(q.numpy() if hasattr(q, "numpy") else q, np.float64)
    if qs.ndim > 1:
        raise ValueError(f"ops.nanquantile: `q` must be a number or a 1-D list. Received: q with shape {qs.shape}")
    if np.any((qs < 0) | (qs > 1)):
        raise ValueError(f"ops.nanquantile: quantiles must lie in [0, 1]. Received: q={qs.tolist()}")
    v = _float(value(x))
    b = v.builder
    rank = rank_of(v, "nanquantile")
    if axis in ((), []):
        return v if qs.ndim == 0 else emit(b, "Concat", [emit(b, "Unsqueeze", [v, int_const(b, [0])])] * qs.size,
                                           axis=0)
    axes = list(range(rank)) if axis is None else sorted({axis_index(a, rank, "nanquantile") for a in _axes(axis)})
    rows = _rows(v, axes)
    outs = [emit(b, "Squeeze", [_quantile_of_rows(rows, float(qq), method), int_const(b, [-1])])
            for qq in np.atleast_1d(qs)]
    out = outs[0] if qs.ndim == 0 else emit(b, "Concat", [emit(b, "Unsqueeze", [o, int_const(b, [0])])
                                                          for o in outs], axis=0)
    if keepdims:
        lead = qs.ndim
        out = emit(b, "Unsqueeze", [out, int_const(b, [a + lead for a in axes])])
    return out


@symbolic
def nanpercentile(x: Any, q: Any, axis: Any = None, method: str = "linear", keepdims: bool = False) -> Value:
    """``nanquantile`` with ``q`` in percent (``[0, 100]``)."""
    qs = np.asarray(q.numpy() if hasattr(q, "numpy") else q, np.float64) / 100.0
    return nanquantile(x, qs if qs.ndim else float(qs), axis=axis, method=method, keepdims=keepdims)


@symbolic
def nanmedian(x: Any, axis: Any = None, keepdims: bool = False) -> Value:
    """Median of the non-NaN entries over ``axis`` (NaN for an all-NaN slice)."""
    return nanquantile(x, 0.5, axis=axis, keepdims=keepdims)
