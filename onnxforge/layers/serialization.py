"""Layer (de)serialization in Keras 3's format: ``{"module", "class_name", "config", "registered_name"}``."""
from __future__ import annotations

__all__ = ["serialize", "deserialize", "get_registered_object", "get_registered_name",
           "register_keras_serializable"]

from collections.abc import Callable

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
        return cls

    return decorator


def get_registered_name(cls: type) -> str:
    """The name ``cls`` is serialized under: ``"package>name"`` if registered, else the class name."""
    return _REGISTERED_NAMES.get(cls, cls.__name__)


def _all_subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(_all_subclasses(sub))
    return out


# Keras 3 names functional models "Functional"; both map to onnxforge's Model.
_ALIASES = {"Functional": "Model"}


def get_registered_object(name: str, custom_objects: dict | None = None) -> type | None:
    """The layer (or model) class called ``name``: ``custom_objects`` first, then classes registered with
    ``register_keras_serializable`` (``"package>name"``), then onnxforge's, then any ``Layer`` subclass
    defined so far with that name."""
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    if name in _REGISTERED:
        return _REGISTERED[name]
    if ">" in name:
        return None
    import onnxforge.layers as layers_pkg
    import onnxforge.models as models_pkg

    name = _ALIASES.get(name, name)
    for module in (layers_pkg, models_pkg):
        cls = getattr(module, name, None)
        if isinstance(cls, type) and issubclass(cls, Layer):
            return cls
    matches = [c for c in _all_subclasses(Layer) if c.__name__ == name]
    return matches[-1] if matches else None


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
    """The layer described by ``serialize``'s output (unbuilt unless it carries a ``build_config``)."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"Expected a serialized layer dict with a 'class_name'. Received: {config!r}")
    registered = config.get("registered_name")
    if isinstance(registered, str) and ">" in registered:
        # Written by a registered class: only that registration (or custom_objects) may rebuild it.
        cls = get_registered_object(registered, custom_objects) or (custom_objects or {}).get(config["class_name"])
    else:
        cls = get_registered_object(config["class_name"], custom_objects)
    if cls is None:
        raise ValueError(f"Unknown layer: '{registered or config['class_name']}'. Please ensure you are using a "
                         "`keras.utils.custom_object_scope` equivalent: pass the class in `custom_objects`, or "
                         "decorate it with `@onnxforge.saving.register_keras_serializable()` before loading.")
    inner = config.get("config") or {}
    import inspect

    if "custom_objects" in inspect.signature(cls.from_config).parameters:  # models: nested layer configs
        layer = cls.from_config(inner, custom_objects=custom_objects)
    else:
        layer = cls.from_config(inner)
    if config.get("build_config"):
        layer.build_from_config(config["build_config"])
    return layer
