"""Lowerings: forward nodes rewritten, before the reverse walk, into equivalent nodes that have rules.

Some ops are best differentiated through their definition rather than by a rule of their own (JAX calls
these decompositions):

* **Registered lowerings** (``register_lowering``): an op whose gradient is the gradient of a composition
  of simpler ops, written out by hand where ONNX's own definition would be slow or NaN-prone
  (``Attention``: its fully masked rows, see ``rules/attention.py``).
* **ONNX function ops** without a rule (``RMSNormalization``, ``RotaryEmbedding``, ``Swish``,
  ``GroupNormalization``, ...): the ONNX schema defines them as a function of other ops; the node is
  replaced by that function body, specialized to the node's attributes and input types.
* **Sequences with a known layout**: ``SplitToSequence`` / ``SequenceConstruct`` whose every reader is a
  ``SequenceAt`` with a constant position, a ``ConcatFromSequence`` or a ``SequenceLength`` (how torch's
  exporter writes ``split`` / ``chunk`` / ``unbind``) become ``Split`` / ``Identity`` / ``Concat`` and a
  constant: plain tensors, no sequence gradients needed. Other sequences keep their ops and are
  differentiated by the sequence rules (``rules/sequence.py``).

* **CastLike whose target type is known** becomes ``Cast(to=...)``, anywhere in the graph. torch's default
  exporter writes a conv's missing bias as ``Expand(CastLike(0, activation), Shape(weight)[:1])``: the
  reference to a run-time tensor, for its type only, keeps onnxruntime from folding the zero bias into a
  constant, and a Conv with a computed bias never gets the NCHWc kernel (ResNet-18 exported that way, batch
  8, 64 px: forward convs 2-6 ms each instead of 1.3-2.5). A Cast of a constant folds.

Except for the last, only nodes on a path from a wanted value are rewritten; each keeps its output names,
so the graph's outputs and every other reader are unchanged.
"""
from __future__ import annotations

__all__ = ["LOWERINGS", "register_lowering", "lower"]

from collections.abc import Callable

import numpy as np
import onnx

from ..graph import GraphBuilder, Value, protos

#: ``lowering(b, node) -> outputs``: emit (with ``b.op``) nodes computing ``node``'s outputs from its inputs
#: and return one value (or ``None`` for an output the node left out) per output of the node.
Lowering = Callable[[GraphBuilder, onnx.NodeProto], "list[Value | None]"]
LOWERINGS: dict[str, Lowering] = {}

_SEQUENCE_READERS = {"SequenceAt", "ConcatFromSequence", "SequenceLength"}
_MAX_ROUNDS = 8  # a function body may hold function ops of its own: lower again, a bounded number of times


def register_lowering(*op_types: str) -> Callable[[Lowering], Lowering]:
    """Decorator: differentiate ``op_types`` through the composition ``lowering`` emits."""
    def wrap(fn: Lowering) -> Lowering:
        for op in op_types:
            if op in LOWERINGS:
                raise ValueError(f"A lowering for {op!r} is already registered.")
            LOWERINGS[op] = fn
        return fn
    return wrap


def lower(b: GraphBuilder, reach: Callable[[], set[str]]) -> int:
    """Rewrite, in place, the forward nodes of ``b`` that lie on a path from a wanted value (``reach()``
    gives the values that depend on one) and are differentiated through their definition. Returns the
    number of nodes rewritten."""
    from .registry import lookup

    count = _cast_like_to_cast(b)
    count += _lower_static_sequences(b, reach())
    for _ in range(_MAX_ROUNDS):
        reached = reach()
        todo = [n for n in b.nodes if any(o in reached for o in n.output if o) and lookup(n.op_type) is None
                and n.domain in ("", "ai.onnx") and (n.op_type in LOWERINGS or _function_of(b, n) is not None)]
        todo = [n for n in todo if n.op_type in LOWERINGS or _inlinable(_function_of(b, n))]
        if not todo:
            break
        for node in todo:
            if node.op_type in LOWERINGS:
                _replace(b, node, lambda node=node: LOWERINGS[node.op_type](b, node))
            else:
                _inline_function(b, node, _function_of(b, node))
        count += len(todo)
    return count


