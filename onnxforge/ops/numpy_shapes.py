"""NumPy-like shape and creation ops (``keras.ops.numpy``): reshape, transpose, axes, concatenation and
stacking, tiling and broadcasting, take and slice; ``full`` / ``ones`` / ``zeros`` (and ``*_like``),
``arange`` and ``one_hot``.

Importable from ``onnxforge.ops.numpy`` as well (Keras's ``keras.ops.numpy`` namespace), which is also the
module name an ``OpCall`` config records for them.

Example:
    >>> import numpy as np
    >>> from onnxforge import ops
    >>> ops.reshape(np.arange(6), (2, 3)).shape
    TensorShape([2, 3])
"""
from __future__ import annotations

__all__ = ['reshape', 'transpose', 'expand_dims', 'squeeze', 'concatenate', 'stack', 'tile', 'broadcast_to', 'size', 'take', 'slice', 'full', 'ones', 'zeros', 'full_like', 'ones_like', 'zeros_like', 'arange', 'one_hot']

import builtins
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx

from ..backend_config import floatx
from ..graph import Value, np_dtype, protos
from ._util import (as_value, builder_of, cast_value, dtype_enum, fill_const, int_const, promote, shape_tensor,
                    static_dims, symbol_size, symbolic)


# The module name that OpCall configs record for these ops (they were in numpy.py, which re-exports them).
OPCALL_MODULE = "numpy"


def _b(*args: Any):
    return builder_of(args)


def _axes(axis: Any) -> list[int] | None:
    if axis is None:
        return None
    return [int(a) for a in axis] if isinstance(axis, (list, tuple)) else [int(axis)]


# ------------------------------------------------------------------------------------------ shapes
@symbolic
def reshape(x: Any, newshape: Any) -> Value:
    """``x`` with a new shape: ints (one may be ``-1``) and scalar tensors such as ``ops.shape(x)[0]``."""
    b = _b(x, newshape)
    v = as_value(x, b)
    if isinstance(newshape, Value):
        return b.op("Reshape", [v, cast_value(newshape, 7)])
    dims = (newshape,) if isinstance(newshape, (int, np.integer)) else tuple(newshape)
    dims = tuple(_symbol(b, d, "ops.reshape", dims) for d in dims)
    ints = [d for d in dims if isinstance(d, (int, np.integer))]
    if builtins.sum(1 for d in ints if d == -1) > 1:
        raise ValueError(f"ops.reshape: at most one dimension can be -1. Received: newshape={dims}")
    if len(ints) == len(dims):
        static = None if -1 in ints else tuple(int(d) for d in dims)
        return b.op("Reshape", [v, int_const(b, [int(d) for d in dims])], shape=static)
    pieces = [int_const(b, [int(d)]) if isinstance(d, (int, np.integer)) else
              b.op("Reshape", [cast_value(as_value(d, b), 7), int_const(b, [1])]) for d in dims]
    static = tuple(None if isinstance(d, (int, np.integer)) and d == -1 else
                   int(d) if isinstance(d, (int, np.integer)) else static_dims((d,))[0] for d in dims)
    return b.op("Reshape", [v, b.op("Concat", pieces, axis=0)], shape=static)


@symbolic
def transpose(x: Any, axes: Sequence[int] | None = None) -> Value:
    """Permute the axes (reverse them by default)."""
    b = _b(x)
    v = as_value(x, b)
    if axes is None:
        if v.shape is None:
            raise ValueError("ops.transpose needs `axes` for a tensor of unknown rank.")
        axes = list(reversed(range(len(v.shape))))
    perm = [int(a) for a in axes]
    shape = None if v.shape is None else tuple(v.shape[p] for p in perm)
    return b.op("Transpose", [v], perm=perm, shape=shape)


@symbolic
def expand_dims(x: Any, axis: Any) -> Value:
    b = _b(x)
    v = as_value(x, b)
    return b.op("Unsqueeze", [v, int_const(b, _axes(axis))])


@symbolic
def squeeze(x: Any, axis: Any = None) -> Value:
    """Drop axes of size 1: ``axis``, or without it every axis known to be 1 while tracing.

    Without ``axis`` a dynamic dimension (the batch of a traced ``train_step`` or loss) is kept: labels of
    shape ``(batch, 1)`` squeeze to ``(batch,)``, as keras.io's losses expect. Keras on torch squeezes
    eagerly and would also drop a batch of exactly one; pass ``axis`` where that matters.
    """
    b = _b(x)
    v = as_value(x, b)
    if axis is None:
        if v.shape is None:
            raise ValueError("ops.squeeze without `axis` needs a tensor of known rank (which axes have size 1 "
                             "must be known while tracing). Received a tensor of unknown rank; pass axis=...")
        axes = [i for i, d in enumerate(v.shape) if isinstance(d, int) and d == 1]
        return b.op("Squeeze", [v, int_const(b, axes)]) if axes else v
    return b.op("Squeeze", [v, int_const(b, _axes(axis))])


