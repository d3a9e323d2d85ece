"""The value of a graph value computed from constants only, found while the graph is being built.

TensorFlow programs size things from tensors they compute out of constants: keras.io's graph attention layer
takes ``num_segments=tf.reduce_max(edges[:, 0]) + 1`` and ``tf.repeat(sums, tf.math.bincount(ids))`` of an
edge list the model holds as an attribute. TensorFlow runs such sizes at run time; here a size must be known
while building, and it is: every node the value depends on reads constants only, so ONNX's reference
evaluator computes it now. A value that depends on an input, a Variable or a random draw has no such value
(``None``), and neither has one behind more than ``MAX_NODES`` nodes or ``MAX_ELEMENTS`` constant elements.

Example:
    >>> import numpy as np
    >>> from onnxforge.graph import GraphBuilder
    >>> b = GraphBuilder()
    >>> ids = b.const(np.array([0, 0, 2, 1], np.int64))
    >>> top = b.op("ReduceMax", [ids], keepdims=0)
    >>> int(known_value(top))
    2
"""
from __future__ import annotations

__all__ = ["known_value", "MAX_NODES", "MAX_ELEMENTS"]

import weakref
from typing import Any

import numpy as np
import onnx

from . import protos

MAX_NODES = 256            # the evaluator is Python: sizes, counts and small index arithmetic only
MAX_ELEMENTS = 1 << 20     # elements of the constants read

# Ops whose output is not a function of their inputs' values.
_NOT_PURE = frozenset({"RandomUniform", "RandomNormal", "RandomUniformLike", "RandomNormalLike", "Multinomial",
                       "Bernoulli"})

# Per builder: how many of its nodes are indexed, and the producer node of each output name.
_PRODUCERS: weakref.WeakKeyDictionary[Any, tuple[int, dict[str, onnx.NodeProto]]] = weakref.WeakKeyDictionary()


def _producers(b: Any) -> dict[str, onnx.NodeProto]:
    done, index = _PRODUCERS.get(b, (0, {}))
    for node in b.nodes[done:]:
        for out in node.output:
            index[out] = node
    _PRODUCERS[b] = (len(b.nodes), index)
    return index


def known_value(value: Any) -> np.ndarray | None:
    """``value``'s array if it is computed from constants only (see the module docstring), else ``None``."""
    b = getattr(value, "builder", None)
    if b is None or getattr(value, "dtype", None) is None:
        return None
    direct = b.constant_value(value.name) if b.is_fixed(value.name) else None
    if direct is not None:
        return direct
    producers = _producers(b)
    needed: dict[int, onnx.NodeProto] = {}
    initializers: dict[str, onnx.TensorProto] = {}
    elements = 0
    stack, seen = [value.name], set()
    while stack:
        name = stack.pop()
        if not name or name in seen:
            continue
        seen.add(name)
        if name in b.initializers:
            if not b.is_fixed(name):
                return None   # an input's default (state a run may override)
            initializers[name] = b.initializers[name]
            elements += int(np.prod(initializers[name].dims, dtype=np.int64))
            continue
        node = producers.get(name)
        if node is None or node.op_type in _NOT_PURE or any(a.type in (onnx.AttributeProto.GRAPH,
                                                                       onnx.AttributeProto.GRAPHS)
                                                            for a in node.attribute):
            return None   # a graph input, a Variable's state, a draw, or a control-flow body
        needed[id(node)] = node
        if len(needed) > MAX_NODES or elements > MAX_ELEMENTS:
            return None
        stack.extend(node.input)
    order = [n for n in b.nodes if id(n) in needed]
    graph = protos.graph(order, "fold", [], [protos.value_info(value.name, value.dtype, None)],
                         initializer=list(initializers.values()))
    from .opset import ir_version_for

    model = protos.model(graph, b.opset, ir_version=ir_version_for(b.opset))
    from onnx.reference import ReferenceEvaluator

    try:
        return np.asarray(ReferenceEvaluator(model).run(None, {})[0])
    except Exception:   # an op the reference evaluator lacks: the value stays unknown, as before
        return None
