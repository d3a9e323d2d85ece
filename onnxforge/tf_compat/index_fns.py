"""TensorFlow's index-driven tensor functions: ``tf.tensor_scatter_nd_update`` / ``_add`` / ``_sub`` / ``_max`` /
``_min``, ``tf.unravel_index``, ``tf.histogram_fixed_width`` (and ``_bins``), ``tf.unique_with_counts`` and
``tf.reverse_sequence``, with TensorFlow's argument names, result dtypes and errors.

The scatters are ONNX's ``ScatterND`` (``reduction`` none / add / max / min), so they run on arrays, in a
traced ``tf.function`` or train step and in a functional model, and take gradients (keras.io's
Forward-Forward writes its labels into the first pixels with ``tf.tensor_scatter_nd_update``). Indices that
are known now (arrays, lists) are checked here as TensorFlow checks them, raising
``tf.errors.InvalidArgumentError`` rather than leaving onnxruntime an out-of-range write.

Example:
    >>> import numpy as np
    >>> tensor_scatter_nd_update(np.zeros(4, np.float32), [[1], [3]], [5.0, 7.0]).tolist()
    [0.0, 5.0, 0.0, 7.0]
    >>> [v.tolist() for v in unravel_index([1, 5], [3, 4])]
    [[0, 1], [1, 1]]
"""
from __future__ import annotations

__all__ = ["tensor_scatter_nd_update", "tensor_scatter_nd_add", "tensor_scatter_nd_sub", "tensor_scatter_nd_max",
           "tensor_scatter_nd_min", "unravel_index", "histogram_fixed_width", "histogram_fixed_width_bins",
           "unique_with_counts", "reverse_sequence"]

import collections
from typing import Any

import numpy as np

from .. import ops as _ops
from ..ops._util import symbolic
from .errors import InvalidArgumentError
from .tensors import constant

UniqueWithCounts = collections.namedtuple("UniqueWithCounts", ["y", "idx", "count"])


def _tensor(x: Any) -> Any:
    # Python lists and numbers become tensors with TensorFlow's dtypes (int32, float32), as its ops convert them.
    return constant(x) if isinstance(x, (list, tuple, int, float)) else x


def _shape(x: Any) -> tuple[Any, ...]:
    return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)


def _known(x: Any) -> np.ndarray | None:
    """The values of ``x`` when they exist now (arrays, eager tensors, lists), else ``None`` (traced)."""
    return np.asarray(x) if isinstance(x, (np.ndarray, np.generic, list, tuple, int)) else None


def _check_indices(fn: str, indices: Any) -> None:
    dtype = np.dtype(_ops.dtype(indices)) if hasattr(indices, "dtype") else np.asarray(indices).dtype
    if dtype.kind not in "iu":
        raise InvalidArgumentError(f"{fn}: indices must be int32 or int64 (TensorFlow's allowed index types). "
                                   f"Received: indices of dtype {dtype.name}")


def _scatter(fn: str, tensor: Any, indices: Any, updates: Any, reduction: str | None) -> Any:
    tensor, indices = _tensor(tensor), _tensor(indices)
    _check_indices(fn, indices)
    t_shape, i_shape, u_shape = _shape(tensor), _shape(indices), _shape(updates)
    depth = i_shape[-1] if i_shape else None
    if not i_shape or (isinstance(depth, int) and depth > len(t_shape)):
        raise InvalidArgumentError(f"{fn}: indices.shape[-1] must be at most the rank of tensor "
                                   f"({len(t_shape)}). Received: indices.shape={list(i_shape)}, "
                                   f"tensor.shape={list(t_shape)}")
    if isinstance(depth, int):
        want = (*i_shape[:-1], *t_shape[depth:])
        if len(want) != len(u_shape) or any(isinstance(w, int) and isinstance(u, int) and w != u
                                            for w, u in zip(want, u_shape)):
            raise InvalidArgumentError(
                f"{fn}: updates must have shape indices.shape[:-1] + tensor.shape[indices.shape[-1]:] = "
                f"{list(want)}. Received: updates.shape={list(u_shape)}")
    known = _known(indices)
    if known is not None and isinstance(depth, int) and all(isinstance(d, int) for d in t_shape[:depth]):
        rows = known.reshape(-1, depth)
        bad = np.nonzero(((rows < 0) | (rows >= np.asarray(t_shape[:depth], np.int64))).any(axis=1))[0]
        if bad.size:
            raise InvalidArgumentError(f"{fn}: indices[{bad[0]}] = {rows[bad[0]].tolist()} does not index into "
                                       f"shape {list(t_shape)}")
    return _scatter_program(tensor, indices, _tensor(updates), reduction=reduction)