@symbolic
def concatenate(xs: Sequence[Any], axis: int = 0) -> Value:
    """Join tensors along an existing ``axis`` (Keras's default ``axis=0``)."""
    if not isinstance(xs, (list, tuple)) or not xs:
        raise ValueError(f"ops.concatenate expects a non-empty list of tensors. Received: xs={xs!r}")
    b = _b(*xs)
    values = promote(b, *xs)
    return b.op("Concat", values, axis=int(axis))


@symbolic
def stack(x: Sequence[Any], axis: int = 0) -> Value:
    """Join tensors along a new ``axis``."""
    if not isinstance(x, (list, tuple)) or not x:
        raise ValueError(f"ops.stack expects a non-empty list of tensors. Received: x={x!r}")
    b = _b(*x)
    values = promote(b, *x)
    return b.op("Concat", [b.op("Unsqueeze", [v, int_const(b, [int(axis)])]) for v in values], axis=int(axis))


@symbolic
def tile(x: Any, repeats: Any) -> Value:
    """``x`` repeated ``repeats[i]`` times along each axis, as ``numpy.tile`` (and Keras) do.

    ``repeats`` is an int, a list of ints and scalar tensors (``ops.shape(x)[0]``), or a 1-D int tensor
    (keras.io's causal mask: ``ops.concatenate([ops.expand_dims(batch_size, -1), [1, 1]], 0)``). Fewer
    entries than ``x`` has axes repeat its last axes; more give ``x`` new leading axes.
    """
    b = _b(x, repeats)
    v = as_value(x, b)
    if isinstance(repeats, np.ndarray) and repeats.ndim == 1:
        repeats = [int(r) for r in repeats]
    if isinstance(repeats, Value) and repeats.rank == 1:
        n = repeats.shape[0]
        if not isinstance(n, int):
            raise ValueError(f"ops.tile: a tensor of repeats needs a known length (one entry per axis). "
                             f"Received: repeats={repeats!r}")
        reps = cast_value(repeats, 7)
        known: list[Any] = [None] * n
    else:
        items = list(repeats) if isinstance(repeats, (list, tuple)) else [repeats]
        n = len(items)
        reps = _int_vector(b, [_symbol(b, r, "ops.tile", repeats) for r in items])
        known = [int(r) if isinstance(r, (int, np.integer)) else None for r in items]
    rank = v.rank
    if rank is None:
        raise ValueError(f"ops.tile needs the rank of its input to align it with repeats. Received: x={v!r}")
    dims = tuple(v.shape) if v.shape is not None else (None,) * rank
    if n > rank:   # numpy: x gains leading axes of size 1
        v = b.op("Unsqueeze", [v, int_const(b, list(range(n - rank)))])
        dims = (1,) * (n - rank) + dims
    elif n < rank:   # numpy: the leading axes are repeated once
        reps = b.op("Concat", [int_const(b, [1] * (rank - n)), reps], axis=0, shape=(rank,))
        known = [1] * (rank - n) + known
    # The axes repeated a known number of times keep a known size (tf.tile(pos, [batch_size, 1, 1]) stays
    # (None, patches, dim)); ONNX's inference gives up on the whole shape when one repeat is a tensor.
    shape = tuple(d if r == 1 else d * r if isinstance(d, int) and r is not None else None
                  for d, r in zip(dims, known))
    return b.op("Tile", [v, reps], shape=shape)


@symbolic
def broadcast_to(x: Any, shape: Any) -> Value:
    b = _b(x, shape)
    v = as_value(x, b)
    tensor, static = shape_tensor(b, shape)
    return b.op("Expand", [v, tensor], shape=static)


@symbolic
def size(x: Any) -> Value:
    """The number of entries (an int64 scalar tensor)."""
    b = _b(x)
    return b.op("Size", [as_value(x, b)], shape=())


