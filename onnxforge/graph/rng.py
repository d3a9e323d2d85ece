"""In-graph random numbers: a counter-based hash of (seed, step counter, call, element index).

A training program owns one int64 state tensor ``[seed, counter]`` (a Variable, input -> output). Each
``uniform(like)`` call hashes every element's index together with the seed, the counter and the call's
number, in standard int64 ops (``BitwiseXor``, ``BitwiseAnd``, ``Mul``, ``Div``, ``Range``), and the
program outputs ``[seed, counter + 1]``. The same seed therefore gives the same Dropout masks, a resumed
run (state restored) continues the exact sequence, and nothing depends on the runtime's own RNG.

All arithmetic stays in [0, 2^49): 32-bit words held in int64, multiplications split in 16-bit halves,
so no op overflows. The mixing function is Chris Wellons' ``lowbias32``.

Example:
    >>> import numpy as np, onnx, onnxruntime as ort
    >>> from onnxforge.graph import GraphBuilder
    >>> b = GraphBuilder()
    >>> state = b.input("rng", onnx.TensorProto.INT64, (2,))
    >>> x = b.input("x", onnx.TensorProto.FLOAT, ("n",))
    >>> rng = CounterRng(lambda: state)
    >>> b.output(rng.uniform(x), "u")
    >>> sess = ort.InferenceSession(b.to_model().SerializeToString(), providers=["CPUExecutionProvider"])
    >>> u = sess.run(None, {"rng": np.array([7, 0]), "x": np.zeros(1000, np.float32)})[0]
    >>> bool(0.45 < u.mean() < 0.55 and u.min() >= 0 and u.max() < 1)
    True
"""
from __future__ import annotations

__all__ = ["CounterRng", "SeedStreams", "hash32"]

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx

from .builder import GraphBuilder
from .value import Value

_M32 = 0xFFFFFFFF
_INT64 = onnx.TensorProto.INT64


def _c(b: GraphBuilder, value: int) -> Value:
    return b.const(np.asarray(value, np.int64))


def _xorshift(b: GraphBuilder, x: Value, k: int) -> Value:
    # x ^ (x >> k); x >= 0, so the shift is an integer division.
    return b.op("BitwiseXor", [x, b.op("Div", [x, _c(b, 1 << k)])])


def _mul32(b: GraphBuilder, x: Value, c: Value) -> Value:
    """``(x * c) mod 2^32`` for 32-bit ``x`` and ``c``, without overflowing int64."""
    lo = b.op("BitwiseAnd", [x, _c(b, 0xFFFF)])
    hi = b.op("Div", [x, _c(b, 1 << 16)])
    high_part = b.op("Mul", [b.op("BitwiseAnd", [b.op("Mul", [hi, c]), _c(b, 0xFFFF)]), _c(b, 1 << 16)])
    return b.op("BitwiseAnd", [b.op("Add", [b.op("Mul", [lo, c]), high_part]), _c(b, _M32)])


def hash32(b: GraphBuilder, x: Value) -> Value:
    """lowbias32: a well-mixing bijection on 32-bit words (held in int64)."""
    x = _xorshift(b, x, 16)
    x = _mul32(b, x, _c(b, 0x7FEB352D))
    x = _xorshift(b, x, 15)
    x = _mul32(b, x, _c(b, 0x846CA68B))
    return _xorshift(b, x, 16)


