"""Keras 3's serialized form of small config objects (initializers, regularizers), in one place."""
from __future__ import annotations

__all__ = ["object_config", "object_from_config"]

from typing import Any


def object_config(obj: Any, module: str) -> dict:
    """``{"module", "class_name", "config", "registered_name"}`` of an object with ``get_config()``."""
    return {"module": module, "class_name": type(obj).__name__, "config": obj.get_config(),
            "registered_name": None}


def object_from_config(config: dict, aliases: dict[str, type], custom_objects: dict | None, kind: str,
                       known: list[str]) -> Any:
    """The object ``object_config`` described: a custom class first, then the module's own names."""
    name = config["class_name"]
    cls = (custom_objects or {}).get(name) or aliases.get(name)
    if cls is None:
        raise ValueError(f"Unknown {kind}: {name!r}. Known: {known}")
    return cls.from_config(config.get("config") or {})
