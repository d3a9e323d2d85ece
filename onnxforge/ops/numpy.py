"""NumPy-like ops (``keras.ops.numpy``): arithmetic, math, reductions, shapes and tensor creation.

Each op takes graph values, Variables, numbers or numpy arrays, emits standard ``ai.onnx`` nodes with a
gradient rule in ``onnxforge.autodiff``, and keeps Keras's argument names and defaults.

Example:
    >>> import numpy as np
    >>> from onnxforge import ops
    >>> ops.mean(ops.square([1.0, 2.0, 3.0]))   # a float64 array would compute in float64, as in Keras
    tensor(4.6666665, dtype=float32)
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
from numbers import Integral
from typing import Any

import numpy as np

from ..graph import Value
from ._util import as_value, cast_value, dtype_enum, int_const, promote, symbolic
# Shapes and creation live in numpy_shapes.py; re-exported here, the keras.ops.numpy namespace.
from .numpy_shapes import (_axes, _b, arange, broadcast_to, concatenate, expand_dims, full,  # noqa: F401
                           full_like, one_hot, ones, ones_like, reshape, size, slice, squeeze, stack, take, tile,
                           transpose, zeros, zeros_like)

_BOOL, _INT32 = 9, 6  # onnx.TensorProto.BOOL, INT32
_NARROW_INTS = (_BOOL, 3, 5, 2, 4)   # BOOL, INT8, INT16, UINT8, UINT16


# Bools meeting bools stay bool in Keras (torch's ``add`` of two bools is their logical or); ONNX has no
# arithmetic kernels for bool, so these are their logical equivalents.
_BOOL_OPS = {"Add": "Or", "Max": "Or", "Mul": "And", "Min": "And"}
_OP_NAMES = {"Sub": "subtract", "Pow": "power"}


def _binary(op: str, x1: Any, x2: Any) -> Value:
    b = _b(x1, x2)
    a, c = promote(b, x1, x2)
    if a.dtype == _BOOL and c.dtype == _BOOL and op in _BOOL_OPS:
        return b.op(_BOOL_OPS[op], [a, c])
    if a.dtype == _BOOL and c.dtype == _BOOL:
        raise TypeError(f"ops.{_OP_NAMES.get(op, op)} is not defined on two bool tensors (as in Keras); use "
                        "ops.logical_xor, or cast them to an integer dtype first. Received: dtypes=('bool', 'bool')")
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
    b = _b(x1, x2)
    a, c = promote(b, x1, x2)
    _check_inner_dims(a.shape, c.shape)
    return b.op("MatMul", [a, c])


def _check_inner_dims(s1: Any, s2: Any) -> None:
    """Keras's ``Matmul`` shape check, before onnxruntime sees the graph (which otherwise fails to load it with
    a shape-inference error naming no layer): keras.io's debugging-tips page multiplies a wrongly concatenated
    ``(4, 5)`` by a ``(10, 5)`` kernel on purpose."""
    if not s1 or not s2:   # unknown rank or a scalar
        return
    inner1, inner2 = s1[-1], s2[-2] if len(s2) > 1 else s2[0]
    if isinstance(inner1, Integral) and isinstance(inner2, Integral) and inner1 != inner2:
        show = lambda s: tuple(int(d) if isinstance(d, Integral) else None for d in s)   # noqa: E731 (Keras prints None)
        # Keras prints a vector as the matrix it stands for: (5,) on the left as (1, 5), on the right as (5, 1).
        s1, s2 = ((1, *s1) if len(s1) == 1 else s1), ((*s2, 1) if len(s2) == 1 else s2)
        raise ValueError("Inner dimensions (`x1.shape[-1]` and `x2.shape[-2]`) must be equal, but received "
                         f"`x1.shape={show(s1)}` and `x2.shape={show(s2)}`.")


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
    # Bounds take x's type (Keras clips in x's dtype): a float32 bound of a float64 array is no Clip onnxruntime
    # loads, and an eager 0-d float64 bound arrives in floatx.
    lo, hi = (bound if bound.dtype == v.dtype or v.dtype is None else cast_value(bound, v.dtype) for bound in (lo, hi))
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


def _accumulated(x: Any) -> Value:
    """``x`` in the type Keras sums and multiplies it in: bools and narrow integers count in int32 (onnxruntime
    has no ReduceSum or ReduceProd for them); Keras's uint32 for unsigned ones is its torch backend's int32."""
    v = as_value(x, _b(x))
    return cast_value(v, _INT32) if v.dtype in _NARROW_INTS else v


@symbolic
def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Value:  # noqa: A001
    """Sum over ``axis`` (an int, a tuple, or ``None`` for all axes); bools are counted in int32, as in Keras."""
    return _reduce("ReduceSum", _accumulated(x), axis, keepdims)


def _reduced_size(v: Value, axes: list[int] | None) -> int | None:
    """How many elements each slice ``axes`` reduces holds, or ``None`` when a reduced dimension is unknown."""
    if v.shape is None:
        return None
    rank = len(v.shape)
    dims = [v.shape[a % rank] for a in axes] if axes is not None and rank else list(v.shape)
    if not builtins.all(isinstance(d, Integral) for d in dims):   # (this module defines ops.all)
        return None
    return int(np.prod(dims, dtype=np.int64))


@symbolic
def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Value:
    """Mean over ``axis`` (integers are averaged as floats); over an empty axis it is NaN, as in Keras.

    Example:
        >>> import numpy as np
        >>> from onnxforge import ops
        >>> ops.mean(np.zeros((0, 2), "float32"), axis=0).tolist()
        [nan, nan]
    """
    v = _float(x)
    if _reduced_size(v, _axes(axis)):   # known and positive: onnxruntime's ReduceMean, the one fast node
        return _reduce("ReduceMean", v, axis, keepdims)
    # ReduceMean of an empty set gives 0 in onnxruntime; sum / count gives Keras's 0 / 0 = NaN, and the count
    # is read from the shape at run time where a reduced dimension is unknown while tracing.
    b = v.builder
    size = b.op("Size", [v], dtype=7, shape=()) if axis is None else b.op(
        "ReduceProd", [b.op("Gather", [b.op("Shape", [v], dtype=7), int_const(b, _axes(axis))], dtype=7)],
        keepdims=0, dtype=7, shape=())
    return _reduce("ReduceSum", v, axis, keepdims) / cast_value(size, v.dtype)


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
    out = _reduce("ReduceProd", _accumulated(x), axis, keepdims)
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
    # Keras's indices are int32 (all backends); ONNX computes int64.
    return cast_value(b.op(op, [v], axis=int(axis), keepdims=int(bool(keepdims))), _INT32)


@symbolic
def argmax(x: Any, axis: Any = None, keepdims: bool = False) -> Value:
    """Index (int32, as in Keras) of the largest entry along ``axis`` (``None``: of the flattened tensor)."""
    return _arg("ArgMax", x, axis, keepdims)


@symbolic
def argmin(x: Any, axis: Any = None, keepdims: bool = False) -> Value:
    return _arg("ArgMin", x, axis, keepdims)