class CounterRng:
    """The random source of one program.

    Args:
        read_state: returns the program's int64 ``[seed, counter]`` state value; called on first use,
            so programs that draw no noise do not take the state input at all.
    """

    def __init__(self, read_state: Callable[[], Value]):
        self._read_state = read_state
        self._state: Value | None = None
        self._calls = 0
        #: ``(noise, template)`` value names of every draw: the row-independence analysis reads them.
        self.draws: list[tuple[str, str]] = []

    @property
    def used(self) -> bool:
        return self._state is not None

    def _keys(self, b: GraphBuilder) -> tuple[Value, Value]:
        if self._state is None:
            self._state = self._read_state()
        state = self._state
        seed = b.op("BitwiseAnd", [b.op("Gather", [state, _c(b, 0)], axis=0), _c(b, _M32)])
        counter = b.op("Gather", [state, _c(b, 1)], axis=0)
        ctr_lo = b.op("BitwiseAnd", [counter, _c(b, _M32)])
        ctr_hi = b.op("BitwiseAnd", [b.op("Div", [counter, _c(b, 1 << 32)]), _c(b, _M32)])
        call = (self._calls * 0x9E3779B9 + 0x632BE5AB) & _M32
        self._calls += 1
        k = hash32(b, b.op("BitwiseXor", [seed, _c(b, call)]))
        k = hash32(b, b.op("BitwiseXor", [k, ctr_lo]))
        k1 = hash32(b, b.op("BitwiseXor", [k, ctr_hi]))
        k2 = hash32(b, b.op("BitwiseXor", [k1, _c(b, 0x5BD1E995)]))
        return b.op("BitwiseOr", [k1, _c(b, 1)]), k2   # an odd multiplier

    def uniform(self, like: Value) -> Value:
        """U[0, 1) noise shaped like ``like``, in ``like``'s float type (24 random bits per value)."""
        b = like.builder
        mult, add = self._keys(b)
        shape = b.op("Shape", [like])
        n = b.op("Size", [like])
        index = b.op("BitwiseAnd", [b.op("Range", [_c(b, 0), n, _c(b, 1)]), _c(b, _M32)])
        # An index-dependent affine map (different every step and call), then the mixing hash.
        mixed = b.op("BitwiseAnd", [b.op("Add", [_mul32(b, index, mult), add]), _c(b, _M32)])
        bits = b.op("Div", [hash32(b, mixed), _c(b, 256)])   # the top 24 bits: exact in float32
        u = b.op("Mul", [b.op("Cast", [bits], to=onnx.TensorProto.FLOAT),
                         b.const(np.asarray(2.0 ** -24, np.float32))])
        u = b.op("Reshape", [u, shape], shape=like.shape)
        if like.dtype not in (None, onnx.TensorProto.FLOAT):
            u = b.op("Cast", [u], to=like.dtype, shape=like.shape)
        self.draws.append((u.name, like.name))
        return u

    def new_state(self) -> Value:
        """``[seed, counter + 1]``: the state after this program's step."""
        assert self._state is not None
        return self._state.builder.op("Add", [self._state, self._state.builder.const(np.asarray([0, 1], np.int64))],
                                      dtype=_INT64, shape=(2,))


class SeedStreams:
    """The streams a program draws from ``SeedGenerator`` state Variables: one ``CounterRng`` per state.

    Args:
        read: the program's reading of a Variable (its graph value).
    """

    def __init__(self, read: Callable[[Any], Value]):
        self._read = read
        self._streams: dict[int, tuple[Any, CounterRng]] = {}

    def uniform(self, state: Any, like: Value) -> Value:
        """U[0, 1) noise shaped like ``like`` from the stream of the state Variable ``state``."""
        hit = self._streams.get(state.uid)
        if hit is None:
            hit = self._streams[state.uid] = (state, CounterRng(lambda: self._read(state)))
        return hit[1].uniform(like)

    def variables(self) -> list[Any]:
        """The state variables of the streams drawn from."""
        return [var for var, rng in self._streams.values() if rng.used]

    def draws(self) -> list[tuple[str, str]]:
        """``(noise, template)`` value names of every draw from every stream."""
        return [d for _, rng in self._streams.values() for d in rng.draws]

    def updates(self) -> list[tuple[Any, Value, Value]]:
        """``(state variable, value read, value after the step)`` of every stream drawn from."""
        return [(var, rng._state, rng.new_state()) for var, rng in self._streams.values() if rng.used]
