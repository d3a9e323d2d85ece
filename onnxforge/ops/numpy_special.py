"""Element-wise ``keras.ops`` functions NumPy has and ONNX lacks: ``erfc``, ``i0``, NaN-ignoring ``fmax`` /
``fmin``, ``ldexp``, ``nextafter``, ``gcd`` / ``lcm``, ``isin``, ``isreal`` and ``angle`` of real tensors.

The float functions are compositions of standard ops with gradient rules: ``erfc`` uses ``1 - erf`` near 0
and a Chebyshev-fitted ``exp(-x**2)`` form in the tails (relative error under 1.2e-7, where ``1 - erf`` would
lose every digit), ``i0`` Abramowitz and Stegun's polynomials (relative error under 2e-7). ``gcd`` runs
Euclid's algorithm unrolled to the most steps the integer type can need, so it is one static graph.

Example:
    >>> import numpy as np
    >>> from onnxforge import ops
    >>> ops.gcd(np.array([12, -18]), 8).tolist(), ops.fmax(np.array([np.nan, 1.0]), 0.5).tolist()
    ([4, 2], [0.5, 1.0])
"""
from __future__ import annotations

__all__ = ["erfc", "i0", "fmax", "fmin", "ldexp", "nextafter", "gcd", "lcm", "isin", "isreal", "angle", "get_item",
           "view"]

import math
from typing import Any

import numpy as np

from ..backend_config import floatx
from ..graph import FLOAT_TYPES, Value, np_dtype
from ._arrays_util import BOOL, INT32, INT64, emit, value
from ._util import as_value, builder_of, cast_value, dtype_enum, int_const, promote, symbolic
from .core import stop_gradient

_SIGNED = (3, 5, 6, 7)
_UNSIGNED = (2, 4, 12, 13)


def _float(x: Any) -> Value:
    v = value(x)
    return v if v.dtype in FLOAT_TYPES else cast_value(v, dtype_enum(floatx()))


def _const(v: Value, c: float) -> Value:
    return as_value(c, v.builder, like=v)


def _horner(t: Value, coefficients: list[float]) -> Value:
    """``c[0] + c[1] t + c[2] t**2 + ...``."""
    acc = _const(t, coefficients[-1])
    for c in reversed(coefficients[:-1]):
        acc = acc * t + c
    return acc


# ------------------------------------------------------------------------------------------ special functions
# Numerical Recipes' erfcc: erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 + z / 2), for z >= 0.
_ERFC = [-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807, -1.13520398, 1.48851587,
         -0.82215223, 0.17087277]


@symbolic
def erfc(x: Any) -> Value:
    """The complementary error function ``1 - erf(x)``, accurate in the tails (``keras.ops.erfc``)."""
    v = _float(x)
    b = v.builder
    z = emit(b, "Abs", [v])
    t = emit(b, "Reciprocal", [z * 0.5 + 1.0])
    tail = t * emit(b, "Exp", [_horner(t, _ERFC) - z * z])
    tail = emit(b, "Where", [emit(b, "Less", [v, _const(v, 0.0)]), _const(v, 2.0) - tail, tail])
    near = _const(v, 1.0) - emit(b, "Erf", [v])
    return emit(b, "Where", [emit(b, "Less", [z, _const(v, 0.5)]), near, tail])


# Abramowitz and Stegun 9.8.1 (|x| <= 3.75, in (x / 3.75)^2) and 9.8.2 (x > 3.75, in 3.75 / x).
_I0_SMALL = [1.0, 3.5156229, 3.0899424, 1.2067492, 0.2659732, 0.0360768, 0.0045813]
_I0_LARGE = [0.39894228, 0.01328592, 0.00225319, -0.00157565, 0.00916281, -0.02057706, 0.02635537, -0.01647633,
             0.00392377]


@symbolic
def i0(x: Any) -> Value:
    """The modified Bessel function of the first kind, order 0 (integers compute in ``floatx()``)."""
    v = _float(x)
    b = v.builder
    a = emit(b, "Abs", [v])
    ratio = v * (1.0 / 3.75)
    small = _horner(ratio * ratio, _I0_SMALL)
    big_a = emit(b, "Max", [a, _const(v, 3.75)])   # keeps the unused branch finite (and its gradient zero)
    large = _horner(emit(b, "Reciprocal", [big_a]) * 3.75, _I0_LARGE) * emit(b, "Exp", [big_a]) \
        / emit(b, "Sqrt", [big_a])
    return emit(b, "Where", [emit(b, "LessOrEqual", [a, _const(v, 3.75)]), small, large])


# ------------------------------------------------------------------------------------------ two operands
def _extremum_ignoring_nan(x1: Any, x2: Any, op: str) -> Value:
    b = builder_of(x1, x2)
    a, c = promote(b, x1, x2)
    out = emit(b, op, [a, c])
    if a.dtype not in FLOAT_TYPES:
        return out
    nan_a, nan_c = emit(b, "IsNaN", [a]), emit(b, "IsNaN", [c])
    out = emit(b, "Where", [nan_a, emit(b, "Where", [nan_c, out, c]), out])
    return emit(b, "Where", [emit(b, "And", [nan_c, emit(b, "Not", [nan_a])]), a, out])


