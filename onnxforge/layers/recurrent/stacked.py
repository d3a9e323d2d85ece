"""``StackedRNNCells``: several cells run one after another at each time step, as one cell (Keras 3's
``keras.layers.StackedRNNCells``; ``RNN([cell_a, cell_b])`` wraps its list in one).

Inside the loop the states are every cell's states in order, flattened (``[h1, c1, h2, c2]`` for two LSTM
cells); ``RNN(..., return_state=True)`` returns them per cell after the output, as Keras does
(``[output, [h1, c1], [h2, c2]]``).
"""
from __future__ import annotations

__all__ = ["StackedRNNCells"]

from typing import Any

from ...graph import Value
from ..base import Layer
from .cells import _RecurrentCell


def serialize_cell(layer: Layer) -> dict:
    """Keras 3's serialized layer dict (``keras.layers.serialize``) for a wrapped layer or cell."""
    return {"module": "keras.layers", "class_name": type(layer).__name__, "config": layer.get_config(),
            "registered_name": None}


def deserialize_cell(config: Any) -> Layer:
    """The layer or cell ``serialize_cell`` (or Keras) wrote; a layer is returned as it is."""
    if isinstance(config, Layer):
        return config
    from ..serialization import deserialize

    return deserialize(config)


def _sizes(cell: Any) -> list[int]:
    size = cell.state_size
    return [int(s) for s in (size if isinstance(size, (list, tuple)) else [size])]


def _output_size(cell: Any) -> int:
    size = getattr(cell, "output_size", None)
    return int(size if size is not None else _sizes(cell)[0])


class StackedRNNCells(Layer):
    """Wraps a list of cells so that an ``RNN`` runs them as one: the output of each is the input of the next.

    Args:
        cells: a list of cells (``SimpleRNNCell``, ``LSTMCell``, ``GRUCell`` or custom cells).
        **kwargs: base layer arguments.

    Example:
        >>> from onnxforge.layers import Input, RNN, LSTMCell, GRUCell, StackedRNNCells
        >>> RNN(StackedRNNCells([LSTMCell(8), GRUCell(4)]))(Input(shape=(5, 3))).shape
        (None, 4)
    """

    def __init__(self, cells: Any, **kwargs: Any):
        super().__init__(**kwargs)
        if not isinstance(cells, (list, tuple)) or not cells:
            raise ValueError(f"StackedRNNCells {self.name!r} expects a non-empty list of cells. Received: cells={cells!r}")
        for cell in cells:
            if not callable(getattr(cell, "call", None)) or getattr(cell, "state_size", None) is None:
                raise ValueError("All cells must have a `call` method and a `state_size` attribute. "
                                 f"Received: cell={cell!r}")
        self.cells = list(cells)

    @property
    def state_size(self) -> list[int]:
        return [s for cell in self.cells for s in _sizes(cell)]

    @property
    def states_per_cell(self) -> list[int]:
        return [len(_sizes(cell)) for cell in self.cells]

    @property
    def output_size(self) -> int:
        return _output_size(self.cells[-1])

    def build(self, input_shape):
        shape = tuple(input_shape)
        for cell in self.cells:
            if isinstance(cell, Layer) and not cell.built:
                cell._maybe_build(shape)
            shape = (shape[0], _output_size(cell))
        self.built = True

    def get_initial_state(self, batch: Value) -> list[Value]:
        states: list[Value] = []
        for cell in self.cells:
            states.extend(cell.get_initial_state(batch))
        return states

    def _add_regularization(self, ctx: Any, outputs: Any) -> None:
        # The RNN adds its cell's penalties once, outside the loop; the cells are never __call__-ed per step.
        super()._add_regularization(ctx, outputs)
        for cell in self.cells:
            if isinstance(cell, Layer):
                cell._add_regularization(ctx, [])

    def call(self, inputs, states, training=False):
        states = list(states) if isinstance(states, (list, tuple)) else [states]
        x, new_states, at = inputs, [], 0
        for cell in self.cells:
            n = len(_sizes(cell))
            mine = states[at:at + n]
            at += n
            if isinstance(cell, _RecurrentCell) and training and (cell.dropout or cell.recurrent_dropout):
                raise NotImplementedError(
                    f"StackedRNNCells {self.name!r}: cell {cell.name!r} has dropout={cell.dropout} / "
                    f"recurrent_dropout={cell.recurrent_dropout}; dropout inside stacked cells is not supported "
                    "in training programs. Stack RNN layers (each with its own dropout) instead.")
            # Built-in cells run their step directly: their weights are already read by the enclosing trace.
            x, out_states = cell.call(x, mine, training=training) if isinstance(cell, _RecurrentCell) \
                else cell(x, mine, training=training)
            new_states.extend(out_states if isinstance(out_states, (list, tuple)) else [out_states])
        return x, new_states

    def get_config(self):
        return {**super().get_config(), "cells": [serialize_cell(cell) for cell in self.cells]}

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> StackedRNNCells:
        config = dict(config)
        return cls([deserialize_cell(c) for c in config.pop("cells")], **config)
