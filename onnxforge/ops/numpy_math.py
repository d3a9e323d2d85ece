"""More element-wise ``keras.ops.numpy`` math: inverse trigonometry, logarithms in other bases, integer
division and remainder with NumPy's signs, NaN tests, ``logaddexp``, ``hypot`` and friends.

Every op is a composition of standard ``ai.onnx`` ops that already have gradient rules, so each one is
differentiable wherever NumPy's function is (``floor_divide`` and the tests have zero gradient, as in
torch). Keras's dtype rule holds: float functions of integer tensors compute in ``floatx()``.

Example:
    >>> import numpy as np
    >>> from onnxforge import ops
    >>> ops.mod(np.array([-3, 3]), 2).tolist(), ops.floor_divide(np.array([-3.0, 3.0]), 2.0).tolist()
    ([1, 1], [-2.0, 1.0])
"""
from __future__ import annotations

__all__ = [
    "arccos", "arcsin", "arctan", "arccosh", "arcsinh", "arctanh", "arctan2", "sinh", "cosh", "tan", "log2",
    "log10", "exp2", "trunc", "fix", "mod", "fmod", "floor_divide", "isnan", "isinf", "isfinite", "isneginf",
    "isposinf", "nan_to_num", "logical_xor", "hypot", "deg2rad", "rad2deg", "logaddexp", "logaddexp2",
    "heaviside", "signbit", "cbrt", "divide_no_nan", "rsqrt", "erf", "erfinv",
    "copysign", "fabs", "positive", "conj", "conjugate", "real", "imag", "sinc",
]

import math
from typing import Any

import numpy as np

from ..backend_config import floatx
from ..graph import FLOAT_TYPES, Value
from ._arrays_util import emit as _op
from ._util import as_value, builder_of, cast_value, dtype_enum, promote, symbolic

_BOOL = 9


def _float(x: Any) -> Value:
    """``x`` as a graph value of a float type (integers and bools cast to ``floatx()``, as Keras)."""
    b = builder_of(x)
    v = as_value(x, b)
    return v if v.dtype in FLOAT_TYPES else cast_value(v, dtype_enum(floatx()))


def _unary(op: str, x: Any) -> Value:
    v = _float(x)
    return _op(v.builder, op, [v], shape=v.shape)


def _floats(x1: Any, x2: Any) -> tuple[Value, Value]:
    b = builder_of(x1, x2)
    a, c = promote(b, x1, x2)
    if a.dtype not in FLOAT_TYPES:
        a, c = cast_value(a, dtype_enum(floatx())), cast_value(c, dtype_enum(floatx()))
    return a, c


def _where(cond: Value, a: Any, c: Any) -> Value:
    b = cond.builder
    x, y = promote(b, a, c)
    return _op(b, "Where", [cond, x, y], dtype=x.dtype)


def _const_like(v: Value, value: float) -> Value:
    return as_value(value, v.builder, like=v)


# ------------------------------------------------------------------------------------------ trigonometry
@symbolic
def arccos(x: Any) -> Value:
    return _unary("Acos", x)


@symbolic
def arcsin(x: Any) -> Value:
    return _unary("Asin", x)


@symbolic
def arctan(x: Any) -> Value:
    return _unary("Atan", x)


@symbolic
def arccosh(x: Any) -> Value:
    return _unary("Acosh", x)


@symbolic
def arcsinh(x: Any) -> Value:
    return _unary("Asinh", x)


@symbolic
def arctanh(x: Any) -> Value:
    return _unary("Atanh", x)


@symbolic
def sinh(x: Any) -> Value:
    return _unary("Sinh", x)


@symbolic
def cosh(x: Any) -> Value:
    return _unary("Cosh", x)


@symbolic
def tan(x: Any) -> Value:
    return _unary("Tan", x)


