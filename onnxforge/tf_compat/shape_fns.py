"""TensorFlow's shape and slicing utilities: ``tf.strided_slice`` (with its five masks), ``tf.ensure_shape``,
``tf.get_static_value``, ``tf.broadcast_static_shape`` / ``broadcast_dynamic_shape``, ``tf.shape_n``,
``tf.saturate_cast``, ``tf.vectorized_map`` and ``tf.space_to_batch_nd`` / ``tf.batch_to_space`` (the
rearrangement dilated convolutions are built from), with TensorFlow's argument names and errors.

``strided_slice`` becomes the Python index TensorFlow's masks describe (``begin_mask`` bit ``i``: no start on
axis ``i``; ``shrink_axis_mask``: an int index; ``new_axis_mask``: ``None``; ``ellipsis_mask``: ``...``), so it
is the same ``Slice`` / ``Gather`` an indexing expression gives, eagerly or traced.

Example:
    >>> import numpy as np
    >>> x = np.arange(12).reshape(3, 4)
    >>> strided_slice(x, [0, 3], [2, 0], [1, -2], begin_mask=1).tolist()
    [[3, 1], [7, 5]]
    >>> get_static_value(x[0]).tolist()
    [0, 1, 2, 3]
"""
from __future__ import annotations

__all__ = ["strided_slice", "ensure_shape", "get_static_value", "broadcast_static_shape", "broadcast_dynamic_shape",
           "shape_n", "saturate_cast", "vectorized_map", "space_to_batch_nd", "space_to_batch", "batch_to_space"]

import builtins
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import ops as _ops
from ..eager_tensor import as_eager
from .errors import InvalidArgumentError
from .tensor_types import TensorShape
from .tensors import shape as _tf_shape


def _ints(values: Any, fn: str, argument: str) -> list[int]:
    if not isinstance(values, (list, tuple, np.ndarray)):
        raise TypeError(f"tf.{fn}: {argument} must be a list of ints known now (onnxforge slices with static "
                        f"bounds). Received: {argument}={values!r}")
    return [builtins.int(v) for v in np.asarray(values).ravel().tolist()]


def strided_slice(input_: Any, begin: Any, end: Any, strides: Any = None, begin_mask: int = 0, end_mask: int = 0,
                  ellipsis_mask: int = 0, new_axis_mask: int = 0, shrink_axis_mask: int = 0, var: Any = None,
                  name: str | None = None) -> Any:
    """``tf.strided_slice``: ``input_[begin:end:strides]`` on each axis, shaped by the masks (bit ``i`` of each
    applies to entry ``i`` of ``begin``)."""
    b, e = _ints(begin, "strided_slice", "begin"), _ints(end, "strided_slice", "end")
    s = [1] * len(b) if strides is None else _ints(strides, "strided_slice", "strides")
    if not len(b) == len(e) == len(s):
        raise ValueError(f"tf.strided_slice: begin, end and strides must have the same length. Received: "
                         f"begin={b}, end={e}, strides={s}")
    if builtins.any(v == 0 for v in s):
        raise ValueError(f"tf.strided_slice: strides entries must be non-zero. Received: strides={s}")
    if bin(ellipsis_mask).count("1") > 1:
        raise ValueError(f"tf.strided_slice: only one ellipsis is allowed. Received: ellipsis_mask={ellipsis_mask}")
    key: list[Any] = []
    for i in range(len(b)):
        bit = 1 << i
        if ellipsis_mask & bit:
            key.append(Ellipsis)
        elif new_axis_mask & bit:
            key.append(None)
        elif shrink_axis_mask & bit:
            key.append(b[i])
        else:
            key.append(builtins.slice(None if begin_mask & bit else b[i], None if end_mask & bit else e[i], s[i]))
    x = np.asarray(input_) if isinstance(input_, (list, tuple)) else input_
    return x[tuple(key)]


