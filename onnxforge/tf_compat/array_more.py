"""More top-level TensorFlow tensor functions: ``tf.broadcast_to``, ``tf.tensordot``, ``tf.repeat``,
``tf.meshgrid``, ``tf.unique``, ``tf.scatter_nd``, ``tf.searchsorted``, ``tf.slice``, ``tf.is_tensor`` and
``tf.executing_eagerly``, with TensorFlow's argument names and result dtypes, built from ``keras.ops``.

Example:
    >>> import numpy as np
    >>> broadcast_to(np.array([1, 2]), [2, 2]).tolist(), repeat(np.array([1, 2]), 2).tolist()
    ([[1, 2], [1, 2]], [1, 1, 2, 2])
    >>> y, idx = unique(np.array([4, 4, 1, 4], np.int32))
    >>> y.tolist(), idx.tolist()
    ([4, 1], [0, 0, 1, 0])
"""
from __future__ import annotations

__all__ = ["broadcast_to", "tensordot", "repeat", "meshgrid", "unique", "scatter_nd", "searchsorted", "is_tensor",
           "executing_eagerly", "identity_n", "slice"]

from typing import Any

import numpy as np
import onnx

from .. import ops as _ops
from ..ops._util import as_value, builder_of, cast_value, symbolic
from ..trace_state import active_trace
from ..variables import Variable
from .tensor_types import Tensor


def _index_array(x: Any) -> Any:
    return np.asarray(x) if isinstance(x, (list, tuple, int)) else x


def broadcast_to(input: Any, shape: Any, name: str | None = None) -> Any:  # noqa: A002
    """``tf.broadcast_to``: ``input`` repeated to ``shape`` by the broadcasting rules."""
    return _ops.broadcast_to(input, tuple(shape) if isinstance(shape, list) else shape)


def tensordot(a: Any, b: Any, axes: Any, name: str | None = None) -> Any:
    """``tf.tensordot``: sums over ``axes`` (an int: the last of ``a`` with the first of ``b``; or two lists)."""
    return _ops.tensordot(a, b, axes=axes)


def repeat(input: Any, repeats: Any, axis: int | None = None, name: str | None = None) -> Any:  # noqa: A002
    """``tf.repeat``: each element ``repeats`` times along ``axis`` (the flattened input when ``None``)."""
    return _ops.repeat(input, repeats, axis=axis)


def meshgrid(*args: Any, **kwargs: Any) -> list[Any]:
    """``tf.meshgrid(*args, indexing="xy")``: coordinate grids from 1-D tensors."""
    indexing = kwargs.pop("indexing", "xy")
    kwargs.pop("name", None)
    if kwargs:
        raise TypeError(f"tf.meshgrid: unexpected arguments {sorted(kwargs)}.")
    return list(_ops.meshgrid(*args, indexing=indexing))


def unique(x: Any, out_idx: Any = "int32", name: str | None = None) -> tuple[Any, Any]:
    """``tf.unique``: ``(y, idx)``, the distinct values of 1-D ``x`` in the order first met and, for each
    element, its position in ``y``."""
    y, idx = _ops.unique(x, sorted=False, return_inverse=True)
    return _ops.cast(y, _ops.dtype(x)), _ops.cast(idx, out_idx)


def scatter_nd(indices: Any, updates: Any, shape: Any, name: str | None = None) -> Any:
    """``tf.scatter_nd``: a zero tensor of ``shape`` with ``updates`` added at ``indices`` (duplicates sum)."""
    return _ops.scatter(_index_array(indices), updates, tuple(shape))


def searchsorted(sorted_sequence: Any, values: Any, side: str = "left", out_type: Any = "int32",
                 name: str | None = None) -> Any:
    """``tf.searchsorted``: where each value would go in ``sorted_sequence`` (int32 positions)."""
    if side not in ("left", "right"):
        raise ValueError(f"tf.searchsorted: side must be 'left' or 'right'. Received: side={side!r}")
    return _ops.cast(_ops.searchsorted(sorted_sequence, values, side=side), out_type)


def is_tensor(x: Any) -> bool:
    """``tf.is_tensor``: true for onnxforge's tensors and Variables, false for NumPy arrays and Python values."""
    return isinstance(x, (Tensor, Variable))


def executing_eagerly() -> bool:
    """``tf.executing_eagerly``: false while a ``tf.function`` or a model's step is being traced."""
    return active_trace() is None


def identity_n(input: Any, name: str | None = None) -> list[Any]:  # noqa: A002
    """``tf.identity_n``: each tensor of the list, unchanged."""
    return [_ops.identity(x) for x in input]


def slice(input_: Any, begin: Any, size: Any, name: str | None = None) -> Any:  # noqa: A001 - TensorFlow's name
    """``tf.slice``: ``size[i]`` elements from ``begin[i]`` on every axis ``i``; a size of -1 takes the rest of
    the axis. ``begin`` and ``size`` may be tensors computed in a traced function (fixres's random crops).

    Example:
        >>> import numpy as np
        >>> slice(np.arange(12).reshape(3, 4), [1, 1], [2, -1]).tolist()
        [[5, 6, 7], [9, 10, 11]]
    """
    return _slice(_index_array(input_), _index_array(begin), _index_array(size))


@symbolic
def _slice(x: Any, begin: Any, size: Any) -> Any:
    b = builder_of(x, begin, size)
    v = as_value(x, b)
    start = cast_value(as_value(begin, b), onnx.TensorProto.INT64)
    count = cast_value(as_value(size, b), onnx.TensorProto.INT64)
    # -1 reads "to the end": an end past every axis, which ONNX's Slice clamps to the axis length.
    end = b.op("Where", [b.op("Less", [count, b.const(np.asarray(0, np.int64))]),
                         b.const(np.asarray(np.iinfo(np.int64).max, np.int64)), b.op("Add", [start, count])])
    return b.op("Slice", [v, start, end])
