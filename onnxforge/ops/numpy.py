"""NumPy-like ops (``keras.ops.numpy``): arithmetic, math, reductions, shapes and tensor creation.

Each op takes graph values, Variables, numbers or numpy arrays, emits standard ``ai.onnx`` nodes with a
gradient rule in ``onnxforge.autodiff``, and keeps Keras's argument names and defaults.

Example:
    >>> import numpy as np
    >>> from onnxforge import ops
    >>> ops.mean(ops.square(np.array([1.0, 2.0, 3.0])))
    array(4.6666665, dtype=float32)
"""
from __future__ import annotations

__all__ = [
    "add", "subtract", "multiply", "divide", "true_divide", "power", "matmul", "maximum", "minimum", "negative",
    "abs", "absolute", "square", "sqrt", "exp", "log", "log1p", "expm1", "sin", "cos", "tanh", "sign", "floor",
    "ceil", "round", "reciprocal", "clip", "where", "equal", "not_equal", "greater", "greater_equal", "less",
    "less_equal", "logical_and", "logical_or", "logical_not", "sum", "mean", "max", "min", "prod", "var", "std",
    "logsumexp", "argmax", "argmin", "reshape", "transpose", "expand_dims", "squeeze", "concatenate", "stack",
    "tile", "broadcast_to", "size", "take", "slice", "ones", "zeros", "full", "ones_like", "zeros_like", "full_like", "arange",
    "one_hot",
]

import builtins
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx

from ..backend_config import floatx
from ..graph import Value, np_dtype, protos
from ._util import (as_value, builder_of, cast_value, dtype_enum, fill_const, int_const, promote, shape_tensor,
                    static_dims, symbol_size, symbolic)

_BOOL = 9  # onnx.TensorProto.BOOL


def _b(*args: Any):
    return builder_of(args)


def _binary(op: str, x1: Any, x2: Any) -> Value:
    b = _b(x1, x2)
    a, c = promote(b, x1, x2)
    return b.op(op, [a, c])


def _unary(op: str, x: Any) -> Value:
    b = _b(x)
    v = as_value(x, b)
    return b.op(op, [v], shape=v.shape)


def _float(x: Any) -> Value:
    b = _b(x)
    v = as_value(x, b)
    return v if v.is_float else cast_value(v, 1)


# ------------------------------------------------------------------------------------------ arithmetic
@symbolic
def add(x1: Any, x2: Any) -> Value:
    """``x1 + x2`` with broadcasting."""
    return _binary("Add", x1, x2)


@symbolic
def subtract(x1: Any, x2: Any) -> Value:
    """``x1 - x2``."""
    return _binary("Sub", x1, x2)


@symbolic
def multiply(x1: Any, x2: Any) -> Value:
    """``x1 * x2``."""
    return _binary("Mul", x1, x2)


@symbolic
def divide(x1: Any, x2: Any) -> Value:
    """``x1 / x2`` (true division: integers are divided as floats, as in Keras)."""
    b = _b(x1, x2)
    a, c = promote(b, x1, x2)
    if not a.is_float:
        a, c = cast_value(a, 1), cast_value(c, 1)
    return b.op("Div", [a, c])


true_divide = divide


@symbolic
def power(x1: Any, x2: Any) -> Value:
    """``x1 ** x2``."""
    return _binary("Pow", x1, x2)


@symbolic
def matmul(x1: Any, x2: Any) -> Value:
    """Matrix product with NumPy's broadcasting of batch dims."""
    return _binary("MatMul", x1, x2)


@symbolic
def maximum(x1: Any, x2: Any) -> Value:
    """Element-wise maximum."""
    return _binary("Max", x1, x2)


@symbolic
def minimum(x1: Any, x2: Any) -> Value:
    """Element-wise minimum."""
    return _binary("Min", x1, x2)


@symbolic
def negative(x: Any) -> Value:
    return _unary("Neg", x)


@symbolic
def abs(x: Any) -> Value:  # noqa: A001  (keras.ops name)
    return _unary("Abs", x)


absolute = abs


@symbolic
def square(x: Any) -> Value:
    b = _b(x)
    v = as_value(x, b)
    return b.op("Mul", [v, v], shape=v.shape)


@symbolic
def sqrt(x: Any) -> Value:
    return _unary("Sqrt", _float(x))


@symbolic
def exp(x: Any) -> Value:
    return _unary("Exp", _float(x))


@symbolic
def log(x: Any) -> Value:
    return _unary("Log", _float(x))


@symbolic
def log1p(x: Any) -> Value:
    v = _float(x)
    return v.builder.op("Log", [v + 1.0], shape=v.shape)


@symbolic
def expm1(x: Any) -> Value:
    v = _float(x)
    return v.builder.op("Exp", [v], shape=v.shape) - 1.0


@symbolic
def sin(x: Any) -> Value:
    return _unary("Sin", _float(x))


@symbolic
def cos(x: Any) -> Value:
    return _unary("Cos", _float(x))


