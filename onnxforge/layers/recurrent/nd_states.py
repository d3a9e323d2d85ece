"""Shapes of a cell's states and outputs for ``RNN``, which may have more than one axis each.

Keras 3's ``RNN`` runs a custom cell on sequences of any rank ``(batch, time, ...)``: each step gets a
``(batch, ...)`` slice, and a cell whose ``get_initial_state(batch_size)`` returns, say, ``(batch, rows, cols)``
zeros (ConvLSTM-style cells, whose ``state_size`` is only a placeholder) carries states of that shape.
tf.keras 2 cells give such a state's shape as ``state_size`` itself (``tf.TensorShape([rows, cols])`` or
``[[rows, cols]]``, keras.io's temporal latent bottleneck), and optionally ``output_size`` the same way: one state
of that shape. A plain list of ints stays one vector state per int, as in both.

Example:
    >>> import types
    >>> cell = types.SimpleNamespace(state_size=[(3, 4), 5], output_size=None)
    >>> state_shapes(cell), output_shape(cell)
    ([(3, 4), (5,)], (3, 4))
    >>> time_major((2, 7, 3, 4))
    (1, 0, 2, 3)
"""
from __future__ import annotations

__all__ = ["state_shapes", "output_shape", "time_major", "mask_for", "is_vector_cell", "contradicts"]

from typing import Any

import numpy as np

from ...graph import GraphBuilder, Value
from ...graph.emit import contradicts


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _shape(entry: Any) -> tuple | None:
    """One state's trailing shape: an int is a vector, a TensorShape / list / tuple of ints a tensor; a size
    that is not a positive int (ConvLSTM's -1 placeholder) is unknown until ``get_initial_state`` runs."""
    if _is_int(entry):
        return (int(entry),) if entry > 0 else None
    dims = entry.as_list() if hasattr(entry, "as_list") else list(entry) if isinstance(entry, (list, tuple)) else None
    if dims is None or not dims or not all(_is_int(d) and d > 0 for d in dims):
        return None
    return tuple(int(d) for d in dims)


def state_shapes(cell: Any) -> list[tuple | None]:
    """Each state's shape without the batch axis (``None``: known only from the cell's initial states)."""
    size = cell.state_size
    if hasattr(size, "as_list"):      # a TensorShape is one state of that shape
        return [_shape(size)]
    return [_shape(s) for s in (size if isinstance(size, (list, tuple)) else [size])]


def output_shape(cell: Any, states: list[tuple | None] | None = None) -> tuple | None:
    """The output's shape without the batch axis: ``output_size``, else the first state's (Keras's rule)."""
    size = getattr(cell, "output_size", None)
    if size is not None:
        return _shape(size)
    states = state_shapes(cell) if states is None else states
    return states[0] if states else None


def is_vector_cell(cell: Any) -> bool:
    """Whether every state and the output are vectors of known size (the form the built-in cells take)."""
    shapes = state_shapes(cell)
    out = output_shape(cell, shapes)
    return all(s is not None and len(s) == 1 for s in shapes) and out is not None and len(out) == 1


def time_major(shape: tuple) -> tuple[int, ...]:
    """The permutation that swaps the batch and time axes of a ``(batch, time, ...)`` tensor (its own inverse)."""
    return (1, 0, *range(2, len(shape)))


def mask_for(b: GraphBuilder, mask: Value, like: Value) -> Value:
    """A ``(batch, 1)`` step mask reshaped to broadcast over ``like``'s trailing axes (``(batch, 1, 1)`` for a
    ``(batch, rows, cols)`` state)."""
    rank = len(like.shape) if like.shape is not None else 2
    if rank <= 2:
        return mask
    return b.op("Reshape", [mask, b.const(np.asarray([-1] + [1] * (rank - 1), np.int64))],
                shape=(mask.shape[0] if mask.shape else None,) + (1,) * (rank - 1))
