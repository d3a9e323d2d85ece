"""``tf.dynamic_partition`` and ``tf.dynamic_stitch``: rows split into groups by a partition id and merged
back by index, as mixture-of-experts routing and per-class loss code does.

``dynamic_partition`` is one ``tf.boolean_mask`` per partition; ``dynamic_stitch`` gathers, for each output
row ``j``, the *last* data row whose index is ``j`` (TensorFlow's rule for repeated indices) and zeros where no
index names ``j``. Both are standard gathers, so they run eagerly, in a ``tf.function`` or a model and carry
gradients; the number of rows of their results is a run-time dimension when traced. Indices and partition
ids known now are checked as TensorFlow checks them (``tf.errors.InvalidArgumentError``).

Example:
    >>> import numpy as np
    >>> import onnxforge as tf
    >>> parts = tf.dynamic_partition(np.array([10, 20, 30, 40]), [1, 0, 1, 1], 2)
    >>> [p.tolist() for p in parts]
    [[20], [10, 30, 40]]
    >>> tf.dynamic_stitch([[0, 2], [1, 3]], [np.array([1.0, 3.0]), np.array([2.0, 4.0])]).tolist()
    [1.0, 2.0, 3.0, 4.0]
"""
from __future__ import annotations

__all__ = ["dynamic_partition", "dynamic_stitch"]

from typing import Any

import numpy as np

from .. import ops as _ops
from ..ops._util import symbolic
from .errors import InvalidArgumentError
from .tensors import boolean_mask


def _known(x: Any) -> np.ndarray | None:
    return np.asarray(x) if isinstance(x, (np.ndarray, np.generic, list, tuple, int)) else None


def _shape(x: Any) -> tuple[Any, ...]:
    return tuple(_ops.shape(x)) if hasattr(x, "shape") else np.shape(x)


def dynamic_partition(data: Any, partitions: Any, num_partitions: int, name: str | None = None) -> list[Any]:
    """``tf.dynamic_partition``: ``num_partitions`` tensors, the ``i``-th holding the entries of ``data`` whose
    ``partitions`` id (an int tensor shaped like ``data``'s leading axes) is ``i``, in order."""
    if isinstance(num_partitions, bool) or not isinstance(num_partitions, (int, np.integer)) or num_partitions < 1:
        raise ValueError(f"tf.dynamic_partition: num_partitions must be an int of at least 1. Received: "
                         f"num_partitions={num_partitions!r}")
    data = np.asarray(data) if isinstance(data, (list, tuple)) else data
    ids = np.asarray(partitions, np.int32) if isinstance(partitions, (list, tuple, int)) else partitions
    d_shape, p_shape = _shape(data), _shape(ids)
    if len(p_shape) > len(d_shape) or any(isinstance(a, int) and isinstance(b, int) and a != b
                                          for a, b in zip(p_shape, d_shape)):
        raise InvalidArgumentError(f"tf.dynamic_partition: data.shape must start with partitions.shape. "
                                   f"Received: data.shape={list(d_shape)}, partitions.shape={list(p_shape)}")
    known = _known(ids)
    if known is not None and known.size and (known.min() < 0 or known.max() >= num_partitions):
        bad = known[(known < 0) | (known >= num_partitions)].ravel()[0]
        raise InvalidArgumentError(f"tf.dynamic_partition: partitions holds {bad}, which is not in [0, "
                                   f"{num_partitions})")
    return _partition(data, ids, num_partitions=int(num_partitions))


@symbolic   # eagerly one compiled program per signature, not one per step
def _partition(data: Any, ids: Any, num_partitions: int) -> list[Any]:
    if not _ops.shape(ids):   # a scalar id: the whole tensor goes to one partition
        data, ids = _ops.expand_dims(data, 0), _ops.reshape(ids, (1,))
    return [boolean_mask(data, _ops.equal(ids, i)) for i in range(num_partitions)]


def dynamic_stitch(indices: Any, data: Any, name: str | None = None) -> Any:
    """``tf.dynamic_stitch``: ``merged[indices[m][i]] = data[m][i]`` for every list entry ``m``; ``merged`` has
    ``max(indices) + 1`` rows (a later entry wins a repeated index; rows no index names are zeros)."""
    if not isinstance(indices, (list, tuple)) or not isinstance(data, (list, tuple)) or len(indices) != len(data) \
            or not indices:
        raise ValueError("tf.dynamic_stitch: indices and data must be lists of the same non-zero length. "
                         f"Received {type(indices).__name__} and {type(data).__name__}")
    idx = [np.asarray(i, np.int32) if isinstance(i, (list, tuple, int)) else i for i in indices]
    data = [np.asarray(d, np.float32 if np.asarray(d).dtype == np.float64 else None) if isinstance(d, (list, tuple))
            else d for d in data]
    rest = _shape(data[0])[len(_shape(idx[0])):]
    for i, d in zip(idx, data):
        i_shape, d_shape = _shape(i), _shape(d)
        if len(d_shape) != len(i_shape) + len(rest) or any(
                isinstance(a, int) and isinstance(b, int) and a != b
                for a, b in zip(d_shape, (*i_shape, *rest))):
            raise InvalidArgumentError(f"tf.dynamic_stitch: each data[m].shape must be indices[m].shape + "
                                       f"{list(rest)}. Received: data shape {list(d_shape)}, indices shape "
                                       f"{list(i_shape)}")
    known = [_known(i) for i in idx]
    if all(k is not None for k in known) and any(k.size and k.min() < 0 for k in known):
        raise InvalidArgumentError("tf.dynamic_stitch: indices must be non-negative. Received: "
                                   f"{[k.tolist() for k in known]}")
    return _stitch(idx, data, rest_rank=len(rest))


@symbolic
def _stitch(idx: list[Any], data: list[Any], rest_rank: int) -> Any:
    rest = tuple(_ops.shape(data[0]))[len(_ops.shape(data[0])) - rest_rank:]
    rest = tuple(d if isinstance(d, int) else -1 for d in rest)
    flat_idx = _ops.concatenate([_ops.reshape(_ops.cast(i, "int64"), (-1,)) for i in idx], axis=0)
    flat_data = _ops.concatenate([_ops.reshape(d, (-1, *rest)) for d in data], axis=0)
    rows = _ops.arange(_ops.max(flat_idx) + 1, dtype="int64")
    hits = _ops.equal(_ops.expand_dims(rows, 1), _ops.expand_dims(flat_idx, 0))          # (rows, n)
    order = _ops.arange(1, _ops.shape(flat_idx)[0] + 1, dtype="int64")
    last = _ops.argmax(_ops.where(hits, _ops.expand_dims(order, 0), 0), axis=1)         # last hit of each row
    picked = _ops.take(flat_data, last, axis=0)
    present = _ops.reshape(_ops.any(hits, axis=1), (-1,) + (1,) * rest_rank)
    return _ops.where(present, picked, _ops.zeros((), _ops.dtype(picked)))
