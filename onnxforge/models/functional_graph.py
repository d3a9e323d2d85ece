"""The layer graph of a functional model: node discovery, Keras's depth ordering, evaluation, config.

``FunctionalGraph`` walks back from the outputs to the inputs (Keras 3's ``map_graph``), so layer order,
weight order and node indices match Keras's. ``run`` evaluates the nodes deepest-first with a callback, so
one walk serves tracing (graph ``Value``s) and shape inference (``KerasTensor`` specs).
"""
from __future__ import annotations

__all__ = ["FunctionalGraph", "serialize_graph", "deserialize_graph", "pack_as", "detach_inputs"]

import collections
from collections.abc import Callable
from typing import Any

from ..layers.base import Layer
from ..layers.input_layer import InputLayer
from ..layers.keras_tensor import KerasTensor, Node, flatten, map_structure


class FunctionalGraph:
    """The nodes between ``inputs`` and ``outputs`` (flat lists of KerasTensors), ordered as Keras does."""

    def __init__(self, inputs: list[KerasTensor], outputs: list[KerasTensor], owner: str = "model"):
        for t in [*inputs, *outputs]:
            if not isinstance(t, KerasTensor):
                raise TypeError(f"All `inputs` and `outputs` of model {owner!r} must be KerasTensors (from "
                                f"keras.Input and layer calls). Received: {t!r} of type {type(t).__name__}")
        for t in inputs:
            layer = t._keras_history.layer if t._keras_history else None
            if not isinstance(layer, InputLayer):
                raise ValueError(f"Model {owner!r}: every input must come from `Input(...)`. Received: {t!r}, "
                                 f"produced by layer {getattr(layer, 'name', None)!r}.")
        self.inputs, self.outputs = list(inputs), list(outputs)
        nodes, layer_index = self._build_map()
        self._depths(nodes, layer_index)
        self._check_connected(owner)

    # ----------------------------------------------------------------- discovery
    def _build_map(self) -> tuple[list[Node], dict[int, int]]:
        finished: set[int] = set()
        in_progress: set[int] = set()
        ordered: list[Node] = []
        layer_index: dict[int, int] = {}
        input_ids = {id(t) for t in self.inputs}

        def visit(tensor: KerasTensor) -> None:
            layer, node_index, _ = tensor._keras_history
            node = layer._inbound_nodes[node_index]
            if id(node) in finished:
                return
            if id(node) in in_progress:
                raise ValueError(f"Tensor {tensor!r} from layer '{layer.name}' is part of a cycle.")
            layer_index.setdefault(id(layer), len(layer_index))
            in_progress.add(id(node))
            if not node.is_input and id(tensor) not in input_ids:
                for t in node.input_tensors:
                    visit(t)
            finished.add(id(node))
            in_progress.discard(id(node))
            ordered.append(node)

        for t in self.outputs:
            visit(t)
        return ordered, layer_index

    def _depths(self, nodes: list[Node], layer_index: dict[int, int]) -> None:
        node_depth: dict[int, int] = {}
        layer_depth: dict[int, int] = {}
        by_id = {id(n): n for n in nodes}
        layers = {id(n.layer): n.layer for n in nodes}
        for node in reversed(nodes):
            depth = node_depth.setdefault(id(node), 0)
            # A shared layer sits at its deepest use, so it is evaluated after all its inputs exist.
            depth = max(depth, layer_depth.get(id(node.layer), 0))
            layer_depth[id(node.layer)] = depth
            node_depth[id(node)] = depth
            for parent in node.parent_nodes:
                node_depth[id(parent)] = max(depth + 1, node_depth.get(id(parent), 0))
                by_id.setdefault(id(parent), parent)
        for t in self.inputs:
            layer = t._keras_history.layer
            if id(layer) not in layer_depth:
                layer_depth[id(layer)] = 0
                layer_index[id(layer)] = -1
                layers[id(layer)] = layer
                node = layer._inbound_nodes[0]
                node_depth[id(node)] = 0
                by_id[id(node)] = node
        self.nodes_by_depth: dict[int, list[Node]] = collections.defaultdict(list)
        for nid, depth in node_depth.items():
            self.nodes_by_depth[depth].append(by_id[nid])
        self.depth_keys = sorted(self.nodes_by_depth, reverse=True)
        by_layer_depth: dict[int, list[Layer]] = collections.defaultdict(list)
        for lid, depth in layer_depth.items():
            by_layer_depth[depth].append(layers[lid])
        self.layers: list[Layer] = []
        for depth in sorted(by_layer_depth, reverse=True):
            self.layers.extend(sorted(by_layer_depth[depth], key=lambda layer: layer_index[id(layer)]))
        self.node_ids = set(node_depth)

    def _check_connected(self, owner: str) -> None:
        computable = {id(t) for t in self.inputs}
        seen_layers: list[str] = []
        for depth in self.depth_keys:
            for node in self.nodes_by_depth[depth]:
                if node.is_input and not all(id(t) in computable for t in node.output_tensors):
                    raise ValueError(f"Graph disconnected in model {owner!r}: cannot find parent for tensor "
                                     f"{node.output_tensors[0]!r} at layer '{node.layer.name}': it is an Input "
                                     "that is not among the model's inputs.")
                for t in node.input_tensors:
                    if id(t) not in computable:
                        raise ValueError(f"Graph disconnected in model {owner!r}: cannot find parent for tensor "
                                         f"{t!r} at layer '{node.layer.name}'. The following previous layers were "
                                         f"accessed without issue: {seen_layers}")
                seen_layers.append(node.layer.name)
                computable.update(id(t) for t in node.output_tensors)

    # ----------------------------------------------------------------- queries
    def nodes(self) -> list[Node]:
        """All nodes, in evaluation order (deepest first)."""
        return [n for d in self.depth_keys for n in self.nodes_by_depth[d]]

    def layer_nodes(self, layer: Layer) -> list[Node]:
        """``layer``'s nodes that belong to this graph, in creation order."""
        return [n for n in layer._inbound_nodes if id(n) in self.node_ids]

    def node_index_in_graph(self, layer: Layer, node_index: int) -> int:
        """A node index counted among this graph's nodes of ``layer`` only (what configs store)."""
        return sum(1 for n in layer._inbound_nodes[:node_index] if id(n) in self.node_ids)

    def is_sequential_like(self) -> bool:
        """Keras's rule for the summary: one single-input node per depth and no shared layers."""
        members = []
        for depth in self.depth_keys:
            level = self.nodes_by_depth[depth]
            if len(level) > 1 or (len(level) == 1 and len(level[0].input_tensors) > 1):
                return False
            members.extend(level)
        ids = {id(n) for n in members}
        return all(sum(1 for n in layer._inbound_nodes if id(n) in ids) <= 1 for layer in self.layers)

    # ----------------------------------------------------------------- evaluation
    def run(self, values: list, call: Callable[[Node, tuple, dict], Any]) -> list:
        """Evaluate the graph: ``values`` for the inputs, ``call(node, args, kwargs)`` per node."""
        if len(values) != len(self.inputs):
            raise ValueError(f"Expected {len(self.inputs)} input(s), received {len(values)}.")
        known: dict[int, Any] = {id(t): v for t, v in zip(self.inputs, values)}

        def lookup(x: Any) -> Any:
            return known[id(x)] if isinstance(x, KerasTensor) else x

        for depth in self.depth_keys:
            for node in self.nodes_by_depth[depth]:
                if node.is_input:
                    continue
                out = call(node, map_structure(lookup, node.args), map_structure(lookup, node.kwargs))
                for spec, value in zip(flatten(node.outputs), flatten(out)):
                    if isinstance(spec, KerasTensor):
                        known[id(spec)] = value
        return [known[id(t)] for t in self.outputs]


