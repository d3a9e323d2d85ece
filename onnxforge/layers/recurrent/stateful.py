"""``stateful=True`` recurrent layers: the final states of each batch are the initial states of the next.

As in Keras 3, the states live in non-trainable Variables named ``rnn_state`` (not among the layer's
weights, so not saved with them), shaped ``(batch_size, state_size)``: the batch size must be static (an
``Input(batch_size=...)``, ``batch_input_shape`` or ``batch_shape``). A call without ``initial_state`` starts
from them, and every program that runs the layer (``fit``, ``predict``, an eager call) writes its final
states back, in onnxruntime like any other state. ``reset_states()`` zeroes them. A batch of any other size
is refused on the host before it runs.

Example:
    >>> import numpy as np
    >>> import onnxforge as of
    >>> model = of.keras.Sequential([of.keras.Input(batch_shape=(2, 3, 1)),
    ...                              of.keras.layers.SimpleRNN(1, stateful=True, kernel_initializer="ones",
    ...                                                        recurrent_initializer="zeros", activation=None)])
    >>> x = np.ones((2, 3, 1), np.float32)
    >>> float(model(x)[0, 0]), float(model.layers[0].states[0].numpy()[0, 0])
    (1.0, 1.0)
"""
from __future__ import annotations

__all__ = ["create_states", "read_states", "write_states", "zero_states"]

from typing import Any

import numpy as np

from ...graph import Value
from ...tracing import current_trace
from ...variables import Variable


def create_states(layer: Any, batch_size: Any, sequences_shape: tuple) -> list[Variable]:
    """The layer's state Variables for ``batch_size`` rows (Keras's ``_create_state_variables``)."""
    if not isinstance(batch_size, int):
        raise ValueError("When using `stateful=True` in a RNN, the batch size must be static. Found dynamic batch "
                         f"size: sequence.shape={sequences_shape}. Give the model's input a batch size "
                         "(`keras.Input(batch_size=...)`, `batch_shape=` or the layer's `batch_input_shape`).")
    dtype = np.dtype(getattr(layer, "variable_dtype", None) or "float32")
    states = []
    for size in layer.state_size:
        var = Variable(np.zeros((batch_size, int(size)), dtype), name=f"{layer.name}/rnn_state", trainable=False,
                       dtype=dtype)
        var._replica_local = True   # each replica's own rows: never averaged across replicas
        states.append(var)
    return states


def read_states(layer: Any, x: Value) -> list[Value]:
    """The states a call starts from, checking the batch size (static here, or on the host at run time)."""
    ctx = current_trace()
    expected = int(layer.states[0].shape[0])
    batch = x.shape[0] if x.shape is not None else None
    message = (f'Layer "{layer.name}": if an RNN is stateful, the batch size of the input sequences must be the '
               f"same as the batch size of the initial state. Expected batch size: {expected}.")
    if isinstance(batch, int) and batch != expected:
        raise ValueError(f"{message} Received batch size: {batch}")
    if isinstance(batch, str):
        ctx.require_dim(batch, expected, message, maximum=expected)
    out = []
    for var in layer.states:
        v = ctx.read(var)
        if v.dtype != x.dtype:
            v = v.builder.op("Cast", [v], to=x.dtype, shape=v.shape)
        out.append(v)
    return out


def write_states(layer: Any, states: list[Value]) -> None:
    """Store a call's final states for the next call."""
    ctx = current_trace()
    for var, value in zip(layer.states, states):
        dtype = ctx.read(var).dtype
        if value.dtype != dtype:
            value = value.builder.op("Cast", [value], to=dtype, shape=value.shape)
        ctx.assign_variable(var, value, in_inference=True)


def zero_states(layer: Any) -> None:
    """``reset_states()``: every state back to zeros."""
    for var in layer.states or []:
        var.assign(np.zeros(var.shape, np.dtype(var.dtype)))