@symbolic
def tanh(x: Any) -> Value:
    return _unary("Tanh", _float(x))


@symbolic
def sign(x: Any) -> Value:
    return _unary("Sign", x)


@symbolic
def floor(x: Any) -> Value:
    return _unary("Floor", _float(x))


@symbolic
def ceil(x: Any) -> Value:
    return _unary("Ceil", _float(x))


@symbolic
def round(x: Any, decimals: int = 0) -> Value:  # noqa: A001
    """Round half to even, like NumPy and Keras."""
    if decimals:
        # NumPy's rule: scale by 10**decimals, round half to even, scale back.
        scale = 10.0 ** int(decimals)
        v = _float(x)
        return v.builder.op("Round", [v * scale], shape=v.shape) / scale
    return _unary("Round", _float(x))


@symbolic
def reciprocal(x: Any) -> Value:
    return _unary("Reciprocal", _float(x))


@symbolic
def clip(x: Any, x_min: Any, x_max: Any) -> Value:
    """Values limited to ``[x_min, x_max]``."""
    b = _b(x, x_min, x_max)
    v = as_value(x, b)
    lo, hi = as_value(x_min, b, v), as_value(x_max, b, v)
    if lo.shape == () and hi.shape == ():
        return b.op("Clip", [v, lo, hi], shape=v.shape)
    return b.op("Min", [b.op("Max", [v, lo]), hi])


@symbolic
def where(condition: Any, x1: Any = None, x2: Any = None) -> Value:
    """``x1`` where ``condition`` holds, else ``x2`` (both required: the one-argument form has a dynamic size)."""
    if x1 is None or x2 is None:
        raise ValueError("ops.where needs x1 and x2: the one-argument form (indices of true entries) has a "
                         "data-dependent shape that a compiled graph cannot keep. Received: x1="
                         f"{x1!r}, x2={x2!r}")
    b = _b(condition, x1, x2)
    cond = as_value(condition, b)
    if cond.dtype != _BOOL:
        cond = cast_value(cond, _BOOL)
    a, c = promote(b, x1, x2)
    return b.op("Where", [cond, a, c], dtype=a.dtype)


# ------------------------------------------------------------------------------------------ comparisons
def _compare(op: str, x1: Any, x2: Any) -> Value:
    b = _b(x1, x2)
    a, c = promote(b, x1, x2)
    return b.op(op, [a, c], dtype=_BOOL)


@symbolic
def equal(x1: Any, x2: Any) -> Value:
    return _compare("Equal", x1, x2)


@symbolic
def not_equal(x1: Any, x2: Any) -> Value:
    v = _compare("Equal", x1, x2)
    return v.builder.op("Not", [v], shape=v.shape)


@symbolic
def greater(x1: Any, x2: Any) -> Value:
    return _compare("Greater", x1, x2)


@symbolic
def greater_equal(x1: Any, x2: Any) -> Value:
    return _compare("GreaterOrEqual", x1, x2)


@symbolic
def less(x1: Any, x2: Any) -> Value:
    return _compare("Less", x1, x2)


@symbolic
def less_equal(x1: Any, x2: Any) -> Value:
    return _compare("LessOrEqual", x1, x2)


def _logical(op: str, *xs: Any) -> Value:
    b = _b(*xs)
    vs = [as_value(x, b, dtype="bool") for x in xs]
    return b.op(op, vs)


@symbolic
def logical_and(x1: Any, x2: Any) -> Value:
    return _logical("And", x1, x2)


@symbolic
def logical_or(x1: Any, x2: Any) -> Value:
    return _logical("Or", x1, x2)


@symbolic
def logical_not(x: Any) -> Value:
    return _logical("Not", x)


# ------------------------------------------------------------------------------------------ reductions
def _axes(axis: Any) -> list[int] | None:
    if axis is None:
        return None
    return [int(a) for a in axis] if isinstance(axis, (list, tuple)) else [int(axis)]


def _reduce(op: str, x: Any, axis: Any, keepdims: bool) -> Value:
    b = _b(x)
    v = as_value(x, b)
    axes = _axes(axis)
    shape = None
    if v.shape is not None:
        rank = len(v.shape)
        red = set(range(rank)) if axes is None else {a % rank for a in axes} if rank else set()
        shape = tuple(1 if i in red else d for i, d in enumerate(v.shape) if keepdims or i not in red)
    if axes is None:
        return b.op(op, [v], keepdims=int(bool(keepdims)), shape=shape)
    return b.op(op, [v, int_const(b, axes)], keepdims=int(bool(keepdims)), shape=shape)


@symbolic
def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Value:  # noqa: A001
    """Sum over ``axis`` (an int, a tuple, or ``None`` for all axes)."""
    return _reduce("ReduceSum", x, axis, keepdims)


@symbolic
def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Value:
    """Mean over ``axis`` (integers are averaged as floats)."""
    return _reduce("ReduceMean", _float(x), axis, keepdims)