@symbolic
def _scatter_program(tensor: Any, indices: Any, updates: Any, reduction: str | None) -> Any:
    # One program for the cast, the negation and the scatter (eagerly: one compiled run, not three).
    updates = _ops.cast(updates, _ops.dtype(tensor))   # arrays and lists take the tensor's dtype, as in TF
    if reduction == "sub":
        updates, reduction = _ops.negative(updates), "add"
    return _ops.scatter_update(tensor, indices, updates, reduction=reduction)


def tensor_scatter_nd_update(tensor: Any, indices: Any, updates: Any, name: str | None = None) -> Any:
    """``tf.tensor_scatter_nd_update``: ``tensor`` with the elements (or slices) at ``indices`` replaced by
    ``updates``; ``updates.shape`` is ``indices.shape[:-1] + tensor.shape[indices.shape[-1]:]``. As in
    TensorFlow, which of several updates to one position wins is unspecified."""
    return _scatter("tf.tensor_scatter_nd_update", tensor, indices, updates, None)


def tensor_scatter_nd_add(tensor: Any, indices: Any, updates: Any, name: str | None = None) -> Any:
    """``tf.tensor_scatter_nd_add``: ``updates`` added into ``tensor`` at ``indices`` (repeats all add)."""
    return _scatter("tf.tensor_scatter_nd_add", tensor, indices, updates, "add")


def tensor_scatter_nd_sub(tensor: Any, indices: Any, updates: Any, name: str | None = None) -> Any:
    """``tf.tensor_scatter_nd_sub``: ``updates`` subtracted from ``tensor`` at ``indices``."""
    return _scatter("tf.tensor_scatter_nd_sub", tensor, indices, updates, "sub")


def tensor_scatter_nd_max(tensor: Any, indices: Any, updates: Any, name: str | None = None) -> Any:
    """``tf.tensor_scatter_nd_max``: the larger of ``tensor``'s element and the updates at each index."""
    return _scatter("tf.tensor_scatter_nd_max", tensor, indices, updates, "max")


def tensor_scatter_nd_min(tensor: Any, indices: Any, updates: Any, name: str | None = None) -> Any:
    """``tf.tensor_scatter_nd_min``: the smaller of ``tensor``'s element and the updates at each index."""
    return _scatter("tf.tensor_scatter_nd_min", tensor, indices, updates, "min")


def unravel_index(indices: Any, dims: Any, name: str | None = None) -> Any:
    """``tf.unravel_index``: the coordinates of flat ``indices`` in an array of shape ``dims``, one row per
    dimension (shape ``(len(dims), n)``; a scalar index gives ``(len(dims),)``), in ``indices``' dtype."""
    indices, dims = _tensor(indices), _tensor(dims)
    if len(_shape(indices)) > 1:
        raise InvalidArgumentError(f"tf.unravel_index: indices can only be a scalar or vector. "
                                   f"Received: indices.shape={list(_shape(indices))}")
    known, known_dims = _known(indices), _known(dims)
    if known is not None and known_dims is not None and \
            ((known < 0) | (known >= int(np.prod(known_dims)))).any():
        raise InvalidArgumentError(f"tf.unravel_index: index is out of bound as with dims {known_dims.tolist()}. "
                                   f"Received: indices={known.tolist()}")
    return _unravel(indices, dims)


@symbolic
def _unravel(indices: Any, dims: Any) -> Any:
    dtype = _ops.dtype(indices)
    dims = _ops.cast(dims, dtype)
    # Row-major strides: the product of the dimensions after each one (a reversed exclusive cumprod).
    strides = _ops.flip(_ops.cumprod(_ops.concatenate([_ops.ones((1,), dtype), _ops.flip(dims[1:], 0)]), 0), 0)
    flat = _ops.expand_dims(indices, 0)
    shape = (-1,) + (1,) * len(_shape(indices))
    return _ops.cast(_ops.mod(_ops.floor_divide(flat, _ops.reshape(strides, shape)), _ops.reshape(dims, shape)),
                     dtype)


def histogram_fixed_width_bins(values: Any, value_range: Any, nbins: int = 100, dtype: Any = "int32",
                               name: str | None = None) -> Any:
    """``tf.histogram_fixed_width_bins``: the bin of each value among ``nbins`` equal bins over
    ``value_range``; values below the range go to bin 0, above it to bin ``nbins - 1``."""
    values, value_range = _tensor(values), _tensor(value_range)
    if isinstance(nbins, (int, np.integer)) and nbins <= 0:
        raise InvalidArgumentError(f"tf.histogram_fixed_width: nbins should be a positive number. "
                                   f"Received: nbins={nbins}")
    return _bins(values, value_range, nbins=int(nbins), dtype=dtype)