@symbolic
def arctan2(x1: Any, x2: Any) -> Value:
    """The angle of the point ``(x2, x1)``, in ``[-pi, pi]``, with NumPy's (IEEE's) rules at the edges: the sign
    of a zero picks the half-plane (``arctan2(0., -0.)`` is pi, ``arctan2(-0., -1.)`` is -pi) and two infinities
    give their limit (``arctan2(inf, inf)`` is pi/4). The gradient is ``(x, -y) / (x^2 + y^2)`` on the axes too.
    A zero result comes back as +0 whatever its sign (onnxruntime's ``Where`` drops the sign of a zero)."""
    y, x = _floats(x1, x2)
    b = y.builder
    zero = _const_like(y, 0.0)

    def negative(v: Value) -> Value:   # the sign bit: v < 0, or v is -0 (its reciprocal is -inf)
        signed_zero = _op(b, "And", [_op(b, "Equal", [v, zero]),
                                     _op(b, "Less", [_op(b, "Reciprocal", [v]), zero])])
        return _op(b, "Or", [_op(b, "Less", [v, zero]), signed_zero])

    neg_y = negative(y)
    x_zero, y_zero = _op(b, "Equal", [x, zero]), _op(b, "Equal", [y, zero])
    # Off the y axis: atan(y / x), shifted by +-pi (the sign of y, -0 included) left of it.
    base = _op(b, "Atan", [y / _where(x_zero, 1.0, x)])
    off_axis = _where(_op(b, "Less", [x, zero]), base + _where(neg_y, -math.pi, math.pi), base)
    # On it: +-pi/2 - atan(x / y), whose gradient in x is -1 / y; at the origin 0 or pi by the sign of x.
    half = _where(neg_y, -math.pi / 2, math.pi / 2) - _op(b, "Atan", [x / _where(y_zero, 1.0, y)])
    origin = _where(negative(x), math.pi, 0.0)
    on_axis = _where(y_zero, _where(neg_y, _op(b, "Neg", [origin]), origin), half)
    out = _where(x_zero, on_axis, off_axis)
    # Both infinite: y / x is NaN; the limit is +-pi/4 or +-3pi/4.
    both_inf = _op(b, "And", [_op(b, "IsInf", [y]), _op(b, "IsInf", [x])])
    corner = _where(_op(b, "Greater", [x, zero]), math.pi / 4, 3 * math.pi / 4)
    return _where(both_inf, _where(neg_y, -corner, corner), out)


@symbolic
def deg2rad(x: Any) -> Value:
    return _float(x) * (math.pi / 180.0)


@symbolic
def rad2deg(x: Any) -> Value:
    return _float(x) * (180.0 / math.pi)


@symbolic
def sinc(x: Any) -> Value:
    """``sin(pi x) / (pi x)``, 1 at 0 (NumPy's normalized sinc)."""
    v = _float(x)
    b = v.builder
    zero = _op(b, "Equal", [v, _const_like(v, 0.0)])
    safe = _where(zero, 1.0, v) * math.pi
    return _where(zero, 1.0, _op(b, "Sin", [safe]) / safe)


# ------------------------------------------------------------------------------------------ exp / log
@symbolic
def log2(x: Any) -> Value:
    return _unary("Log", x) * (1.0 / math.log(2.0))


@symbolic
def log10(x: Any) -> Value:
    return _unary("Log", x) * (1.0 / math.log(10.0))


@symbolic
def exp2(x: Any) -> Value:
    v = _float(x)
    return _op(v.builder, "Exp", [v * math.log(2.0)], shape=v.shape)


@symbolic
def logaddexp(x1: Any, x2: Any) -> Value:
    """``log(exp(x1) + exp(x2))`` without overflow: ``max + log1p(exp(-|x1 - x2|))``."""
    a, c = _floats(x1, x2)
    b = a.builder
    big = _op(b, "Max", [a, c])
    gap = _op(b, "Neg", [_op(b, "Abs", [a - c])])
    return big + _op(b, "Log", [_op(b, "Exp", [gap]) + 1.0])


@symbolic
def logaddexp2(x1: Any, x2: Any) -> Value:
    a, c = _floats(x1, x2)
    ln2 = math.log(2.0)
    return logaddexp(a * ln2, c * ln2) * (1.0 / ln2)


@symbolic
def cbrt(x: Any) -> Value:
    v = _float(x)
    b = v.builder
    mag = _op(b, "Pow", [_op(b, "Abs", [v]), _const_like(v, 1.0 / 3.0)])
    return _op(b, "Sign", [v]) * mag


@symbolic
def rsqrt(x: Any) -> Value:
    """``1 / sqrt(x)`` (``keras.ops.rsqrt``)."""
    v = _unary("Sqrt", x)
    return _op(v.builder, "Reciprocal", [v], shape=v.shape)


@symbolic
def erf(x: Any) -> Value:
    return _unary("Erf", x)


