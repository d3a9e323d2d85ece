"""A recorded run's output as a gradient source when the run's own later nodes read the value behind it.

A functional model with an intermediate output (Grad-CAM's ``Model(inputs, [last_conv.output,
model.output])``) returns that tensor through an ``Identity`` or a layout ``Transpose`` (channels-last back
from the channels-first value the convolutions run on), while the rest of the model reads the value before
it. In TensorFlow the returned tensor *is* the one the model goes on with, so ``tape.gradient(logit,
conv_output)`` is the gradient of everything downstream. In the joined ONNX graph the output is a leaf that
nothing reads, and the gradient would be unconnected. ``reroot`` rewires the joined graph so that the
downstream nodes read the source instead: each value on the ``Identity`` / ``Transpose`` chain behind the
source is recomputed from the source by the inverse chain (an exact copy or an inverse transpose), and its
other readers read that copy. The forward values do not change; the gradient now flows through the source.
The one case where this departs from TensorFlow: a single layer call that itself returns ``transpose(v)``
and something else computed from ``v``; TensorFlow's gradient of the second w.r.t. the first is ``None``,
here it is the gradient through ``v`` (the graph cannot tell that transpose from a layout one).

Example:
    >>> import onnx
    >>> from onnx import helper as h
    >>> nodes = [h.make_node("Relu", ["x"], ["v"]), h.make_node("Transpose", ["v"], ["s"], perm=[1, 0]),
    ...          h.make_node("Neg", ["v"], ["y"])]
    >>> [(n.op_type, list(n.input)) for n in reroot(nodes, ["s"])][-1]
    ('Neg', ['s/reroot/0'])
"""
from __future__ import annotations

__all__ = ["reroot"]

from collections.abc import Sequence

import onnx

from ..graph import protos

_LAYOUT_OPS = ("Identity", "Transpose")


def _inverse(node: onnx.NodeProto, source: str, target: str) -> onnx.NodeProto:
    """The node computing ``node``'s input from its output."""
    if node.op_type == "Identity":
        return protos.node("Identity", [source], [target])
    perm = list(next(a.ints for a in node.attribute if a.name == "perm"))
    inverse = [0] * len(perm)
    for i, p in enumerate(perm):
        inverse[p] = i
    return protos.node("Transpose", [source], [target], perm=inverse)


def reroot(nodes: Sequence[onnx.NodeProto], sources: Sequence[str]) -> list[onnx.NodeProto]:
    """``nodes`` (topologically ordered) with the readers of each source's hidden value reading the source.

    Only ``Identity`` and ``Transpose`` chains with a ``perm`` are followed (an exact inverse exists); a
    source computed otherwise is left as it is. Returns the nodes in a topological order.
    """
    nodes = list(nodes)
    producer = {out: n for n in nodes for out in n.output}
    extra: list[onnx.NodeProto] = []
    for source in dict.fromkeys(sources):
        node, current, k = producer.get(source), source, 0
        while node is not None and node.op_type in _LAYOUT_OPS and len(node.input) == 1 and (
                node.op_type == "Identity" or any(a.name == "perm" for a in node.attribute)):
            hidden = node.input[0]
            copy = f"{source}/reroot/{k}"
            k += 1
            extra.append(_inverse(node, current, copy))
            chain_node = node
            for reader in nodes:
                if reader is chain_node:
                    continue
                for i, name in enumerate(reader.input):
                    if name == hidden:
                        reader.input[i] = copy
            node, current = producer.get(hidden), copy
    return _topological(nodes + extra) if extra else nodes


def _topological(nodes: list[onnx.NodeProto]) -> list[onnx.NodeProto]:
    """A stable topological order: each node once every value it reads that a node makes is made."""
    made = {out for n in nodes for out in n.output if out}
    ready: set[str] = set()
    ordered: list[onnx.NodeProto] = []
    pending = list(nodes)
    while pending:
        rest = []
        for n in pending:
            if all(name in ready or name not in made for name in n.input if name):
                ordered.append(n)
                ready.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            raise ValueError("GradientTape: the joined gradient graph has a cycle; this is a bug in onnxforge.")
        pending = rest
    return ordered
