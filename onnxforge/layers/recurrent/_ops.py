"""Graph helpers of the recurrent layers: dims as 1-D int64 tensors, zeros, slices, dropout masks."""
from __future__ import annotations

__all__ = ["dim", "zeros", "cols", "row", "dropout_mask", "to_bool", "flip_time"]

from collections.abc import Sequence

import numpy as np
import onnx

from ...graph import GraphBuilder, Value, protos
from ...tracing import current_trace
from ...graph.emit import ints

_I64 = onnx.TensorProto.INT64


def dim(x: Value, axis: int) -> Value:
    """``shape(x)[axis]`` as a 1-D int64 tensor of length 1 (dynamic dims stay dynamic)."""
    return x.builder.op("Shape", [x], start=axis, end=axis + 1, shape=(1,))


def zeros(b: GraphBuilder, dims: Sequence[Value | int], dtype: int, shape: tuple | None = None) -> Value:
    """Zeros of shape ``dims`` (each a static int or a ``dim`` tensor)."""
    parts = [d if isinstance(d, Value) else ints(b, [int(d)]) for d in dims]
    full = parts[0] if len(parts) == 1 else b.op("Concat", parts, axis=0, shape=(len(parts),))
    zero = protos.tensor("zero", dtype, [1], [0])
    return b.op("ConstantOfShape", [full], value=zero, dtype=dtype, shape=shape)


def cols(w: Value, start: int, stop: int) -> Value:
    """``w[..., start:stop]`` (a gate's block of a kernel or bias)."""
    b = w.builder
    shape = None if w.shape is None else (*w.shape[:-1], stop - start)
    return b.op("Slice", [w, ints(b, [start]), ints(b, [stop]), ints(b, [-1])], shape=shape)


def row(x: Value, k: int) -> Value:
    """``x[k]``, a row of a stacked bias or of per-gate dropout masks (Slice + Reshape)."""
    b = x.builder
    shape = None if x.shape is None else tuple(x.shape[1:])
    part = b.op("Slice", [x, ints(b, [k]), ints(b, [k + 1]), ints(b, [0])])
    rest = b.op("Shape", [x], start=1)
    return b.op("Reshape", [part, rest], shape=shape)


def dropout_mask(rate: float, batch: Value, size: int, count: int | None, dtype: int) -> Value:
    """Keras's RNN dropout mask: ones dropped with probability ``rate`` and scaled by ``1 / (1 - rate)``.

    Shape ``(batch, size)``, or ``(count, batch, size)`` for one mask per gate. Drawn once per call, so the
    same units are dropped at every time step.
    """
    b = batch.builder
    dims: list[Value | int] = ([count] if count else []) + [batch, size]
    like = zeros(b, dims, dtype, shape=(*([count] if count else []), None, size))
    u = current_trace().random_uniform(like)
    keep = b.op("Cast", [b.op("GreaterOrEqual", [u, float(rate)])], to=dtype)
    mask = keep * float(1.0 / (1.0 - rate))
    mask.shape = like.shape
    return mask


def to_bool(mask: Value) -> Value:
    if mask.dtype == onnx.TensorProto.BOOL:
        return mask
    return mask.builder.op("Cast", [mask], to=onnx.TensorProto.BOOL, shape=mask.shape)


def flip_time(x: Value, axis: int) -> Value:
    """``x`` reversed along ``axis`` (a Slice with step -1, so any length works)."""
    b = x.builder
    big = np.iinfo(np.int64)
    return b.op("Slice", [x, ints(b, [-1]), ints(b, [int(big.min)]), ints(b, [axis]), ints(b, [-1])],
                shape=x.shape)
