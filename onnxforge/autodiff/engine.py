"""The reverse walk: which nodes lie between the wanted values and the loss, and gradient accumulation."""
from __future__ import annotations

__all__ = ["backward", "GradientError"]

from collections.abc import Collection, Sequence

import onnx

from ..graph import FLOAT_TYPES, GraphBuilder, Value, protos
from ..graph.builder import _all_inputs
from ..graph.shape_inference import run_shape_inference, type_of
from .context import GradContext
from .custom import STAND_IN_OP, opaque, stand_in_grads
from .lowering import lower
from .registry import lookup


class GradientError(RuntimeError):
    """A node on the path to the loss cannot be differentiated."""


def backward(
    b: GraphBuilder,
    loss: Value | str | Sequence[Value | str],
    wrt: Sequence[Value | str],
    seed: Value | Sequence[Value | None] | None = None,
    cut: Collection[str] = (),
) -> dict[str, Value]:
    """Append the gradient of ``loss`` with respect to each of ``wrt`` to the builder's graph.

    The forward nodes are the builder's nodes at the time of the call; those on a path from a wanted value
    that are differentiated through their definition (``lowering.py``: Attention, ONNX function ops,
    sequences with a known layout) are first rewritten in place, keeping their output names. ``seed`` is
    the gradient flowing
    into ``loss`` (ones shaped like it by default). Returns ``{name: gradient}``; a value the loss does
    not depend on gets zeros of its shape. ``loss`` may also be a list of values with a list of seeds,
    one each: the vector-Jacobian product of several outputs at once (a control-flow body's outputs);
    seeds of a value listed twice add up. ``cut`` names values whose producing nodes pass no gradient on
    (``stop_gradient`` outputs, a weight's value assigned in the step): they are leaves, as TensorFlow's
    ``stop_gradient`` and variable assignments are. A region registered with ``custom.register`` (a
    ``custom_gradient`` function) is not differentiated: its recorded backward gives its inputs' gradients.

    Example:
        >>> import onnx
        >>> from onnxforge.graph import GraphBuilder
        >>> b = GraphBuilder()
        >>> x = b.input("x", onnx.TensorProto.FLOAT, (3,))
        >>> loss = b.op("ReduceSum", [x * x], keepdims=0)
        >>> grads = backward(b, loss, ["x"])
        >>> sorted(grads)
        ['x']
    """
    several = not isinstance(loss, (Value, str))
    losses = list(loss) if several else [loss]
    seeds = list(seed) if several and seed is not None else [seed] * len(losses)
    loss_names = [v if isinstance(v, str) else v.name for v in losses]
    loss_name = loss_names[0]
    wrt_names = [w if isinstance(w, str) else w.name for w in wrt]
    _annotate(b, list(b.nodes))
    def reach() -> set[str]:  # typed first: only float values carry gradients (a Range's output does not)
        _annotate(b, list(b.nodes))
        return _forward_reach(b, list(b.nodes), wrt_names)[0]

    if lower(b, reach):  # ops differentiated through their definitions (Attention, sequences)
        _annotate(b, list(b.nodes))
    forward = [n for n in b.nodes if not cut or not any(o in cut for o in n.output)]
    forward = opaque(b, forward)   # custom-gradient regions: one stand-in node each
    reached, parent = _forward_reach(b, forward, wrt_names)
    needed = set().union(*(_backward_reach(forward, reached, n) for n in loss_names))

    producers = {out: node for node in forward for out in node.output if out}
    uses = _use_counts(b, list(b.nodes), loss_names + wrt_names)  # cut nodes still read their inputs
    grads: dict[str, list[Value]] = {}
    for name, s in zip(loss_names, seeds):
        if name in needed:
            grads.setdefault(name, []).append(s if s is not None else _ones_like(b, b.value(name)))

    wanted = set(wrt_names)
    for node in reversed(forward):
        outs = [o for o in node.output if o in needed]
        if not outs:
            continue
        if not any(i in needed for i in _all_inputs(node)):
            # Its needed outputs are wanted values computed by the graph (a rule asking for the gradients
            # of its node's inputs): nothing flows further up, and their gradients must stay for the result.
            continue
        output_grads = [_total(b, grads.pop(o, None), o) if o else None for o in node.output]
        for o, g in zip(node.output, output_grads):
            if o in wanted and g is not None:
                grads[o] = [g]  # a wanted value that is also on a path to another wanted one keeps its total
        if all(g is None for g in output_grads):
            continue
        if node.op_type == STAND_IN_OP:
            input_grads, captured = stand_in_grads(b, node, output_grads), {}
        else:
            rule = lookup(node.op_type)
            if rule is None:
                raise GradientError(_missing_rule_message(node, forward, parent, needed, loss_name))
            ctx = GradContext(b, node, output_grads, needed, producers, uses)
            input_grads, captured = list(rule(ctx)), ctx.capture_grads
        while len(input_grads) > len(node.input) and input_grads[-1] is None:
            input_grads.pop()  # rules may list trailing optional inputs the node left out
        if len(input_grads) > len(node.input):
            raise GradientError(f"The {node.op_type} rule returned {len(input_grads)} gradients for "
                                f"{len(node.input)} inputs (node {node.name!r}).")
        contributions = list(zip(node.input, input_grads)) + list(captured.items())
        for name, g in contributions:
            if g is not None and name in needed:
                grads.setdefault(name, []).append(g)

    result: dict[str, Value] = {}
    for name in wrt_names:
        total = _total(b, grads.get(name), name)
        # A value the loss never reaches gets zeros of its shape: a ConstantOfShape, not a stored array.
        result[name] = total if total is not None else b.zeros_like(b.value(name))
    return result