def detach_inputs(inputs: Any, outputs: Any) -> tuple[Any, Any]:
    """Keras's ``clone_graph_nodes``: a model may start from intermediate tensors (``Model(encoded, preds)``
    where ``encoded`` came out of preprocessing layers). Each such input gets a fresh ``Input`` of its shape
    and dtype (named ``<tensor name>CLONE``), and the layer calls between the inputs and ``outputs`` are made
    again on it, so the new model holds only those layers (shared with the original graph).

    Returns:
        ``(inputs, outputs)`` in the structures given; unchanged when every input comes from ``Input(...)``.
    """
    from ..layers.input_layer import Input

    flat = flatten(inputs)
    if all(not isinstance(t, KerasTensor) or t._keras_history is None or
           isinstance(t._keras_history.layer, InputLayer) for t in flat):
        return inputs, outputs
    mapping: dict[int, Any] = {}
    for t in flat:
        layer = t._keras_history.layer if isinstance(t, KerasTensor) and t._keras_history else None
        if isinstance(t, KerasTensor) and not isinstance(layer, InputLayer):
            mapping[id(t)] = Input(batch_shape=tuple(t.shape), dtype=t.dtype, name=f"{t.name}CLONE")
    order: list[Node] = []
    seen: set[int] = set()

    def visit(t: KerasTensor) -> None:
        if id(t) in mapping or t._keras_history is None:
            return
        layer, node_index, _ = t._keras_history
        node = layer._inbound_nodes[node_index]
        if id(node) in seen:
            return
        seen.add(id(node))
        for parent in node.input_tensors:
            visit(parent)
        order.append(node)

    for t in flatten(outputs):
        if isinstance(t, KerasTensor):
            visit(t)

    def swap(x: Any) -> Any:
        return mapping.get(id(x), x) if isinstance(x, KerasTensor) else x

    for node in order:
        if node.is_input or not any(id(t) in mapping for t in node.input_tensors):
            continue   # upstream of the new inputs (or another Input's branch): the original node serves
        out = node.layer(*map_structure(swap, node.args), **map_structure(swap, node.kwargs))
        for old, new in zip(flatten(node.outputs), flatten(out)):
            if isinstance(old, KerasTensor):
                mapping[id(old)] = new
    return pack_as(inputs, [swap(t) for t in flat]), pack_as(outputs, [swap(t) for t in flatten(outputs)])


