"""Gradient rules: If, Scan and Loop, by differentiating their body graphs with the same engine.

A body is loaded into a builder of its own (``_Body``) that shares the enclosing builder's names, with
the values it captures from enclosing scopes declared as inputs; ``engine.backward`` then appends the
body's vector-Jacobian product to it, seeded by the gradients of the body's outputs.

- **If**: the gradient is another If on the same condition whose branches are the branch gradients
  (each recomputes its branch's forward values). It yields gradients for the captured outer values.
- **Scan / Loop**: the forward node is rewritten to also emit, per iteration, every forward value the
  body's gradient reads (its *residuals*) as extra scan outputs. The backward is a Scan that walks those
  stacks in reverse, carrying the gradients of the loop-carried states and accumulating the gradients
  of captured outer values (weights) as extra states. Nothing depends on a static sequence length, and
  a Loop's data-dependent condition is fine: the stacks hold exactly the iterations that ran. A Loop
  state whose shape changes between iterations cannot be stacked, and fails at run time.
"""
from __future__ import annotations

from collections.abc import Sequence

import onnx
from onnx import helper

from ...graph import GraphBuilder, Value
from ...graph.builder import _all_inputs, _live_nodes, _type_of, subgraph_captures
from ..context import GradContext
from ..engine import backward
from ..registry import register

__all__: list[str] = []


# ------------------------------------------------------------------ bodies
class _Body:
    """A subgraph loaded into a builder that shares its parent's name space (names stay unique across
    scopes) and knows the types of the outer values the subgraph captures."""

    def __init__(self, parent: GraphBuilder, graph: onnx.GraphProto):
        self.graph = onnx.GraphProto()
        self.graph.CopyFrom(graph)  # the node's own attribute is rewritten later
        self.b = b = GraphBuilder(opset=parent.opset, float32_fallback=parent.float32_fallback)
        b._taken, b._counter = parent._taken, parent._counter
        self.inputs = [self.declare(vi.name, *_type_of(vi)) for vi in graph.input]
        for t in graph.initializer:
            b._taken.add(t.name)
            b.initializers[t.name] = t
            b._record(t.name, t.data_type, tuple(t.dims))
        self.captures = sorted(subgraph_captures(graph))
        for name in self.captures:
            outer = parent.value(name)
            self.declare(name, outer.dtype, outer.shape)
        for node in graph.node:
            b.add_node(node)
        for vi in list(graph.value_info) + list(graph.output):
            v = b.values.get(vi.name)
            if v is not None and v.dtype is None:
                v.dtype, v.shape = _type_of(vi)
        self.outputs = [o.name for o in graph.output]
        self.n_forward = len(b.nodes)

    def declare(self, name: str, dtype: int | None, shape) -> Value:
        """A value the body reads without computing it (a body input, a captured outer value, a seed)."""
        if name in self.b.values:
            return self.b.values[name]
        self.b._taken.add(name)
        value = self.b._record(name, dtype, shape)
        self.b.inputs.append(value)
        return value

    def fresh_input(self, hint: str, like: Value) -> Value:
        return self.declare(self.b.fresh(hint), like.dtype, like.shape)

    def vjp(self, outputs: Sequence[str], seeds: Sequence[Value | None], wrt: Sequence[str]) -> dict[str, Value]:
        """Gradients of ``wrt`` given the gradients ``seeds`` of the body values ``outputs``."""
        pairs = [(o, s) for o, s in zip(outputs, seeds) if s is not None]
        if not pairs:
            return {w: _zeros(self.b, self.b.value(w)) for w in wrt}
        return backward(self.b, [o for o, _ in pairs], list(wrt), [s for _, s in pairs])

    @property
    def forward_nodes(self) -> list[onnx.NodeProto]:
        # Rules may have rewritten these copies while differentiating (extra outputs, nested residuals).
        return self.b.nodes[: self.n_forward]

    @property
    def gradient_nodes(self) -> list[onnx.NodeProto]:
        return self.b.nodes[self.n_forward:]

    def graph_of(self, nodes: list[onnx.NodeProto], inputs: Sequence[Value], outputs: Sequence[Value],
                 name: str) -> onnx.GraphProto:
        """A subgraph of ``nodes`` (pruned to ``outputs``) with the initializers they read."""
        b = self.b
        produced = {o for n in nodes for o in n.output if o}
        out_values, seen = [], set()
        extra = []
        for v in outputs:
            if v.name not in produced or v.name in seen:
                # A graph output must be computed in the graph, once: pass inputs, outer values and
                # repeats through an Identity.
                alias = b.fresh(f"{v.name}_out")
                extra.append(helper.make_node("Identity", [v.name], [alias], name=b.fresh("n_Identity")))
                v = b._record(alias, v.dtype, v.shape)
            seen.add(v.name)
            out_values.append(v)
        kept = _live_nodes(nodes + extra, [v.name for v in out_values])
        used = {i for n in kept for i in _all_inputs(n)}
        inits = [t for k, t in b.initializers.items() if k in used]
        return helper.make_graph(kept, name, [_info(v) for v in inputs], [_info(v) for v in out_values],
                                 initializer=inits)


