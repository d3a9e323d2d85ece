"""TensorFlow's math functions whose arguments ``keras.ops`` lacks or spells differently: ``tf.math.cumsum``
(``exclusive``, ``reverse``), ``tf.math.top_k`` (a ``(values, indices)`` named tuple), ``tf.norm`` (vector
and matrix norms), ``tf.nn.l2_normalize`` (over every axis by default), ``tf.sort`` / ``tf.argsort``
(``direction``), ``tf.clip_by_norm`` and ``tf.clip_by_global_norm``.

Each follows TensorFlow's own formula (``clip_by_norm``'s safe square root, ``clip_by_global_norm``'s
``clip_norm * min(1 / norm, 1 / clip_norm)``), so values and gradients agree with TensorFlow's.

Example:
    >>> import numpy as np
    >>> cumsum(np.array([1.0, 2.0, 3.0]), exclusive=True, reverse=True).tolist()
    [5.0, 3.0, 0.0]
    >>> top_k(np.array([1.0, 3.0, 2.0]), k=2).indices.tolist()
    [1, 2]
    >>> float(norm(np.array([[3.0, 0.0], [0.0, 4.0]])))
    5.0
"""
from __future__ import annotations

__all__ = ["cumsum", "top_k", "norm", "l2_normalize", "sort", "argsort", "clip_by_norm", "clip_by_global_norm",
           "global_norm", "reduce_std", "reduce_variance", "reduce_logsumexp", "TopKV2"]

import builtins
from collections import namedtuple
from typing import Any

import numpy as np

from .. import ops as _ops
from .tensors import _reduction

#: ``tf.math.top_k``'s result: ``values`` and ``indices``, also unpackable as a pair.
TopKV2 = namedtuple("TopKV2", ["values", "indices"])

reduce_std = _reduction(_ops.std, "reduce_std")
reduce_variance = _reduction(_ops.var, "reduce_variance")
reduce_logsumexp = _reduction(_ops.logsumexp, "reduce_logsumexp")


def _axis_index(x: Any, axis: int) -> tuple[int, int]:
    ndim = len(_ops.shape(x))
    return ndim, builtins.int(axis) % ndim


def cumsum(x: Any, axis: int = 0, exclusive: builtins.bool = False, reverse: builtins.bool = False,
           name: str | None = None) -> Any:
    """``tf.math.cumsum``: running sums along ``axis``; ``exclusive`` leaves each element out of its own sum
    (a zero first), ``reverse`` sums from the end. The exclusive sums are the inclusive sums of ``x``
    shifted by one place (a zero padded in front, the last sum dropped), so they add the same numbers in
    the same order as TensorFlow, with no ``cumsum(x) - x`` rounding."""
    ndim, axis = _axis_index(x, axis)
    dtype = _ops.dtype(x)
    if reverse:
        x = _ops.flip(x, axis=axis)
    if exclusive:
        pads = [[0, 0]] * ndim
        pads[axis] = [1, 0]
        index = (slice(None),) * axis + (slice(0, -1),)
        out = _ops.cumsum(_ops.pad(x, pads), axis=axis)[index]
    else:
        out = _ops.cumsum(x, axis=axis)
    out = _ops.flip(out, axis=axis) if reverse else out
    return out if _ops.dtype(out) == dtype else _ops.cast(out, dtype)   # narrow integers sum in int32 here


def top_k(input: Any, k: int = 1, sorted: builtins.bool = True, index_type: Any = "int32",  # noqa: A002
          name: str | None = None) -> TopKV2:
    """``tf.math.top_k``: the ``k`` largest entries of the last axis and their ``index_type`` indices."""
    values, indices = _ops.top_k(input, k, sorted)
    return TopKV2(values, _ops.cast(indices, index_type))


def sort(values: Any, axis: int = -1, direction: str = "ASCENDING", name: str | None = None) -> Any:
    """``tf.sort``: ``values`` sorted along ``axis``, ``direction`` ASCENDING or DESCENDING."""
    if direction not in ("ASCENDING", "DESCENDING"):
        raise ValueError(f"tf.sort: direction must be ASCENDING or DESCENDING. Received: direction={direction!r}")
    out = _ops.sort(values, axis=axis)
    return _ops.flip(out, axis=axis) if direction == "DESCENDING" else out


def argsort(values: Any, axis: int = -1, direction: str = "ASCENDING", stable: builtins.bool = False,
            name: str | None = None) -> Any:
    """``tf.argsort``: the int32 indices that sort ``values`` along ``axis``; equal values keep their order
    (what ``stable=True`` asks; TensorFlow's unstable order is one valid answer among several)."""
    if direction not in ("ASCENDING", "DESCENDING"):
        raise ValueError(f"tf.argsort: direction must be ASCENDING or DESCENDING. Received: direction={direction!r}")
    keys = _ops.negative(values) if direction == "DESCENDING" else values
    return _ops.cast(_ops.argsort(keys, axis=axis), "int32")


def _sum_squares(x: Any, axis: Any) -> Any:
    return _ops.sum(_ops.square(x), axis=axis, keepdims=True)


