"""The registry of Keras-serializable objects and their serialized form (Keras 3's
``{"module", "class_name", "config", "registered_name"}``), below everything that is serialized.

Layers, models, losses, metrics, initializers and regularizers are rebuilt from configs by looking their
class up by name here: custom classes registered with ``register_keras_serializable``, classes passed in
``custom_objects``, and onnxforge's own exported layers and models, which ``onnxforge.layers`` and
``onnxforge.models`` register when imported. Nothing here imports a layer or model class, so activations
(below the layers) and the layers (below the model classes) can (de)serialize without importing up.
"""
from __future__ import annotations

__all__ = ["is_builtin_class", "object_config", "object_from_config", "register_keras_serializable",
           "get_registered_name", "get_registered_object", "register_builtin_classes", "register_object_serializer",
           "serialize", "deserialize"]

import inspect
from collections.abc import Callable
from typing import Any

from .custom_objects import custom_object_scope, get_custom_objects, lookup


def object_config(obj: Any, module: str) -> dict:
    """``{"module", "class_name", "config", "registered_name"}`` of an object with ``get_config()``."""
    cls = type(obj)
    if not cls.__module__.startswith("onnxforge"):
        # A class of the program's own (PointNet's OrthogonalRegularizer): Keras writes where it is defined
        # and its (registered) name, the key load_model finds custom_objects by; under "keras.regularizers"
        # with no registered_name, real Keras refuses the file.
        return {"module": None if cls.__module__ == "__main__" else cls.__module__, "class_name": cls.__name__,
                "config": obj.get_config(), "registered_name": get_registered_name(cls)}
    return {"module": module, "class_name": cls.__name__, "config": obj.get_config(), "registered_name": None}


def object_from_config(config: dict, aliases: dict[str, type], custom_objects: dict | None, kind: str,
                       known: list[str]) -> Any:
    """The object ``object_config`` described: a custom class first, then the module's own names."""
    name = config.get("class_name") if isinstance(config, dict) else None
    if not isinstance(name, str):    # ``{}`` or ``{"class_name": 5}`` from a file: a KeyError or TypeError naming nothing
        raise ValueError(f"A serialized {kind} must be a dict with a string 'class_name'. Received: "
                         f"{_brief(config)}")
    inner = config.get("config")
    if inner is not None and not isinstance(inner, dict):
        raise ValueError(f"The 'config' of a serialized {kind} {name!r} must be a dict. Received: {_brief(inner)}")
    cls = (custom_objects or {}).get(name)
    registered = config.get("registered_name")
    if cls is None and isinstance(registered, str) and ">" in registered:
        # Keras writes a registered class (``@register_keras_serializable(package=...)``) by that name.
        cls = (custom_objects or {}).get(registered) or lookup(registered) or _REGISTERED.get(registered)
    if cls is None:
        scoped = lookup(name)   # custom_object_scope / get_custom_objects()
        cls = scoped if isinstance(scoped, type) else aliases.get(name)
    if cls is None:
        raise ValueError(f"Unknown {kind}: {name!r}. Known: {known}")
    return cls.from_config(config.get("config") or {})


#: ``"package>name"`` -> class or function, filled by ``register_keras_serializable``.
_REGISTERED: dict[str, Any] = {}
_REGISTERED_NAMES: dict[Any, str] = {}


def register_keras_serializable(package: str = "Custom", name: str | None = None) -> Callable[[Any], Any]:
    """Decorator: let ``load_model`` / ``deserialize`` rebuild this custom layer (or model, loss, metric)
    from its config, or find this custom function (an activation, a loss) by name, as Keras's
    ``keras.saving.register_keras_serializable``.

    The object is stored under ``"<package>><name>"`` (``name`` defaults to its ``__name__``) and written
    with that ``registered_name`` in configs (a function is written as that name). Loading a file never imports or runs code from it: only
    classes defined in the loading program (registered, passed in ``custom_objects``, or onnxforge's own)
    can be instantiated. Registering again under the same name replaces the class (notebooks re-run cells).

    Example:
        >>> from onnxforge.layers import Layer
        >>> @register_keras_serializable(package="demo")
        ... class Scale(Layer):
        ...     def call(self, x):
        ...         return x * 2.0
        >>> get_registered_name(Scale), get_registered_object("demo>Scale") is Scale
        ('demo>Scale', True)
        >>> @register_keras_serializable(package="demo")
        ... def squared(x):
        ...     return x * x
        >>> get_registered_name(squared)
        'demo>squared'
    """
    if not isinstance(package, str) or not package or ">" in package:
        raise ValueError(f"register_keras_serializable(): package must be a non-empty string without '>'. "
                         f"Received: package={package!r}")

    def decorator(cls: Any) -> Any:
        # A class must be able to describe itself; a function is written by its registered name alone.
        if isinstance(cls, type) and not hasattr(cls, "get_config"):
            raise TypeError("register_keras_serializable() decorates a class with a get_config() method "
                            f"(or a function). Received: {cls!r}")
        if not isinstance(cls, type) and not (callable(cls) and isinstance(getattr(cls, "__name__", None), str)):
            raise TypeError(f"register_keras_serializable() decorates a class or a named function. Received: {cls!r}")
        key = f"{package}>{name or cls.__name__}"
        _REGISTERED[key] = cls
        _REGISTERED_NAMES[cls] = key
        get_custom_objects()[key] = cls   # Keras lists registered classes among the custom objects
        return cls

    return decorator