# ------------------------------------------------------------------ analysis
def _is_float(b: GraphBuilder, name: str) -> bool:
    v = b.values.get(name)
    # Unknown dtype: assume differentiable, so that a missing rule is reported rather than skipped.
    return v is not None and (v.dtype is None or v.dtype in FLOAT_TYPES)


def _forward_reach(b: GraphBuilder, nodes: list[onnx.NodeProto], wrt: list[str]):
    """Float values that depend on any of ``wrt``, and for each, the node and input it was reached by."""
    reached = {w for w in wrt}
    parent: dict[str, tuple[onnx.NodeProto, str]] = {}
    for node in nodes:
        hit = next((i for i in _all_inputs(node) if i in reached), None)
        if hit is None:
            continue
        for out in node.output:
            if out and _is_float(b, out):
                reached.add(out)
                parent[out] = (node, hit)
    return reached, parent


def _use_counts(b: GraphBuilder, nodes: list[onnx.NodeProto], extra: list[str]) -> dict[str, int]:
    """How many times each value is read: by the nodes (subgraph captures included), as a graph output, and
    once for each of ``extra`` (the losses and the wanted values, whose gradients must stay whole)."""
    uses: dict[str, int] = {}
    for name in [i for node in nodes for i in _all_inputs(node)] + [o.name for o in b.outputs] + list(extra):
        uses[name] = uses.get(name, 0) + 1
    return uses


def _backward_reach(nodes: list[onnx.NodeProto], reached: set[str], loss: str) -> set[str]:
    """Values on a path from a wanted value to the loss: they need gradients."""
    if loss not in reached:
        return set()
    needed = {loss}
    for node in reversed(nodes):
        if any(o in needed for o in node.output if o):
            needed.update(i for i in _all_inputs(node) if i in reached)
    return needed


def _annotate(b: GraphBuilder, nodes: list[onnx.NodeProto]) -> None:
    """Fill in dtypes and shapes the builder does not know, by ONNX shape inference.

    A graph that inference rejects (strictly: a type or shape inconsistency too) raises
    ``ShapeInferenceError`` naming the node: the types decide the element type of every constant and zero
    the rules emit, so guessing is not an option.
    """
    missing = [o for n in nodes for o in n.output
               if o and not b.values[o].is_sequence and (b.values[o].dtype is None or b.values[o].shape is None)]
    if not missing:
        return
    inputs = {v.name for v in b.inputs}

    def info(v: Value) -> onnx.ValueInfoProto:
        if v.is_sequence:
            return protos.sequence_value_info(v.name, v.dtype or 0)
        return protos.value_info(v.name, v.dtype or 0, v.shape)

    graph = protos.graph(
        nodes, "annotate", [info(v) for v in b.inputs],
        [protos.value_info(o, 0, None) for o in missing],
        initializer=list(b.initializers.values()),
        value_info=[info(v) for n, v in b.values.items()
                    if v.dtype and (v.shape is not None or v.is_sequence) and n not in b.initializers
                    and n not in inputs],
    )
    model = protos.model(graph, opset=b.opset)
    inferred = run_shape_inference(model, "typing the graph to differentiate", strict=True)
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        v = b.values.get(vi.name)
        if v is None:
            continue
        dtype, shape = type_of(vi)
        v.dtype = v.dtype or dtype
        v.is_sequence = v.is_sequence or vi.type.HasField("sequence_type")
        if v.shape is None and not v.is_sequence:
            v.shape = shape


# ------------------------------------------------------------------ emission
def _total(b: GraphBuilder, parts: list[Value] | None, name: str) -> Value | None:
    """Gradients reaching one value by several paths are summed (element by element for a sequence)."""
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    fwd = b.values.get(name)
    if fwd is not None and fwd.is_sequence:
        from .rules.sequence import add_sequences

        total = parts[0]
        for p in parts[1:]:
            total = add_sequences(b, total, p)
        return total
    return b.op("Sum", parts, dtype=fwd.dtype if fwd is not None else None)


def _ones_like(b: GraphBuilder, v: Value) -> Value:
    return b.ones_like(v)


def _missing_rule_message(node, forward, parent, needed, loss) -> str:
    # Walk back from the node to a wanted value, and forward from it to the loss, to show why it matters.
    back: list[str] = []
    cur = next((i for i in _all_inputs(node) if i in needed), None)
    while cur is not None and cur in parent:
        back.append(cur)
        cur = parent[cur][1]
    if cur is not None:
        back.append(cur)
    fwd: list[str] = []
    cur = next((o for o in node.output if o in needed), None)
    consumers = {}
    for n in forward:
        for i in _all_inputs(n):
            consumers.setdefault(i, []).append(n)
    while cur is not None:
        fwd.append(cur)
        if cur == loss:
            break
        nxt = [o for n in consumers.get(cur, []) for o in n.output if o in needed]
        cur = nxt[0] if nxt else None
    path = " -> ".join(list(reversed(back)) + [f"[{node.op_type} {node.name!r}]"] + fwd)
    return (f"No gradient rule for ONNX op {node.op_type!r} (node {node.name!r}). It lies on a path from a "
            f"value whose gradient was asked for to the loss: {path}. Register one with "
            f"onnxforge.autodiff.register({node.op_type!r}).")