def norm(tensor: Any, ord: Any = "euclidean", axis: Any = None, keepdims: Any = None,  # noqa: A002
         name: str | None = None) -> Any:
    """``tf.norm``: a vector norm over ``axis`` (None: every element, one vector) with ``ord`` 'euclidean' /
    'fro', 1, 2, ``np.inf`` or any ``p > 0``; a matrix norm over a pair of axes with ``ord`` 'euclidean' /
    'fro', 1 (largest column sum) or ``np.inf`` (largest row sum)."""
    axes = None if axis is None else tuple(np.atleast_1d(np.asarray(axis)).tolist())
    euclid = isinstance(ord, str) and ord in ("euclidean", "fro")
    if isinstance(ord, str) and not euclid:
        raise ValueError(f"tf.norm: ord must be 'euclidean', 'fro', 1, 2, np.inf or a positive number. "
                         f"Received: ord={ord!r}")
    if axes is not None and len(axes) == 2:
        ndim = len(_ops.shape(tensor))
        rows, cols = (a % ndim for a in axes)
        if euclid:
            out = _ops.sqrt(_sum_squares(tensor, axes))
        elif ord == 1:
            out = _ops.max(_ops.sum(_ops.abs(tensor), axis=rows, keepdims=True), axis=cols, keepdims=True)
        elif ord == np.inf:
            out = _ops.max(_ops.sum(_ops.abs(tensor), axis=cols, keepdims=True), axis=rows, keepdims=True)
        else:
            raise NotImplementedError(f"tf.norm: the matrix norm supports ord 'euclidean', 'fro', 1 and np.inf "
                                      f"here. Received: ord={ord!r}")
    elif axes is not None and len(axes) != 1:
        raise ValueError(f"tf.norm: axis must be None, an int or a pair of ints. Received: axis={axis}")
    elif euclid or ord == 2:
        out = _ops.sqrt(_sum_squares(tensor, axes))
    elif ord == 1:
        out = _ops.sum(_ops.abs(tensor), axis=axes, keepdims=True)
    elif ord == np.inf:
        out = _ops.max(_ops.abs(tensor), axis=axes, keepdims=True)
    elif isinstance(ord, (builtins.int, builtins.float, np.number)) and ord > 0:
        out = _ops.power(_ops.sum(_ops.power(_ops.abs(tensor), ord), axis=axes, keepdims=True), 1.0 / ord)
    else:
        raise ValueError(f"tf.norm: ord must be 'euclidean', 'fro', 1, 2, np.inf or a positive number. "
                         f"Received: ord={ord!r}")
    return out if keepdims else _ops.squeeze(out, axis=axes)


def l2_normalize(x: Any, axis: Any = None, epsilon: builtins.float = 1e-12, name: str | None = None,
                 dim: Any = None) -> Any:
    """``tf.nn.l2_normalize``: ``x / sqrt(max(sum(x**2, axis), epsilon))``; ``axis=None`` normalizes over
    every axis, as TensorFlow (``dim`` is its deprecated name for ``axis``)."""
    axis = dim if axis is None else axis
    axes = None if axis is None else tuple(np.atleast_1d(np.asarray(axis)).tolist())
    return _ops.multiply(x, _ops.rsqrt(_ops.maximum(_sum_squares(x, axes), epsilon)))


def clip_by_norm(t: Any, clip_norm: Any, axes: Any = None, name: str | None = None) -> Any:
    """``tf.clip_by_norm``: ``t * clip_norm / max(l2norm(t, axes), clip_norm)``, TensorFlow's formula (a
    zero ``t`` has a zero, not NaN, gradient)."""
    axes = None if axes is None else tuple(np.atleast_1d(np.asarray(axes)).tolist())
    l2sum = _sum_squares(t, axes)
    positive = _ops.greater(l2sum, 0.0)
    l2norm = _ops.where(positive, _ops.sqrt(_ops.where(positive, l2sum, _ops.ones_like(l2sum))), l2sum)
    clip = _ops.cast(clip_norm, _ops.dtype(t))
    return _ops.divide(_ops.multiply(t, clip), _ops.maximum(l2norm, clip))


def global_norm(t_list: Any, name: str | None = None) -> Any:
    """``tf.linalg.global_norm``: ``sqrt(sum of every tensor's sum of squares)``, ``None`` entries skipped."""
    if hasattr(t_list, "dtype") or not isinstance(t_list, (list, tuple)) and not hasattr(t_list, "__iter__"):
        raise TypeError(f"`t_list` should be a sequence of tensors. Received {type(t_list)}.")
    parts = [_ops.sum(_ops.square(t)) for t in t_list if t is not None]
    if not parts:
        return _ops.convert_to_tensor(np.float32(0.0))
    total = parts[0]
    for p in parts[1:]:
        total = _ops.add(total, p)
    return _ops.sqrt(total)


def clip_by_global_norm(t_list: Any, clip_norm: Any, use_norm: Any = None,
                        name: str | None = None) -> tuple[list[Any], Any]:
    """``tf.clip_by_global_norm``: every tensor times ``clip_norm * min(1 / global_norm, 1 / clip_norm)``
    and the global norm (``use_norm`` when given); ``None`` entries stay ``None``, and an infinite or NaN
    norm makes every value NaN, as TensorFlow."""
    t_list = list(t_list) if not hasattr(t_list, "dtype") else t_list
    norm_value = global_norm(t_list) if use_norm is None else _ops.convert_to_tensor(use_norm)
    clip = _ops.cast(clip_norm, _ops.dtype(norm_value))
    scale = _ops.multiply(clip, _ops.minimum(_ops.divide(1.0, norm_value), _ops.divide(1.0, clip)))
    scale = _ops.add(scale, _ops.subtract(norm_value, norm_value))   # NaN where the norm is inf or NaN
    clipped = [None if t is None else _ops.multiply(t, _ops.cast(scale, _ops.dtype(t))) for t in t_list]
    return clipped, norm_value
