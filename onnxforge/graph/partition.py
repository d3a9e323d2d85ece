"""Cutting one model into stages run one after another, with values computed outside the graph in between.

A data-parallel step whose replicas exchange values mid-graph (synchronized BatchNormalization's moments, and
their gradients on the way back) is traced as ONE graph in which each exchange is a pair: a *source* output
(this replica's part) and a *result* input (the sum over replicas). ``plan_stages`` numbers the stages: a
result becomes available one stage after its source is computed, and every node runs in the earliest stage
whose inputs are all available. ``split_stages`` then makes one model per stage, passing the values a later
stage needs as extra outputs and inputs, so nothing is computed twice.

Example:
    >>> import onnx
    >>> from onnxforge.graph import GraphBuilder
    >>> b = GraphBuilder()
    >>> x = b.input("x", onnx.TensorProto.FLOAT, (3,))
    >>> s = b.input("s", onnx.TensorProto.FLOAT, (3,))     # the sum over replicas of "local"
    >>> y = b.op("Exp", [x])
    >>> b.output(y, "local"); b.output(b.op("Mul", [y, s]), "out")
    >>> model = b.to_model()
    >>> stages = plan_stages(model, [("local", "s")]); stages
    {'s': 1}
    >>> [[o.name for o in m.graph.output] for m in split_stages(model, stages)]
    [['local', 'exp'], ['out']]
"""
from __future__ import annotations

__all__ = ["plan_stages", "split_stages", "node_inputs", "PartitionError"]

from collections.abc import Iterable, Mapping, Sequence

import onnx

from .builder import subgraph_captures


class PartitionError(ValueError):
    """The cuts cannot be ordered (a source depends on its own result) or a cut value has no known type."""


def node_inputs(node: onnx.NodeProto) -> Iterable[str]:
    """A node's inputs, including the names its subgraphs (a Scan's body) read from the enclosing graph."""
    yield from (i for i in node.input if i)
    for attr in node.attribute:
        for g in ([attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)):
            yield from subgraph_captures(g)


def _value_stages(graph: onnx.GraphProto, input_stage: Mapping[str, int | None]) -> dict[str, int | None]:
    """The stage of every value: graph inputs as given (absent: 0), node outputs the latest of their inputs;
    ``None`` where an input's stage is not known yet."""
    stage: dict[str, int | None] = {t.name: 0 for t in graph.initializer}
    for vi in graph.input:
        stage[vi.name] = input_stage.get(vi.name, 0)
    for node in graph.node:
        known = [stage.get(i, 0) for i in node_inputs(node)]
        s = None if any(k is None for k in known) else max(known, default=0)
        for out in node.output:
            if out:
                stage[out] = s
    return stage


def plan_stages(model: onnx.ModelProto, cuts: Sequence[tuple[str, str]]) -> dict[str, int]:
    """The stage at which each cut's result input becomes available.

    Args:
        model: the whole graph.
        cuts: ``(source output, result input)`` pairs; the result is computed outside the graph from the
            source (of every replica) between two stages.

    Returns:
        ``{result input: stage}``, each one more than the stage that computes its source. Cuts whose sources
        depend on each other's results are ordered; independent ones share a stage (one exchange round).
    """
    pending = {result: source for source, result in cuts}
    resolved: dict[str, int] = {}
    while pending:
        stages = _value_stages(model.graph, {**{r: None for r in pending}, **resolved})
        ready = {r: stages[s] + 1 for r, s in pending.items() if stages.get(s) is not None}
        if not ready:
            raise PartitionError(f"Cut sources {sorted(pending.values())} depend on their own results.")
        resolved.update(ready)
        for r in ready:
            del pending[r]
    return resolved


def _types(model: onnx.ModelProto) -> dict[str, onnx.TypeProto]:
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception:   # a help, not a requirement: graph inputs and outputs carry their own types
        inferred = model
    g = inferred.graph
    return {vi.name: vi.type for vi in list(g.value_info) + list(g.input) + list(g.output)
            if vi.type.tensor_type.elem_type}


def _value_info(name: str, types: Mapping[str, onnx.TypeProto]) -> onnx.ValueInfoProto:
    if name not in types:
        raise PartitionError(f"Value {name!r} crosses a stage boundary but its type is unknown.")
    vi = onnx.ValueInfoProto()
    vi.name = name
    vi.type.CopyFrom(types[name])
    return vi


def split_stages(model: onnx.ModelProto, input_stage: Mapping[str, int]) -> list[onnx.ModelProto]:
    """One model per stage ``0 .. max(input_stage)``.

    Stage ``s`` holds the nodes whose inputs are all available at ``s``. Its inputs are the graph inputs
    and earlier stages' values it reads; its outputs are the graph outputs it computes, then the values later
    stages read (which the caller carries over, on the device). Initializers go to every stage that reads
    them; opsets are kept, metadata is not (the whole program's I/O records would be wrong for a stage).
    """
    graph = model.graph
    stage = _value_stages(graph, input_stage)
    count = max(input_stage.values(), default=0) + 1
    inits = {t.name: t for t in graph.initializer}
    graph_inputs = {vi.name: vi for vi in graph.input}
    graph_outputs = {vi.name: vi for vi in graph.output}
    by_stage: list[list[onnx.NodeProto]] = [[] for _ in range(count)]
    for node in graph.node:
        by_stage[stage[node.output[0]]].append(node)
    reads: list[set[str]] = [{i for n in nodes for i in node_inputs(n)} for nodes in by_stage]
    later_reads = [set().union(*reads[s + 1:]) for s in range(count)]
    types = _types(model)
    models = []
    for s, nodes in enumerate(by_stage):
        made = [o for n in nodes for o in n.output if o]
        made_set = set(made)
        g = onnx.GraphProto()
        g.name = f"{graph.name}_stage{s}"
        g.node.extend(nodes)
        needed = [i for i in dict.fromkeys(i for n in nodes for i in node_inputs(n)) if i not in made_set]
        g.initializer.extend(inits[i] for i in needed if i in inits)
        for i in needed:
            if i in inits:
                continue
            g.input.append(graph_inputs[i] if i in graph_inputs else _value_info(i, types))
        outs = [o for o in made if o in graph_outputs]
        outs += [o for o in made if o in later_reads[s] and o not in graph_outputs]
        g.output.extend(graph_outputs[o] if o in graph_outputs else _value_info(o, types) for o in outs)
        m = onnx.ModelProto()
        m.CopyFrom(model)
        m.graph.CopyFrom(g)
        del m.metadata_props[:]
        models.append(m)
    return models