def pack_as(structure: Any, flat: list) -> Any:
    """``flat`` values (in ``flatten`` order: dict values by sorted key) put back into ``structure``'s shape.

    Example:
        >>> pack_as({"y": 0, "x": 0}, [1, 2])
        {'y': 2, 'x': 1}
    """
    it = iter(flat)

    def fill(s: Any) -> Any:
        if isinstance(s, dict):
            filled = {k: fill(s[k]) for k in sorted(s)}
            return {k: filled[k] for k in s}
        if isinstance(s, (list, tuple)):
            items = [fill(i) for i in s]
            return type(s)(*items) if hasattr(s, "_fields") else type(s)(items)   # a namedtuple takes fields
        return next(it)

    return fill(structure)


# --------------------------------------------------------------------- config
def _tensor_config(graph: FunctionalGraph, t: Any) -> Any:
    if not isinstance(t, KerasTensor):
        return t
    layer, node_index, tensor_index = t._keras_history
    return {"class_name": "__keras_tensor__",
            "config": {"shape": list(t.shape), "dtype": t.dtype,
                       "keras_history": [layer.name, graph.node_index_in_graph(layer, node_index), tensor_index]}}


def _history(graph: FunctionalGraph, t: KerasTensor) -> list:
    layer, node_index, tensor_index = t._keras_history
    return [layer.name, graph.node_index_in_graph(layer, node_index) + _own_nodes(layer), tensor_index]


def _own_nodes(layer: Layer) -> int:
    """1 for a nested functional model: in ``input_layers`` / ``output_layers`` Keras 3 counts its calls after
    the node a functional model has of its own (inputs to outputs; Keras's ``node_reindexing_map`` starts it
    at 1, and ``functional_from_config`` subtracts 1 again), which onnxforge's models do not have. Tensors in
    ``inbound_nodes`` do not count it (``serialize_node`` drops it as outside the outer model). Sequential is
    not a functional model in Keras 3, so it counts from 0 everywhere."""
    from .sequential import Sequential

    return int(getattr(layer, "_graph", None) is not None and not isinstance(layer, Sequential))


