"""Keras 3 model configs <-> onnxforge model configs (the ``config.json`` of a ``.keras`` archive).

onnxforge's layers mirror Keras 3's names, arguments and weight layouts, so a serialized Keras model
(``keras.saving.serialize_keras_object``) is rebuilt by ``onnxforge.layers.deserialize`` once arguments
newer Keras releases add with an inert default (``quantization_config=None``, ``renorm=False``,
``input_axes=None`` on initializers, ...) are dropped; anything else onnxforge does not implement is refused
up front, with one error naming every unsupported layer class and argument. The other direction,
:func:`onnxforge_config_to_keras`, gives configs ``keras.saving.deserialize_keras_object`` accepts.

Legacy configs (the ``model_config`` of a tf.keras / Keras 2 ``.h5`` file: no ``module`` keys, nodes as
``[[name, node_index, tensor_index, kwargs]]``) are first brought to the Keras 3 shape by
:func:`normalize_legacy_config`.

Nothing here runs code from a config: classes come from onnxforge, ``register_keras_serializable`` or
``custom_objects``; serialized Python bytecode (a ``Lambda`` layer's ``__lambda__`` function) is refused
unless the caller passes ``safe_mode=False``, as Keras does.

Example:
    >>> entry = {"module": "keras.layers", "class_name": "Conv2D", "registered_name": None,
    ...          "config": {"name": "c", "filters": 2, "kernel_size": 3, "synchronized": False}}
    >>> keras_config_to_onnxforge(entry)["config"]
    {'name': 'c', 'filters': 2, 'kernel_size': 3}
"""
from __future__ import annotations

__all__ = ["keras_config_to_onnxforge", "onnxforge_config_to_keras", "normalize_legacy_config",
           "UnsupportedKerasLayerError", "check_no_lambda_bytecode", "jsonable"]

import inspect
import json
import re
from typing import Any

import numpy as np

from ... import initializers as initializers_module
from ... import regularizers as regularizers_module
from ...custom_objects import custom_object_scope
from ...graph.size_limits import SizeLimitError, building
from ...layers.base import Layer
from ...layers.operators import keras_op_entry_to_operator, operator_entry_to_keras_op
from .op_nodes import keras_op_entry_to_opcall, opcall_entry_to_keras_op
from ...layers.serialization import get_registered_object
from .errors import UnsupportedKerasLayerError

#: Arguments of Keras layers (and initializers) onnxforge does not take, with the value that makes them
#: inert; ``None`` / ``False`` are always inert. A callable decides from the whole config.
_INERT: dict[str, Any] = {
    "renorm_momentum": lambda cfg: not cfg.get("renorm"),   # only read when renorm=True
    "synchronized": False, "optional": False, "sparse": False, "ragged": False,
    "lora_rank": None, "lora_alpha": None, "quantization_config": None,
}

#: Keras classes that are data, not layers, inside a layer config.
_PLAIN = ("__keras_tensor__", "DTypePolicy", "FloatDTypePolicy", "__tuple__", "__numpy__")


_UNEXPECTED = re.compile(r"unexpected keyword argument '(\w+)'")


def _drop_inert_arguments(cls: type, config: dict, owner: str, problems: list[str],
                          custom_objects: dict | None = None) -> None:
    """Construct ``cls`` from ``config`` (unbuilt, cheap), dropping inert arguments it rejects, in place.

    Trying beats reading signatures: layers such as LSTM pass ``**kwargs`` on to their cell. The trial runs
    with ``custom_objects`` in scope, as the real rebuild does, so ``Dense(activation=custom_fn)`` finds it."""
    for _ in range(len(config) + 1):
        try:
            with custom_object_scope(custom_objects), building(owner):
                cls.from_config(dict(config)) if hasattr(cls, "from_config") else cls(**config)
            return
        except SizeLimitError:
            raise   # the file asks for too much: not an argument onnxforge lacks
        except TypeError as e:
            match = _UNEXPECTED.search(str(e))
            if match is None or match.group(1) not in config:
                problems.append(f"{owner}: {e}")
                return
            key = match.group(1)
            if not _is_inert(key, config[key], config):
                problems.append(f"{owner}: argument {key}={config[key]!r} is not supported by onnxforge")
                return
            del config[key]
        except (ValueError, NotImplementedError) as e:
            problems.append(f"{owner}: {e}")
            return


