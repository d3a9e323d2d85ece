"""Layer (de)serialization in Keras 3's format: ``{"module", "class_name", "config", "registered_name"}``."""
from __future__ import annotations

__all__ = ["serialize", "deserialize", "get_registered_object", "get_registered_name",
           "register_keras_serializable"]

from collections.abc import Callable

from ..custom_objects import get_custom_objects, lookup
from .base import Layer

#: ``"package>name"`` -> class, filled by ``register_keras_serializable``.
_REGISTERED: dict[str, type] = {}
_REGISTERED_NAMES: dict[type, str] = {}


def register_keras_serializable(package: str = "Custom", name: str | None = None) -> Callable[[type], type]:
    """Class decorator: let ``load_model`` / ``deserialize`` rebuild this custom layer (or model, loss,
    metric) from its config, as Keras's ``keras.saving.register_keras_serializable``.

    The class is stored under ``"<package>><name>"`` (``name`` defaults to the class name) and written
    with that ``registered_name`` in configs. Loading a file never imports or runs code from it: only
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
    """
    if not isinstance(package, str) or not package or ">" in package:
        raise ValueError(f"register_keras_serializable(): package must be a non-empty string without '>'. "
                         f"Received: package={package!r}")

    def decorator(cls: type) -> type:
        if not isinstance(cls, type) or not hasattr(cls, "get_config"):
            raise TypeError("register_keras_serializable() decorates a class with a get_config() method. "
                            f"Received: {cls!r}")
        key = f"{package}>{name or cls.__name__}"
        _REGISTERED[key] = cls
        _REGISTERED_NAMES[cls] = key
        get_custom_objects()[key] = cls   # Keras lists registered classes among the custom objects
        return cls

    return decorator


def get_registered_name(cls: type) -> str:
    """The name ``cls`` is serialized under: ``"package>name"`` if registered, else the class name."""
    return _REGISTERED_NAMES.get(cls, cls.__name__)


# Keras 3 names functional models "Functional"; both map to onnxforge's Model.
_ALIASES = {"Functional": "Model"}


def _builtin_classes() -> dict[str, type]:
    """onnxforge's own layer and model classes, by the names they are exported under.

    An explicit table, not a scan of ``Layer.__subclasses__()``: a file must not be able to pick a class
    merely because some module of the running program happens to define it (Keras 3 refuses
    unregistered classes the same way).
    """
    import onnxforge.layers as layers_pkg
    import onnxforge.models as models_pkg
    from onnxforge.models.onnx_model import OnnxModel

    table: dict[str, type] = {"OnnxModel": OnnxModel}
    for module in (layers_pkg, models_pkg):
        for name in getattr(module, "__all__", ()):
            cls = getattr(module, name, None)
            if isinstance(cls, type) and issubclass(cls, Layer):
                table.setdefault(name, cls)
    return table


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
    return _builtin_classes().get(_ALIASES.get(name, name))


def _brief(config: object, limit: int = 300) -> str:
    text = repr(config)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def serialize(layer: Layer) -> dict:
    """``layer``'s class and config; Keras 3's ``keras.layers.serialize`` shape."""
    from ..models.model import Model

    class_name = type(layer).__name__
    if type(layer) is Model and layer._graph is not None:
        class_name = "Functional"
    module = "keras" if isinstance(layer, Model) else "keras.layers"
    registered = _REGISTERED_NAMES.get(type(layer))
    out = {"module": module, "class_name": class_name, "config": layer.get_config(), "registered_name": registered}
    build = layer.get_build_config() if not isinstance(layer, Model) else None
    if build is not None:
        out["build_config"] = build
    return out


def deserialize(config: dict, custom_objects: dict | None = None) -> Layer:
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
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise TypeError(f"custom_objects[{class_name!r}] must be a Layer or Model class to rebuild a serialized "
                        f"layer. Received: {cls!r}")
    import inspect

    if "custom_objects" in inspect.signature(cls.from_config).parameters:  # models: nested layer configs
        layer = cls.from_config(inner, custom_objects=custom_objects)
    else:
        layer = cls.from_config(inner)
    if build:
        layer.build_from_config(build)
    return layer
