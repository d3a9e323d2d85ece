"""Small graph emitters shared by the layers and ops: int constants, shapes, and layout-aware transposes.

Layout: ONNX convolutions and pools are NCHW, Keras defaults to channels_last. A channels_last conv layer
transposes in, runs the op, and transposes out. ``transpose`` remembers which value is a transpose of which
(per builder), so the next layer's transpose back is cancelled instead of emitted, and layout-neutral layers
(activations, BatchNormalization, Add, padding, ...) work on the untransposed value through ``peel``: a stack
of conv / pool / BN / relu layers keeps one NCHW layout inside and transposes once at each end.
"""
from __future__ import annotations

__all__ = ["ints", "static_shape", "transpose", "peel", "elementwise", "set_shape", "merge_shape",
           "inverse_perm", "reduce"]

import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx

from .builder import GraphBuilder
from .value import Value

_I64 = onnx.TensorProto.INT64

# builder -> {name of a transpose output: (its input, perm)}
_transposes: weakref.WeakKeyDictionary[GraphBuilder, dict[str, tuple[Value, tuple[int, ...]]]] = (
    weakref.WeakKeyDictionary())


def ints(b: GraphBuilder, values: Sequence[int]) -> Value:
    """An int64 1-D constant (shapes, axes, pads)."""
    return b.const(np.asarray(list(values), dtype=np.int64), _I64)


def static_shape(v: Value) -> tuple | None:
    """A value's shape with symbolic dims (``"batch"``) as ``None``; ``None`` if the rank is unknown."""
    if v.shape is None:
        return None
    return tuple(d if isinstance(d, int) else None for d in v.shape)


def set_shape(v: Value, shape: Sequence | None) -> Value:
    v.shape = None if shape is None else tuple(shape)
    return v


def merge_shape(computed: Sequence, existing: Sequence | None, batch: Any) -> tuple:
    """A Value shape from a Keras shape: known ints win, then what the graph knew, then ``batch`` at 0."""
    out = []
    for i, d in enumerate(computed):
        if d is not None:
            out.append(int(d))
        elif existing is not None and len(existing) == len(computed) and existing[i] is not None:
            out.append(existing[i])
        else:
            out.append(batch if i == 0 else None)
    return tuple(out)


def contradicts(computed: Sequence, existing: Sequence | None) -> bool:
    """Whether a Keras shape a layer computes disagrees with what the traced graph knows of its output (another
    rank, or another size on an axis both know): the traced value is what runs (a ``Dense`` subclass whose
    ``call()`` scales by a ``(10,)`` vector still reports ``Dense``'s ``(None, 1)``), so it keeps its own shape."""
    if existing is None:
        return False
    if len(existing) != len(computed):
        return True
    return any(isinstance(c, int) and isinstance(e, int) and c != e for c, e in zip(computed, existing))


def inverse_perm(perm: Sequence[int]) -> tuple[int, ...]:
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


def transpose(x: Value, perm: Sequence[int]) -> Value:
    """``Transpose(x, perm)``, or the original value when ``x`` is itself its inverse transpose."""
    perm = tuple(int(p) for p in perm)
    if perm == tuple(range(len(perm))):
        return x
    b = x.builder
    seen = _transposes.setdefault(b, {})
    hit = seen.get(x.name)
    if hit is not None:
        src, first = hit
        combined = tuple(first[p] for p in perm)
        if combined == tuple(range(len(combined))):
            return src
        return transpose(src, combined)
    shape = None if x.shape is None else tuple(x.shape[p] for p in perm)
    y = b.op("Transpose", [x], perm=list(perm), shape=shape)
    seen[y.name] = (x, perm)
    return y


def peel(x: Value) -> tuple[Value, tuple[int, ...] | None]:
    """``(src, perm)`` when ``x == Transpose(src, perm)`` was emitted by ``transpose``, else ``(x, None)``."""
    seen = _transposes.get(x.builder)
    hit = None if seen is None else seen.get(x.name)
    return hit if hit is not None else (x, None)


def elementwise(x: Value, fn: Callable[[Value], Value]) -> Value:
    """``fn(x)`` for an elementwise ``fn``, computed before a pending transpose so layouts don't bounce."""
    src, perm = peel(x)
    if perm is None:
        return fn(x)
    out = fn(src)
    if out is src:
        return x
    if out.shape is None:
        out.shape = src.shape
    return transpose(out, perm)


def reduce(op: str, x: Value, axes: Sequence[int], keepdims: bool) -> Value:
    """``Reduce*`` over static ``axes`` (opset-18 axes input), annotating the result's shape."""
    shape = None
    if x.shape is not None:
        rank = len(x.shape)
        red = {a % rank for a in axes}
        shape = tuple((1 if i in red else d) for i, d in enumerate(x.shape) if keepdims or i not in red)
    return x.builder.op(op, [x, ints(x.builder, axes)], keepdims=int(keepdims), shape=shape)
