"""User-defined gradients: a forward subgraph the reverse walk treats as opaque, and the function that gives its
inputs' gradients from its outputs' (``keras.ops.custom_gradient``, ``tf.custom_gradient``).

The forward nodes stay in the graph (they compute the outputs) and end in one ``Identity`` per output, the
*boundary*. ``register`` records the boundary on the builder; the engine (and the tapes' reach analyses, through
``opaque``) then sees a single stand-in node from the recorded inputs to the boundary outputs, so nothing inside
the region is differentiated and no gradient reaches a value the region merely captured. When the walk reaches
the stand-in it calls the record's ``backward`` with graph values of the outputs' gradients (zeros for an
output nothing downstream uses, as TensorFlow passes) and adds what it returns to the inputs' gradients.

Example:
    >>> import numpy as np, onnx
    >>> from onnxforge.graph import GraphBuilder
    >>> from onnxforge.autodiff import backward
    >>> b = GraphBuilder()
    >>> x = b.input("x", onnx.TensorProto.FLOAT, (3,))
    >>> y = b.op("Identity", [b.op("Round", [x])])       # forward: round, gradient: identity
    >>> register(b, CustomGradient([x.name], [y.name], lambda grads: grads))
    >>> sorted(backward(b, b.op("ReduceSum", [y], keepdims=0), ["x"]))
    ['x']
"""
from __future__ import annotations

__all__ = ["CustomGradient", "register", "opaque", "STAND_IN_OP", "records"]

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import onnx

from ..graph import GraphBuilder, Value, protos

#: The op type of the stand-in node: only the engine's node lists hold it, never a graph.
STAND_IN_OP = "onnxforge.CustomGradient"


@dataclass(eq=False)
class CustomGradient:
    """One opaque region: the values gradients reach (``inputs``), the boundary outputs, and ``backward``:
    the outputs' gradients (one graph value each, in order) -> one gradient (or ``None``) per input."""

    inputs: list[str]
    outputs: list[str]
    backward: Callable[[list[Value]], Sequence[Value | None]]


def records(b: GraphBuilder) -> dict[str, CustomGradient]:
    """Boundary output name -> its region, for ``b`` (empty when none was registered)."""
    found = getattr(b, "custom_gradients", None)
    if found is None:
        found = b.custom_gradients = {}
    return found


def register(b: GraphBuilder, record: CustomGradient) -> None:
    """Mark ``record.outputs`` (each the output of an ``Identity`` already in ``b``) as one opaque region."""
    table = records(b)
    for name in record.outputs:
        table[name] = record


def opaque(b: GraphBuilder, nodes: list[onnx.NodeProto]) -> list[onnx.NodeProto]:
    """``nodes`` with each region's boundary Identities replaced by one stand-in node (inputs -> outputs), at
    the first boundary's place; the region's inner nodes stay (they no longer lead to its outputs)."""
    table = getattr(b, "custom_gradients", None)
    if not table:
        return nodes
    out: list[onnx.NodeProto] = []
    placed: set[int] = set()
    for node in nodes:
        record = table.get(node.output[0]) if node.op_type == "Identity" and node.output else None
        if record is None:
            out.append(node)
            continue
        if id(record) in placed:
            continue
        placed.add(id(record))
        out.append(protos.node(STAND_IN_OP, record.inputs, record.outputs, name=f"custom_gradient:{node.name}"))
    return out


def record_of(b: GraphBuilder, node: onnx.NodeProto) -> CustomGradient:
    """The region a stand-in node stands for."""
    return records(b)[node.output[0]]


def stand_in_grads(b: GraphBuilder, node: onnx.NodeProto, output_grads: list[Value | None]) -> list[Value | None]:
    """The gradients of a stand-in's inputs: the region's ``backward`` on its outputs' gradients."""
    record = record_of(b, node)
    upstream = [g if g is not None else b.zeros_like(b.value(o)) for o, g in zip(node.output, output_grads)]
    grads = list(record.backward(upstream))
    if len(grads) != len(record.inputs):
        raise ValueError(f"A custom gradient function returned {len(grads)} gradients for {len(record.inputs)} "
                         f"differentiable inputs.")
    return grads
