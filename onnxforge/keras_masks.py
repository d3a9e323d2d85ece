"""Keras masks on traced graph values: the side table every layer, loss and metric reads.

Keras carries a layer's output mask on the output tensor itself (``_keras_mask``). A graph ``Value`` has no
room for it (``__slots__``), so masks live in a side table per builder: ``set_keras_mask(value, mask)``
after a layer produced ``value``, ``get_keras_mask(value)`` where a later layer, a loss or a metric wants it
(Keras 3 losses and mean metrics weight their entries by the prediction's mask).

Example:
    >>> from onnxforge.graph import GraphBuilder
    >>> b = GraphBuilder()
    >>> x = b.input("x", 1, (None, 3))
    >>> mask = b.input("m", 9, (None, 3))
    >>> set_keras_mask(x, mask)
    >>> get_keras_mask(x) is mask
    True
    >>> del x._keras_mask   # Keras's attribute on the tensor is the same table
    >>> get_keras_mask(x) is None
    True
"""
from __future__ import annotations

__all__ = ["set_keras_mask", "get_keras_mask"]

import weakref
from typing import Any

from .graph import GraphBuilder, Value

_masks: weakref.WeakKeyDictionary[GraphBuilder, dict[str, Value]] = weakref.WeakKeyDictionary()


def set_keras_mask(value: Any, mask: Value | None) -> None:
    """Attach ``mask`` (bool, e.g. ``(batch, time)``) to the graph value ``value``; ``None`` clears it."""
    if not isinstance(value, Value) or value.builder is None:
        return
    table = _masks.setdefault(value.builder, {})
    if mask is None:
        table.pop(value.name, None)
    else:
        table[value.name] = mask


def get_keras_mask(value: Any) -> Value | None:
    """The mask attached to ``value`` by ``set_keras_mask``, if any."""
    if not isinstance(value, Value) or value.builder is None:
        return None
    return _masks.get(value.builder, {}).get(value.name)


def _delete_keras_mask(value: Value) -> None:
    set_keras_mask(value, None)


# Keras programs read and drop masks through the tensor attribute itself (TensorFlow's NMT tutorial ends its
# model's call() with ``del logits._keras_mask`` so that its masked loss sees none): on a traced Value the
# attribute is a view of the side table.
Value._keras_mask = property(get_keras_mask, set_keras_mask, _delete_keras_mask,
                             doc="The Keras mask of this value (``None`` if it has none).")
