"""Graph clean-up passes run on every program: common subexpressions, dead code, unused inputs.

Example:
    >>> import onnx
    >>> from onnxforge.graph import GraphBuilder
    >>> b = GraphBuilder()
    >>> x = b.input("x", onnx.TensorProto.FLOAT, ("n",))
    >>> y = b.op("Add", [b.op("Exp", [x]), b.op("Exp", [x])])
    >>> b.output(y, "y")
    >>> model, removed = cleanup(b.to_model())
    >>> [n.op_type for n in model.graph.node]
    ['Exp', 'Add']
"""
from __future__ import annotations

__all__ = ["cleanup"]

from collections.abc import Iterable

import onnx

from ..graph import protos
from ..graph.builder import _all_inputs, subgraph_captures

# Ops whose outputs differ between two identical nodes.
_IMPURE = frozenset({"RandomUniform", "RandomNormal", "RandomUniformLike", "RandomNormalLike", "Multinomial",
                     "Bernoulli", "Dropout"})


def _has_subgraph(node: onnx.NodeProto) -> bool:
    return any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute)


def _dedup_initializers(graph: onnx.GraphProto, alias: dict[str, str], keep: set[str]) -> None:
    """Initializers with the same type, shape and bytes become one (constants from separate passes)."""
    seen: dict[tuple, str] = {}
    kept = []
    for t in graph.initializer:
        if t.name in keep:
            kept.append(t)
            continue
        key = (t.data_type, tuple(t.dims), protos.array_from_tensor(t).tobytes())
        if key in seen:
            alias[t.name] = seen[key]
        else:
            seen[key] = t.name
            kept.append(t)
    del graph.initializer[:]
    graph.initializer.extend(kept)


def _captured(graph: onnx.GraphProto) -> set[str]:
    """Names that subgraphs read from the main graph: renaming them would break the subgraphs."""
    captured: set[str] = set()
    for node in graph.node:
        for a in node.attribute:
            for g in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                captured |= subgraph_captures(g)
    return captured


def _cse(graph: onnx.GraphProto, alias: dict[str, str], keep: set[str]) -> None:
    seen: dict[tuple, onnx.NodeProto] = {}
    nodes = []
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in alias:
                node.input[i] = alias[name]
        if node.op_type in _IMPURE or _has_subgraph(node) or any(o in keep for o in node.output):
            nodes.append(node)
            continue
        key = (node.domain, node.op_type, tuple(node.input), len(node.output),
               tuple(a.SerializeToString() for a in node.attribute))
        first = seen.get(key)
        if first is None:
            seen[key] = node
            nodes.append(node)
            continue
        for mine, theirs in zip(node.output, first.output):
            if mine:
                alias[mine] = theirs if theirs else mine
    del graph.node[:]
    graph.node.extend(nodes)


def _dce(graph: onnx.GraphProto) -> None:
    needed = {o.name for o in graph.output}
    live = []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output if o):
            live.append(node)
            needed.update(_all_inputs(node))
    live.reverse()
    del graph.node[:]
    graph.node.extend(live)


def _fold_output_identities(graph: onnx.GraphProto, captured: set[str]) -> None:
    """``x = Op(...); y = Identity(x)`` with ``y`` a graph output becomes ``y = Op(...)``: onnxruntime copies
    every Identity, and a training step outputs every parameter and optimizer slot."""
    outputs = {o.name for o in graph.output}
    sources = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output if o}
    rename: dict[str, str] = {}
    dropped = set()
    for node in graph.node:
        if node.op_type != "Identity" or node.domain not in ("", "ai.onnx") or node.output[0] not in outputs:
            continue
        src = node.input[0]
        if src in sources or src in outputs or src in captured or src in rename or src not in producer:
            continue
        rename[src] = node.output[0]
        dropped.add(id(node))
    if not rename:
        return
    kept = []
    for node in graph.node:
        if id(node) in dropped:
            continue
        for i, name in enumerate(node.input):
            node.input[i] = rename.get(name, name)
        for i, name in enumerate(node.output):
            node.output[i] = rename.get(name, name)
        kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)
    for vi in graph.value_info:
        vi.name = rename.get(vi.name, vi.name)


def cleanup(model: onnx.ModelProto, protected_inputs: Iterable[str] = ()) -> tuple[onnx.ModelProto, set[str]]:
    """Merge duplicate constants and identical nodes, drop dead nodes, unused initializers and unused
    inputs (except ``protected_inputs``). Returns the model (changed in place) and the removed inputs."""
    graph = model.graph
    outputs = {o.name for o in graph.output}
    inputs = {i.name for i in graph.input}
    captured = _captured(graph)
    alias: dict[str, str] = {}
    _dedup_initializers(graph, alias, keep=outputs | inputs | captured)
    _cse(graph, alias, keep=outputs | captured)
    _dce(graph)
    _fold_output_identities(graph, captured)
    used = {name for node in graph.node for name in _all_inputs(node)} | outputs
    kept_inits = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept_inits)
    protected = set(protected_inputs)
    removed = {i.name for i in graph.input if i.name not in used and i.name not in protected}
    kept_inputs = [i for i in graph.input if i.name not in removed]
    del graph.input[:]
    graph.input.extend(kept_inputs)
    kept_vi = [vi for vi in graph.value_info if vi.name in used]
    del graph.value_info[:]
    graph.value_info.extend(kept_vi)
    return model, removed
