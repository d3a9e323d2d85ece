"""``keras.ops.unique``: the distinct elements (or slices along an axis) of a tensor, as ONNX ``Unique``.

Keras on TensorFlow's results: values in ``x``'s dtype, sorted ascending (lexicographically for slices) or in
order of first occurrence; the first-occurrence indices, the inverse (``x``'s shape when ``axis=None``) and
the counts as int32. ``size`` fixes the number of values: extra ones are dropped, missing ones padded with
``fill_value`` (counts with 0, first-occurrence indices with 1, as Keras's TensorFlow backend pads them), which
gives a static shape inside a graph. onnxruntime's ``Unique`` takes float, double, float16, int8 and int64;
other integer and bool tensors are compared as int64 and cast back.

Example:
    >>> import numpy as np
    >>> from onnxforge import ops
    >>> ops.unique(np.array([3, 1, 2, 1, 3, 2], np.int32)).tolist()
    [1, 2, 3]
    >>> values, counts = ops.unique(np.array([3, 1, 2, 1], np.int32), size=5, return_counts=True)
    >>> values.tolist(), counts.tolist()
    ([1, 2, 3, 0, 0], [2, 1, 1, 0, 0])
"""
from __future__ import annotations

__all__ = ["unique"]

from typing import Any

import numpy as np
import onnx

from ..graph import Value
from ._arrays_util import emit
from ._util import as_value, builder_of, cast_value, int_const, symbolic

_T = onnx.TensorProto
#: Element types onnxruntime's CPU ``Unique`` kernel runs.
_NATIVE = frozenset({_T.FLOAT, _T.DOUBLE, _T.FLOAT16, _T.INT8, _T.INT64})


def _check(sorted: Any, axis: Any, size: Any, rank: int | None) -> int | None:  # noqa: A002
    if not isinstance(sorted, (bool, np.bool_)):
        raise TypeError(f"unique: sorted must be a bool. Received: sorted={sorted!r}")
    if size is not None and (isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0):
        raise ValueError(f"unique: size must be a non-negative int or None. Received: size={size!r}")
    if axis is None:
        return None
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"unique: axis must be an int or None. Received: axis={axis!r}")
    if rank is not None and not -rank <= axis < rank:
        raise ValueError(f"unique: axis {axis} is out of bounds for a tensor of rank {rank}. Received: axis={axis}")
    return int(axis) % rank if rank else int(axis)


def _fit(b: Any, v: Value, size: int, axis: int, fill: Any) -> Value:
    """``v`` cut to ``size`` entries along ``axis``, or padded to it with ``fill``."""
    v = emit(b, "Slice", [v, int_const(b, [0]), int_const(b, [size]), int_const(b, [axis])])
    count = emit(b, "Gather", [emit(b, "Shape", [v]), int_const(b, [axis])], axis=0)
    missing = emit(b, "Max", [emit(b, "Sub", [int_const(b, [size]), count]), int_const(b, [0])])
    rank = len(v.shape)
    pads = emit(b, "Concat", [int_const(b, [0] * (rank + axis)), missing, int_const(b, [0] * (rank - axis - 1))],
                axis=0)
    out = emit(b, "Pad", [v, pads, as_value(np.asarray(fill).astype(np.dtype(_np(v.dtype))), b)], mode="constant")
    out.shape = tuple(size if k == axis else d for k, d in enumerate(v.shape))
    return out


def _np(dtype: int) -> Any:
    from ..graph import np_dtype

    return np_dtype(dtype)


@symbolic
def unique(x: Any, sorted: bool = True, return_index: bool = False, return_inverse: bool = False,  # noqa: A002
           return_counts: bool = False, axis: int | None = None, size: int | None = None,
           fill_value: Any = None) -> Any:
    """The unique elements of ``x`` (of its slices along ``axis``), with optional first-occurrence indices,
    inverse and counts (int32), ``size``-padded as Keras's TensorFlow backend does."""
    b = builder_of(x)
    v = as_value(x, b)
    rank = len(v.shape) if v.shape is not None else None
    axis = _check(sorted, axis, size, rank)
    original = v
    flat = axis is None
    if flat:
        v = emit(b, "Reshape", [v, int_const(b, [-1])])
    dtype = v.dtype
    work = v if dtype in _NATIVE else cast_value(v, _T.DOUBLE if dtype == _T.BFLOAT16 else _T.INT64)
    attrs = {"sorted": int(bool(sorted))}
    if not flat:
        attrs["axis"] = axis
    values, index, inverse, counts = emit(b, "Unique", [work], outputs=4, **attrs)
    values = cast_value(values, dtype)
    index, inverse, counts = (cast_value(t, _T.INT32) for t in (index, inverse, counts))
    along = 0 if flat else axis
    if size is not None:
        values = _fit(b, values, int(size), along, 0 if fill_value is None else fill_value)
        index = _fit(b, index, int(size), 0, 1)
        counts = _fit(b, counts, int(size), 0, 0)
    if return_inverse and flat:
        inverse = emit(b, "Reshape", [inverse, emit(b, "Shape", [original])])
    results = [values] + [t for t, wanted in ((index, return_index), (inverse, return_inverse),
                                              (counts, return_counts)) if wanted]
    return tuple(results) if len(results) > 1 else results[0]
