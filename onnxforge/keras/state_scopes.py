"""Keras 3's backend scopes: ``StatelessScope`` (defined in ``layers/stateless.py``: run code on substitute
variable values, changing none), ``SymbolicScope`` and ``RematScope`` / ``remat``.

``SymbolicScope`` marks the symbolic stage, as in Keras. ``RematScope`` / ``remat`` are accepted and recorded, but onnxruntime has no rematerialization (gradient
checkpointing): onnxforge's training programs keep the activations their backward pass needs, scope or not.

Example:
    >>> from onnxforge import keras
    >>> from onnxforge.keras import state_scopes
    >>> with keras.SymbolicScope():
    ...     state_scopes.in_symbolic_scope()
    True
    >>> with keras.RematScope(mode="larger_than", output_size_threshold=4096):
    ...     state_scopes.get_current_remat_mode().output_size_threshold
    4096
    >>> state_scopes.get_current_remat_mode() is None
    True
"""
from __future__ import annotations

__all__ = ["StatelessScope", "SymbolicScope", "RematScope", "RematMode", "remat", "in_stateless_scope",
           "get_stateless_scope", "in_symbolic_scope", "get_symbolic_scope", "get_current_remat_mode"]

import collections
import threading
from typing import Any, Callable

from ..layers.stateless import StatelessScope, get_stateless_scope, in_stateless_scope

_local = threading.local()


class SymbolicScope:
    """Marks the symbolic stage (Keras's shape-inference pass); ``in_symbolic_scope()`` reports it."""

    def __enter__(self) -> SymbolicScope:
        self.original_scope = get_symbolic_scope()
        _local.symbolic = self
        return self

    def __exit__(self, *exc: Any) -> None:
        _local.symbolic = self.original_scope


def in_symbolic_scope() -> bool:
    return get_symbolic_scope() is not None


def get_symbolic_scope() -> SymbolicScope | None:
    return getattr(_local, "symbolic", None)


RematMode = collections.namedtuple("RematMode", ["mode", "output_size_threshold", "layer_names"])


class RematScope:
    """Keras's rematerialization scope, accepted and recorded (``get_current_remat_mode()``).

    onnxruntime has no rematerialization (gradient checkpointing): a training program compiled inside this
    scope stores the activations its backward pass reads, exactly as outside it. Memory stays that of plain
    training; results are the same as Keras's with or without remat.

    Args:
        mode: ``"full"``, ``"activations"``, ``"larger_than"``, ``"list_of_layers"`` or ``None``.
        output_size_threshold: for ``"larger_than"``.
        layer_names: for ``"list_of_layers"``.
    """

    def __init__(self, mode: str | None = "full", output_size_threshold: int = 1024, layer_names: Any = None):
        if mode not in {"full", "activations", "larger_than", "list_of_layers", None}:
            raise ValueError(f"Invalid mode '{mode}'. Supported modes are: 'full', 'activations', 'larger_than', "
                             "'list_of_layers', or  None.")
        self.mode = mode
        self.output_size_threshold = output_size_threshold
        self.layer_names = layer_names or []

    def __enter__(self) -> RematScope:
        _remat_stack().append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        _remat_stack().pop()


def _remat_stack() -> list:
    if not hasattr(_local, "remat"):
        _local.remat = []
    return _local.remat


def get_current_remat_mode() -> RematMode | None:
    """The innermost ``RematScope``'s settings, or ``None``."""
    stack = _remat_stack()
    if not stack:
        return None
    return RematMode(stack[-1].mode, stack[-1].output_size_threshold, stack[-1].layer_names)


def remat(f: Callable) -> Callable:
    """Keras's ``keras.remat(f)``: returns ``f`` itself.

    onnxruntime has no rematerialization (recomputing activations in the backward pass instead of storing
    them): the compiled training program stores what the gradients need, so ``remat`` changes neither results
    nor memory here. It exists so that Keras code using it runs unchanged.

    Example:
        >>> from onnxforge import keras
        >>> keras.remat(keras.ops.relu) is keras.ops.relu
        True
    """
    return f