def _info(v: Value) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(v.name, v.dtype or onnx.TensorProto.UNDEFINED, v.shape)


def _zeros(b: GraphBuilder, v: Value) -> Value:
    return b.zeros_like(v)


def _typed(v: Value, like: Value) -> Value:
    v.dtype, v.shape = like.dtype, like.shape
    return v


# ------------------------------------------------------------------ If
@register("If")
def _if(ctx: GradContext):
    b, node = ctx.b, ctx.node
    branches = {a.name: a.g for a in node.attribute if a.name in ("then_branch", "else_branch")}
    wanted = sorted(c for c in subgraph_captures(branches["then_branch"]) | subgraph_captures(branches["else_branch"])
                    if ctx.needs_name(c))
    if not wanted:
        return [None]
    seeds = [ctx.GO(k) for k in range(len(node.output))]
    graphs = {}
    for key, graph in branches.items():
        body = _Body(b, graph)
        for s in seeds:  # the gradient branches read the output gradients from the enclosing scope
            if s is not None:
                body.declare(s.name, s.dtype, s.shape)
        for w in wanted:  # a capture only the other branch reads gets zeros here
            body.declare(w, b.value(w).dtype, b.value(w).shape)
        grads = body.vjp(body.outputs, [body.b.value(s.name) if s is not None else None for s in seeds], wanted)
        outs = [_typed(grads[w], b.value(w)) for w in wanted]
        graphs[key] = body.graph_of(body.b.nodes, [], outs, b.fresh(f"{graph.name or key}_grad"))
    outs = b.op("If", [ctx.I(0)], outputs=len(wanted), **graphs)
    for w, g in zip(wanted, outs if isinstance(outs, list) else [outs]):
        ctx.capture_grads[w] = _typed(g, b.value(w))
    return [None]


