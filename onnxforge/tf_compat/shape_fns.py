"""TensorFlow's shape and slicing utilities: ``tf.strided_slice`` (with its five masks), ``tf.ensure_shape``,
``tf.get_static_value``, ``tf.broadcast_static_shape`` / ``broadcast_dynamic_shape``, ``tf.shape_n``,
``tf.saturate_cast`` and ``tf.vectorized_map``, with TensorFlow's argument names and errors.

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
           "shape_n", "saturate_cast", "vectorized_map"]

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
