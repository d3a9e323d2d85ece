"""Layer (de)serialization in Keras 3's format: ``{"module", "class_name", "config", "registered_name"}``."""
from __future__ import annotations

__all__ = ["serialize", "deserialize", "get_registered_object"]


from .base import Layer


def _all_subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(_all_subclasses(sub))
    return out


# Keras 3 names functional models "Functional"; both map to onnxforge's Model.
_ALIASES = {"Functional": "Model"}


def get_registered_object(name: str, custom_objects: dict | None = None) -> type | None:
    """The layer (or model) class called ``name``: ``custom_objects`` first, then onnxforge's, then any
    ``Layer`` subclass defined so far with that name."""
    if custom_objects and name in custom_objects:
        return custom_objects[name]
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
    out = {"module": module, "class_name": class_name, "config": layer.get_config(), "registered_name": None}
    build = layer.get_build_config() if not isinstance(layer, Model) else None
    if build is not None:
        out["build_config"] = build
    return out


def deserialize(config: dict, custom_objects: dict | None = None) -> Layer:
    """The layer described by ``serialize``'s output (unbuilt unless it carries a ``build_config``)."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"Expected a serialized layer dict with a 'class_name'. Received: {config!r}")
    cls = get_registered_object(config["class_name"], custom_objects)
    if cls is None:
        raise ValueError(f"Unknown layer: '{config['class_name']}'. Please ensure you are using a "
                         "`keras.utils.custom_object_scope` equivalent: pass the class in `custom_objects`.")
    inner = config.get("config") or {}
    import inspect

    if "custom_objects" in inspect.signature(cls.from_config).parameters:  # models: nested layer configs
        layer = cls.from_config(inner, custom_objects=custom_objects)
    else:
        layer = cls.from_config(inner)
    if config.get("build_config"):
        layer.build_from_config(config["build_config"])
    return layer