# ------------------------------------------------------------------ Scan and Loop
def _reverse_scan(
    ctx: GradContext,
    body: _Body,
    *,
    carried: Sequence[tuple[str, str]],
    scanned_out: Sequence[tuple[str, Value | None, int, int]],
    scanned_in: Sequence[tuple[str, Value, int, int, bool]],
    always_saved: str | None = None,
) -> tuple[list[Value | None], list[Value | None]]:
    """The backward Scan of a loop whose body is ``body``; the forward node gains its residual outputs.

    ``carried``: (body input, body output) per loop-carried state, state ``j`` being the node's output
    ``j``. ``scanned_out``: (body output, gradient of the stacked output or None, axis, direction) per
    scan output. ``scanned_in``: (body input, forward tensor, axis, direction, wants gradient) per scan
    input. ``always_saved`` names a body input saved when nothing else would give the backward Scan a
    sequence to walk (a Loop's iteration number). Returns the gradients of the carried initial values and
    of the scan inputs; those of the captured outer values go to ``ctx.capture_grads``.
    """
    b, node, sb = ctx.b, ctx.node, body.b
    floats = [j for j, (i, _) in enumerate(carried) if sb.value(i).is_float]
    wanted = [c for c in body.captures if ctx.needs_name(c)]

    # The body's gradient. Its seeds (the gradients of the body outputs) and the running sums of the
    # captures' gradients are new inputs of the backward body.
    d_state = [body.fresh_input(f"d_{carried[j][0]}", sb.value(carried[j][0])) for j in floats]
    d_scan = [body.fresh_input(f"d_{o}", sb.value(o)) if g is not None else None for o, g, _, _ in scanned_out]
    wrt = [carried[j][0] for j in floats] + [i for i, _, _, _, want in scanned_in if want] + wanted
    grads = body.vjp([carried[j][1] for j in floats] + [o for o, _, _, _ in scanned_out], d_state + d_scan, wrt)
    accumulators = [body.fresh_input(f"acc_{c}", sb.value(c)) for c in wanted]
    bwd_outputs = ([_typed(grads[carried[j][0]], sb.value(carried[j][0])) for j in floats]
                   + [_typed(sb.op("Add", [acc, grads[c]]), sb.value(c)) for acc, c in zip(accumulators, wanted)]
                   + [_typed(grads[i], sb.value(i)) for i, _, _, _, want in scanned_in if want])
    if not bwd_outputs:
        return [None] * len(carried), [None] * len(scanned_in)

    # Residuals: the forward values (body inputs, node outputs) that the gradient nodes read.
    scan_inputs = {i for i, _, _, _, _ in scanned_in}
    defined = [v.name for v in body.inputs] + [o for n in body.forward_nodes for o in n.output if o]
    read = {i for n in body.gradient_nodes for i in _all_inputs(n)} | {v.name for v in bwd_outputs}
    residuals = [r for r in dict.fromkeys(defined) if r in read and r not in scan_inputs]
    if always_saved is not None and not residuals and not scanned_in and all(d is None for d in d_scan):
        residuals.append(always_saved)
    for r in residuals:
        if sb.value(r).dtype is None:
            raise ctx.fail(f"the element type of body value {r!r} is unknown, so it cannot be saved per iteration")

    # Forward rewrite: each residual leaves the body as an extra scan output (axis 0, iteration order).
    saves, saved_infos, stacks = [], [], []
    for r in residuals:
        alias = b.fresh(f"{r}_saved")
        saves.append(helper.make_node("Identity", [r], [alias], name=b.fresh("n_Identity")))
        saved_infos.append(helper.make_tensor_value_info(alias, sb.value(r).dtype, None))
        stack = b.fresh(f"{r}_stack")
        node.output.append(stack)
        stacks.append(b._record(stack, sb.value(r).dtype, None))
    fwd_nodes = body.forward_nodes + saves
    used = {i for n in fwd_nodes for i in _all_inputs(n)}
    _set_graph_attr(node, "body", helper.make_graph(
        fwd_nodes, body.graph.name or "body", list(body.graph.input), list(body.graph.output) + saved_infos,
        initializer=[t for k, t in sb.initializers.items() if k in used], value_info=list(body.graph.value_info)))
    for key in ("scan_output_axes", "scan_output_directions"):
        _extend_ints(node, key, len(residuals))

    # Backward Scan over (output gradients, scan inputs, residual stacks) in reverse iteration order:
    # a sequence read forward by the forward node is read backward, and the other way round.
    seq = [(g, d, axis, 1 - direction) for (_, g, axis, direction), d in zip(scanned_out, d_scan) if d is not None]
    seq += [(x, sb.value(i), axis, 1 - direction) for i, x, axis, direction, _ in scanned_in]
    seq += [(stack, sb.value(r), 0, 1) for stack, r in zip(stacks, residuals)]
    init = ([ctx.GO(j) if ctx.GO(j) is not None else _zeros(b, ctx.O(j)) for j in floats]
            + [_zeros(b, b.value(c)) for c in wanted])
    bwd_body = body.graph_of(body.gradient_nodes, d_state + accumulators + [inner for _, inner, _, _ in seq],
                             bwd_outputs, b.fresh(f"{body.graph.name or 'body'}_grad"))
    attrs = {"body": bwd_body, "num_scan_inputs": len(seq),
             "scan_input_axes": [axis for _, _, axis, _ in seq], "scan_input_directions": [d for *_, d in seq]}
    outs_in = [(axis, direction) for _, _, axis, direction, want in scanned_in if want]
    if outs_in:  # dx leaves in x's layout: the reverse walk writes it backward
        attrs.update(scan_output_axes=[a for a, _ in outs_in], scan_output_directions=[1 - d for _, d in outs_in])
    scan_inputs = init + [outer for outer, _, _, _ in seq]
    if node.op_type == "Loop":
        # A Loop may run zero times, and onnxruntime's Scan cannot walk an empty sequence.
        outs = _unless_empty(b, seq[0][0], scan_inputs, init, [v.dtype for v in bwd_outputs], attrs)
    else:
        outs = b.op("Scan", scan_inputs, outputs=len(bwd_outputs), **attrs)
        outs = outs if isinstance(outs, list) else [outs]
    state = dict(zip(floats, outs))
    carried_grads = [_typed(state[j], ctx.O(j)) if j in state else None for j in range(len(carried))]
    for c, g in zip(wanted, outs[len(floats):]):
        ctx.capture_grads[c] = _typed(g, b.value(c))
    rest = iter(outs[len(floats) + len(wanted):])
    scan_grads = [_typed(next(rest), x) if want else None for _, x, _, _, want in scanned_in]
    return carried_grads, scan_grads