@symbolic
def erfinv(x: Any) -> Value:
    """The inverse error function: Giles's single-precision polynomial, refined by two Newton steps on
    ``erf`` (whose gradient rule differentiates through them)."""
    v = _float(x)
    b = v.builder
    w = _op(b, "Neg", [_op(b, "Log", [(1.0 - v) * (1.0 + v)])])
    small_w = w - 2.5
    big_w = _op(b, "Sqrt", [w]) - 3.0
    small = [2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503,
             -0.00417768164, 0.246640727, 1.50140941]
    big = [-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613,
           0.00943887047, 1.00167406, 2.83297682]

    def horner(coefficients: list[float], t: Value) -> Value:
        acc = _const_like(t, coefficients[0])
        for c in coefficients[1:]:
            acc = acc * t + c
        return acc

    p = _where(_op(b, "Less", [w, _const_like(w, 5.0)]), horner(small, small_w), horner(big, big_w))
    y = p * v
    two_over_sqrt_pi = 2.0 / math.sqrt(math.pi)
    for _ in range(2):
        err = _op(b, "Erf", [y]) - v
        y = y - err / (_op(b, "Exp", [_op(b, "Neg", [y * y])]) * two_over_sqrt_pi)
    return y


# ------------------------------------------------------------------------------------------ rounding
@symbolic
def trunc(x: Any) -> Value:
    """Round toward zero (integers pass unchanged)."""
    b = builder_of(x)
    v = as_value(x, b)
    if v.dtype not in FLOAT_TYPES:
        return v
    return _op(b, "Sign", [v]) * _op(b, "Floor", [_op(b, "Abs", [v])])


fix = trunc


@symbolic
def mod(x1: Any, x2: Any) -> Value:
    """Remainder with the divisor's sign (NumPy's ``%``): ``x1 - floor(x1 / x2) * x2`` for floats."""
    b = builder_of(x1, x2)
    a, c = promote(b, x1, x2)
    if a.dtype in FLOAT_TYPES:
        return a - _op(b, "Floor", [a / c]) * c
    if a.dtype == _BOOL:
        a, c = cast_value(a, 6), cast_value(c, 6)
    return _op(b, "Mod", [a, c], fmod=0)


@symbolic
def fmod(x1: Any, x2: Any) -> Value:
    """Remainder with the dividend's sign (C's ``fmod``)."""
    b = builder_of(x1, x2)
    a, c = promote(b, x1, x2)
    if a.dtype in FLOAT_TYPES:
        return a - trunc(a / c) * c
    return _op(b, "Mod", [a, c], fmod=1)


@symbolic
def floor_divide(x1: Any, x2: Any) -> Value:
    """``floor(x1 / x2)``, in the inputs' type (NumPy's ``//``)."""
    b = builder_of(x1, x2)
    a, c = promote(b, x1, x2)
    if a.dtype in FLOAT_TYPES:
        return _op(b, "Floor", [a / c])
    if a.dtype == _BOOL:
        a, c = cast_value(a, 6), cast_value(c, 6)
    # Integer Div truncates toward zero; step down where the remainder is nonzero and the signs differ.
    rem = _op(b, "Mod", [a, c], fmod=1)
    zero = as_value(0, b, like=a)
    differ = _op(b, "Xor", [_op(b, "Less", [a, zero]), _op(b, "Less", [c, zero])])
    step = _op(b, "And", [differ, _op(b, "Not", [_op(b, "Equal", [rem, zero])])])
    return _op(b, "Div", [a, c]) - cast_value(step, a.dtype)


# ------------------------------------------------------------------------------------------ tests
# Integer tensors are never NaN or infinite: their tests are all-False (``Not(Equal(v, v))``) or all-True.
@symbolic
def isnan(x: Any) -> Value:
    b = builder_of(x)
    v = as_value(x, b)
    if v.dtype not in FLOAT_TYPES:
        return _op(b, "Not", [_op(b, "Equal", [v, v])])
    return _op(b, "IsNaN", [v])


@symbolic
def isinf(x: Any) -> Value:
    b = builder_of(x)
    v = as_value(x, b)
    if v.dtype not in FLOAT_TYPES:
        return _op(b, "Not", [_op(b, "Equal", [v, v])])
    return _op(b, "IsInf", [v])


@symbolic
def isposinf(x: Any) -> Value:
    b = builder_of(x)
    v = as_value(x, b)
    if v.dtype not in FLOAT_TYPES:
        return _op(b, "Not", [_op(b, "Equal", [v, v])])
    return _op(b, "IsInf", [v], detect_negative=0)


@symbolic
def isneginf(x: Any) -> Value:
    b = builder_of(x)
    v = as_value(x, b)
    if v.dtype not in FLOAT_TYPES:
        return _op(b, "Not", [_op(b, "Equal", [v, v])])
    return _op(b, "IsInf", [v], detect_positive=0)


