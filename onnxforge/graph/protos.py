"""Typed constructors and readers of ONNX protos: the one place outside the builder that calls ``onnx.helper``.

Code that assembles protos by hand (gradient rules building subgraph bodies, the ONNX importer rewriting
nodes, the exporters, the model server's analyzer) goes through these functions, so the rest of the
package depends on a small typed surface instead of ``onnx.helper`` / ``onnx.numpy_helper`` as a whole
(``tests/test_structure.py`` enforces it). Element types are ONNX ``TensorProto`` enums; ``np_dtype`` and
``onnx_dtype`` (``graph.value``) convert them.

Example:
    >>> import numpy as np, onnx
    >>> n = node("Add", ["a", "b"], ["c"], name="add")
    >>> f = onnx.TensorProto.FLOAT
    >>> g = graph([n], "g", [value_info("a", f, [2]), value_info("b", f, [2])], [value_info("c", f, [2])])
    >>> onnx.checker.check_model(model(g, opset=21))
    >>> array_from_tensor(tensor_from_array(np.arange(3), "t")).tolist()
    [0, 1, 2]
"""
from __future__ import annotations

__all__ = ["node", "attribute", "attribute_value", "attributes", "tensor", "tensor_from_array", "array_from_tensor",
           "value_info", "sequence_value_info", "tensor_type", "graph", "model", "opset_id", "min_ir_version",
           "subgraph_names"]

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

Dims = Sequence[Any] | None


def node(op_type: str, inputs: Sequence[str], outputs: Sequence[str], name: str | None = None,
         domain: str | None = None, **attrs: Any) -> onnx.NodeProto:
    """A ``NodeProto``; keyword arguments become attributes (``None`` values are left out)."""
    return helper.make_node(op_type, list(inputs), list(outputs), name=name, domain=domain, **attrs)


def attribute(name: str, value: Any) -> onnx.AttributeProto:
    """An ``AttributeProto`` of the type ``value`` implies (ints, floats, strings, a tensor, a graph, lists)."""
    return helper.make_attribute(name, value)


def attribute_value(attr: onnx.AttributeProto) -> Any:
    """The Python value of an attribute (an int, a float, bytes, a tensor proto, a graph proto, a list)."""
    return helper.get_attribute_value(attr)


def attributes(n: onnx.NodeProto) -> dict[str, Any]:
    """``{name: value}`` of every attribute of ``n``."""
    return {a.name: helper.get_attribute_value(a) for a in n.attribute}


def tensor(name: str, elem_type: int, dims: Sequence[int], values: Any) -> onnx.TensorProto:
    """A ``TensorProto`` of ``elem_type`` holding ``values`` (e.g. ConstantOfShape's one-element ``value``)."""
    return helper.make_tensor(name, elem_type, list(dims), values)


def tensor_from_array(array: np.ndarray, name: str | None = None) -> onnx.TensorProto:
    """A ``TensorProto`` holding ``array`` (its dtype and shape)."""
    return numpy_helper.from_array(np.asarray(array), name)


def array_from_tensor(t: onnx.TensorProto) -> np.ndarray:
    """The numpy array a ``TensorProto`` holds (raw or typed data)."""
    return numpy_helper.to_array(t)


def value_info(name: str, elem_type: int, shape: Dims) -> onnx.ValueInfoProto:
    """A tensor ``ValueInfoProto``; ``shape`` ``None`` leaves the rank unknown, a ``str``/``None`` dim is symbolic."""
    return helper.make_tensor_value_info(name, elem_type, None if shape is None else list(shape))


def sequence_value_info(name: str, elem_type: int) -> onnx.ValueInfoProto:
    """A ``ValueInfoProto`` of a sequence of tensors of ``elem_type`` (shape left unknown)."""
    return helper.make_tensor_sequence_value_info(name, elem_type, None)


def tensor_type(elem_type: int, shape: Dims) -> onnx.TypeProto:
    """A tensor ``TypeProto`` (what per-node shape inference and ``Optional`` types take)."""
    return helper.make_tensor_type_proto(elem_type, None if shape is None else list(shape))


def graph(nodes: Iterable[onnx.NodeProto], name: str, inputs: Sequence[onnx.ValueInfoProto],
          outputs: Sequence[onnx.ValueInfoProto], initializer: Sequence[onnx.TensorProto] = (),
          doc_string: str | None = None, value_info: Sequence[onnx.ValueInfoProto] = ()) -> onnx.GraphProto:
    """A ``GraphProto`` (a model's main graph or a control-flow body)."""
    return helper.make_graph(list(nodes), name, list(inputs), list(outputs), initializer=list(initializer),
                             doc_string=doc_string, value_info=list(value_info))


def opset_id(version: int, domain: str = "") -> onnx.OperatorSetIdProto:
    """An ``opset_import`` entry (the default ``ai.onnx`` domain unless told otherwise)."""
    return helper.make_opsetid(domain, version)


def model(g: onnx.GraphProto, opset: int, ir_version: int | None = None, **fields: Any) -> onnx.ModelProto:
    """A ``ModelProto`` of ``g`` importing the ``ai.onnx`` ``opset``; ``fields`` are ModelProto fields
    (``producer_name``, ``doc_string``...). ``ir_version`` defaults to what this onnx release writes."""
    m = helper.make_model(g, opset_imports=[opset_id(opset)], **fields)
    if ir_version is not None:
        m.ir_version = ir_version
    return m


def min_ir_version(opset: int) -> int:
    """The oldest IR version that can carry an ``ai.onnx`` import of ``opset``."""
    return helper.find_min_ir_version_for([opset_id(opset)])


def subgraph_names(node: onnx.NodeProto) -> set[str]:
    """The names ``node``'s subgraphs define, at any depth: their inputs, initializers and node outputs.

    Example:
        >>> g = graph([node("Neg", ["x"], ["y"])], "b", [], [value_info("y", onnx.TensorProto.FLOAT, [])])
        >>> sorted(subgraph_names(node("If", ["c"], ["z"], then_branch=g, else_branch=g)))
        ['y']
    """
    names: set[str] = set()
    for attr in node.attribute:
        for g in ([attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)):
            names.update(i.name for i in g.input)
            names.update(t.name for t in g.initializer)
            for n in g.node:
                names.update(o for o in n.output if o)
                names |= subgraph_names(n)
    return names