@symbolic
def take(x: Any, indices: Any, axis: int | None = None) -> Value:
    """Entries of ``x`` at integer ``indices`` along ``axis`` (``None``: of the flattened tensor)."""
    b = _b(x, indices)
    v = as_value(x, b)
    if axis is None:
        v, axis = b.op("Reshape", [v, int_const(b, [-1])]), 0
    return b.op("Gather", [v, as_value(indices, b, dtype="int64")], axis=int(axis))


def _symbol(b: Any, d: Any, op: str, shape: Any) -> Any:
    """A shape entry: ints and scalar tensors pass; a dim symbol (``x.shape[0]`` = ``"batch"``) becomes its
    size read from the graph input carrying it."""
    if isinstance(d, str):
        size = symbol_size(b, d)
        if size is None:
            raise ValueError(f"{op}: the shape entry {d!r} names no dimension of the graph's inputs. Use "
                             f"ops.shape(x)[i] for sizes known only at run time. Received: {shape!r}")
        return size
    return d


def _int_vector(b: Any, items: Sequence[Any]) -> Value:
    """A 1-D int64 tensor of ints and scalar tensors."""
    if builtins.all(isinstance(i, (int, np.integer)) for i in items):
        return int_const(b, [int(i) for i in items])
    pieces = [int_const(b, [int(i)]) if isinstance(i, (int, np.integer)) else
              b.op("Reshape", [cast_value(as_value(i, b), 7), int_const(b, [1])], shape=(1,)) for i in items]
    return b.op("Concat", pieces, axis=0, shape=(len(items),))


@symbolic
def slice(inputs: Any, start_indices: Sequence[Any], shape: Sequence[Any]) -> Value:  # noqa: A001
    """The block of ``inputs`` starting at ``start_indices`` with size ``shape`` (``-1``: to the end); entries
    may be scalar tensors such as ``ops.shape(x)[1] - 1``."""
    b = _b(inputs, start_indices, shape)
    v = as_value(inputs, b)
    starts = [_symbol(b, s, "ops.slice", start_indices) for s in start_indices]
    sizes = [_symbol(b, n, "ops.slice", shape) for n in shape]
    if len(starts) != len(sizes):
        raise ValueError(f"ops.slice: start_indices and shape must have the same length. Received: "
                         f"start_indices={tuple(start_indices)}, shape={tuple(shape)}")
    big = np.iinfo(np.int64).max
    ends = [big if isinstance(n, (int, np.integer)) and n == -1 else
            int(s) + int(n) if isinstance(s, (int, np.integer)) and isinstance(n, (int, np.integer)) else
            as_value(s, b, dtype="int64") + as_value(n, b, dtype="int64") for s, n in zip(starts, sizes)]
    return b.op("Slice", [v, _int_vector(b, starts), _int_vector(b, ends), int_const(b, list(range(len(starts))))])


# ------------------------------------------------------------------------------------------ creation
def _creation_builder(*args: Any):
    b = builder_of(args)
    assert b is not None  # `symbolic` only calls these inside a graph
    return b


@symbolic
def full(shape: Any, fill_value: Any, dtype: Any = None) -> Value:
    """A tensor of ``shape`` (ints and scalar tensors such as ``ops.shape(x)[0]``) filled with ``fill_value``."""
    b = _creation_builder(shape)
    # floatx unless ``dtype`` says otherwise, whatever the fill value's type (``ops.full((2,), 3)`` is float32),
    # as Keras's backends and its symbolic ``Full`` op give.
    elem = dtype_enum(dtype) if dtype is not None else dtype_enum(floatx())
    if isinstance(fill_value, Value) or np.ndim(fill_value):
        # A tensor or a non-scalar fill (``ops.full((2, 3), [1, 2, 3])``) broadcast over the shape.
        tensor, static = shape_tensor(b, shape)
        return b.op("Expand", [as_value(fill_value, b, dtype=elem), tensor], shape=static)
    return fill_const(b, shape, fill_value, elem)


@symbolic
def ones(shape: Any, dtype: Any = None) -> Value:
    """A tensor of ones (default dtype ``floatx()``); ``shape`` may hold scalar tensors (``(ops.shape(x)[0], 1)``)."""
    return fill_const(_creation_builder(shape), shape, 1, dtype_enum(dtype or floatx()))


@symbolic
def zeros(shape: Any, dtype: Any = None) -> Value:
    """A tensor of zeros (default dtype ``floatx()``); ``shape`` may hold scalar tensors."""
    return fill_const(_creation_builder(shape), shape, 0, dtype_enum(dtype or floatx()))


