"""ONNX shape inference for the builder: whole models (loud failures naming the node) and single nodes.

``run_shape_inference`` types a model and raises ``ShapeInferenceError`` naming the node ONNX stopped at;
``fill_shapes`` gives the values a builder just emitted the shapes and element types ONNX infers node by
node (gradient rules need ranks; layer and op code written with ``Value`` arithmetic does not annotate).
"""
from __future__ import annotations

__all__ = ["ShapeInferenceError", "run_shape_inference", "fill_output_types", "type_of", "fill_shapes"]

from typing import TYPE_CHECKING

import onnx

from . import protos
from .value import Shape, Value

if TYPE_CHECKING:
    from .builder import GraphBuilder


class ShapeInferenceError(ValueError):
    """ONNX shape inference rejected a graph: the message names the node it stopped at."""


def run_shape_inference(model: onnx.ModelProto, doing: str, strict: bool = False) -> onnx.ModelProto:
    """``onnx.shape_inference.infer_shapes`` with data propagation; a failure raises
    ``ShapeInferenceError`` naming what was being done and the node ONNX stopped at (never swallowed: the
    types it fills in decide the dtypes of emitted constants and zeros).

    ``strict`` also fails on inconsistencies non-strict inference skips silently (mismatched element types,
    unbroadcastable shapes, a recorded type that contradicts the inferred one), but not on types that are
    merely unknown (an input declared without one): those stay unknown, as without ``strict``.
    """
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=strict, data_prop=True)
    except Exception as e:  # noqa: BLE001 (onnx raises several exception types; all mean the same here)
        problems = _node_errors(str(e))
        if strict and problems and all(_only_unknown(p) for p in problems):
            return run_shape_inference(model, doing, strict=False)
        real = [p for p in problems if not _only_unknown(p)] or problems
        raise ShapeInferenceError(f"ONNX shape inference failed while {doing} (graph {model.graph.name!r}): "
                                  f"{' | '.join(real) or _first_line_with_node(str(e))}") from e


_UNKNOWN = ("expected to have type but instead is null", "type unknown", "Element type of input",
            "has unknown", "is null")


def _node_errors(message: str) -> list[str]:
    """onnx's per-node messages, ``(op_type:X, node name: Y): ...`` each."""
    parts = message.split("(op_type:")
    return [("(op_type:" + p).strip().rstrip("|").strip() for p in parts[1:]]


def _only_unknown(problem: str) -> bool:
    return any(u in problem for u in _UNKNOWN)


def _first_line_with_node(message: str) -> str:
    # onnx prefixes each failure with "(op_type:X, node name: Y)": keep those lines, drop the C++ noise.
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    named = [ln for ln in lines if "node name" in ln or "op_type" in ln]
    return " | ".join(named or lines[:3])


def fill_output_types(model: onnx.ModelProto) -> None:
    """Complete graph outputs' types by shape inference (the full checker wants them)."""
    inferred = run_shape_inference(model, "typing the graph's outputs")
    known = {vi.name: vi for vi in list(inferred.graph.value_info) + list(inferred.graph.output)
             if vi.type.tensor_type.elem_type}
    for out in model.graph.output:
        t = out.type.tensor_type
        if out.name in known and (not t.elem_type or not t.HasField("shape")):
            out.type.CopyFrom(known[out.name].type)


def type_of(vi: onnx.ValueInfoProto) -> tuple[int | None, Shape]:
    """``(elem_type, shape)`` of a tensor value info; for a sequence, its elements' (shape ``None``)."""
    if vi.type.HasField("sequence_type"):
        elem = vi.type.sequence_type.elem_type
        return (elem.tensor_type.elem_type or None) if elem.HasField("tensor_type") else None, None
    t = vi.type.tensor_type
    if not vi.type.HasField("tensor_type"):
        return None, None
    shape: Shape = None
    if t.HasField("shape"):
        shape = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim)
    return (t.elem_type or None), shape


def _type_proto(v: Value) -> onnx.TypeProto | None:
    if v.dtype is None:
        return None
    return protos.tensor_type(v.dtype, None if v.shape is None else list(v.shape))


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
