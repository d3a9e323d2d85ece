"""``keras.utils.is_keras_tensor`` and ``get_source_inputs``: questions about functional-API tensors.

Example:
    >>> from onnxforge.layers import Dense, Input
    >>> x = Input(shape=(3,))
    >>> y = Dense(2)(Dense(4)(x))
    >>> is_keras_tensor(y), get_source_inputs(y) == [x]
    (True, True)
"""
from __future__ import annotations

__all__ = ["is_keras_tensor", "get_source_inputs"]

from typing import Any

from ..layers.keras_tensor import KerasTensor


def is_keras_tensor(x: Any) -> bool:
    """Whether ``x`` is a symbolic tensor of the functional API (``keras.Input(...)`` or a layer's output)."""
    return isinstance(x, KerasTensor)


def get_source_inputs(tensor: Any) -> list[Any]:
    """The input tensors (``keras.Input`` outputs) that ``tensor`` is computed from, each once, in the order
    they are first reached depth first (Keras's order)."""
    if not isinstance(tensor, KerasTensor):
        raise ValueError(f"get_source_inputs expects a KerasTensor (keras.Input or a layer's output). Received: "
                         f"{tensor!r}")
    sources: list[Any] = []
    seen: set[int] = set()

    def visit(t: Any) -> None:   # depth first, parents in call order: Keras's order
        if id(t) in seen:
            return
        seen.add(id(t))
        history = t._keras_history
        node = history.layer._inbound_nodes[history.node_index] if history is not None else None
        if node is None or node.is_input:
            sources.append(t)
            return
        for parent in node.input_tensors:
            visit(parent)

    visit(tensor)
    return sources
