"""``keras.ops`` calls on functional tensors in Keras's ``.keras`` configs, as onnxforge ``OpCall`` layers.

Keras 3 records ``ops.expand_dims(x, -1)`` in a functional model as an operation node: the op's class
(``{"module": "keras.src.ops.numpy", "class_name": "ExpandDims", "config": {"axis": -1}}``), whose config
holds the op's non-tensor arguments, and an inbound node whose ``args`` are the call's tensors and
constants (``Concatenate`` gets one list of tensors, ``Multiply`` a tensor and ``2.0``). onnxforge records the
same call as an ``OpCall`` layer naming the ``keras.ops`` function. ``keras_op_entry_to_opcall`` converts the
first into the second: the class name gives the function (``ExpandDims`` -> ``expand_dims`` in the module of
the same name under ``onnxforge.ops``), the config's entries become keyword arguments, and the call's
arguments keep their order with slots where the tensors go. ``opcall_entry_to_keras_op`` writes an ``OpCall``
back as Keras's node where the split is certain: the op's operand parameters (``x``, ``x1``, ``xs``,
``indices``, ...) lead its signature and go to the call, every other argument is a JSON value and goes to the
config. Other calls stay ``OpCall`` layers (onnxforge reads them; Keras does not). The Python operators (``x + y``, ``x[0]``) have
their own mapping (``layers.operators.keras_op_entry_to_operator``).

Example:
    >>> entry = {"module": "keras.src.ops.numpy", "class_name": "ExpandDims", "name": "expand_dims",
    ...          "config": {"name": "expand_dims", "axis": -1},
    ...          "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__", "config": {}}], "kwargs": {}}]}
    >>> keras_op_entry_to_opcall(entry) is None, entry["class_name"], entry["config"]["op"]
    (True, 'OpCall', 'numpy.expand_dims')
"""
from __future__ import annotations

__all__ = ["keras_op_entry_to_opcall", "opcall_entry_to_keras_op"]

import inspect
import re
from typing import Any

from ... import ops as ops_module
from ...layers.operators import (_SLOT, _decode_arg, _encode_arg, _is_tensor_config, _resolve_op, is_public_op,
                                 op_path)