def get_registered_name(cls: Any) -> str:
    """The name ``cls`` (a class or function) is serialized under: ``"package>name"`` if registered, else its
    ``__name__``."""
    try:
        return _REGISTERED_NAMES.get(cls, cls.__name__)
    except TypeError:       # an unhashable callable cannot have been registered
        return cls.__name__


# Keras 3 names functional models "Functional"; both map to onnxforge's Model.
_ALIASES = {"Functional": "Model"}


#: onnxforge's own layer and model classes, by the names they are exported under: an explicit table that
#: ``onnxforge.layers`` and ``onnxforge.models`` fill when imported (``register_builtin_classes``), not a
#: scan of ``Layer.__subclasses__()``: a file must not be able to pick a class merely because some module of
#: the running program happens to define it (Keras 3 refuses unregistered classes the same way). Classes
#: are found here by name, so this module (below the layers) never imports them.
_BUILTIN: dict[str, type] = {}


_BUILTIN_CLASSES: set[type] = set()


def register_builtin_classes(classes: dict[str, type]) -> None:
    """Add onnxforge's own exported Layer/Model classes (``{exported name: class}``); the first name wins."""
    for name, cls in classes.items():
        _BUILTIN.setdefault(name, cls)
        _BUILTIN_CLASSES.add(cls)


def is_builtin_class(cls: type) -> bool:
    """Whether ``cls`` is one of onnxforge's own exported layer or model classes (not a user's subclass)."""
    return cls in _BUILTIN_CLASSES


def get_registered_object(name: str, custom_objects: dict | None = None) -> type | None:
    """The layer (or model) class called ``name``, or ``None``: ``custom_objects`` first, then classes
    registered with ``register_keras_serializable`` (``"package>name"``), then onnxforge's own exported
    layers and models (``"Dense"``, ``"Functional"``...). Nothing else: a class merely defined somewhere
    in the program is not found, as in Keras 3.

    Example:
        >>> get_registered_object("Dense").__name__, get_registered_object("NoSuchLayer")
        ('Dense', None)
    """
    if not isinstance(name, str):
        return None
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    scoped = lookup(name)   # custom_object_scope / get_custom_objects()
    if isinstance(scoped, type):
        return scoped
    if name in _REGISTERED:
        return _REGISTERED[name]
    if ">" in name:
        return None
    return _BUILTIN.get(_ALIASES.get(name, name))


#: ``keras.saving.serialize_keras_object``, registered by ``saving/object_serialization.py`` (above the layers):
#: what ``serialize`` writes a Keras object found in a layer's config with.
_OBJECT_SERIALIZER: list[Callable[[Any], Any]] = []


def register_object_serializer(fn: Callable[[Any], Any]) -> None:
    """Set the function that writes the Keras objects a layer's ``get_config`` returns as they are."""
    _OBJECT_SERIALIZER[:] = [fn]