@symbolic
def _bins(values: Any, value_range: Any, nbins: int, dtype: Any) -> Any:
    lo, hi = value_range[0], value_range[1]
    scaled = _ops.divide(_ops.subtract(values, lo), _ops.subtract(hi, lo))
    index = _ops.floor(_ops.multiply(_ops.cast(scaled, "float32"), float(nbins)))
    return _ops.cast(_ops.clip(index, 0, nbins - 1), dtype)


def histogram_fixed_width(values: Any, value_range: Any, nbins: int = 100, dtype: Any = "int32",
                          name: str | None = None) -> Any:
    """``tf.histogram_fixed_width``: how many ``values`` fall in each of ``nbins`` equal bins over
    ``value_range`` (values outside go to the first or last bin).

    Example:
        >>> histogram_fixed_width([-1.0, 0.0, 1.5, 2.0, 5.0, 15.0], [0.0, 5.0], nbins=5).tolist()
        [2, 1, 1, 0, 2]
    """
    bins = histogram_fixed_width_bins(values, value_range, nbins=nbins, dtype="int32")
    return _count(bins, nbins=int(nbins), dtype=dtype)


@symbolic
def _count(bins: Any, nbins: int, dtype: Any) -> Any:
    return _ops.cast(_ops.bincount(_ops.reshape(bins, (-1,)), minlength=nbins)[:nbins], dtype)


def unique_with_counts(x: Any, out_idx: Any = "int32", name: str | None = None) -> UniqueWithCounts:
    """``tf.unique_with_counts``: ``(y, idx, count)``: the distinct values of 1-D ``x`` in the order first met,
    each element's position in ``y``, and how often each value occurs."""
    x = _tensor(x)
    y, idx = _ops.unique(x, sorted=False, return_inverse=True)
    idx = _ops.cast(idx, out_idx)
    count = _ops.cast(_ops.bincount(idx, minlength=int(_shape(y)[0]) if isinstance(_shape(y)[0], int) else 0),
                      out_idx)
    return UniqueWithCounts(_ops.cast(y, _ops.dtype(x)), idx, count)


def reverse_sequence(input: Any, seq_lengths: Any, seq_axis: int | None = None, batch_axis: int = 0,  # noqa: A002
                     name: str | None = None) -> Any:
    """``tf.reverse_sequence``: for each batch entry ``b``, the first ``seq_lengths[b]`` elements along
    ``seq_axis`` reversed, the rest kept (a bidirectional RNN's backward pass over padded sequences).

    Example:
        >>> reverse_sequence([[1, 2, 3], [4, 5, 6]], [2, 3], seq_axis=1).tolist()
        [[2, 1, 3], [6, 5, 4]]
    """
    if seq_axis is None:
        raise ValueError("tf.reverse_sequence: seq_axis is required. Received: seq_axis=None")
    x = _tensor(input)
    rank = len(_shape(x))
    seq_axis, batch_axis = seq_axis % rank, batch_axis % rank
    if seq_axis == batch_axis:
        raise InvalidArgumentError(f"tf.reverse_sequence: seq_axis and batch_axis must differ. "
                                   f"Received: seq_axis={seq_axis}, batch_axis={batch_axis}")
    lengths, steps = _known(seq_lengths), _shape(x)[seq_axis]
    if lengths is not None and isinstance(steps, int) and ((lengths < 0) | (lengths > steps)).any():
        raise InvalidArgumentError(f"tf.reverse_sequence: seq_lengths must be in [0, {steps}] "
                                   f"(input.shape[seq_axis]). Received: seq_lengths={lengths.tolist()}")
    return _reverse(x, _tensor(seq_lengths), seq_axis=seq_axis, batch_axis=batch_axis)


@symbolic
def _reverse(x: Any, seq_lengths: Any, seq_axis: int, batch_axis: int) -> Any:
    rank, steps = len(_shape(x)), _shape(x)[seq_axis]
    # Position t of entry b reads from length - 1 - t while t < length, from t itself after.
    t = _ops.arange(steps, dtype="int64") if isinstance(steps, int) else \
        _ops.arange(_ops.shape(x)[seq_axis], dtype="int64")
    n = _ops.expand_dims(_ops.cast(seq_lengths, "int64"), 1)
    src = _ops.where(_ops.less(t, n), _ops.subtract(_ops.subtract(n, 1), t), t)   # (batch, steps)
    # Put the (batch, steps) map on batch_axis / seq_axis, size 1 elsewhere, and gather along seq_axis.
    if batch_axis > seq_axis:
        src = _ops.transpose(src, [1, 0])
    for k in range(rank):
        if k not in (batch_axis, seq_axis):
            src = _ops.expand_dims(src, k)
    return _ops.take_along_axis(x, _ops.broadcast_to(src, _ops.shape(x)), axis=seq_axis)