@symbolic
def fmax(x1: Any, x2: Any) -> Value:
    """Element-wise maximum that ignores a NaN operand (NaN only where both are NaN)."""
    return _extremum_ignoring_nan(x1, x2, "Max")


@symbolic
def fmin(x1: Any, x2: Any) -> Value:
    """Element-wise minimum that ignores a NaN operand (NaN only where both are NaN)."""
    return _extremum_ignoring_nan(x1, x2, "Min")


@symbolic
def ldexp(x1: Any, x2: Any) -> Value:
    """``x1 * 2**x2`` for an integer exponent ``x2`` (the result is a float; zeros and infinities pass)."""
    b = builder_of(x1, x2)
    e = as_value(x2, b)
    if e.dtype in FLOAT_TYPES or e.dtype == BOOL:
        raise TypeError(f"ops.ldexp: the exponent `x2` must be an integer tensor. Received: x2 of dtype "
                        f"{np.dtype(np_dtype(e.dtype)).name}")
    m = _float(x1)
    scale = emit(b, "Pow", [_const(m, 2.0), cast_value(e, m.dtype)])
    keep = emit(b, "Or", [emit(b, "IsInf", [m]), emit(b, "Equal", [m, _const(m, 0.0)])])
    return emit(b, "Where", [keep, m, m * scale])


@symbolic
def nextafter(x1: Any, x2: Any) -> Value:
    """The next representable float after ``x1`` toward ``x2``, in the operands' float type (NumPy's
    ``nextafter``; subnormals included). Not differentiable (its gradient is stopped)."""
    b = builder_of(x1, x2)
    a, c = promote(b, x1, x2)
    if a.dtype not in FLOAT_TYPES:
        a, c = cast_value(a, dtype_enum(floatx())), cast_value(c, dtype_enum(floatx()))
    info = np.finfo(np_dtype(a.dtype))
    mant, tiny_exp = int(info.nmant), int(np.log2(info.smallest_subnormal))
    mag = emit(b, "Abs", [a])
    # The exponent of |x1|: log2 rounded down, then corrected by one either way where Log's rounding missed.
    safe = emit(b, "Max", [mag, _const(a, float(info.smallest_normal))])
    exp = emit(b, "Floor", [emit(b, "Log", [safe]) * (1.0 / math.log(2.0))])
    two = _const(a, 2.0)
    exp = exp - cast_value(emit(b, "Greater", [emit(b, "Pow", [two, exp]), safe]), a.dtype)
    exp = exp + cast_value(emit(b, "LessOrEqual", [emit(b, "Pow", [two, exp + 1.0]), safe]), a.dtype)
    up = emit(b, "Greater", [c, a])
    away = emit(b, "Equal", [up, emit(b, "GreaterOrEqual", [a, _const(a, 0.0)])])   # moving away from zero
    # Toward zero from an exact power of two the spacing halves.
    at_power = emit(b, "Equal", [emit(b, "Pow", [two, exp]), mag])
    step_exp = exp - float(mant) - cast_value(emit(b, "And", [at_power, emit(b, "Not", [away])]), a.dtype)
    step = emit(b, "Pow", [two, emit(b, "Max", [step_exp, _const(a, float(tiny_exp))])])
    moved = emit(b, "Where", [up, a + step, a - step])
    # Special cases: from an infinity the largest finite value; at equality (zeros of either sign) x2 itself,
    # as NumPy; NaN in, NaN out.
    moved = emit(b, "Where", [emit(b, "IsInf", [a]), emit(b, "Where", [up, _const(a, -float(info.max)),
                                                                      _const(a, float(info.max))]), moved])
    moved = emit(b, "Where", [emit(b, "Equal", [a, c]), c, moved])
    nan = emit(b, "Or", [emit(b, "IsNaN", [a]), emit(b, "IsNaN", [c])])
    out = emit(b, "Where", [nan, _const(a, math.nan), moved])
    return stop_gradient(out)


def _integers(x1: Any, x2: Any, name: str) -> tuple[Value, Value, int]:
    """The promoted operands, cast to a type onnxruntime has Where and Mod kernels for; and their own type."""
    b = builder_of(x1, x2)
    a, c = promote(b, x1, x2)
    if a.dtype not in _SIGNED + _UNSIGNED:
        raise TypeError(f"ops.{name} takes integer tensors. Received: operands of dtype "
                        f"{np.dtype(np_dtype(a.dtype)).name}")
    dtype = a.dtype
    work = INT64 if dtype in (7, 12, 13) else INT32
    a, c = cast_value(a, work), cast_value(c, work)
    return emit(b, "Abs", [a]), emit(b, "Abs", [c]), dtype


