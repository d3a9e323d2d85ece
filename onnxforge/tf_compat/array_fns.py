"""TensorFlow's indexing and shape functions that ``keras.ops`` spells differently: ``tf.pad`` (upper-case
modes), ``tf.size`` / ``tf.rank`` (int32 tensors), ``tf.gather_nd``, ``tf.unstack``, ``tf.reverse``,
``tf.roll``, ``tf.eye`` (``batch_shape``), ``tf.linspace`` (TensorFlow's result dtype) and the one-argument
``tf.where`` (the indices of true entries).

Example:
    >>> import numpy as np
    >>> x = np.arange(6.0).reshape(2, 3)
    >>> gather_nd(x, [[1, 2], [0, 0]]).tolist()
    [5.0, 0.0]
    >>> where(x > 3.0).tolist()
    [[1, 1], [1, 2]]
"""
from __future__ import annotations

__all__ = ["pad", "size", "rank", "gather_nd", "unstack", "reverse", "roll", "where", "eye", "linspace"]

import builtins
from typing import Any

import numpy as np

from .. import ops as _ops
from ..eager_tensor import as_eager

_PAD_MODES = {"CONSTANT": "constant", "REFLECT": "reflect", "SYMMETRIC": "symmetric"}


def pad(tensor: Any, paddings: Any, mode: str = "CONSTANT", constant_values: Any = 0,
        name: str | None = None) -> Any:
    """``tf.pad``: ``paddings[d] = [before, after]`` for each axis ``d``; modes CONSTANT, REFLECT, SYMMETRIC
    (any case, as TensorFlow)."""
    key = str(mode).upper()
    if key not in _PAD_MODES:
        raise ValueError(f"tf.pad: mode must be one of CONSTANT, REFLECT, SYMMETRIC. Received: mode={mode!r}")
    pads = np.asarray(paddings).tolist() if not hasattr(paddings, "__onnx_value__") else paddings
    if key != "CONSTANT":
        return _ops.pad(tensor, pads, mode=_PAD_MODES[key])
    return _ops.pad(tensor, pads, mode="constant", constant_values=constant_values)


def size(input: Any, out_type: Any = "int32", name: str | None = None) -> Any:  # noqa: A002
    """``tf.size``: the number of elements, an ``out_type`` (int32) scalar tensor."""
    return _ops.cast(_ops.size(input), out_type)


def rank(input: Any, name: str | None = None) -> Any:  # noqa: A002
    """``tf.rank``: the number of axes, an int32 scalar tensor."""
    return as_eager(np.asarray(len(_ops.shape(input)), np.int32))   # static: a constant in a graph too


def gather_nd(params: Any, indices: Any, batch_dims: int = 0, name: str | None = None) -> Any:
    """``tf.gather_nd``: ``out[i...] = params[indices[i..., 0], ..., indices[i..., k-1], ...]``, with ``k``
    the (static) last dimension of ``indices``. The first ``k`` axes of ``params`` are flattened into one and
    each index row becomes a row number, so the gather is one ``take`` (differentiable in ``params``)."""
    if batch_dims:
        raise NotImplementedError(f"tf.gather_nd with batch_dims is not supported. Received: batch_dims={batch_dims}")
    indices = np.asarray(indices) if isinstance(indices, (list, tuple)) else indices
    k = _ops.shape(indices)[-1]
    dims = _ops.shape(params)
    if not isinstance(k, (builtins.int, np.integer)) or k > len(dims):
        raise ValueError(f"tf.gather_nd: the last dimension of indices must be static and at most the rank of "
                         f"params ({len(dims)}). Received: indices shape {_ops.shape(indices)}")
    indices = _ops.cast(indices, "int64")
    row = None
    for i in builtins.range(k):
        part = _ops.take(indices, i, axis=-1)
        row = part if row is None else _ops.add(_ops.multiply(row, _ops.cast(dims[i], "int64")), part)
    flat = _ops.reshape(params, (-1,) + tuple(dims[k:]))
    return _ops.take(flat, row, axis=0)


def unstack(value: Any, num: int | None = None, axis: int = 0, name: str | None = None) -> list[Any]:
    """``tf.unstack``: the slices of ``value`` along ``axis``, as a list (the axis must be static)."""
    return list(_ops.unstack(value, num=num, axis=axis))


