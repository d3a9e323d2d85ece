"""The arrays that user-written layers hold as attributes, which a traced call reads as constants.

keras.io's GNN node classifier keeps its graph as attributes (``self.node_features``, ``self.edges``) that
``call()`` reads; the compiled programs bake them in. When the program replaces them (new nodes and links,
then ``predict``), Keras on its eager backends reads the new ones, and on TensorFlow traces its predict
function after the change: the programs built before must be rebuilt. ``snapshot`` names the arrays by
identity (an array changed in place is not seen, as in TensorFlow's traced functions) and holds them, so
that a freed array's id reused by a new one cannot pass for it. Every eager call asks for the snapshot, so it
is kept per layer and walked again only after some layer was given an array attribute (``note_assignment``,
called by ``Layer.__setattr__``): a ResNet-50's walk costs about 1 ms, a sixth of its eager call.

Example:
    >>> import numpy as np
    >>> import onnxforge.keras as keras
    >>> class Graph(keras.layers.Layer):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.edges = np.zeros((2, 3), "int64")
    >>> layer = Graph()
    >>> before = snapshot(layer)
    >>> before == snapshot(layer)
    True
    >>> layer.edges = np.ones((2, 4), "int64")
    >>> before == snapshot(layer)
    False
"""
from __future__ import annotations

__all__ = ["snapshot", "note_assignment", "note_state_change"]

import weakref
from typing import Any

import numpy as np

from ..keras_objects import is_builtin_class


class _Held:
    """An array compared by identity, kept alive while a snapshot names it."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray):
        self.array = array

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Held) and other.array is self.array

    def __hash__(self) -> int:
        return id(self.array)


def _arrays(value: Any) -> list[_Held] | None:
    if isinstance(value, np.ndarray):
        return [_Held(value)]
    if isinstance(value, (list, tuple)) and value and any(isinstance(v, np.ndarray) for v in value):
        return [_Held(v) for v in value if isinstance(v, np.ndarray)]   # a graph_info tuple
    return None


#: Bumped whenever a layer is given an array attribute; a kept snapshot of an older generation is walked again.
_GENERATION = [0]
_KEPT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def note_assignment(value: Any) -> None:
    """Called for every attribute a layer is given: an array (or a tuple / list holding one) outdates the kept
    snapshots."""
    if _arrays(value) is not None:
        _GENERATION[0] += 1


def note_state_change() -> None:
    """Called by onnxforge's own layers whose ``_traced_host_state`` changed (a lookup layer given a
    vocabulary): outdates the kept snapshots."""
    _GENERATION[0] += 1


def snapshot(layer: Any) -> tuple:
    """``(layer name, attribute, held arrays)`` for every array attribute of the user-written layers in
    ``layer`` (itself and its sub-layers); onnxforge's own layers hold their arrays in Variables, except the
    host state a layer names by a ``_traced_host_state()`` method (a lookup layer's vocabulary, which traced
    programs hold as constant tables and ``set_vocabulary`` or loading a ``.keras`` file's assets replaces)."""
    kept = _KEPT.get(layer)
    if kept is not None and kept[0] == _GENERATION[0]:
        return kept[1]
    found: list[tuple] = []
    seen: set[int] = set()
    stack = [layer]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if not is_builtin_class(type(current)):
            for name, value in vars(current).items():
                held = _arrays(value)
                if held is not None:
                    found.append((id(current), name, tuple(held)))
        traced_state = getattr(current, "_traced_host_state", None)
        if traced_state is not None:   # by content, not by layer: a Dataset.map makes an equal lookup per row
            found.append((type(current).__name__, "_traced_host_state", traced_state()))
        sublayers = getattr(current, "_flat_sublayers", None)
        if sublayers is not None:
            stack.extend(sublayers())
    result = tuple(found)
    _KEPT[layer] = (_GENERATION[0], result)
    return result
