"""Keras 3's ``StatelessScope`` and ``Layer.stateless_call``: run code on substitute variable values, changing none.

Inside ``StatelessScope(state_mapping)`` the mapped variables read their mapped values, and whatever changes a
variable (``assign``, a BatchNormalization's moving statistics, an optimizer step) is seen by later reads in
the scope, then collected (``scope.get_current_value(v)``) and undone on exit: each variable about to change
hands the scope its value first (``variables._STATELESS``). ``layer.stateless_call(trainable, non_trainable,
*args)`` is a call inside such a scope, as in Keras.

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

__all__ = ["StatelessScope", "StatelessCallMixin", "in_stateless_scope", "get_stateless_scope"]

import collections
from typing import Any

import numpy as np

from .. import variables as _variables


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
        self.collect_losses = collect_losses
        self.initialize_variables = initialize_variables
        self.losses: list = []
        self.state_mapping: dict[int, Any] = {}
        self._mapped: list[tuple[Any, np.ndarray]] = []
        for k, v in state_mapping or []:
            if not isinstance(k, _variables.Variable):
                raise ValueError("Invalid reference variable in StatelessScope: all keys in argument `mapping` must "
                                 f"be Variable instances. Received instead: {k}")
            value = np.asarray(v.numpy() if isinstance(v, _variables.Variable) else np.asarray(v), dtype=k.dtype)
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



class StatelessCallMixin:
    """``Layer.stateless_call``."""

    def stateless_call(self, trainable_variables: Any, non_trainable_variables: Any, *args: Any,
                       return_losses: bool = False, **kwargs: Any) -> Any:
        """Call the layer with ``trainable_variables`` / ``non_trainable_variables`` standing for its own (in the
        order of ``self.trainable_variables`` / ``self.non_trainable_variables``), leaving its variables as they
        are; returns ``(outputs, new non-trainable values)`` (and the losses added, with ``return_losses``).

        Example:
            >>> import numpy as np
            >>> from onnxforge import keras
            >>> layer = keras.layers.Dense(1, kernel_initializer="ones")
            >>> _ = layer(np.ones((1, 2), "float32"))
            >>> out, _ = layer.stateless_call([np.full((2, 1), 2.0, "float32"), np.zeros(1, "float32")], [],
            ...                               np.ones((1, 2), "float32"))
            >>> np.asarray(out).tolist(), layer.kernel.numpy().ravel().tolist()
            ([[4.0]], [1.0, 1.0])
        """
        name = type(self).__name__
        if not self.built:
            raise ValueError(f"To call stateless_call, {name} must be built (i.e. its variables must have been "
                             "already created). You can build it by calling it on some data.")
        for what, given, own in (("trainable_variables", trainable_variables, self.trainable_variables),
                                 ("non_trainable_variables", non_trainable_variables, self.non_trainable_variables)):
            if len(given) != len(own):
                raise ValueError(f"Argument `{what}` must be a list of tensors corresponding 1:1 to {name}()."
                                 f"{what}. Received list with length {len(given)}, but expected {len(own)} "
                                 "variables.")
        mapping = list(zip(self.trainable_variables, trainable_variables)) + \
            list(zip(self.non_trainable_variables, non_trainable_variables))
        with StatelessScope(state_mapping=mapping, collect_losses=return_losses) as scope:
            outputs = self(*args, **kwargs)
            losses = list(self.losses) if return_losses else None
        new_values = [scope.get_current_value(v) for v in self.non_trainable_variables]
        if return_losses:
            return outputs, new_values, losses
        return outputs, new_values
