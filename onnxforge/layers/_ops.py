"""Small graph helpers shared by the layers: int constants, shapes, and layout-aware transposes.

Layout: ONNX convolutions and pools are NCHW, Keras defaults to channels_last. A channels_last conv layer
transposes in, runs the op, and transposes out. ``transpose`` remembers which value is a transpose of which
(per builder), so the next layer's transpose back is cancelled instead of emitted, and layout-neutral layers
(activations, BatchNormalization, Add, padding, ...) work on the untransposed value through ``peel``: a stack
of conv / pool / BN / relu layers keeps one NCHW layout inside and transposes once at each end.
"""
from __future__ import annotations

__all__ = ["ints", "static_shape", "transpose", "peel", "elementwise", "set_shape", "merge_shape",
           "inverse_perm", "reduce", "fill_shapes"]

import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper

from ..graph import GraphBuilder, Value

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


def _type_proto(v: Value) -> onnx.TypeProto | None:
    if v.dtype is None:
        return None
    return helper.make_tensor_type_proto(v.dtype, None if v.shape is None else list(v.shape))


def fill_shapes(b: GraphBuilder, start: int) -> None:
    """Give every value made by ``b.nodes[start:]`` that lacks a shape (or dtype) the one ONNX infers.

    Gradient rules need ranks and static dims of intermediate values (MatMul, Conv weights, pooling), and
    layer code written with ``Value`` arithmetic does not annotate them; ONNX's own per-node inference does,
    from the inputs' shapes and the values of small integer constants (shapes, axes, pads).
    """
    for node in b.nodes[start:]:
        outs = [b.values.get(o) for o in node.output if o]
        if all(v is None or (v.shape is not None and v.dtype is not None) for v in outs):
            continue
        types, data = {}, {}
        for name in node.input:
            v = b.values.get(name) if name else None
            proto = None if v is None else _type_proto(v)
            if proto is None:
                continue
            types[name] = proto
            init = b.initializers.get(name)
            if init is not None and init.data_type in (onnx.TensorProto.INT64, onnx.TensorProto.INT32):
                data[name] = init
        try:
            schema = onnx.defs.get_schema(node.op_type, b.opset, node.domain)
            inferred = onnx.shape_inference.infer_node_outputs(schema, node, types, data)
        except Exception:  # inference is a help (ops with subgraphs, unknown input types)
            continue
        for name, proto in inferred.items():
            v = b.values.get(name)
            if v is None:
                continue
            tt = proto.tensor_type
            if v.dtype is None and tt.elem_type:
                v.dtype = tt.elem_type
            if v.shape is None and tt.HasField("shape"):
                v.shape = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tt.shape.dim)