def _drop_unused_call_kwargs(cls: type, config: dict) -> None:
    """Keras records call arguments such as ``mask=None`` in functional configs; drop the ``None`` ones a
    layer's ``call`` does not take (they change nothing)."""
    try:
        params = inspect.signature(cls.call).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    nodes = config.get("inbound_nodes")
    for node in nodes if isinstance(nodes, list) else []:   # another type is refused when the graph is rebuilt
        kwargs = node.get("kwargs") if isinstance(node, dict) else None
        if isinstance(kwargs, dict):
            for key in [k for k, v in kwargs.items() if v is None and k not in params]:
                del kwargs[key]


def _is_inert(key: str, value: Any, config: dict) -> bool:
    if value is None or value is False:
        return True
    rule = _INERT.get(key, ...)
    if callable(rule):
        return bool(rule(config))
    return rule is not ... and rule == value


def _object_class(entry: dict) -> type | None:
    """The onnxforge class a serialized Keras object names (initializers and regularizers)."""
    module = entry.get("module") or ""
    namespace = {"keras.initializers": initializers_module, "keras.regularizers": regularizers_module}.get(module)
    cls = getattr(namespace, entry.get("class_name", ""), None) if namespace is not None else None
    return cls if isinstance(cls, type) else None


def _clean(entry: dict, owner: str, problems: list[str], custom_objects: dict | None) -> None:
    """Make one serialized Keras object (layer, model, initializer, ...) readable by onnxforge, in place.

    Nested objects first, so a wrapper (Bidirectional) is tried with an already cleaned inner layer."""
    class_name = entry.get("class_name")
    module = entry.get("module") or ""
    config = entry.get("config")
    if not isinstance(config, dict):
        return
    if not isinstance(module, str) or not isinstance(class_name, str):   # read by startswith / getattr below
        where = f"layer {config['name']!r}" if isinstance(config.get("name"), str) else owner
        problems.append(f"{where}: a serialized object's 'module' and 'class_name' must be strings. Received: "
                        f"module={module!r}, class_name={class_name!r}")
        return
    is_model = module == "keras" and class_name in ("Sequential", "Functional", "Model")
    # An op node of a functional model (``inputs + attn``; ``keras.activations.relu(x)`` records the
    # activations module's own ReLU operation, not the ReLU layer, which refuses a negative threshold).
    if module.startswith("keras.src.ops") or module == "keras.src.activations.activations":
        problem = keras_op_entry_to_operator(entry)
        if problem:   # not a Python operator: a keras.ops function (ops.expand_dims), read as an OpCall
            problem = keras_op_entry_to_opcall(entry)
        if problem:
            problems.append(problem)
        return
    # Keras writes a class of the program's own under its Python module, with its name as registered_name.
    own = not module.startswith("keras") and isinstance(entry.get("registered_name"), str)
    if module.startswith("keras.layers") or is_model or own:
        registered = entry.get("registered_name")
        cls = get_registered_object(registered if isinstance(registered, str) else class_name, custom_objects)
        if own and isinstance(cls, type) and not issubclass(cls, Layer):
            return   # the program's own regularizer, initializer, ...: its config is its own
        if not (isinstance(cls, type) and issubclass(cls, Layer)):
            # An unknown object of one's own inside a layer (a regularizer) has no name: name its layer.
            where = owner if own and "name" not in config else f"layer {config.get('name', '?')!r}"
            if own:   # Keras 3's words for a class it cannot find, then the remedy
                problems.append(f"{where}: Could not locate class {registered!r}: {class_name} (module "
                                f"{module or '__main__'}) is a class of your own: pass it in custom_objects={{...}} "
                                "or decorate it with @keras.saving.register_keras_serializable()")
                return
            problems.append(f"{where}: class {class_name} (module {module}) has no "
                            "onnxforge counterpart (a class of your own: pass it in custom_objects={...} or "
                            "decorate it with @keras.saving.register_keras_serializable())")
            return
        owner = f"layer {config.get('name', '?')!r} ({class_name})"
    elif module.startswith("keras.constraints"):
        return   # plain numbers and axes: onnxforge.constraints reads Keras's configs as they are
    else:
        cls = _object_class(entry)
    if class_name == "Bidirectional" and isinstance(config.get("layer"), dict):
        # The wrapped layer is only a template, cloned into forward_layer / backward_layer: building it would
        # create weights no file stores.
        config["layer"].pop("build_config", None)
    count = len(problems)
    for value in config.values():
        _walk(value, owner, problems, custom_objects)
    if cls is not None and not is_model and not own and len(problems) == count:   # own: the user's arguments
        _drop_inert_arguments(cls, config, owner, problems, custom_objects)
    if cls is not None and "inbound_nodes" in entry:
        _drop_unused_call_kwargs(cls, entry)


