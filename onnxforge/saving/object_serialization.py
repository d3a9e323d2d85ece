"""``keras.saving.serialize_keras_object`` / ``deserialize_keras_object``: any Keras object as Keras 3's
``{"module", "class_name", "config", "registered_name"}`` dict and back.

Custom layers use them in ``get_config`` / ``from_config`` to carry nested objects (a sub-layer, a loss, an
initializer), as the Keras serialization guide shows. The dicts have Keras 3's shape, so a config written by
Keras deserializes here and the other way round. Objects are told apart by their base class (layers,
losses, metrics, optimizers, initializers, regularizers); functions (activations, loss functions) are
written by name, as Keras writes them. Reading only builds classes the program has chosen: onnxforge's
own, registered ones and ``custom_objects`` (the same rule as ``load_model``).
"""
from __future__ import annotations

__all__ = ["serialize_keras_object", "deserialize_keras_object", "model_from_json"]

import json
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import activations, constraints, initializers, keras_objects, losses, metrics, optimizers, regularizers
from ..custom_objects import lookup
from ..layers import Layer
from ..layers.serialization import deserialize as deserialize_layer
from ..layers.serialization import serialize as serialize_layer
from .keras_format import archive as _archive
from .keras_format.config import keras_config_to_onnxforge, onnxforge_config_to_keras

# Base class -> the Keras module its objects are written under.
_KINDS: tuple[tuple[type, str], ...] = (
    (losses.Loss, "keras.losses"),
    (metrics.Metric, "keras.metrics"),
    (optimizers.Optimizer, "keras.optimizers"),
    (initializers.Initializer, "keras.initializers"),
    (regularizers.Regularizer, "keras.regularizers"),
)


def serialize_keras_object(obj: Any) -> Any:
    """``obj`` as JSON-ready data in Keras 3's format.

    Plain values (None, bools, numbers, strings) and NumPy scalars come back as Python values; lists,
    tuples and dicts are serialized item by item; a function is written by name; any other object needs a
    ``get_config`` method.

    Example:
        >>> import onnxforge as tf
        >>> d = serialize_keras_object(tf.keras.losses.MeanSquaredError())
        >>> d["module"], d["class_name"]
        ('keras.losses', 'MeanSquaredError')
        >>> serialize_keras_object(tf.keras.activations.relu)["config"]
        'relu'
    """
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (list, tuple)):
        items = [serialize_keras_object(i) for i in obj]
        return items if isinstance(obj, list) else tuple(items)
    if isinstance(obj, dict):
        return {k: serialize_keras_object(v) for k, v in obj.items()}
    if isinstance(obj, Layer):
        # A compiled model carries its compile_config, as Keras writes it (model.to_json, then model_from_json
        # compiles the model again).
        out = _archive.keras_model_config(obj) if getattr(obj, "compiled", False) and \
            hasattr(obj, "get_compile_config") else onnxforge_config_to_keras(serialize_layer(obj))
        out.setdefault("registered_name", None)
        if isinstance(out["registered_name"], str) and ">" in out["registered_name"]:
            out["module"] = _defining_module(type(obj))
        return out
    if isinstance(obj, type):
        raise TypeError(f"serialize_keras_object() takes an object, not a class. Received: {obj!r}")
    if callable(obj) and not hasattr(obj, "get_config"):
        name = getattr(obj, "__name__", None)
        if not isinstance(name, str) or name == "<lambda>":
            raise TypeError("serialize_keras_object() can write a function only by its name; a lambda has none. "
                            f"Received: {obj!r}")
        # Keras writes a registered function's "package>name" as its config, registered_name "function".
        return {"module": "builtins", "class_name": "function", "config": keras_objects.get_registered_name(obj),
                "registered_name": "function"}
    if not hasattr(obj, "get_config"):
        raise TypeError(f"Cannot serialize {obj!r}: it is not a Keras object (no get_config()), nor a plain "
                        "value, list, dict or named function.")
    cls = type(obj)
    registered = keras_objects.get_registered_name(cls)
    if ">" in registered or not cls.__module__.startswith("onnxforge"):
        # A class of the program's own (PointNet's OrthogonalRegularizer), registered or not: Keras writes
        # where it is defined and its name as registered_name, the key load_model finds custom_objects by.
        return {"module": _defining_module(cls), "class_name": cls.__name__,
                "config": serialize_keras_object(obj.get_config()), "registered_name": registered}
    # A class that says which Keras namespace it mirrors (keras.distillation's losses) is written under it.
    module = getattr(cls, "_keras_module", None) or next((m for base, m in _KINDS if isinstance(obj, base)),
                                                         cls.__module__)
    return {"module": module, "class_name": cls.__name__, "config": serialize_keras_object(obj.get_config()),
            "registered_name": None}