@symbolic
def full_like(x: Any, fill_value: Any, dtype: Any = None) -> Value:
    b = _b(x)
    v = as_value(x, b)
    elem = dtype_enum(dtype) if dtype is not None else v.dtype
    if isinstance(fill_value, Value):
        return b.op("Add", [full_like(v, 0, dtype=elem), cast_value(fill_value, elem)])
    fill = protos.tensor_from_array(np.asarray([fill_value], dtype=np_dtype(elem)), "value")
    return b.op("ConstantOfShape", [b.op("Shape", [v])], value=fill, dtype=elem, shape=v.shape)


@symbolic
def ones_like(x: Any, dtype: Any = None) -> Value:
    """Ones with the shape (and by default the dtype) of ``x``."""
    return full_like(x, 1, dtype)


@symbolic
def zeros_like(x: Any, dtype: Any = None) -> Value:
    """Zeros with the shape (and by default the dtype) of ``x``."""
    return full_like(x, 0, dtype)


@symbolic
def arange(start: Any, stop: Any = None, step: Any = None, dtype: Any = None) -> Value:
    step = 1 if step is None else step   # Keras's default, given explicitly by some callers
    b = _creation_builder(start, stop, step)
    if stop is None:
        start, stop = 0, start
    # Keras's rule: a float bound (a Python float or a float tensor) gives floatx, integer bounds int32, even
    # int64 ones (``ops.arange(ops.shape(x)[1])``: Keras reads the dim as a Python int, onnxforge as an int64
    # scalar), and bools too (``keras.backend.result_type(bool, int)``).
    is_float = builtins.any(_is_float_bound(a) for a in (start, stop, step))
    elem = dtype_enum(dtype) if dtype is not None else dtype_enum(floatx() if is_float else "int32")
    # ONNX's Range has no float16 / bfloat16 / 8-bit kernels: those count in float32 / int64, then cast.
    kernel = elem if elem in _RANGE_TYPES else \
        onnx.TensorProto.FLOAT if elem in (onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16) else onnx.TensorProto.INT64
    lo, hi, st = (as_value(a, b, dtype=kernel) for a in (start, stop, step))
    return cast_value(b.op("Range", [lo, hi, st], dtype=kernel), elem)


def _is_float_bound(a: Any) -> bool:
    if isinstance(a, Value):
        return a.is_float
    return np.asarray(a).dtype.kind == "f"


_RANGE_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.INT16, onnx.TensorProto.INT32,
                onnx.TensorProto.INT64)


@symbolic
def one_hot(x: Any, num_classes: int, axis: int = -1, dtype: Any = None, sparse: bool = False) -> Value:
    """One-hot rows for integer ``x`` (``num_classes`` wide, inserted at ``axis``; default dtype ``floatx()``).
    ``sparse`` is accepted as Keras's; the result is dense either way (as ``multi_hot``'s)."""
    b = _b(x)
    # onnxruntime's OneHot kernels take int64 indices (none for int32); float indices truncate, as in Keras.
    v = cast_value(as_value(x, b), onnx.TensorProto.INT64)
    scalar = v.shape == ()
    depth = int_const(b, [int(num_classes)])
    # A negative index is an all-zero row in Keras (TF and torch); ONNX would count it from the end, so it is
    # moved out of range, where OneHot writes only the off value. The replacement is a scalar: the 1-element
    # `depth` would broadcast a scalar index to shape (1,) and its one-hot row to (1, num_classes).
    v = b.op("Where", [b.op("Less", [v, b.const(np.asarray(0, np.int64))]),
                       b.const(np.asarray(int(num_classes), np.int64)), v])
    elem = dtype_enum(dtype or floatx())
    # onnxruntime has OneHot kernels for these outputs only (none for int32 or bool): others are cast after.
    kernel = elem if elem in _ONEHOT_OUTPUTS else onnx.TensorProto.FLOAT
    values = b.const(np.asarray([0, 1], dtype=np_dtype(kernel)))
    if scalar:
        # A scalar index (tf.data's per-element label) is one row of num_classes, as in Keras; onnxruntime's
        # OneHot wants indices of rank >= 1, so it encodes a 1-element vector and drops that axis.
        row = b.op("OneHot", [b.op("Unsqueeze", [v, int_const(b, [0])]), depth, values], axis=-1, dtype=kernel)
        return cast_value(b.op("Squeeze", [row, int_const(b, [0])]), elem)
    return cast_value(b.op("OneHot", [v, depth, values], axis=int(axis), dtype=kernel), elem)


_ONEHOT_OUTPUTS = (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.INT64)