def _unless_empty(b: GraphBuilder, stack: Value, inputs: list[Value], passthrough: list[Value],
                  dtypes: list[int], attrs: dict) -> list[Value]:
    """``Scan(inputs, **attrs)``, or ``passthrough`` (its initial states) when ``stack`` has no iteration."""
    names = [b.fresh("scan_grad") for _ in passthrough]
    run = helper.make_graph(
        [helper.make_node("Scan", [v.name for v in inputs], names, name=b.fresh("n_Scan"), **attrs)],
        b.fresh("iterations"), [], [helper.make_tensor_value_info(n, t, None) for n, t in zip(names, dtypes)])
    aliases = [b.fresh(f"{v.name}_kept") for v in passthrough]
    skip = helper.make_graph(
        [helper.make_node("Identity", [v.name], [a], name=b.fresh("n_Identity")) for v, a in zip(passthrough, aliases)],
        b.fresh("no_iteration"), [], [helper.make_tensor_value_info(a, t, None) for a, t in zip(aliases, dtypes)])
    count = b.op("Gather", [b.op("Shape", [stack]), b.const(0, onnx.TensorProto.INT64)], axis=0)
    empty = b.op("Equal", [count, b.const(0, onnx.TensorProto.INT64)])
    outs = b.op("If", [empty], outputs=len(passthrough), then_branch=skip, else_branch=run)
    return outs if isinstance(outs, list) else [outs]


def _set_graph_attr(node: onnx.NodeProto, name: str, graph: onnx.GraphProto) -> None:
    for a in node.attribute:
        if a.name == name:
            a.g.CopyFrom(graph)
            return
    node.attribute.append(helper.make_attribute(name, graph))


def _extend_ints(node: onnx.NodeProto, name: str, count: int) -> None:
    """Append ``count`` zeros (axis 0, forward direction) to an ints attribute, if the node sets it."""
    for a in node.attribute:
        if a.name == name:
            a.ints.extend([0] * count)


def _ints_attr(ctx: GradContext, name: str, count: int) -> list[int]:
    values = ctx.attr(name)
    return [0] * count if values is None else [int(v) for v in values]


@register("Scan")
def _scan(ctx: GradContext):
    node, b = ctx.node, ctx.b
    graph = next(a.g for a in node.attribute if a.name == "body")
    m = int(ctx.attr("num_scan_inputs"))
    n = len(node.input) - m
    k = len(graph.output) - n
    body = _Body(b, graph)
    in_axes, in_dirs = _ints_attr(ctx, "scan_input_axes", m), _ints_attr(ctx, "scan_input_directions", m)
    out_axes, out_dirs = _ints_attr(ctx, "scan_output_axes", k), _ints_attr(ctx, "scan_output_directions", k)
    carried = [(graph.input[j].name, graph.output[j].name) for j in range(n)]
    scanned_out = [(graph.output[n + j].name, ctx.GO(n + j), out_axes[j], out_dirs[j]) for j in range(k)]
    scanned_in = [(graph.input[n + j].name, ctx.I(n + j), in_axes[j], in_dirs[j], ctx.needs(n + j))
                  for j in range(m)]
    carried_grads, scan_grads = _reverse_scan(ctx, body, carried=carried, scanned_out=scanned_out,
                                                 scanned_in=scanned_in)
    return [g if ctx.needs(j) else None for j, g in enumerate(carried_grads)] + scan_grads


@register("Loop")
def _loop(ctx: GradContext):
    node, b = ctx.node, ctx.b
    graph = next(a.g for a in node.attribute if a.name == "body")
    n = len(node.input) - 2
    k = len(graph.output) - 1 - n
    body = _Body(b, graph)
    carried = [(graph.input[2 + j].name, graph.output[1 + j].name) for j in range(n)]
    # Loop scan outputs are stacked along axis 0 in iteration order.
    scanned_out = [(graph.output[1 + n + j].name, ctx.GO(n + j), 0, 0) for j in range(k)]
    carried_grads, _ = _reverse_scan(ctx, body, carried=carried, scanned_out=scanned_out, scanned_in=[],
                                        always_saved=graph.input[0].name)
    return [None, None] + [g if ctx.needs(2 + j) else None for j, g in enumerate(carried_grads)]
