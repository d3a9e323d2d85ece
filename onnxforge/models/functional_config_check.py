"""The shape of a functional model's config, checked before any layer is rebuilt from it.

A config may come from anyone (``model_from_json``, ``Model.from_config``, ``deserialize_keras_object``, a
``.keras`` file). Rebuilding one trusts its structure: ``inbound_nodes`` as a list of ``{"args", "kwargs"}``,
``keras_history`` as ``[layer name, node index, tensor index]``, ``input_layers`` as such triples. A string
where a list is expected was iterated character by character (``input_layers: "abc"`` recursed until Python's
limit), a float where a list is expected, an unknown layer name or a history of the wrong length failed as a
bare ``TypeError`` / ``KeyError`` / ``IndexError`` naming neither the key nor the value. Each is now a
:class:`ConfigStructureError` naming the config path and the value received.

Example:
    >>> check_functional_config({"layers": [], "input_layers": "x", "output_layers": []})
    Traceback (most recent call last):
    ...
    onnxforge.models.functional_config_check.ConfigStructureError: Functional model config: \
config['input_layers'] must be a [layer_name, node_index, tensor_index] triple, or a list or dict of them. \
Received: 'x' (str)
"""
from __future__ import annotations

__all__ = ["ConfigStructureError", "check_functional_config", "layer_failure", "brief"]

from typing import Any

#: Inputs and outputs nest (lists and dicts of tensors) far less deep than this in any real model.
_MAX_STRUCTURE_DEPTH = 64


class ConfigStructureError(ValueError, TypeError):
    """A functional config of the wrong structure. A ``ValueError`` (onnxforge's refusal of bad input) and a
    ``TypeError`` (what ``keras_objects.deserialize`` raises for an entry of the wrong type)."""


def brief(value: Any) -> str:
    text = repr(value)
    return f"{text[:120]}... ({type(value).__name__})" if len(text) > 120 else f"{text} ({type(value).__name__})"


def _refuse(path: str, expected: str, value: Any) -> ConfigStructureError:
    return ConfigStructureError(f"Functional model config: {path} must be {expected}. Received: {brief(value)}")


def _is_index(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _check_history(history: Any, path: str, names: set[str]) -> None:
    if not (isinstance(history, list) and len(history) == 3 and isinstance(history[0], str)
            and _is_index(history[1]) and _is_index(history[2])):
        raise _refuse(path, "a [layer_name, node_index, tensor_index] triple of a string and two integers >= 0",
                      history)
    if history[0] not in names:
        raise _refuse(path, f"a triple naming one of the config's layers ({sorted(names)[:20]})", history)


def _check_arguments(x: Any, path: str, names: set[str], depth: int = 0) -> None:
    """The tensors (``__keras_tensor__`` dicts) inside a node's arguments, wherever they nest."""
    if depth > _MAX_STRUCTURE_DEPTH:
        raise _refuse(path, f"nested at most {_MAX_STRUCTURE_DEPTH} deep", "...")
    if isinstance(x, dict):
        if x.get("class_name") == "__keras_tensor__":
            inner = x.get("config")
            if not isinstance(inner, dict):
                raise _refuse(f"{path}['config']", "a dict holding 'keras_history'", inner)
            _check_history(inner.get("keras_history"), f"{path}['config']['keras_history']", names)
            return
        for key, value in x.items():
            _check_arguments(value, f"{path}[{key!r}]", names, depth + 1)
    elif isinstance(x, list):
        for i, value in enumerate(x):
            _check_arguments(value, f"{path}[{i}]", names, depth + 1)


def _check_endpoints(x: Any, path: str, names: set[str], depth: int = 0) -> None:
    """``input_layers`` / ``output_layers``: a triple, or lists and dicts of triples."""
    expected = "a [layer_name, node_index, tensor_index] triple, or a list or dict of them"
    if depth > _MAX_STRUCTURE_DEPTH:
        raise _refuse(path, f"nested at most {_MAX_STRUCTURE_DEPTH} deep", "...")
    if isinstance(x, list) and len(x) == 3 and isinstance(x[0], str):
        _check_history(x, path, names)
    elif isinstance(x, list):
        for i, item in enumerate(x):
            _check_endpoints(item, f"{path}[{i}]", names, depth + 1)
    elif isinstance(x, dict):
        for key, item in x.items():
            _check_endpoints(item, f"{path}[{key!r}]", names, depth + 1)
    else:
        raise _refuse(path, expected, x)


def check_functional_config(config: Any) -> None:
    """Raise :class:`ConfigStructureError` naming the path and value of the first entry of the wrong
    structure in a functional config (``layers``, their ``name`` and ``inbound_nodes``, ``input_layers``,
    ``output_layers``); the layers' own configs are checked as each layer is rebuilt."""
    if not isinstance(config, dict):
        raise _refuse("the config", "a dict", config)
    layers = config.get("layers")
    if not isinstance(layers, list):
        raise _refuse("config['layers']", "a list of serialized layers", layers)
    names: set[str] = set()
    for i, entry in enumerate(layers):
        where = f"config['layers'][{i}]"
        if not isinstance(entry, dict):
            raise _refuse(where, "a serialized layer (a dict)", entry)
        inner = entry.get("config")
        name = entry.get("name") or (inner.get("name") if isinstance(inner, dict) else None)
        if name is None:      # the layer takes a name of its own, which no node of the config can name
            continue
        if not isinstance(name, str):
            raise _refuse(f"{where}['name']", "the layer's name, a string", name)
        if name in names:
            raise _refuse(f"{where}['name']", "unique among the config's layers", name)
        names.add(name)
    for i, entry in enumerate(layers):
        nodes = entry.get("inbound_nodes")
        where = f"config['layers'][{i}]['inbound_nodes']"
        if nodes is None:
            continue
        if not isinstance(nodes, list):
            raise _refuse(where, "a list of nodes ({'args': [...], 'kwargs': {...}})", nodes)
        for k, node in enumerate(nodes):
            if not isinstance(node, dict) or not isinstance(node.get("args"), list) \
                    or not isinstance(node.get("kwargs", {}), dict):
                raise _refuse(f"{where}[{k}]", "a node {'args': [...], 'kwargs': {...}}", node)
            _check_arguments(node["args"], f"{where}[{k}]['args']", names)
            _check_arguments(node.get("kwargs", {}), f"{where}[{k}]['kwargs']", names)
    for key in ("input_layers", "output_layers"):
        _check_endpoints(config.get(key), f"config[{key!r}]", names)


def layer_failure(index: int, entry: dict, error: BaseException, model: str = "Functional") -> BaseException:
    """What rebuilding ``config['layers'][index]`` raised, naming that layer: a layer's config of the wrong
    structure (``kernel_initializer: {}``) fails inside its ``from_config`` as a ``KeyError`` or
    ``AttributeError`` naming no layer (``model``: ``"Functional"`` or ``"Sequential"``). Its message keeps
    the original error's."""
    inner = entry.get("config")
    name = entry.get("name") or (inner.get("name") if isinstance(inner, dict) else None)
    what = f"config['layers'][{index}] (layer {name!r}, class {entry.get('class_name')!r})"
    if isinstance(error, RecursionError):
        reason = "it nests too deeply"
    else:
        reason = f"{type(error).__name__}: {error}"
    return ConfigStructureError(f"{model} model config: {what} could not be rebuilt: {reason}")
