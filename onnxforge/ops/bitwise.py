"""Bitwise ops on integer tensors (``keras.ops.numpy.bitwise_and`` ... ``right_shift``).

ONNX has ``BitwiseAnd`` / ``Or`` / ``Xor`` / ``Not`` for every integer type, but ``BitShift`` only for
unsigned ones. Signed shifts therefore go through the unsigned type of the same width: a left shift is the
same bit pattern either way (the casts wrap, two's complement), and an arithmetic right shift of a negative
``x`` is ``~(~x >> n)``, where ``~x`` is non-negative. Shifts by the type's width or more give NumPy's
results (0, or -1 for a negative ``x`` shifted right) rather than the hardware's. Bools act as one-bit
integers (``and`` / ``or`` / ``xor`` / ``not``), as in NumPy; float operands are a ``TypeError``.

Example:
    >>> import numpy as np
    >>> from onnxforge import ops
    >>> ops.right_shift(np.array([-8, 8], "int32"), 1).tolist(), ops.bitwise_xor(6, 3).tolist()
    ([-4, 4], 5)
"""
from __future__ import annotations

__all__ = ["bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not", "bitwise_invert", "bitwise_left_shift",
           "bitwise_right_shift", "left_shift", "right_shift"]

from typing import Any

import numpy as np

from ..graph import Value, np_dtype
from ._arrays_util import BOOL, INT32, INT64, emit, value
from ._util import as_value, builder_of, cast_value, promote, symbolic

# signed ONNX type -> the unsigned type of the same width (INT8 -> UINT8, INT16 -> UINT16, ...)
_UNSIGNED_OF = {3: 2, 5: 4, 6: 12, 7: 13}
_UNSIGNED = {2, 4, 12, 13}
_UINT32, _UINT64 = 12, 13
_LOGICAL = {"BitwiseAnd": "And", "BitwiseOr": "Or", "BitwiseXor": "Xor"}


def _check_integer(v: Value, name: str, arg: str) -> None:
    if v.dtype != BOOL and v.dtype not in _UNSIGNED and v.dtype not in _UNSIGNED_OF:
        raise TypeError(f"ops.{name} takes integer or bool tensors. Received: {arg} of dtype "
                        f"{np.dtype(np_dtype(v.dtype)).name}")


def _integers(x: Any, y: Any, name: str) -> tuple[Value, Value]:
    b = builder_of(x, y)
    a, c = promote(b, x, y)
    _check_integer(a, name, "x")
    return a, c


def _logic(op: str, x: Any, y: Any, name: str) -> Value:
    a, c = _integers(x, y, name)
    return emit(a.builder, _LOGICAL[op] if a.dtype == BOOL else op, [a, c])


@symbolic
def bitwise_and(x: Any, y: Any) -> Value:
    """Bitwise AND of two integer (or bool) tensors, in their promoted type."""
    return _logic("BitwiseAnd", x, y, "bitwise_and")


@symbolic
def bitwise_or(x: Any, y: Any) -> Value:
    """Bitwise OR of two integer (or bool) tensors, in their promoted type."""
    return _logic("BitwiseOr", x, y, "bitwise_or")


@symbolic
def bitwise_xor(x: Any, y: Any) -> Value:
    """Bitwise XOR of two integer (or bool) tensors, in their promoted type."""
    return _logic("BitwiseXor", x, y, "bitwise_xor")


@symbolic
def bitwise_invert(x: Any) -> Value:
    """Bitwise NOT of an integer (or bool) tensor (``~x``: ``-x - 1`` for signed integers)."""
    v = value(x)
    _check_integer(v, "bitwise_invert", "x")
    return emit(v.builder, "Not" if v.dtype == BOOL else "BitwiseNot", [v])


@symbolic
def bitwise_not(x: Any) -> Value:
    """The same as ``bitwise_invert``."""
    return bitwise_invert(x)


def _shift(x: Any, y: Any, left: bool, name: str) -> Value:
    a, c = _integers(x, y, name)
    b = a.builder
    if a.dtype == BOOL:   # NumPy shifts bools as int8 values
        a, c = cast_value(a, 3), cast_value(c, 3)
    dtype = a.dtype
    bits = 8 * np.dtype(np_dtype(dtype)).itemsize
    # Shift counts of the width or more are undefined in C (onnxruntime's kernel): NumPy gives 0, or -1 for a
    # negative x shifted right. The counts are clamped in int64 (a uint64 count past 2**63 reads negative).
    wide = cast_value(c, INT64)
    too_far = emit(b, "Or", [emit(b, "GreaterOrEqual", [wide, as_value(bits, b, like=wide)]),
                             emit(b, "Less", [wide, as_value(0, b, like=wide)])])
    count = emit(b, "Where", [too_far, as_value(bits - 1, b, like=wide), wide])
    direction = "LEFT" if left else "RIGHT"
    if dtype == _UINT64:
        # No Where kernel for uint64 here: a second shift by one finishes a too-far shift at zero.
        first = emit(b, "BitShift", [a, cast_value(count, _UINT64)], direction=direction)
        return emit(b, "BitShift", [first, cast_value(too_far, _UINT64)], direction=direction)
    # Narrow types compute in int32 and uint32 in int64 (onnxruntime lacks their Where kernels); the cast back
    # keeps the low bits, which is the wrap-around of the narrow type.
    work = dtype if dtype in (INT32, INT64) else INT64 if dtype == _UINT32 else INT32
    v = cast_value(a, work)
    utype = _UNSIGNED_OF[work]
    zero = as_value(0, b, like=v)
    shifted = cast_value(emit(b, "BitShift", [cast_value(v, utype), cast_value(count, utype)], direction=direction),
                         work)
    if left or dtype in _UNSIGNED:
        out = emit(b, "Where", [too_far, zero, shifted])
    else:
        # Arithmetic shift of a negative x: ~(~x >> n), ~x being non-negative; a count clamped to bits - 1
        # already fills with the sign bit.
        inverted = emit(b, "BitShift", [cast_value(emit(b, "BitwiseNot", [v]), utype), cast_value(count, utype)],
                        direction="RIGHT")
        out = emit(b, "Where", [emit(b, "Less", [v, zero]), emit(b, "BitwiseNot", [cast_value(inverted, work)]),
                                shifted])
    return cast_value(out, dtype)


@symbolic
def bitwise_left_shift(x: Any, y: Any) -> Value:
    """``x << y`` on integer tensors (bits shifted out are lost; signed values wrap as in NumPy)."""
    return _shift(x, y, True, "bitwise_left_shift")


@symbolic
def bitwise_right_shift(x: Any, y: Any) -> Value:
    """``x >> y`` on integer tensors (arithmetic for signed types: negative values stay negative)."""
    return _shift(x, y, False, "bitwise_right_shift")


@symbolic
def left_shift(x: Any, y: Any) -> Value:
    """The same as ``bitwise_left_shift``."""
    return _shift(x, y, True, "left_shift")


@symbolic
def right_shift(x: Any, y: Any) -> Value:
    """The same as ``bitwise_right_shift``."""
    return _shift(x, y, False, "right_shift")