def _walk(value: Any, owner: str, problems: list[str], custom_objects: dict | None) -> None:
    if isinstance(value, dict):
        if "class_name" in value and isinstance(value.get("config"), dict) and value.get("class_name") not in _PLAIN:
            _clean(value, owner, problems, custom_objects)
        else:
            for v in value.values():
                _walk(v, owner, problems, custom_objects)
    elif isinstance(value, list):
        for v in value:
            _walk(v, owner, problems, custom_objects)


def keras_config_to_onnxforge(entry: dict, custom_objects: dict | None = None) -> dict:
    """A serialized Keras model (``keras.saving.serialize_keras_object``) made readable by
    ``onnxforge.layers.deserialize``: inert new arguments dropped, tuples as lists.

    Raises:
        UnsupportedKerasLayerError: naming every unsupported layer class or argument at once.
    """
    entry = json.loads(json.dumps(entry, default=jsonable))
    problems: list[str] = []
    _clean(entry, "model", problems, custom_objects)
    if problems:
        raise UnsupportedKerasLayerError(problems)
    return entry


def jsonable(value: Any) -> Any:
    """``json.dumps(default=...)`` for the numpy scalars, arrays and Keras objects configs may hold."""
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    if hasattr(value, "get_config") and not isinstance(value, type):
        # A custom layer's get_config may hold its objects as they are (a regularizer, a sub-layer); Keras
        # serializes such nested objects itself, into their own class/config entries.
        from ..object_serialization import serialize_keras_object
        return serialize_keras_object(value)
    raise TypeError(f"The model's config holds a {type(value).__name__} ({value!r}), which is not plain data.")


# ------------------------------------------------------------------------------------------ to Keras
def _keras_modules(value: Any) -> None:
    """onnxforge writes functional models under module ``keras``; Keras looks them up where it defines them.
    Operator nodes (``TensorOperator``) become the op nodes Keras records for ``inputs + attn``."""
    if isinstance(value, dict):
        if value.get("class_name") == "Functional" and value.get("module") == "keras":
            value["module"], value["registered_name"] = "keras.src.models.functional", "Functional"
        if value.get("class_name") == "TensorOperator" and "inbound_nodes" in value:
            operator_entry_to_keras_op(value)
        if value.get("class_name") == "OpCall" and "inbound_nodes" in value:
            opcall_entry_to_keras_op(value)
        for v in value.values():
            _keras_modules(v)
    elif isinstance(value, list):
        for v in value:
            _keras_modules(v)


def onnxforge_config_to_keras(entry: dict) -> dict:
    """``onnxforge.layers.serialize(model)`` as ``keras.saving.deserialize_keras_object`` reads it."""
    entry = json.loads(json.dumps(entry, default=jsonable))
    _keras_modules(entry)
    return entry


# ------------------------------------------------------------------------------------------ legacy
_LAYER_KEYS = ("layer", "forward_layer", "backward_layer", "cell")
_OBJECT_MODULES = {"_initializer": "keras.initializers", "_regularizer": "keras.regularizers",
                   "_constraint": "keras.constraints"}