def _nested_objects(value: Any) -> Any:
    """``value`` with every Keras object in it (a sub-layer, a regularizer, anything with ``get_config``)
    written as its ``{"class_name", "config", ...}`` entry, as Keras serializes a config's values: a custom
    layer's ``get_config`` may return ``{"sublayer": self.sublayer}``, and Keras's guide then rebuilds it
    with ``keras.layers.deserialize(config["sublayer"])``."""
    if isinstance(value, dict):
        return {k: _nested_objects(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_nested_objects(v) for v in value]
        return items if isinstance(value, list) else tuple(items)
    if hasattr(value, "get_config") and not isinstance(value, type) and _OBJECT_SERIALIZER:
        return _OBJECT_SERIALIZER[0](value)
    return value


def _brief(config: object, limit: int = 300) -> str:
    text = repr(config)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def serialize(layer: Any) -> dict:
    """``layer``'s class and config; Keras 3's ``keras.layers.serialize`` shape."""
    model = _BUILTIN.get("Model")
    is_model = model is not None and isinstance(layer, model)
    class_name = type(layer).__name__
    if model is not None and type(layer) is model and layer._graph is not None:
        class_name = "Functional"
    module = "keras" if is_model else "keras.layers"
    registered = _REGISTERED_NAMES.get(type(layer))
    # A layer Keras defines outside keras.layers (ConvNeXt's LayerScale) is written where Keras finds it.
    keras_module = type(layer).__dict__.get("_keras_module")   # not inherited: a subclass is the user's own
    if keras_module is not None and registered is None:
        module, registered = keras_module, class_name
    elif registered is None and not type(layer).__module__.startswith("onnxforge"):
        # A class of the program's own (``class Patches(layers.Layer)``): Keras writes its Python module and
        # its name as registered_name, the key load_model looks custom_objects up by; under "keras.layers"
        # with no registered_name, Keras would look for keras.layers.Patches and refuse the file.
        module, registered = type(layer).__module__, class_name
    out = {"module": module, "class_name": class_name, "config": _nested_objects(layer.get_config()),
           "registered_name": registered}
    # A subclassed model is rebuilt from its build_config, as Keras does (its weights exist only once built);
    # functional and Sequential models rebuild from their layers.
    subclassed = is_model and getattr(layer, "_graph", None) is None and \
        not isinstance(layer, _BUILTIN.get("Sequential", ()))
    build = layer.get_build_config() if not is_model or subclassed else None
    if build is not None:
        out["build_config"] = build
    return out


def deserialize(config: dict, custom_objects: dict | None = None) -> Any:
    """The layer described by ``serialize``'s output (unbuilt unless it carries a ``build_config``).

    Only classes the program has chosen can be built: ``custom_objects``, registered classes and
    onnxforge's own (see :func:`get_registered_object`). Every entry is type-checked before use.

    Raises:
        ValueError: an unknown class (Keras 3's "Could not locate class" message) or a malformed entry.
        TypeError: an entry of the wrong type (``class_name: 5``).
    """
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"Expected a serialized layer dict with a 'class_name'. Received: {_brief(config)}")
    class_name, registered = config["class_name"], config.get("registered_name")
    if not isinstance(class_name, str):
        raise TypeError(f"Could not locate class {class_name!r}: 'class_name' must be a string. "
                        f"Full object config: {_brief(config)}")
    if registered is not None and not isinstance(registered, str):
        raise TypeError(f"'registered_name' must be a string or null. Received: registered_name={registered!r}")
    inner = config.get("config")
    if inner is None:
        inner = {}
    if not isinstance(inner, dict):
        raise TypeError(f"The 'config' of a serialized {class_name!r} must be a dict. Received: {_brief(inner)}")
    build = config.get("build_config")
    if build is not None and not isinstance(build, dict):
        raise TypeError(f"The 'build_config' of a serialized {class_name!r} must be a dict. Received: "
                        f"{_brief(build)}")
    if isinstance(registered, str) and ">" in registered:
        # Written by a registered class: only that registration (or custom_objects) may rebuild it.
        cls = get_registered_object(registered, custom_objects) or (custom_objects or {}).get(class_name)
        if cls is None and isinstance(lookup(class_name), type):
            cls = lookup(class_name)
    else:
        cls = get_registered_object(class_name, custom_objects)
    if cls is None:
        wanted = registered if isinstance(registered, str) and ">" in registered else class_name
        raise ValueError(f"Could not locate class '{wanted}'. Make sure custom classes are decorated with "
                         "`@onnxforge.saving.register_keras_serializable()` (or passed in `custom_objects`), and "
                         "that the decorator has run before loading. Full object config: " + _brief(config))
    layer_class = _BUILTIN.get("Layer")
    if not (isinstance(cls, type) and layer_class is not None and issubclass(cls, layer_class)):
        raise TypeError(f"custom_objects[{class_name!r}] must be a Layer or Model class to rebuild a serialized "
                        f"layer. Received: {cls!r}")
    # custom_objects are in scope while the layer rebuilds itself (Keras does the same), so that the
    # functions its config names (``Dense(activation="custom_fn")``) resolve.
    with custom_object_scope(custom_objects):
        if "custom_objects" in inspect.signature(cls.from_config).parameters:  # models: nested layer configs
            layer = cls.from_config(inner, custom_objects=custom_objects)
        else:
            layer = cls.from_config(inner)
    if build:
        layer.build_from_config(build)
    return layer