def ensure_shape(x: Any, shape: Any, name: str | None = None) -> Any:
    """``tf.ensure_shape``: ``x`` unchanged when its shape fits ``shape`` (``None`` entries match any size);
    otherwise ``tf.errors.InvalidArgumentError``. A dimension not known while tracing is not checked."""
    want = TensorShape(shape)
    got = tuple(_ops.shape(x))
    if want.rank is not None and (len(got) != want.rank or builtins.any(
            w is not None and isinstance(g, (builtins.int, np.integer)) and g != w for g, w in zip(got, want))):
        shown = ",".join("?" if not isinstance(g, (builtins.int, np.integer)) else str(g) for g in got)
        raise InvalidArgumentError(f"tf.ensure_shape: Shape of tensor input [{shown}] is not compatible with "
                                   f"expected shape [{','.join('?' if w is None else str(w) for w in want)}].")
    return x


def get_static_value(tensor: Any, partial: bool = False) -> Any:
    """``tf.get_static_value``: a concrete tensor's values as a NumPy array, ``None`` for a traced one; other
    Python values are returned as they are."""
    if isinstance(tensor, np.ndarray):
        return np.asarray(tensor).view(np.ndarray)
    if hasattr(tensor, "numpy") and hasattr(tensor, "assign"):   # a Variable: not constant, as in TensorFlow
        return None
    if hasattr(tensor, "shape") and not isinstance(tensor, (np.generic, TensorShape)):
        return None   # a traced value or a functional-model tensor: unknown until run
    return tensor


def broadcast_static_shape(shape_x: Any, shape_y: Any) -> TensorShape:
    """``tf.broadcast_static_shape``: the broadcast of two ``TensorShape``s (``None`` dims stay unknown
    unless the other is known and not 1); incompatible shapes raise ``ValueError``."""
    x, y = TensorShape(shape_x), TensorShape(shape_y)
    if x.rank is None or y.rank is None:
        return TensorShape(None)
    n = max(len(x), len(y))
    a, b = (1,) * (n - len(x)) + tuple(x), (1,) * (n - len(y)) + tuple(y)   # the shorter one padded with 1s
    out = []
    for p, q in zip(a, b):
        if p is not None and q is not None and p != q and 1 not in (p, q):
            raise ValueError(f"Incompatible shapes for broadcasting. Two shapes are compatible if for each "
                             f"dimension pair they are either equal or one of them is 1. Received: {tuple(x)} and "
                             f"{tuple(y)}.")
        out.append(q if p == 1 else p if q == 1 else p if p is not None else q)
    return TensorShape(out)


def broadcast_dynamic_shape(shape_x: Any, shape_y: Any) -> Any:
    """``tf.broadcast_dynamic_shape``: the broadcast of two concrete 1-D shape tensors, as an int32 tensor (or
    the shapes' own integer dtype)."""
    x, y = np.asarray(shape_x), np.asarray(shape_y)
    try:
        out = np.broadcast_shapes(tuple(x.tolist()), tuple(y.tolist()))
    except ValueError as e:
        raise InvalidArgumentError(f"tf.broadcast_dynamic_shape: Incompatible shapes: {x.tolist()} vs. "
                                   f"{y.tolist()}") from e
    dtype = x.dtype if x.dtype.kind == "i" and isinstance(shape_x, np.ndarray) else np.dtype("int32")
    return as_eager(np.asarray(out, dtype))


def shape_n(input: Any, out_type: Any = "int32", name: str | None = None) -> list[Any]:  # noqa: A002
    """``tf.shape_n``: ``tf.shape`` of each tensor of the list."""
    return [_tf_shape(x, out_type=out_type) for x in input]


def saturate_cast(value: Any, dtype: Any, name: str | None = None) -> Any:
    """``tf.saturate_cast``: ``value`` cast to ``dtype`` with out-of-range values clipped to its limits."""
    return _ops.saturate_cast(np.asarray(value, np.float32) if isinstance(value, (list, tuple)) else value, dtype)


def vectorized_map(fn: Callable[[Any], Any], elems: Any, fallback_to_while_loop: bool = True,
                   warn: bool = True) -> Any:
    """``tf.vectorized_map``: ``fn`` applied to each slice of ``elems`` along its first axis, the results
    stacked (``keras.ops.vectorized_map``)."""
    return _ops.vectorized_map(fn, elems)