def _legacy_layer(entry: Any) -> None:
    """Give one legacy layer entry (and the layers nested in it) Keras 3's ``module`` keys and node format."""
    if not isinstance(entry, dict) or "class_name" not in entry:
        return
    class_name = entry.get("class_name")
    config = entry.get("config")
    if "module" not in entry:
        entry["module"] = "keras" if class_name in ("Sequential", "Functional", "Model") else "keras.layers"
        entry.setdefault("registered_name", None)
    if not isinstance(config, dict):
        return
    if class_name == "InputLayer" and "batch_input_shape" in config and "batch_shape" not in config:
        config["batch_shape"] = config.pop("batch_input_shape")
    for key, value in list(config.items()):
        if key == "layers" and isinstance(value, list):
            for item in value:
                _legacy_layer(item)
        elif key in _LAYER_KEYS and isinstance(value, dict):
            _legacy_layer(value)
        elif key == "cell" and isinstance(value, list):       # RNN(cells=[...]) / StackedRNNCells
            for item in value:
                _legacy_layer(item)
        elif isinstance(value, dict) and "class_name" in value and "module" not in value:
            for suffix, module in _OBJECT_MODULES.items():
                if key.endswith(suffix):
                    value["module"] = module
                    value.setdefault("registered_name", None)
    if isinstance(config.get("cells"), list):
        for item in config["cells"]:
            _legacy_layer(item)
    nodes = entry.get("inbound_nodes")
    if isinstance(nodes, list):
        entry["inbound_nodes"] = [_legacy_node(n) for n in nodes]
    for key in ("input_layers", "output_layers"):
        if key in config:
            config[key] = _legacy_history_list(config[key])


def _tensor(history: list) -> dict:
    return {"class_name": "__keras_tensor__", "config": {"keras_history": [history[0], int(history[1]),
                                                                           int(history[2])]}}


def _legacy_node(node: Any) -> Any:
    """``[[name, node_index, tensor_index, kwargs], ...]`` (Keras 2) as ``{"args": ..., "kwargs": ...}``."""
    if isinstance(node, dict):
        return node
    if not isinstance(node, list) or not node or not all(isinstance(h, list) and len(h) >= 3 for h in node):
        return node
    kwargs = dict(node[0][3]) if len(node[0]) > 3 and isinstance(node[0][3], dict) else {}
    tensors = [_tensor(h) for h in node]
    return {"args": [tensors[0] if len(tensors) == 1 else tensors], "kwargs": kwargs}


def _legacy_history_list(value: Any) -> Any:
    # Keras 2 writes a single input as [name, 0, 0] and several as [[name, 0, 0], ...]; both are valid in Keras 3.
    return value


def normalize_legacy_config(model_config: dict) -> dict:
    """A legacy ``.h5`` ``model_config`` (tf.keras 2 or Keras 3's legacy writer) in Keras 3's serialized shape.

    Example:
        >>> cfg = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        ...     {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 3], "name": "i"}},
        ...     {"class_name": "Dense", "config": {"name": "d", "units": 1}}]}}
        >>> out = normalize_legacy_config(cfg)
        >>> out["module"], out["config"]["layers"][0]["config"]["batch_shape"]
        ('keras', [None, 3])
    """
    entry = json.loads(json.dumps(model_config, default=jsonable))
    _legacy_layer(entry)
    return entry


# ------------------------------------------------------------------------------------------ safety
def check_no_lambda_bytecode(entry: Any, safe_mode: bool, where: str) -> None:
    """Refuse serialized Python bytecode (Keras's ``__lambda__`` objects) unless ``safe_mode=False``.

    Raises:
        ValueError: with Keras's explanation, naming the layer that holds it.
    """
    if not safe_mode:
        return

    def visit(value: Any, owner: str) -> None:
        if isinstance(value, dict):
            if value.get("class_name") == "__lambda__":
                raise ValueError(
                    f"{where}: layer {owner!r} holds a Python `lambda` serialized as bytecode. Requested the "
                    "deserialization of a `lambda` object. This carries a potential risk of arbitrary code "
                    "execution and thus it is disallowed by default. If you trust the source of the saved model, "
                    "you can pass `safe_mode=False` to the loading function in order to allow `lambda` loading.")
            config = value.get("config")
            name = config.get("name") if isinstance(config, dict) and isinstance(config.get("name"), str) else owner
            for v in value.values():
                visit(v, name)
        elif isinstance(value, list):
            for v in value:
                visit(v, owner)

    visit(entry, "model")
