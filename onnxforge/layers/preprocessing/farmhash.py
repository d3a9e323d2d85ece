"""TensorFlow's feature-crossing hash, bit for bit: ``Fingerprint64`` (FarmHash's ``farmhashna::Hash64``)
of strings on the host, and ``FingerprintCat64`` (the step ``tf.sparse.cross_hashed`` chains over the
crossed columns) both on the host and as ONNX nodes on ``uint64`` tensors.

ONNX's standard operators cannot read a string's bytes, so string fingerprints are computed here in
Python; integer crosses need only 64-bit multiply, xor and shift, which ``Mul`` / ``BitwiseXor`` /
``BitShift`` on ``uint64`` compute exactly (wrapping modulo 2**64, as C++ does).

Example:
    >>> fingerprint64("A") == int.from_bytes(bytes([20, 244, 59, 204, 82, 50, 191, 234]), "little")
    True
"""
from __future__ import annotations

__all__ = ["fingerprint64", "fingerprint_cat64", "cross_hash", "emit_cross_hash", "CROSS_HASH_KEY"]

from typing import Any

import numpy as np
import onnx

_M = (1 << 64) - 1
_K0, _K1, _K2 = 0xC3A5C85C97CB3127, 0xB492B66FBE98F273, 0x9AE16A3B2F90404F
_KMUL = 0xC6A4A7935BD1E995
#: The hash key ``tf.sparse.cross_hashed`` starts from (TensorFlow's ``_DEFAULT_HASH_KEY``).
CROSS_HASH_KEY = 0xDECAFCAFFE


def _f64(s: bytes, i: int) -> int:
    return int.from_bytes(s[i:i + 8], "little")


def _f32(s: bytes, i: int) -> int:
    return int.from_bytes(s[i:i + 4], "little")


def _rot(v: int, r: int) -> int:
    return v if r == 0 else ((v >> r) | (v << (64 - r))) & _M


def _mix(v: int) -> int:
    return v ^ (v >> 47)


def _len16(u: int, v: int, mul: int) -> int:
    a = _mix(((u ^ v) * mul) & _M)
    b = _mix(((v ^ a) * mul) & _M)
    return (b * mul) & _M


def _len0to16(s: bytes) -> int:
    n = len(s)
    if n >= 8:
        mul = _K2 + n * 2
        a = (_f64(s, 0) + _K2) & _M
        b = _f64(s, n - 8)
        c = (_rot(b, 37) * mul + a) & _M
        d = ((_rot(a, 25) + b) * mul) & _M
        return _len16(c, d, mul)
    if n >= 4:
        return _len16(n + (_f32(s, 0) << 3), _f32(s, n - 4), _K2 + n * 2)
    if n > 0:
        y = (s[0] + (s[n >> 1] << 8)) & 0xFFFFFFFF
        z = (n + (s[n - 1] << 2)) & 0xFFFFFFFF
        return (_mix(((y * _K2) ^ (z * _K0)) & _M) * _K2) & _M
    return _K2


def _len17to32(s: bytes) -> int:
    n = len(s)
    mul = _K2 + n * 2
    a = (_f64(s, 0) * _K1) & _M
    b = _f64(s, 8)
    c = (_f64(s, n - 8) * mul) & _M
    d = (_f64(s, n - 16) * _K2) & _M
    return _len16((_rot((a + b) & _M, 43) + _rot(c, 30) + d) & _M, (a + _rot((b + _K2) & _M, 18) + c) & _M, mul)


def _len33to64(s: bytes) -> int:
    n = len(s)
    mul = _K2 + n * 2
    a = (_f64(s, 0) * _K2) & _M
    b = _f64(s, 8)
    c = (_f64(s, n - 8) * mul) & _M
    d = (_f64(s, n - 16) * _K2) & _M
    y = (_rot((a + b) & _M, 43) + _rot(c, 30) + d) & _M
    z = _len16(y, (a + _rot((b + _K2) & _M, 18) + c) & _M, mul)
    e = (_f64(s, 16) * mul) & _M
    f = _f64(s, 24)
    g = ((y + _f64(s, n - 32)) * mul) & _M
    h = ((z + _f64(s, n - 24)) * mul) & _M
    return _len16((_rot((e + f) & _M, 43) + _rot(g, 30) + h) & _M, (e + _rot((f + a) & _M, 18) + g) & _M, mul)


def _weak32(s: bytes, i: int, a: int, b: int) -> tuple[int, int]:
    w, x, y, z = _f64(s, i), _f64(s, i + 8), _f64(s, i + 16), _f64(s, i + 24)
    a = (a + w) & _M
    b = _rot((b + a + z) & _M, 21)
    c = a
    a = (a + x + y) & _M
    b = (b + _rot(a, 44)) & _M
    return (a + z) & _M, (b + c) & _M