@symbolic
def isfinite(x: Any) -> Value:
    b = builder_of(x)
    v = as_value(x, b)
    if v.dtype not in FLOAT_TYPES:
        return _op(b, "Equal", [v, v])
    return _op(b, "Not", [_op(b, "Or", [_op(b, "IsNaN", [v]), _op(b, "IsInf", [v])])])


@symbolic
def nan_to_num(x: Any, nan: float = 0.0, posinf: float | None = None, neginf: float | None = None) -> Value:
    """NaN to ``nan``, +-inf to ``posinf`` / ``neginf`` (default: the dtype's largest finite values)."""
    b = builder_of(x)
    v = as_value(x, b)
    if v.dtype not in FLOAT_TYPES:
        return v
    from ..graph import np_dtype

    info = np.finfo(np_dtype(v.dtype))
    hi = float(info.max) if posinf is None else posinf
    lo = float(info.min) if neginf is None else neginf
    out = _where(_op(b, "IsNaN", [v]), nan, v)
    out = _where(_op(b, "IsInf", [v], detect_negative=0), hi, out)
    return _where(_op(b, "IsInf", [v], detect_positive=0), lo, out)


@symbolic
def signbit(x: Any) -> Value:
    """True where the sign bit is set (``-0.0`` included)."""
    b = builder_of(x)
    v = as_value(x, b)
    if v.dtype not in FLOAT_TYPES:
        return _op(b, "Less", [v, as_value(0, b, like=v)])
    # 1 / -0.0 is -inf: the reciprocal tells -0.0 from 0.0.
    neg = _op(b, "Less", [v, _const_like(v, 0.0)])
    neg_zero = _op(b, "And", [_op(b, "Equal", [v, _const_like(v, 0.0)]),
                            _op(b, "Less", [_op(b, "Reciprocal", [v]), _const_like(v, 0.0)])])
    return _op(b, "Or", [neg, neg_zero])


# ------------------------------------------------------------------------------------------ misc
@symbolic
def logical_xor(x1: Any, x2: Any) -> Value:
    b = builder_of(x1, x2)
    a, c = (as_value(x, b) for x in (x1, x2))
    return _op(b, "Xor", [cast_value(a, _BOOL), cast_value(c, _BOOL)])


@symbolic
def hypot(x1: Any, x2: Any) -> Value:
    a, c = _floats(x1, x2)
    return _op(a.builder, "Sqrt", [a * a + c * c])


@symbolic
def heaviside(x1: Any, x2: Any) -> Value:
    """0 where ``x1 < 0``, ``x2`` where ``x1 == 0``, 1 where ``x1 > 0``."""
    a, c = _floats(x1, x2)
    b = a.builder
    zero = _const_like(a, 0.0)
    return _where(_op(b, "Less", [a, zero]), 0.0, _where(_op(b, "Greater", [a, zero]), 1.0, c))


@symbolic
def divide_no_nan(x1: Any, x2: Any) -> Value:
    """``x1 / x2``, 0 where ``x2 == 0``."""
    a, c = _floats(x1, x2)
    b = a.builder
    zero = _op(b, "Equal", [c, _const_like(c, 0.0)])
    return _where(zero, 0.0, a / _where(zero, 1.0, c))


@symbolic
def copysign(x1: Any, x2: Any) -> Value:
    a, c = _floats(x1, x2)
    b = a.builder
    return _where(signbit(c), _op(b, "Neg", [_op(b, "Abs", [a])]), _op(b, "Abs", [a]))


@symbolic
def fabs(x: Any) -> Value:
    return _unary("Abs", x)


@symbolic
def positive(x: Any) -> Value:
    b = builder_of(x)
    v = as_value(x, b)
    return _op(b, "Identity", [v], shape=v.shape)


@symbolic
def conj(x: Any) -> Value:
    """Real tensors are their own conjugates (onnxforge has no complex dtype)."""
    b = builder_of(x)
    v = as_value(x, b)
    return _op(b, "Identity", [v], shape=v.shape)


conjugate = conj


@symbolic
def real(x: Any) -> Value:
    b = builder_of(x)
    v = as_value(x, b)
    return _op(b, "Identity", [v], shape=v.shape)


@symbolic
def imag(x: Any) -> Value:
    b = builder_of(x)
    v = as_value(x, b)
    return _op(b, "Sub", [v, v], shape=v.shape)
