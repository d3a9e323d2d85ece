"""Keras 3's custom-object registry: ``get_custom_objects()`` and ``custom_object_scope``.

Names a program maps to its own classes and functions, consulted wherever a name is turned into an object
(layer classes in configs and saved files, activation names such as ``Dense(activation="my_act")``): first
the innermost ``custom_object_scope``, then the global dict ``get_custom_objects()`` returns (which
``register_keras_serializable`` also fills, under ``"package>name"``), then onnxforge's built-ins.

Example:
    >>> def shifted_relu(x):
    ...     return x
    >>> with custom_object_scope({"shifted_relu": shifted_relu}):
    ...     lookup("shifted_relu") is shifted_relu
    True
    >>> lookup("shifted_relu") is None
    True
"""
from __future__ import annotations

__all__ = ["get_custom_objects", "custom_object_scope", "CustomObjectScope", "lookup"]

import threading
from typing import Any

_GLOBAL: dict[str, Any] = {}
_local = threading.local()


def get_custom_objects() -> dict[str, Any]:
    """The global ``{name: object}`` dict; edit it in place (``get_custom_objects()["my_act"] = fn``)."""
    return _GLOBAL


def _scopes() -> list[dict[str, Any]]:
    if not hasattr(_local, "scopes"):
        _local.scopes = []
    return _local.scopes


class CustomObjectScope:
    """``with custom_object_scope({"MyLayer": MyLayer}):`` makes the names resolvable inside the block.

    Args:
        custom_objects: dicts of ``{name: class or function}`` (``None`` entries are skipped).
    """

    def __init__(self, *custom_objects: dict[str, Any] | None):
        for objects in custom_objects:
            if objects is not None and not isinstance(objects, dict):
                raise TypeError(f"custom_object_scope() takes dicts of {{name: object}}. Received: {objects!r}")
        self.custom_objects = {k: v for objects in custom_objects if objects for k, v in objects.items()}

    def __enter__(self) -> CustomObjectScope:
        _scopes().append(self.custom_objects)
        return self

    def __exit__(self, *exc: Any) -> None:
        _scopes().pop()


custom_object_scope = CustomObjectScope


def lookup(name: Any) -> Any:
    """The object registered under ``name`` in the active scopes (innermost first) or globally, or ``None``."""
    if not isinstance(name, str):
        return None
    for objects in reversed(_scopes()):
        if name in objects:
            return objects[name]
    return _GLOBAL.get(name)