def fingerprint64(value: str | bytes) -> int:
    """TensorFlow's ``Fingerprint64`` of a string (UTF-8 encoded) or of raw bytes, as an unsigned int."""
    s = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    n = len(s)
    if n <= 16:
        return _len0to16(s)
    if n <= 32:
        return _len17to32(s)
    if n <= 64:
        return _len33to64(s)
    seed = 81
    x, y = seed, (seed * _K1 + 113) & _M
    z = (_mix((y * _K2 + 113) & _M) * _K2) & _M
    v, w = (0, 0), (0, 0)
    x = (x * _K2 + _f64(s, 0)) & _M
    end = ((n - 1) // 64) * 64
    last64 = end + ((n - 1) & 63) - 63
    for i in range(0, end, 64):
        x = (_rot((x + y + v[0] + _f64(s, i + 8)) & _M, 37) * _K1) & _M
        y = (_rot((y + v[1] + _f64(s, i + 48)) & _M, 42) * _K1) & _M
        x ^= w[1]
        y = (y + v[0] + _f64(s, i + 40)) & _M
        z = (_rot((z + w[0]) & _M, 33) * _K1) & _M
        v = _weak32(s, i, (v[1] * _K1) & _M, (x + w[0]) & _M)
        w = _weak32(s, i + 32, (z + w[1]) & _M, (y + _f64(s, i + 16)) & _M)
        z, x = x, z
    mul = _K1 + ((z & 0xFF) << 1)
    i = last64
    w = ((w[0] + ((n - 1) & 63)) & _M, w[1])
    v = ((v[0] + w[0]) & _M, v[1])
    w = ((w[0] + v[0]) & _M, w[1])
    x = (_rot((x + y + v[0] + _f64(s, i + 8)) & _M, 37) * mul) & _M
    y = (_rot((y + v[1] + _f64(s, i + 48)) & _M, 42) * mul) & _M
    x ^= (w[1] * 9) & _M
    y = (y + v[0] * 9 + _f64(s, i + 40)) & _M
    z = (_rot((z + w[0]) & _M, 33) * mul) & _M
    v = _weak32(s, i, (v[1] * mul) & _M, (x + w[0]) & _M)
    w = _weak32(s, i + 32, (z + w[1]) & _M, (y + _f64(s, i + 16)) & _M)
    z, x = x, z
    return _len16((_len16(v[0], w[0], mul) + _mix(y) * _K0 + z) & _M, (_len16(v[1], w[1], mul) + x) & _M, mul)


def fingerprint_cat64(fp1: int, fp2: int) -> int:
    """TensorFlow's ``FingerprintCat64``: two 64-bit fingerprints combined into one."""
    result = fp1 ^ _KMUL
    result ^= (_mix((fp2 * _KMUL) & _M) * _KMUL) & _M
    result = (result * _KMUL) & _M
    result = (_mix(result) * _KMUL) & _M
    return _mix(result)


def _column_hash(value: Any) -> int:
    """One crossed value's 64-bit input: strings are fingerprinted, integers enter as their bits."""
    if isinstance(value, (str, bytes, np.str_, np.bytes_)):
        return fingerprint64(value)
    return int(value) & _M


def cross_hash(columns: list[np.ndarray], num_bins: int) -> np.ndarray:
    """``tf.sparse.cross_hashed`` of equally shaped columns (strings or integers), as int64 bins."""
    flat = [np.asarray(c, dtype=object).reshape(-1) for c in columns]
    out = np.empty(flat[0].shape, np.int64)
    for i in range(out.size):
        h = CROSS_HASH_KEY
        for column in flat:
            h = fingerprint_cat64(h, _column_hash(column[i]))
        out[i] = h % num_bins
    return out.reshape(np.shape(columns[0]))


def emit_cross_hash(columns: list[Any], num_bins: int) -> Any:
    """The graph of :func:`cross_hash` for integer ``columns`` (graph ``Value``s): int64 bins."""
    b = columns[0].builder
    u64 = onnx.TensorProto.UINT64

    def const(v: int) -> Any:
        return b.const(np.asarray(v, np.uint64))

    kmul, shift = const(_KMUL), const(47)

    def mul(x: Any, y: Any) -> Any:
        return b.op("Mul", [x, y])

    def mix(x: Any) -> Any:
        return b.op("BitwiseXor", [x, b.op("BitShift", [x, shift], direction="RIGHT")])

    h: Any = None
    for column in columns:
        bits = b.op("Cast", [b.op("Cast", [column], to=onnx.TensorProto.INT64)], to=u64)
        mixed = mul(mix(mul(bits, kmul)), kmul)
        # The first step's fp1 is the constant key: fold its xor with kMul on the host.
        start = const(CROSS_HASH_KEY ^ _KMUL) if h is None else b.op("BitwiseXor", [h, kmul])
        result = mul(b.op("BitwiseXor", [start, mixed]), kmul)
        h = mix(mul(mix(result), kmul))
    return b.op("Cast", [b.op("Mod", [h, const(num_bins)])], to=onnx.TensorProto.INT64)