def _defining_module(cls: type) -> str | None:
    """Where Keras says a registered custom class lives: its module, or None for a script's ``__main__``."""
    return None if cls.__module__ == "__main__" else cls.__module__


def deserialize_keras_object(config: Any, custom_objects: dict | None = None, **kwargs: Any) -> Any:
    """The object ``serialize_keras_object`` (here or in Keras 3) wrote as ``config``.

    Example:
        >>> import onnxforge as tf
        >>> loss = deserialize_keras_object({"module": "keras.losses", "class_name": "Huber",
        ...                                  "config": {"delta": 2.0}, "registered_name": None})
        >>> type(loss).__name__, loss.delta
        ('Huber', 2.0)

    Raises:
        ValueError: an unknown class or function (names the entry).
        TypeError: an entry of the wrong type.
    """
    if config is None or isinstance(config, (bool, int, float, str)):
        return config
    if isinstance(config, (list, tuple)):
        items = [deserialize_keras_object(i, custom_objects) for i in config]
        return items if isinstance(config, list) else tuple(items)
    if not isinstance(config, dict):
        raise TypeError(f"deserialize_keras_object() reads JSON-like data. Received: {type(config).__name__}")
    if "class_name" not in config or "config" not in config:
        return {k: deserialize_keras_object(v, custom_objects) for k, v in config.items()}
    class_name, inner = config["class_name"], config["config"]
    if not isinstance(class_name, str):
        raise TypeError(f"'class_name' must be a string. Received: class_name={class_name!r}")
    if class_name == "__tuple__" and isinstance(inner, dict):
        return tuple(deserialize_keras_object(i, custom_objects) for i in inner.get("value", []))
    if class_name == "function":
        return _function(inner, config.get("registered_name"), custom_objects)
    module = config.get("module") or ""
    if not isinstance(module, str):
        raise TypeError(f"'module' must be a string or null. Received: module={module!r} (class {class_name!r})")
    keras_layer_modules = ("keras.src.layers", "keras.src.models")     # Keras writes Functional under the latter
    if module in ("keras.layers", "keras", "keras.models") or module.startswith(keras_layer_modules) or \
            _chosen_class(config, custom_objects, Layer) is not None:
        # Arguments newer Keras releases add with an inert default are dropped, anything else unsupported
        # is refused with every problem named (the same reading as a .keras file's config.json).
        try:
            layer = deserialize_layer(keras_config_to_onnxforge(config, custom_objects), custom_objects)
        except RecursionError:     # a config nested past Python's limit (a deeply wrapped layer)
            from ..models.functional_config_check import ConfigStructureError

            raise ConfigStructureError(f"deserialize_keras_object(): the config of {class_name!r} nests too "
                                       "deeply to rebuild") from None
        compile_config = config.get("compile_config")
        if isinstance(compile_config, dict) and compile_config and hasattr(layer, "compile"):   # Keras: {} uncompiled
            _archive.compile_from_keras_config(layer, compile_config, custom_objects)
        return layer
    cls = _chosen_class(config, custom_objects, object)
    if cls is not None:
        return cls.from_config(inner)
    readers: dict[str, Callable[[dict], Any]] = {
        "keras.losses": losses.get, "keras.metrics": metrics.deserialize, "keras.optimizers": optimizers.deserialize,
        "keras.initializers": initializers.deserialize, "keras.regularizers": regularizers.deserialize,
        "keras.constraints": constraints.deserialize, "keras.distillation": _distillation_object,
    }
    # Keras's backend-specific classes live deeper (``keras.src.backend.torch.optimizers.torch_adam``).
    reader = readers.get(module) or next((r for m, r in readers.items() if f".{m.split('.')[-1]}." in f".{module}."),
                                         None)
    if reader is None:
        raise ValueError(f"Could not locate class '{class_name}' (module {module!r}). Pass it in custom_objects "
                         "or decorate it with @onnxforge.saving.register_keras_serializable().")
    return reader({k: v for k, v in config.items() if k in ("class_name", "config", "module", "registered_name")})