def _cast_like_to_cast(b: GraphBuilder) -> int:
    """Rewrite every ``CastLike(x, like)`` whose ``like`` has a known element type as ``Cast(x, to=...)``."""
    count = 0
    for i, node in enumerate(b.nodes):
        if node.op_type != "CastLike" or node.domain not in ("", "ai.onnx") or len(node.input) != 2:
            continue
        like = b.values.get(node.input[1])
        if like is None or not like.dtype:
            continue
        attrs = {a.name: protos.attribute_value(a) for a in node.attribute}  # saturate (opset 19+)
        b.nodes[i] = protos.node("Cast", [node.input[0]], list(node.output), name=node.name, to=like.dtype,
                                 **attrs)
        count += 1
    return count


def _inlinable(fn: onnx.FunctionProto) -> bool:
    # A body holding a subgraph (Range's Loop) would need its inner names renamed too; such ops keep their
    # node (and need a rule).
    return not any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
                   for n in fn.node for a in n.attribute)


# ------------------------------------------------------------------ splicing
def _replace(b: GraphBuilder, node: onnx.NodeProto, emit: Callable[[], list[Value | None]]) -> None:
    """Run ``emit`` (which appends nodes computing ``node``'s outputs) and put what it appended where
    ``node`` was, the results renamed to ``node``'s output names."""
    mark = len(b.nodes)
    values = list(emit())
    for name, v in zip(node.output, values):
        if name and v is not None:
            b.add_node(protos.node("Identity", [v.name], [name], name=b.fresh(f"{node.name or node.op_type}_out")))
    _splice(b, node, mark)


def _splice(b: GraphBuilder, node: onnx.NodeProto, mark: int) -> None:
    new = b.nodes[mark:]
    del b.nodes[mark:]
    at = next(i for i, n in enumerate(b.nodes) if n is node)
    b.nodes[at:at + 1] = new


# ------------------------------------------------------------------ ONNX function ops
def _function_of(b: GraphBuilder, node: onnx.NodeProto) -> onnx.FunctionProto | None:
    """The ONNX definition of ``node``'s op as a function body specialized to the node, if it has one."""
    try:
        schema = onnx.defs.get_schema(node.op_type, b.opset, node.domain)
    except onnx.defs.SchemaError:
        return None
    if schema.has_function:
        fn = schema.get_function_with_opset_version(b.opset) or schema.function_body.SerializeToString()
    elif schema.has_context_dependent_function:
        types = []
        for name in node.input:
            v = b.values.get(name) if name else None
            if name and (v is None or v.dtype is None):
                return None  # the specialized body depends on input types we do not know
            types.append(protos.tensor_type(v.dtype, v.shape).SerializeToString() if name else b"")
        fn = schema.get_context_dependent_function_with_opset_version(b.opset, node.SerializeToString(), types)
    else:
        return None
    if not fn:
        return None
    proto = onnx.FunctionProto()
    proto.ParseFromString(fn)
    return proto


def _inline_function(b: GraphBuilder, node: onnx.NodeProto, fn: onnx.FunctionProto) -> None:
    """Replace ``node`` by ``fn``'s body: formal inputs and outputs mapped to the node's, every inner name
    fresh, attribute references resolved against the node's attributes (absent ones take defaults)."""
    rename: dict[str, str] = {"": ""}
    for k, formal in enumerate(fn.input):
        rename[formal] = node.input[k] if k < len(node.input) else ""
    for k, formal in enumerate(fn.output):
        if k < len(node.output) and node.output[k]:
            rename[formal] = node.output[k]
    attrs = {a.name: a for a in node.attribute}
    defaults = onnx.defs.get_schema(node.op_type, b.opset, node.domain).attributes
    prefix = node.name or node.op_type
    mark = len(b.nodes)
    for inner in fn.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(inner)
        copy.name = b.fresh(f"{prefix}/{inner.op_type}")
        copy.ClearField("attribute")
        for a in inner.attribute:
            if a.ref_attr_name:
                source = attrs.get(a.ref_attr_name)
                if source is None and a.ref_attr_name in defaults and defaults[a.ref_attr_name].default_value.name:
                    source = defaults[a.ref_attr_name].default_value  # the node left it at its default
                if source is not None:
                    resolved = onnx.AttributeProto()
                    resolved.CopyFrom(source)
                    resolved.name = a.name
                    copy.attribute.append(resolved)
            else:
                copy.attribute.append(a)
        for i, name in enumerate(copy.input):
            copy.input[i] = rename.get(name, name)
        for i, name in enumerate(copy.output):
            if name not in rename:
                rename[name] = b.fresh(f"{prefix}/{name}")
            copy.output[i] = rename[name]
        b.add_node(copy)
    _splice(b, node, mark)