@symbolic
def max(x: Any, axis: Any = None, keepdims: bool = False, initial: Any = None) -> Value:  # noqa: A001
    if initial is not None:
        return maximum(_reduce("ReduceMax", x, axis, keepdims), initial)
    return _reduce("ReduceMax", x, axis, keepdims)


@symbolic
def min(x: Any, axis: Any = None, keepdims: bool = False, initial: Any = None) -> Value:  # noqa: A001
    if initial is not None:
        return minimum(_reduce("ReduceMin", x, axis, keepdims), initial)
    return _reduce("ReduceMin", x, axis, keepdims)


@symbolic
def prod(x: Any, axis: Any = None, keepdims: bool = False, dtype: Any = None) -> Value:
    out = _reduce("ReduceProd", x, axis, keepdims)
    return out if dtype is None else cast_value(out, dtype_enum(dtype))


@symbolic
def var(x: Any, axis: Any = None, keepdims: bool = False) -> Value:
    """Population variance (``ddof=0``), as Keras."""
    v = _float(x)
    centered = v - _reduce("ReduceMean", v, axis, True)
    return _reduce("ReduceMean", centered * centered, axis, keepdims)


@symbolic
def std(x: Any, axis: Any = None, keepdims: bool = False) -> Value:
    out = var(x, axis, keepdims)
    return out.builder.op("Sqrt", [out], shape=out.shape)


@symbolic
def logsumexp(x: Any, axis: Any = None, keepdims: bool = False) -> Value:
    return _reduce("ReduceLogSumExp", _float(x), axis, keepdims)


def _arg(op: str, x: Any, axis: Any, keepdims: bool) -> Value:
    b = _b(x)
    v = as_value(x, b)
    if axis is None:
        v = b.op("Reshape", [v, int_const(b, [-1])])
        axis = 0
    return b.op(op, [v], axis=int(axis), keepdims=int(bool(keepdims)))


@symbolic
def argmax(x: Any, axis: Any = None, keepdims: bool = False) -> Value:
    """Index (int64) of the largest entry along ``axis`` (``None``: of the flattened tensor)."""
    return _arg("ArgMax", x, axis, keepdims)


@symbolic
def argmin(x: Any, axis: Any = None, keepdims: bool = False) -> Value:
    return _arg("ArgMin", x, axis, keepdims)


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
    b = _b(x)
    v = as_value(x, b)
    if axis is None:
        if v.shape is None or not builtins.all(isinstance(d, int) for d in v.shape):
            raise ValueError("ops.squeeze without `axis` needs a fully static shape (which axes have size 1 "
                             f"must be known while tracing). Received a tensor of shape {v.shape}; pass axis=...")
        axes = [i for i, d in enumerate(v.shape) if d == 1]
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
    else:
        items = list(repeats) if isinstance(repeats, (list, tuple)) else [repeats]
        n = len(items)
        reps = _int_vector(b, [_symbol(b, r, "ops.tile", repeats) for r in items])
    rank = v.rank
    if rank is None:
        raise ValueError(f"ops.tile needs the rank of its input to align it with repeats. Received: x={v!r}")
    if n > rank:   # numpy: x gains leading axes of size 1
        v = b.op("Unsqueeze", [v, int_const(b, list(range(n - rank)))])
    elif n < rank:   # numpy: the leading axes are repeated once
        reps = b.op("Concat", [int_const(b, [1] * (rank - n)), reps], axis=0, shape=(rank,))
    return b.op("Tile", [v, reps])


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
    if isinstance(fill_value, Value):
        base = fill_const(b, shape, 0, fill_value.dtype)
        return b.op("Add", [base, fill_value])
    elem = dtype_enum(dtype) if dtype is not None else dtype_enum(
        floatx() if isinstance(fill_value, float) or np.asarray(fill_value).dtype.kind == "f" else
        "bool" if isinstance(fill_value, (bool, np.bool_)) else "int64")
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
def arange(start: Any, stop: Any = None, step: Any = 1, dtype: Any = None) -> Value:
    b = _creation_builder(start, stop, step)
    if stop is None:
        start, stop = 0, start
    is_float = builtins.any(isinstance(a, float) for a in (start, stop, step))
    elem = dtype_enum(dtype) if dtype is not None else dtype_enum(floatx() if is_float else "int64")
    lo, hi, st = (as_value(a, b, dtype=elem) for a in (start, stop, step))
    return b.op("Range", [lo, hi, st], dtype=elem)


@symbolic
def one_hot(x: Any, num_classes: int, axis: int = -1, dtype: Any = None) -> Value:
    """One-hot rows for integer ``x`` (``num_classes`` wide, inserted at ``axis``; default dtype ``floatx()``)."""
    b = _b(x)
    v = as_value(x, b)
    elem = dtype_enum(dtype or floatx())
    values = b.const(np.asarray([0, 1], dtype=np_dtype(elem)))
    return b.op("OneHot", [v, int_const(b, [int(num_classes)]), values], axis=int(axis), dtype=elem)