def serialize_graph(graph: FunctionalGraph, inputs_struct: Any, outputs_struct: Any) -> dict:
    """Keras 3's functional config body: ``layers`` with ``inbound_nodes``, ``input_layers``, ``output_layers``."""
    from ..layers.serialization import serialize

    layers = []
    for layer in graph.layers:
        entry = serialize(layer)
        entry["name"] = layer.name
        entry["inbound_nodes"] = [
            {"args": [_to_json(graph, a) for a in node.args],
             "kwargs": {k: _to_json(graph, v) for k, v in node.kwargs.items()}}
            for node in graph.layer_nodes(layer) if not node.is_input]
        layers.append(entry)
    return {"layers": layers,
            "input_layers": map_structure(lambda t: _history(graph, t), _as_list_struct(inputs_struct)),
            "output_layers": map_structure(lambda t: _history(graph, t), _as_list_struct(outputs_struct))}


def _to_json(graph: FunctionalGraph, x: Any) -> Any:
    out = map_structure(lambda t: _tensor_config(graph, t), x)
    return list(out) if isinstance(out, tuple) else out


def _as_list_struct(struct: Any) -> Any:
    return list(struct) if isinstance(struct, tuple) else struct


def _is_history(x: Any) -> bool:
    return isinstance(x, list) and len(x) == 3 and isinstance(x[0], str) and all(isinstance(i, int) for i in x[1:])


def deserialize_graph(config: dict, custom_objects: dict | None = None) -> tuple[Any, Any]:
    """Recreate the layers of a functional config and call them; returns ``(inputs, outputs)`` structures."""
    from ..layers.serialization import deserialize
    from .functional_config_check import ConfigStructureError, check_functional_config, layer_failure

    check_functional_config(config)
    created: dict[str, Layer] = {}
    pending: dict[str, list] = {}
    for i, entry in enumerate(config["layers"]):
        try:
            layer = deserialize(entry, custom_objects)
        except (TypeError, KeyError, AttributeError, IndexError, RecursionError) as e:
            raise layer_failure(i, entry, e) from None
        name = entry.get("name") or layer.name
        created[name] = layer
        pending[name] = list(entry.get("inbound_nodes") or [])

    class _NotReady(Exception):
        pass

    def tensor(x: Any) -> Any:
        if isinstance(x, dict) and x.get("class_name") == "__keras_tensor__":
            name, node_index, tensor_index = x["config"]["keras_history"]
            layer = created[name]
            if node_index >= len(layer._inbound_nodes):
                raise _NotReady
            outputs = layer._inbound_nodes[node_index].output_tensors
            if tensor_index >= len(outputs):
                raise ConfigStructureError(f"Functional model config: keras_history {[name, node_index, tensor_index]} "
                                           f"names output {tensor_index} of layer {name!r}, which has {len(outputs)}")
            return outputs[tensor_index]
        if isinstance(x, list):
            return [tensor(i) for i in x]
        if isinstance(x, dict):
            return {k: tensor(v) for k, v in x.items()}
        return x

    # Shared layers may need a node of a layer listed later: loop until nothing is left (Keras's queue).
    while any(pending.values()):
        progress = False
        for name, queue in pending.items():
            while queue:
                try:
                    args = [tensor(a) for a in queue[0]["args"]]
                    kwargs = {k: tensor(v) for k, v in queue[0].get("kwargs", {}).items()}
                except _NotReady:
                    break
                created[name](*args, **kwargs)
                queue.pop(0)
                progress = True
        if not progress:
            raise ValueError("Could not rebuild the model graph from its config: some layer inputs are never produced.")

    def history_to_tensor(h: list) -> KerasTensor:
        name, node_index, tensor_index = h
        layer = created[name]
        index = node_index - _own_nodes(layer)
        if not 0 <= index < len(layer._inbound_nodes) or \
                tensor_index >= len(layer._inbound_nodes[index].output_tensors):
            raise ConfigStructureError(f"Functional model config: input_layers / output_layers name {h}, but layer "
                                       f"{name!r} has {len(layer._inbound_nodes)} nodes in the config")
        return layer._inbound_nodes[index].output_tensors[tensor_index]

    def structure(x: Any) -> Any:
        if _is_history(x):
            return history_to_tensor(x)
        if isinstance(x, dict):   # a model built on dicts of inputs / outputs
            return {k: structure(v) for k, v in x.items()}
        return [structure(i) for i in x]

    return structure(config["input_layers"]), structure(config["output_layers"])
