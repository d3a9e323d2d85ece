"""One ONNX ``Scan`` over the time axis, with a Python step function traced into its body.

The body is recorded by a ``GraphBuilder`` that shares the enclosing builder's name space, so body names
never shadow outer names (ONNX scopes are SSA across subgraphs). Values of the enclosing graph used in the
step (weights read through the trace, dropout masks) are outer-scope captures: the Scan gradient rule
(``onnxforge.autodiff.rules.control_flow``) accumulates their gradients across iterations.
"""
from __future__ import annotations

__all__ = ["scan", "body_builder"]

from collections.abc import Callable, Sequence

from ...graph import GraphBuilder, Value

#: ``step(states, inputs) -> (new_states, outputs)`` on body values.
StepFn = Callable[[list[Value], list[Value]], tuple[list[Value], list[Value]]]


def body_builder(parent: GraphBuilder) -> GraphBuilder:
    """A builder for a subgraph of ``parent``: same opset, one shared set of taken names."""
    return parent.body_builder()


def _step_shape(v: Value, drop_axis: int | None) -> tuple | None:
    if v.shape is None:
        return None
    # Symbolic dims keep their names: "batch" in the body is the outer batch, and equal names let the
    # gradient rules see equal shapes at build time (no run-time unbroadcast in the backward body).
    return tuple(v.shape) if drop_axis is None else tuple(d for i, d in enumerate(v.shape) if i != drop_axis)


def _input(sb: GraphBuilder, hint: str, dtype: int | None, shape: tuple | None) -> Value:
    return sb.body_input(hint, dtype, shape)


def scan(b: GraphBuilder, step: StepFn, states: Sequence[Value], sequences: Sequence[Value],
         num_outputs: int, reverse: bool = False, outputs_in_time_order: bool = False,
         name: str = "rnn") -> tuple[list[Value], list[Value]]:
    """Emit ``Scan`` over axis 0 of ``sequences`` (time-major) carrying ``states``.

    Args:
        b: the enclosing builder.
        step: traced once on body values: ``step(states_t, inputs_t) -> (states_t+1, outputs_t)``.
        states: initial loop-carried values.
        sequences: time-major tensors ``(time, ...)``; the body sees one ``(...)`` slice per step.
        num_outputs: how many per-step outputs ``step`` returns (stacked along axis 0).
        reverse: walk the sequences from the last step to the first (outputs stay in walk order).
        outputs_in_time_order: with ``reverse``, stack the outputs in input time order instead (Scan
            prepends them), so a reversed walk needs no flip afterwards.
        name: body graph name.

    Returns:
        ``(final_states, stacked_outputs)``.
    """
    sb = body_builder(b)
    state_in = [_input(sb, f"{name}_state", s.dtype, _step_shape(s, None)) for s in states]
    seq_in = [_input(sb, f"{name}_in", x.dtype, _step_shape(x, 0)) for x in sequences]
    new_states, outputs = step(list(state_in), list(seq_in))
    if len(new_states) != len(states) or len(outputs) != num_outputs:
        raise ValueError(f"{name}: the step returned {len(new_states)} states and {len(outputs)} outputs, "
                         f"expected {len(states)} and {num_outputs}.")
    produced = {o for n in sb.nodes for o in n.output}
    seen: set[str] = set()
    for v, like in zip(list(new_states) + list(outputs), list(states) + [None] * num_outputs):
        if v.name not in produced or v.name in seen:
            # A body output must be computed in the body and listed once: inputs, captures and
            # repeats go through an Identity.
            v = sb.op("Identity", [v], dtype=v.dtype, shape=v.shape)
        if v.dtype is None and like is not None:
            v.dtype = like.dtype
        seen.add(v.name)
        sb.output(v)
    body = sb.to_graph(name=b.fresh(f"{name}_body"))
    attrs = {"scan_input_directions": [int(reverse)] * len(sequences)}
    if num_outputs:  # (an empty ints attribute has no type to infer)
        attrs["scan_output_directions"] = [int(reverse and outputs_in_time_order)] * num_outputs
    outs = b.op("Scan", list(states) + list(sequences), outputs=len(states) + num_outputs, body=body,
                num_scan_inputs=len(sequences), **attrs)
    outs = outs if isinstance(outs, list) else [outs]
    final = outs[:len(states)]
    for f, s in zip(final, states):
        f.dtype, f.shape = s.dtype, s.shape
    stacked = outs[len(states):]
    for y, v in zip(stacked, sb.outputs[len(states):]):
        y.dtype = v.dtype
    return final, stacked