def reverse(tensor: Any, axis: Any, name: str | None = None) -> Any:
    """``tf.reverse``: ``tensor`` flipped along each axis in ``axis`` (a list, as TensorFlow requires)."""
    return _ops.flip(tensor, axis=tuple(np.atleast_1d(np.asarray(axis)).tolist()))


def roll(input: Any, shift: Any, axis: Any, name: str | None = None) -> Any:  # noqa: A002
    """``tf.roll``: elements shifted by ``shift`` along ``axis`` (both scalars or lists of one length)."""
    shifts, axes = np.atleast_1d(np.asarray(shift)).tolist(), np.atleast_1d(np.asarray(axis)).tolist()
    if len(shifts) != len(axes):
        raise ValueError(f"tf.roll: shift and axis must have the same length. Received: shift={shift}, axis={axis}")
    for s, a in zip(shifts, axes):
        input = _ops.roll(input, s, axis=a)
    return input


def where(condition: Any, x: Any = None, y: Any = None, name: str | None = None) -> Any:
    """``tf.where``: ``x`` where ``condition`` else ``y``, or, with neither, the int64 ``[n, rank]``
    coordinates of the true entries (row-major order; ``n`` is a run-time dimension in a traced step)."""
    if (x is None) != (y is None):
        raise ValueError("tf.where: x and y must both be given or both be None. "
                         f"Received: x={'None' if x is None else 'a tensor'}, y={'None' if y is None else 'a tensor'}")
    if x is not None:
        return _ops.where(condition, x, y)
    condition = np.asarray(condition) if isinstance(condition, (list, tuple)) else condition
    coords = _ops.nonzero(condition)
    return _ops.cast(_ops.stack(list(coords), axis=1), "int64")


def eye(num_rows: int, num_columns: int | None = None, batch_shape: Any = None, dtype: Any = "float32",
        name: str | None = None) -> Any:
    """``tf.eye``: a ``[*batch_shape, num_rows, num_columns]`` identity (``ops.eye``'s third argument is a
    diagonal offset, so TensorFlow's ``batch_shape`` is handled here)."""
    out = _ops.eye(num_rows, num_columns, dtype=dtype)
    if batch_shape is None:
        return out
    if isinstance(batch_shape, (list, tuple)):
        # dims may be traced scalars (keras.io's SimCLR: ``tf.eye(3, batch_shape=[tf.shape(images)[0], 1])``
        # in a train_step), which broadcast_to takes as they are
        batch = tuple(int(d) if isinstance(d, (int, np.integer)) else d for d in batch_shape)
    else:
        batch = tuple(np.asarray(batch_shape).tolist())
    return _ops.broadcast_to(out, batch + tuple(_ops.shape(out)))


def linspace(start: Any, stop: Any, num: int, name: str | None = None, axis: int = 0) -> Any:
    """``tf.linspace``: ``num`` evenly spaced values from ``start`` to ``stop``, both included.

    The dtype is ``start``'s as TensorFlow converts it: float32 for a Python float, an array's own float
    dtype, and float64 for integers (TensorFlow computes integer bounds in float64). Array bounds give one
    sequence per element, stacked along ``axis``.

    Example:
        >>> linspace(0.0, 250, 3).tolist()
        [0.0, 125.0, 250.0]
    """
    if isinstance(num, builtins.bool) or not isinstance(num, (builtins.int, np.integer)) or num < 0:
        raise ValueError(f"tf.linspace: num must be a non-negative integer. Received: num={num!r}")
    if hasattr(start, "dtype"):
        dtype = np.dtype(str(start.dtype)) if not hasattr(start, "__onnx_value__") else None
    else:
        dtype = np.asarray(start).dtype
        if dtype == np.float64 and not isinstance(start, np.ndarray | np.generic):
            dtype = np.dtype(np.float32)   # a Python float: TensorFlow's float32
    if dtype is not None and dtype.kind != "f":
        dtype = np.dtype(np.float64)
    return _ops.linspace(start, stop, int(num), dtype=None if dtype is None else dtype.name, axis=axis)