def _block_args(x: Any, block_shape: Any, pairs: Any, fn: str, argument: str) -> tuple[list[int], np.ndarray, tuple]:
    blocks = _ints(block_shape, fn, "block_shape")
    amounts = np.asarray(_ints(pairs, fn, argument), np.int64).reshape(-1, 2) if len(blocks) else \
        np.zeros((0, 2), np.int64)
    shape = tuple(_ops.shape(x))
    if amounts.shape[0] != len(blocks) or len(shape) < len(blocks) + 1 or builtins.any(b < 1 for b in blocks):
        raise InvalidArgumentError(f"tf.{fn}: block_shape must hold M >= 1 positive sizes for M spatial axes of "
                                   f"input (rank {len(shape)}) and {argument} must be M x 2. Received: "
                                   f"block_shape={blocks}, {argument}={amounts.tolist()}")
    if builtins.any(not isinstance(d, (builtins.int, np.integer)) for d in shape[1:len(blocks) + 1]):
        raise ValueError(f"tf.{fn}: the spatial dimensions must be known while tracing. Received: input shape "
                         f"{shape}")
    return blocks, amounts, shape


def space_to_batch_nd(input: Any, block_shape: Any, paddings: Any, name: str | None = None) -> Any:  # noqa: A002
    """``tf.space_to_batch_nd``: the ``M`` spatial axes after the batch zero-padded by ``paddings`` and cut
    into ``block_shape`` blocks, each block offset moved into the batch (batch grows ``prod(block_shape)``
    times, batch index ``offset * batch + b``)."""
    x = np.asarray(input) if isinstance(input, (list, tuple)) else input
    blocks, pads, shape = _block_args(x, block_shape, paddings, "space_to_batch_nd", "paddings")
    m, rest = len(blocks), tuple(shape[len(blocks) + 1:])
    x = _ops.pad(x, [[0, 0], *pads.tolist(), *[[0, 0]] * len(rest)])
    padded = [builtins.int(shape[1 + k] + pads[k].sum()) for k in range(m)]
    if builtins.any(p % b for p, b in zip(padded, blocks)):
        raise InvalidArgumentError(f"tf.space_to_batch_nd: padded spatial sizes {padded} must be divisible by "
                                   f"block_shape {blocks}")
    split = [v for p, b in zip(padded, blocks) for v in (p // b, b)]
    x = _ops.reshape(x, (-1, *split, *rest))
    perm = [2 + 2 * k for k in range(m)] + [0] + [1 + 2 * k for k in range(m)] + \
        list(range(1 + 2 * m, 1 + 2 * m + len(rest)))
    x = _ops.transpose(x, perm)
    return _ops.reshape(x, (-1, *(p // b for p, b in zip(padded, blocks)), *rest))


space_to_batch = space_to_batch_nd


def batch_to_space(input: Any, block_shape: Any, crops: Any, name: str | None = None) -> Any:  # noqa: A002
    """``tf.batch_to_space``: the inverse of ``space_to_batch_nd``, the result cropped by ``crops``."""
    x = np.asarray(input) if isinstance(input, (list, tuple)) else input
    blocks, crop, shape = _block_args(x, block_shape, crops, "batch_to_space", "crops")
    m, rest = len(blocks), tuple(shape[len(blocks) + 1:])
    spatial = [builtins.int(d) for d in shape[1:m + 1]]
    x = _ops.reshape(x, (*blocks, -1, *spatial, *rest))
    perm = [m] + [v for k in range(m) for v in (m + 1 + k, k)] + list(range(2 * m + 1, 2 * m + 1 + len(rest)))
    x = _ops.reshape(_ops.transpose(x, perm), (-1, *(s * b for s, b in zip(spatial, blocks)), *rest))
    index = (builtins.slice(None), *(builtins.slice(builtins.int(c[0]), s * b - builtins.int(c[1]))
                                     for c, s, b in zip(crop, spatial, blocks)))
    return x[index]