# ------------------------------------------------------------------ sequences with a known layout
def _lower_static_sequences(b: GraphBuilder, reached: set[str]) -> int:
    readers: dict[str, list[onnx.NodeProto]] = {}
    for n in b.nodes:
        for name in n.input:
            readers.setdefault(name, []).append(n)
    kept = {o.name for o in b.outputs}
    from ..graph.builder import subgraph_captures

    for n in b.nodes:  # a sequence a subgraph reads is read in ways this pass cannot see
        for a in n.attribute:
            for g in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                kept |= subgraph_captures(g)
    count = 0
    for node in [n for n in b.nodes if n.op_type in ("SplitToSequence", "SequenceConstruct")]:
        seq = node.output[0]
        users = readers.get(seq, [])
        if seq not in reached or seq in kept or not users:
            continue
        if any(u.op_type not in _SEQUENCE_READERS or u.input[0] != seq for u in users):
            continue
        plan = _split_plan(b, node) if node.op_type == "SplitToSequence" else None
        length = len(node.input) if plan is None else len(plan[1])
        if node.op_type == "SplitToSequence" and plan is None:
            continue
        positions = [b.constant_value(u.input[1]) for u in users if u.op_type == "SequenceAt"]
        if any(p is None or not -length <= int(np.asarray(p).reshape(-1)[0]) < length for p in positions):
            continue  # a run-time or out-of-range position: the sequence rules (or onnxruntime's error) apply
        _rewrite_sequence(b, node, users, plan)
        count += 1
    return count


def _split_plan(b: GraphBuilder, node: onnx.NodeProto) -> tuple[int, list[int] | None, bool] | None:
    """``(axis, sizes, squeeze)`` of a SplitToSequence whose pieces are known while building, else ``None``:
    ``sizes`` ``None`` means pieces of 1 along ``axis``."""
    x = b.values.get(node.input[0])
    attrs = protos.attributes(node)
    axis, keepdims = int(attrs.get("axis", 0)), int(attrs.get("keepdims", 1))
    if x is None or x.shape is None:
        return None
    axis %= len(x.shape)
    dim = x.shape[axis]
    split = b.constant_value(node.input[1]) if len(node.input) > 1 and node.input[1] else None
    if len(node.input) > 1 and node.input[1] and split is None:
        return None
    if split is None:
        return (axis, [1] * dim, not keepdims) if isinstance(dim, int) and dim > 0 else None
    split = np.asarray(split).astype(np.int64)
    if split.ndim == 1:
        return axis, [int(s) for s in split], False
    if not isinstance(dim, int) or int(split) <= 0:
        return None
    step = int(split)
    return axis, [step] * (dim // step) + ([dim % step] if dim % step else []), False


def _rewrite_sequence(b: GraphBuilder, node: onnx.NodeProto, users: list[onnx.NodeProto], plan) -> None:
    mark = len(b.nodes)
    if plan is None:  # SequenceConstruct: the elements are its inputs
        items = [b.value(i) for i in node.input]
    else:
        axis, sizes, squeeze = plan
        pieces = b.op("Split", [b.value(node.input[0]), b.const(np.asarray(sizes, np.int64))], outputs=len(sizes), axis=axis)
        pieces = pieces if isinstance(pieces, list) else [pieces]
        if squeeze:
            pieces = [b.op("Squeeze", [p, b.const(np.asarray([axis], np.int64))]) for p in pieces]
        items = pieces
    _splice(b, node, mark)
    for user in users:
        mark = len(b.nodes)
        if user.op_type == "SequenceAt":
            out = items[int(np.asarray(b.constant_value(user.input[1])).reshape(-1)[0])]
        elif user.op_type == "SequenceLength":
            out = b.const(np.asarray(len(items), np.int64))
        else:
            attrs = protos.attributes(user)
            axis, new_axis = int(attrs["axis"]), int(attrs.get("new_axis", 0))
            parts = items
            if new_axis:
                parts = [b.op("Unsqueeze", [p, b.const(np.asarray([axis], np.int64))]) for p in items]
            out = parts[0] if len(parts) == 1 else b.op("Concat", parts, axis=axis)
        b.add_node(protos.node("Identity", [out.name], [user.output[0]], name=b.fresh("n_Identity")))
        _splice(b, user, mark)