def _function_name(class_name: str) -> str:
    """Keras's op class name as its ``keras.ops`` function name (``ExpandDims`` -> ``expand_dims``)."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", class_name).lower()


#: Operation classes of ``keras.src.activations.activations`` (what ``keras.activations.relu`` records on a
#: functional tensor), by the onnxforge activation that computes them with the same keyword arguments.
_KERAS_ACTIVATION_CLASSES = {"ReLU": "relu"}
#: ``keras.activations`` functions as the ``keras.ops`` op Keras 3 records when they are applied to a functional
#: tensor (the others record ``nn.<their name>``; ``relu`` records its own class, above).
_ACTIVATION_OPS = {"swish": "nn.silu", "silu": "nn.silu", "tanh": "numpy.tanh", "exponential": "numpy.exp"}


def _resolve(module: str, class_name: str) -> Any:
    name = _function_name(class_name)
    family_name = module.rpartition(".")[2]
    if module == "keras.src.activations.activations":
        from ... import activations

        fn = getattr(activations, _KERAS_ACTIVATION_CLASSES.get(class_name, ""), None)
        return fn if is_public_op(fn) else None
    # keras.src.ops.image -> onnxforge.ops.image; a private family or helper (both come from the file) never
    # resolves: only public ops may be called (is_public_op).
    family = getattr(ops_module, family_name, None) if not family_name.startswith("_") else None
    for where in (family, ops_module):
        fn = getattr(where, name, None) if where is not None else None
        if is_public_op(fn):
            return fn
    return None


def keras_op_entry_to_opcall(entry: dict) -> str | None:
    """Turn, in place, a Keras op node of a functional config into an ``OpCall`` entry; the problem as text if
    onnxforge has no such op or its arguments do not fit (``None`` when converted)."""
    class_name = entry.get("class_name", "")
    config = dict(entry.get("config") or {})
    name = config.pop("name", None) or entry.get("name")
    fn = _resolve(entry.get("module") or "", class_name)
    if fn is None:
        return f"op {name!r}: Keras op {class_name} has no onnxforge counterpart"
    nodes = entry.get("inbound_nodes") or []
    if len(nodes) != 1:
        return f"op {name!r}: Keras op {class_name} called {len(nodes)} times; onnxforge reads one call per op node"
    node = nodes[0]
    tensors: list[Any] = []

    def slot(x: Any) -> Any:
        if _is_tensor_config(x):
            tensors.append(x)
            return dict(_SLOT)
        if isinstance(x, list):
            return [slot(i) for i in x]
        if isinstance(x, dict):
            return {k: slot(v) for k, v in x.items()}
        return x

    args = [slot(a) for a in node.get("args") or []]
    kwargs = {k: slot(v) for k, v in (node.get("kwargs") or {}).items()}
    kwargs.update(config)   # the op's constructor arguments are its function's keyword arguments
    try:
        inspect.signature(fn).bind(*args, **kwargs)
    except TypeError as e:
        return f"op {name!r}: Keras op {class_name}'s arguments do not fit onnxforge's {fn.__name__}: {e}"
    entry.update(module="keras.layers", class_name="OpCall", registered_name=None)
    entry["config"] = {"name": name, "op": op_path(fn), "args": _encode_arg(args),
                       "kwargs": {k: _encode_arg(v) for k, v in kwargs.items()}}
    node["args"], node["kwargs"] = tensors, {}
    return None


#: Parameter names of keras.ops functions that Keras's op classes take in ``call`` (operands), not in ``__init__``.
_OPERANDS = frozenset({"x", "x1", "x2", "x3", "xs", "a", "b", "y", "condition", "indices", "values", "updates",
                       "inputs", "target", "output", "logits", "labels", "kernel", "bias", "weights", "query",
                       "key", "value", "mask", "start_indices", "segment_ids", "data", "images"})
#: Families of keras.ops whose class names are the CamelCase of their function names.
_FAMILIES = ("numpy", "nn", "core", "math", "image")


def _class_name(function: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in function.split("_"))


def _holds_tensor(x: Any) -> bool:
    if _is_tensor_config(x):
        return True
    if isinstance(x, (list, tuple)):
        return any(_holds_tensor(i) for i in x)
    return isinstance(x, dict) and any(_holds_tensor(v) for v in x.values())


def _as_json(x: Any) -> Any:
    """``x`` as plain JSON (tuples as lists), or ``_NOT_JSON``."""
    if isinstance(x, (list, tuple)):
        items = [_as_json(i) for i in x]
        return _NOT_JSON if any(i is _NOT_JSON for i in items) else items
    if _is_tensor_config(x) or x is None or isinstance(x, (bool, int, float, str)):
        return x
    return _NOT_JSON


_NOT_JSON = object()


def opcall_entry_to_keras_op(entry: dict) -> None:
    """Write, in place, an ``OpCall`` entry of a functional config as the op node Keras 3 reads, where the
    split between call operands and constructor arguments is certain (see the module docstring)."""
    config = entry.get("config") or {}
    family, _, name = str(config.get("op", "")).rpartition(".")
    nodes = entry.get("inbound_nodes") or []
    if family not in (*_FAMILIES, "activations") or len(nodes) != 1:
        return
    module, cls = f"keras.src.ops.{family}", _class_name(name)
    try:
        fn = _resolve_op(config["op"])
        tensors = iter(nodes[0].get("args") or [])
        args = _decode_arg(config.get("args") or [], tensors)
        kwargs = {k: _decode_arg(v, tensors) for k, v in (config.get("kwargs") or {}).items()}
        signature = inspect.signature(fn)
        bound = signature.bind(*args, **kwargs)
        if family == "activations":   # keras.activations.swish(x) on a functional tensor: Keras records an op
            # Every argument explicit: the op may default otherwise (ops.gelu's approximate=True).
            bound.apply_defaults()
            if name in _KERAS_ACTIVATION_CLASSES.values():
                module = "keras.src.activations.activations"
                cls = next(c for c, f in _KERAS_ACTIVATION_CLASSES.items() if f == name)
            else:
                family, _, name = _ACTIVATION_OPS.get(name, f"nn.{name}").rpartition(".")
                module, cls = f"keras.src.ops.{family}", _class_name(name)
                fn = _resolve_op(f"{family}.{name}")
                signature = inspect.signature(fn)
                bound = signature.bind(**bound.arguments)
    except (ValueError, TypeError, StopIteration):
        return
    call_args: list[Any] = []
    constructor: dict[str, Any] = {}
    for pname, value in bound.arguments.items():
        kind = signature.parameters[pname].kind
        value = _as_json(value)
        if kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD) or value is _NOT_JSON:
            return
        if pname in _OPERANDS:
            if constructor:   # an operand after a constructor argument: not a Keras call
                return
            call_args.append(value)
        elif _holds_tensor(value):
            return
        else:
            constructor[pname] = value
    entry.update(module=module, class_name=cls, registered_name=cls)
    entry["config"] = {"name": config.get("name"), **constructor}
    nodes[0]["args"], nodes[0]["kwargs"] = call_args, {}
    entry.pop("build_config", None)
