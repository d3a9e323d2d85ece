"""TensorFlow's elementwise functions (``tf.add``, ``tf.tanh``, ``tf.math.rsqrt``, ``tf.greater``, ...) with
TensorFlow's parameter names (``x``, ``y``, ``name``) and result dtypes, built from ``keras.ops``.

``keras.ops`` follows Keras's dtype rules, which keep int32 and int64, but its eager ops compute the narrow
integers (int8, int16, uint8, uint16) in int32 (onnxruntime lacks kernels for them) and it turns integer
division into float32; TensorFlow keeps every operand type and divides int32/int64 into float64 (in a graph;
on arrays the eager executor hands float64 over as float32), so the wrappers here cast where the two differ.

Example:
    >>> import numpy as np
    >>> add(np.array([1.0, 2.0]), 1.0).tolist(), pow(np.array([2, 3], "int32"), 2).dtype.name
    ([2.0, 3.0], 'int32')
    >>> divide(np.array([3], "int32"), np.array([2], "int32")).tolist()
    [1.5]
"""
from __future__ import annotations

__all__ = [
    "add", "subtract", "multiply", "divide", "truediv", "pow", "negative", "squared_difference", "floordiv",
    "tanh", "sigmoid", "log", "sign", "rsqrt", "reciprocal", "softplus", "log_sigmoid", "square", "sqrt", "exp",
    "abs", "floor", "ceil", "round", "log1p", "sin", "cos", "maximum", "minimum", "divide_no_nan", "greater",
    "greater_equal", "less", "less_equal", "equal", "not_equal", "logical_and", "logical_or", "logical_not",
    "logical_xor", "is_nan", "is_finite", "is_inf",
]

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import ops as _ops
from ..eager_tensor import as_eager

_SMALL_INTS = {"int8", "uint8", "int16", "uint16"}


def _same_dtype(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    """``fn(x)`` cast back to ``x``'s dtype: TensorFlow's unary ops keep their input's type."""
    def op(x: Any, name: str | None = None) -> Any:
        return _keep_dtype(x, fn(x))

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"``tf.{name}(x, name=None)``: elementwise, the result has ``x``'s dtype."
    return op


def _keep_dtype(x: Any, out: Any, y: Any = None) -> Any:
    """``out`` in the dtype of the tensor operand (``x``, else ``y``): TensorFlow's arithmetic takes operands
    of one dtype and keeps it, where onnxforge's eager ops compute narrow integers in int32. A Python number
    has no type to keep."""
    like = x if hasattr(x, "dtype") else y
    if not hasattr(like, "dtype") or _ops.dtype(out) == _ops.dtype(like):
        return out
    return _ops.cast(out, _ops.dtype(like))


def _unary(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    def op(x: Any, name: str | None = None) -> Any:
        return fn(x)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"``tf.{name}(x, name=None)``: elementwise."
    return op


def _binary(fn: Callable[..., Any], name: str, keep: bool = False) -> Callable[..., Any]:
    def op(x: Any, y: Any, name: str | None = None) -> Any:
        return _keep_dtype(x, fn(x, y), y) if keep else fn(x, y)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"``tf.{name}(x, y, name=None)``: elementwise, broadcasting."
    return op


add = _binary(_ops.add, "add", keep=True)
subtract = _binary(_ops.subtract, "subtract", keep=True)
multiply = _binary(_ops.multiply, "multiply", keep=True)
maximum = _binary(_ops.maximum, "maximum", keep=True)
minimum = _binary(_ops.minimum, "minimum", keep=True)
greater = _binary(_ops.greater, "greater")
greater_equal = _binary(_ops.greater_equal, "greater_equal")
less = _binary(_ops.less, "less")
less_equal = _binary(_ops.less_equal, "less_equal")
equal = _binary(_ops.equal, "equal")
not_equal = _binary(_ops.not_equal, "not_equal")
logical_and = _binary(_ops.logical_and, "logical_and")
logical_or = _binary(_ops.logical_or, "logical_or")
logical_xor = _binary(_ops.logical_xor, "logical_xor")
divide_no_nan = _binary(_ops.divide_no_nan, "divide_no_nan")

tanh, sigmoid, log = _unary(_ops.tanh, "tanh"), _unary(_ops.sigmoid, "sigmoid"), _unary(_ops.log, "log")
rsqrt, reciprocal = _unary(_ops.rsqrt, "rsqrt"), _unary(_ops.reciprocal, "reciprocal")
softplus, log_sigmoid = _unary(_ops.softplus, "softplus"), _unary(_ops.log_sigmoid, "log_sigmoid")
sqrt, exp, log1p = _unary(_ops.sqrt, "sqrt"), _unary(_ops.exp, "exp"), _unary(_ops.log1p, "log1p")
sin, cos = _unary(_ops.sin, "sin"), _unary(_ops.cos, "cos")
ceil, round = _unary(_ops.ceil, "ceil"), _unary(_ops.round, "round")  # noqa: A001 (half to even, as TF)
logical_not = _unary(_ops.logical_not, "logical_not")
is_nan, is_finite, is_inf = _unary(_ops.isnan, "is_nan"), _unary(_ops.isfinite, "is_finite"), \
    _unary(_ops.isinf, "is_inf")
negative, sign = _same_dtype(_ops.negative, "negative"), _same_dtype(_ops.sign, "sign")
square, _abs = _same_dtype(_ops.square, "square"), _same_dtype(_ops.abs, "abs")


def abs(x: Any, name: str | None = None) -> Any:  # noqa: A001 (TensorFlow's name)
    """``tf.abs(x)``: elementwise, in ``x``'s dtype; of a complex array (``tf.signal.stft``'s, on the host)
    its real magnitude, as TensorFlow gives."""
    if isinstance(x, np.ndarray) and np.iscomplexobj(x):
        return as_eager(np.abs(x))
    return _abs(x)
floor = _unary(_ops.floor, "floor")


def pow(x: Any, y: Any, name: str | None = None) -> Any:  # noqa: A001 (TensorFlow's name)
    """``tf.pow(x, y)``: ``x ** y``; an integer ``x`` keeps its type (a narrow one too)."""
    return _keep_dtype(x, _ops.power(x, y), y)


def divide(x: Any, y: Any, name: str | None = None) -> Any:
    """``tf.divide(x, y)``: true division; int8/int16 (and unsigned) divide into float32, int32 and int64
    into float64, as TensorFlow's ``truediv``."""
    kinds = {_ops.dtype(x), _ops.dtype(y)}
    if all(k.startswith(("int", "uint")) for k in kinds):
        target = "float32" if kinds <= _SMALL_INTS else "float64"
        return _ops.divide(_ops.cast(x, target), _ops.cast(y, target))
    return _ops.divide(x, y)


truediv = divide


def floordiv(x: Any, y: Any, name: str | None = None) -> Any:
    """``tf.math.floordiv(x, y)``: ``floor(x / y)`` in ``x``'s dtype."""
    return _keep_dtype(x, _ops.floor_divide(x, y), y)


def squared_difference(x: Any, y: Any, name: str | None = None) -> Any:
    """``tf.math.squared_difference(x, y)``: ``(x - y) ** 2``, elementwise."""
    return _keep_dtype(x, _ops.square(_ops.subtract(x, y)), y)
