"""``keras.name_scope`` and ``keras.device``: the two context managers Keras 3 programs open around their code.

``name_scope("block")`` prefixes the path of every ``keras.Variable`` created inside it (``"block/v"``), nested
scopes joining with ``/`` as in Keras. ``device("gpu:0")`` is accepted and checked like Keras's, but onnxforge
places each compiled program itself (``compile(device=...)``, ``"auto"`` by default): the scope does not move
work between devices.
"""
from __future__ import annotations

__all__ = ["name_scope", "device", "current_path"]

import re
import threading
from typing import Any

_state = threading.local()
_DEVICE = re.compile(r"^/?(?:device:)?(cpu|gpu|cuda|tpu|mps|meta)(?::\d+)?$", re.IGNORECASE)


def _stack() -> list[str]:
    if not hasattr(_state, "names"):
        _state.names = []
    return _state.names


def current_path() -> str:
    """The names of the open ``name_scope``\\s joined by ``/`` (``""`` outside any)."""
    return "/".join(_stack())


class name_scope:   # noqa: N801 - Keras's spelling
    """Open a sub-namespace for variable paths (Keras 3's ``keras.name_scope``).

    Args:
        name: the scope's name; a string without ``/``.
        caller, deduplicate: Keras's arguments: a scope whose caller and name equal the enclosing scope's
            (``deduplicate=True``) does not add its name twice.
        override_parent: an absolute path that replaces the enclosing scopes'.

    Example:
        >>> from onnxforge import keras
        >>> with keras.name_scope("block"):
        ...     v = keras.Variable(1.0, name="scale")
        >>> v.path
        'block/scale'
    """

    def __init__(self, name: str, caller: Any = None, deduplicate: bool = True, override_parent: str | None = None):
        if not isinstance(name, str) or "/" in name:
            raise ValueError(f"Argument `name` must be a string and cannot contain character `/`. Received: name={name}")
        self.name = name
        self.caller = caller
        self.deduplicate = deduplicate
        self.override_parent = override_parent
        self._saved: list[str] | None = None
        self._pushed = False

    def __enter__(self) -> name_scope:
        stack = _stack()
        self._saved = list(stack)
        if self.override_parent is not None:
            stack[:] = [p for p in self.override_parent.split("/") if p]
        last = getattr(_state, "last", None)
        if self.deduplicate and self.caller is not None and last == (id(self.caller), self.name) and stack \
                and stack[-1] == self.name:
            return self
        stack.append(self.name)
        _state.last = (id(self.caller), self.name) if self.caller is not None else None
        self._pushed = True
        return self

    def __exit__(self, *exc: Any) -> None:
        _stack()[:] = self._saved or []
        _state.last = None


class device:   # noqa: N801 - Keras's spelling
    """Keras 3's ``keras.device(device_name)`` scope, accepted for compatibility.

    ``device_name`` is ``"cpu"``, ``"gpu"``, ``"gpu:0"``, ``"cuda:1"`` and the like (TensorFlow's
    ``"/device:GPU:0"`` too). onnxforge decides placement per compiled program (``model.compile(device=...)``):
    code inside the scope runs where it would outside it.

    Example:
        >>> from onnxforge import keras
        >>> with keras.device("cpu"):
        ...     y = keras.ops.add(1.0, 2.0)
        >>> float(y)
        3.0
    """

    def __init__(self, device_name: str):
        if not isinstance(device_name, str) or not _DEVICE.match(device_name.strip()):
            raise ValueError("Invalid value for argument `device_name`. Expected a string like 'cpu', 'gpu', "
                             f"'gpu:0' or 'cuda:0'. Received: device_name={device_name!r}")
        self.device_name = device_name.strip()

    def __enter__(self) -> device:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None
