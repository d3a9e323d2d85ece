"""Keras 3's automatic config: a user's layer or model without ``get_config`` serializes its constructor arguments.

Keras records the arguments each ``Layer`` is constructed with (defaults included) when all of them are
plain JSON values (strings, numbers, booleans, ``None``, and lists / dicts of them); the base
``get_config`` then returns them, so ``cls.from_config(layer.get_config())`` (what ``clone_model`` and
``.keras`` files do) rebuilds a custom layer that never wrote a ``get_config``. onnxforge's own layers
write their configs, so only classes defined outside onnxforge are recorded.

Example:
    >>> from onnxforge.layers import Layer
    >>> class Scale(Layer):
    ...     __module__ = "my_project.layers"   # a user's module (doctest runs this one inside onnxforge)
    ...     def __init__(self, factor=2.0, **kwargs):
    ...         super().__init__(**kwargs)
    ...         self.factor = factor
    >>> Scale(3.0, name="s").get_config()["factor"]
    3.0
"""
from __future__ import annotations

__all__ = ["capture_init_args", "mark_default", "uses_default_config"]

import inspect
from collections.abc import Callable
from typing import Any

_PLAIN = (str, int, float, bool, type(None))


def _plain(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return isinstance(value, _PLAIN)


def capture_init_args(cls: type, args: tuple, kwargs: dict) -> dict | None:
    """The constructor arguments of a user-defined class as a config dict, or ``None`` when Keras would not
    auto-configure it (an onnxforge class, positional-only or ``*args`` values, or non-plain values)."""
    if cls.__module__.startswith("onnxforge."):
        return None
    try:
        signature = inspect.signature(cls.__init__)
        bound = signature.bind(None, *args, **kwargs)
    except (TypeError, ValueError):
        return None
    params = list(signature.parameters.values())
    if any(p.kind is inspect.Parameter.POSITIONAL_ONLY for p in params[1:]):
        return None
    bound.apply_defaults()
    config = dict(bound.arguments)
    config.pop(params[0].name, None)   # self
    for p in params[1:]:
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            config.update(config.pop(p.name, {}))
        elif p.kind is inspect.Parameter.VAR_POSITIONAL and config.pop(p.name, ()):
            return None
    config.pop("name", None)   # the base config carries the name
    return config if _plain(config) else None


def mark_default(fn: Callable) -> Callable:
    """Tag a base class's ``get_config``: a class that inherits it unchanged gets the automatic config."""
    fn._default_get_config = True  # type: ignore[attr-defined]
    return fn


def uses_default_config(obj: Any) -> bool:
    """Whether ``obj``'s class inherits a base ``get_config`` (does not write its own)."""
    return bool(getattr(type(obj).get_config, "_default_get_config", False))


def accepts_name(cls: type) -> bool:
    """Whether the constructor takes ``name`` (directly or through ``**kwargs``); Keras drops it otherwise."""
    try:
        params = inspect.signature(cls.__init__).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.name == "name" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