@symbolic
def gcd(x1: Any, x2: Any) -> Value:
    """Greatest common divisor of integer tensors (non-negative; ``gcd(0, 0) == 0``)."""
    return _gcd(x1, x2, "gcd")


def _gcd(x1: Any, x2: Any, name: str) -> Value:
    a, c, dtype = _integers(x1, x2, name)
    b = a.builder
    bits = 8 * np.dtype(np_dtype(dtype)).itemsize
    zero, one = as_value(0, b, like=a), as_value(1, b, like=a)
    # Euclid needs at most log_phi(2**bits) + 2 steps (consecutive Fibonacci numbers are the worst case).
    for _ in range(int(bits * math.log(2) / math.log((1 + math.sqrt(5)) / 2)) + 2):
        nonzero = emit(b, "Not", [emit(b, "Equal", [c, zero])])
        rem = emit(b, "Mod", [a, emit(b, "Where", [nonzero, c, one])])
        a, c = emit(b, "Where", [nonzero, c, a]), emit(b, "Where", [nonzero, rem, zero])
    return cast_value(a, dtype)


@symbolic
def lcm(x1: Any, x2: Any) -> Value:
    """Least common multiple of integer tensors (non-negative; 0 where either is 0)."""
    a, c, dtype = _integers(x1, x2, "lcm")
    b = a.builder
    g = cast_value(_gcd(a, c, "lcm"), a.dtype)
    zero = emit(b, "Equal", [g, as_value(0, b, like=g)])
    safe = emit(b, "Where", [zero, as_value(1, b, like=g), g])
    out = emit(b, "Where", [zero, as_value(0, b, like=g), a * emit(b, "Div", [c, safe])])
    return cast_value(out, dtype)


# ------------------------------------------------------------------------------------------ tests
@symbolic
def isin(x1: Any, x2: Any, assume_unique: bool = False, invert: bool = False) -> Value:
    """Whether each entry of ``x1`` occurs anywhere in ``x2`` (a bool tensor of ``x1``'s shape)."""
    b = builder_of(x1, x2)
    a, c = promote(b, x1, x2)
    flat = emit(b, "Reshape", [c, int_const(b, [-1])])
    hits = cast_value(emit(b, "Equal", [emit(b, "Unsqueeze", [a, int_const(b, [-1])]), flat]), INT32)
    # A zero-length x2 reduces to ReduceMax's identity (a large negative), which reads as False.
    found = emit(b, "Greater", [emit(b, "ReduceMax", [hits, int_const(b, [-1])], keepdims=0),
                                as_value(0, b, dtype="int32")])
    return emit(b, "Not", [found]) if invert else found


@symbolic
def isreal(x: Any) -> Value:
    """All True: onnxforge tensors are real."""
    v = value(x)
    b = v.builder
    return emit(b, "Expand", [as_value(True, b), emit(b, "Shape", [v])])


@symbolic
def angle(x: Any) -> Value:
    """The argument of a real number: pi for negatives, 0 otherwise, NaN for NaN (as NumPy and torch)."""
    v = _float(x)
    b = v.builder
    out = emit(b, "Where", [emit(b, "Less", [v, _const(v, 0.0)]), _const(v, math.pi), _const(v, 0.0)])
    return emit(b, "Where", [emit(b, "IsNaN", [v]), v, out])


# ------------------------------------------------------------------------------------------ indexing, views
@symbolic
def get_item(x: Any, key: Any) -> Value:
    """``x[key]``: ints, slices, ``None``, ``...`` and index tensors, as tensor indexing takes them."""
    return value(x)[key]


# Reinterpretations that standard ONNX ops can make exactly: a Cast between integer types of one width wraps
# modulo 2**bits, which keeps the bit pattern; bools are the bytes 0 and 1.
_SAME_BITS = [{3, 2, BOOL}, {5, 4}, {6, 12}, {7, 13}]


@symbolic
def view(x: Any, dtype: Any = None) -> Value:
    """``x``'s bits read as ``dtype``, where that is exact in standard ONNX ops: the same type, signed and
    unsigned integers of one width (``int32`` <-> ``uint32``), and bools as ``int8`` / ``uint8``. Other views
    (float bits as integers, changes of width) raise ``ValueError``: ONNX has no bit-cast."""
    v = value(x)
    if dtype is None:
        return v
    target = dtype_enum(dtype)
    if target == v.dtype:
        return emit(v.builder, "Identity", [v])
    if not any(v.dtype in group and target in group for group in _SAME_BITS):
        source = np.dtype(np_dtype(v.dtype)).name
        raise ValueError(f"ops.view: onnxforge reinterprets only between integer types of one width (and bool "
                         f"as int8/uint8); ONNX has no bit-cast for a view from {source}. Received: "
                         f"dtype={np.dtype(np_dtype(target)).name!r}")
    if target == BOOL:
        return emit(v.builder, "Not", [emit(v.builder, "Equal", [v, as_value(0, v.builder, like=v)])])
    return cast_value(v, target)
