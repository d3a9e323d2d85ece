"""Keras 3's backend scopes: ``StatelessScope``, ``SymbolicScope`` and ``RematScope`` / ``remat``.

``StatelessScope(state_mapping)`` runs code on substitute variable values and keeps every variable unchanged:
inside it the mapped variables read their mapped values, and whatever changes a variable (``assign``, a
BatchNormalization's moving statistics, an optimizer step) is seen by later reads in the scope, then collected
(``scope.get_current_value(v)``) and undone on exit. ``SymbolicScope`` marks the symbolic stage, as in Keras.
``RematScope`` / ``remat`` are accepted and recorded, but onnxruntime has no rematerialization (gradient
checkpointing): onnxforge's training programs keep the activations their backward pass needs, scope or not.

Example:
    >>> import numpy as np
    >>> from onnxforge import keras
    >>> v = keras.Variable(np.zeros(2, "float32"))
    >>> with keras.StatelessScope([(v, np.ones(2, "float32"))]) as scope:
    ...     v.assign(v.numpy() * 3)
    >>> v.numpy().tolist(), scope.get_current_value(v).tolist()
    ([0.0, 0.0], [3.0, 3.0])
"""
from __future__ import annotations

__all__ = ["StatelessScope", "SymbolicScope", "RematScope", "RematMode", "remat", "in_stateless_scope",
           "get_stateless_scope", "in_symbolic_scope", "get_symbolic_scope", "get_current_remat_mode"]

import collections
import threading
from typing import Any, Callable

import numpy as np

from .. import variables as _variables

_local = threading.local()


class StatelessScope:
    """Runs code without changing any ``keras.Variable``; new values are collected in the scope instead.

    Args:
        state_mapping: ``[(variable, value), ...]``: values the variables hold inside the scope (same shapes).
        collect_losses: accepted for Keras's signature; the losses layers add inside the scope stay on the
            layers (``layer.losses``), as onnxforge keeps them, and ``scope.losses`` stays empty.
        initialize_variables: accepted for Keras's signature (onnxforge's variables hold values from creation).

    Raises:
        ValueError: a key that is not a ``Variable``, or a value whose shape differs from its variable's.
    """

    def __init__(self, state_mapping: Any = None, collect_losses: bool = False, initialize_variables: bool = True):
        from ..variables import Variable

        self.collect_losses = collect_losses
        self.initialize_variables = initialize_variables
        self.losses: list = []
        self.state_mapping: dict[int, Any] = {}
        self._mapped: list[tuple[Any, np.ndarray]] = []
        for k, v in state_mapping or []:
            if not isinstance(k, Variable):
                raise ValueError("Invalid reference variable in StatelessScope: all keys in argument `mapping` must "
                                 f"be Variable instances. Received instead: {k}")
            value = np.asarray(v.numpy() if isinstance(v, Variable) else np.asarray(v), dtype=k.dtype)
            if tuple(value.shape) != tuple(k.shape):
                raise ValueError("Invalid variable value in StatelessScope: all values in argument `mapping` must be "
                                 "tensors with a shape that matches the corresponding variable shape. For variable "
                                 f"{k}, received invalid value {value} with shape {value.shape}.")
            self.state_mapping[id(k)] = value
            self._mapped.append((k, value))
        self._saved: collections.OrderedDict[int, tuple[Any, np.ndarray]] = collections.OrderedDict()

    def _remember(self, var: Any) -> None:
        """Called by a variable about to change inside the scope: keep the value it had before."""
        if var.uid not in self._saved:
            self._saved[var.uid] = (var, var.numpy())

    def __enter__(self) -> StatelessScope:
        self._outer = _variables._STATELESS[0]
        _variables._STATELESS[0] = self
        for var, value in self._mapped:
            var.assign(value)
        return self

    def add_loss(self, loss: Any) -> None:
        self.losses.append(loss)

    def add_update(self, update: Any) -> None:
        variable, value = update
        self.state_mapping[id(variable)] = value

    def get_current_value(self, variable: Any) -> Any:
        """The variable's value at the end of the scope if it was mapped or changed in it, else ``None``."""
        return self.state_mapping.get(id(variable), None)

    def __exit__(self, *exc: Any) -> None:
        _variables._STATELESS[0] = self._outer
        mapped = {id(k) for k, _ in self._mapped}
        for var, before in self._saved.values():
            now = var.numpy()
            if id(var) in mapped or not np.array_equal(now, before):
                self.state_mapping[id(var)] = now
            var.assign(before)   # back as it was (seen by an enclosing scope as a change it will undo too)


def in_stateless_scope() -> bool:
    return _variables._STATELESS[0] is not None


def get_stateless_scope() -> StatelessScope | None:
    return _variables._STATELESS[0]


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
