"""Keras's safe mode for deserialization: code stored in a config (a ``Lambda``'s Python bytecode) is only
loaded when the caller opts out of safe mode explicitly, as in Keras 3.

``load_model(..., safe_mode=False)`` and ``deserialize`` inside ``SafeModeScope(False)`` allow it;
``enable_unsafe_deserialization()`` allows it for the whole process (Keras's ``keras.config`` switch).
Outside any scope, the default is safe: a direct ``Lambda.from_config`` refuses bytecode.

Example:
    >>> in_safe_mode()
    True
    >>> with SafeModeScope(False):
    ...     in_safe_mode()
    False
"""
from __future__ import annotations

__all__ = ["SafeModeScope", "in_safe_mode", "enable_unsafe_deserialization", "safe_mode_override"]

import threading
from typing import Any

_state = threading.local()
_unsafe_everywhere = False


def in_safe_mode() -> bool:
    """Whether deserialization must refuse stored code (the innermost scope decides; safe by default)."""
    stack = getattr(_state, "stack", None)
    if stack:
        return stack[-1]
    return not _unsafe_everywhere


def safe_mode_override() -> bool | None:
    """What overrides a loading function's ``safe_mode`` argument, as in Keras: the innermost
    ``SafeModeScope``, else ``False`` after ``enable_unsafe_deserialization()``, else ``None`` (the argument holds).

    Example:
        >>> safe_mode_override() is None or safe_mode_override() is False
        True
    """
    stack = getattr(_state, "stack", None)
    if stack:
        return stack[-1]
    return False if _unsafe_everywhere else None


def enable_unsafe_deserialization() -> None:
    """Allow loading stored Python code (``Lambda`` bytecode) everywhere in this process."""
    global _unsafe_everywhere
    _unsafe_everywhere = True


class SafeModeScope:
    """``with SafeModeScope(False): ...`` deserializes with safe mode off (``True`` forces it on)."""

    def __init__(self, safe_mode: bool = True):
        if not isinstance(safe_mode, bool):
            raise TypeError(f"safe_mode must be a bool. Received: safe_mode={safe_mode!r}")
        self.safe_mode = safe_mode

    def __enter__(self) -> SafeModeScope:
        if not hasattr(_state, "stack"):
            _state.stack = []
        _state.stack.append(self.safe_mode)
        return self

    def __exit__(self, *exc: Any) -> None:
        _state.stack.pop()