def _distillation_object(config: dict) -> Any:
    """A ``keras.distillation`` loss (``LogitsDistillation``, ``FeatureDistillation``) from its config; the
    classes register themselves by name (``onnxforge.distillation`` sits above saving)."""
    cls = keras_objects.get_registered_object(config["class_name"])
    if not isinstance(cls, type) or getattr(cls, "_keras_module", None) != "keras.distillation":
        raise ValueError(f"Could not locate class '{config['class_name']}' (module 'keras.distillation'). Expected "
                         "LogitsDistillation, FeatureDistillation or a class of yours passed in custom_objects.")
    return cls.from_config(config["config"])


def _chosen_class(config: dict, custom_objects: dict | None, base: type) -> type | None:
    """The class the program supplied for this entry (``custom_objects``, a ``custom_object_scope``, a
    ``register_keras_serializable`` registration), if it derives from ``base``; onnxforge's own classes are
    found by the per-kind readers instead."""
    for name in (config.get("registered_name"), config["class_name"]):
        if isinstance(name, str):
            cls = (custom_objects or {}).get(name) or lookup(name)
            if isinstance(cls, type) and issubclass(cls, base):
                return cls
    return None


def _function(name: Any, registered: Any, custom_objects: dict | None) -> Callable:
    if not isinstance(name, str):
        raise TypeError(f"A serialized function's 'config' must be its name. Received: {name!r}")
    for key in (registered, name):
        if isinstance(key, str) and key != "function":
            found = (custom_objects or {}).get(key) or lookup(key)
            if callable(found):
                return found
    for module in (activations, losses):  # the function itself (Keras returns losses.mean_squared_error, not a Loss)
        found = getattr(module, name, None)
        if callable(found) and not isinstance(found, type) and not name.startswith("_"):
            return found
    for getter in (activations.get, losses.get):
        try:
            return getter(name)
        except (ValueError, TypeError, KeyError):
            continue
    raise ValueError(f"Could not locate function '{name}'. Pass it in custom_objects or register it.")


def model_from_json(json_string: str, custom_objects: dict | None = None) -> Any:
    """The (unbuilt-weights) model ``Model.to_json()`` described, here or in Keras 3 (``keras.models.model_from_json``).

    Example:
        >>> import onnxforge as tf
        >>> inputs = tf.keras.Input((3,))
        >>> model = tf.keras.Model(inputs, tf.keras.layers.Dense(2)(inputs))
        >>> again = model_from_json(model.to_json())
        >>> [type(l).__name__ for l in again.layers]
        ['InputLayer', 'Dense']
    """
    try:
        config = json.loads(json_string)
    except (TypeError, ValueError, RecursionError) as e:
        raise ValueError(f"model_from_json() reads the JSON string Model.to_json() writes ({type(e).__name__}: {e})") \
            from None
    return deserialize_keras_object(config, custom_objects=custom_objects)


_archive.SERIALIZE_OBJECT[:] = [serialize_keras_object]   # a model's own get_compile_config(), saved as Keras does
keras_objects.register_object_serializer(serialize_keras_object)   # the objects a layer's get_config holds
