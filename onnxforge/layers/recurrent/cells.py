"""Recurrent cells with Keras 3 names, arguments, defaults and weight layouts.

A cell is one time step: ``call(inputs, states) -> (output, new_states)``, as in Keras. The ``RNN`` layer
does not call the built-in cells step by step, though: it asks them for two pieces,

* ``_project(x)``: the input half of every gate for all time steps at once (one big MatMul, outside the
  loop), and
* ``_step_with(projected_t, states, constants)``: the recurrent half, traced once into the ONNX ``Scan``
  body; ``constants`` (``_step_constants``) are outer-graph values the step reads: the recurrent kernel
  or its gate blocks and the recurrent dropout masks, captured by the loop body,

which together compute exactly ``call``. Dropout masks are drawn once per sequence (Keras's
``DropoutRNNCell``): the same units are dropped at every step. As in Keras 3, a non-zero
``recurrent_dropout`` switches LSTM and GRU to ``implementation=1`` semantics: one independent mask per gate.

Weight layouts (Keras): SimpleRNN kernel ``(in, u)``; LSTM kernel ``(in, 4u)`` with gates i, f, c, o,
recurrent_kernel ``(u, 4u)``, bias ``(4u,)``; GRU kernel ``(in, 3u)`` with gates z, r, h, bias ``(2, 3u)``
(input and recurrent bias) when ``reset_after`` else ``(3u,)``.
"""
from __future__ import annotations

__all__ = ["SimpleRNNCell", "LSTMCell", "GRUCell"]

from typing import Any

import numpy as np

from ... import activations as activations_mod
from ... import initializers as initializers_mod
from ... import regularizers as regularizers_mod
from ... import constraints as constraints_mod
from ...graph import Value, onnx_dtype
from ..base import Layer
from ..seed_state import LayerSeedGenerator
from ..core import check_positive_int, set_constraints
from . import _ops


def _rate(layer: str, arg: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"Layer {layer}: `{arg}` must be a float between 0 and 1. Received: {arg}={value!r}")
    return min(1.0, max(0.0, float(value)))  # Keras clips rather than refuses


def _active(rate: float, training: bool) -> bool:
    # Keras applies RNN dropout only for 0 < rate < 1 (rate 1 would zero everything; it is ignored).
    return bool(training) and 0.0 < rate < 1.0


class _RecurrentCell(Layer):
    """What the three built-in cells share: config, weights, dropout masks and the single-step ``call``."""

    #: gates per unit (columns of the kernel = gates * units)
    gates = 1
    #: names of the activation arguments this cell has
    _activation_args: tuple[str, ...] = ("activation",)

    def __init__(self, units: int, activation: Any = "tanh", use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", recurrent_initializer: Any = "orthogonal",
                 bias_initializer: Any = "zeros", kernel_regularizer: Any = None, recurrent_regularizer: Any = None,
                 bias_regularizer: Any = None, kernel_constraint: Any = None, recurrent_constraint: Any = None,
                 bias_constraint: Any = None, dropout: float = 0.0, recurrent_dropout: float = 0.0,
                 seed: int | None = None, **kwargs: Any):
        implementation = kwargs.pop("implementation", 2)
        super().__init__(**kwargs)
        self.units = check_positive_int(self.name, "units", units)
        set_constraints(self, kernel_constraint=kernel_constraint, recurrent_constraint=recurrent_constraint,
                      bias_constraint=bias_constraint)
        self.activation = activations_mod.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers_mod.get(kernel_initializer)
        self.recurrent_initializer = initializers_mod.get(recurrent_initializer)
        self.bias_initializer = initializers_mod.get(bias_initializer)
        self.kernel_regularizer = regularizers_mod.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers_mod.get(recurrent_regularizer)
        self.bias_regularizer = regularizers_mod.get(bias_regularizer)
        self.dropout = _rate(self.name, "dropout", dropout)
        self.recurrent_dropout = _rate(self.name, "recurrent_dropout", recurrent_dropout)
        self.seed = seed
        self.seed_generator = LayerSeedGenerator(seed)   # listed in `variables` as Keras's (see layers/seed_state.py)
        # Keras 3: recurrent dropout forces implementation 1 (one dropout mask per gate).
        self.implementation = 1 if self.recurrent_dropout != 0.0 else int(implementation)
        self.kernel: Any = None
        self.recurrent_kernel: Any = None
        self.bias: Any = None

    # ------------------------------------------------------------ Keras attributes
    @property
    def state_size(self) -> Any:
        return self.units

    @property
    def output_size(self) -> int:
        return self.units

    @property
    def _masks_per_gate(self) -> int | None:
        return self.gates if self.implementation == 1 and self.gates > 1 else None

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(f"Layer {self.name!r} needs a known last input dimension (features). "
                             f"Received: input_shape={tuple(input_shape)}")
        width = self.gates * self.units
        self.kernel = self.add_weight(shape=(input_dim, width), initializer=self.kernel_initializer,
                                      name="kernel", regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self.recurrent_kernel = self.add_weight(shape=(self.units, width), initializer=self.recurrent_initializer,
                                                name="recurrent_kernel", regularizer=self.recurrent_regularizer,
                                                constraint=self.recurrent_constraint)
        if self.use_bias:
            self.bias = self.add_weight(shape=self._bias_shape(), initializer=self._bias_init(), name="bias",
                                        regularizer=self.bias_regularizer, constraint=self.bias_constraint)
        self.built = True

    def _bias_shape(self) -> tuple:
        return (self.gates * self.units,)

    def _bias_init(self) -> Any:
        return self.bias_initializer

    def get_initial_state(self, batch: Value) -> list[Value]:
        """Zero states for a batch whose size is the 1-D int64 tensor ``batch``."""
        sizes = self.state_size if isinstance(self.state_size, (list, tuple)) else [self.state_size]
        dtype = onnx_dtype(self.kernel.dtype)
        return [_ops.zeros(batch.builder, [batch, s], dtype, shape=(None, s)) for s in sizes]

    # ------------------------------------------------------------ the two halves of a step
    def _dropout_masks(self, x: Value, h_batch: Value, training: bool) -> tuple[Value | None, Value | None]:
        """``(input mask, recurrent mask)`` for one sequence; ``x`` is any value with features last."""
        per_gate = self._masks_per_gate
        dtype = x.dtype
        in_mask = rec_mask = None
        lead = () if per_gate is None else (per_gate,)
        batch_dim = x.shape[0] if x.shape else None
        if _active(self.dropout, training):
            in_mask = _ops.dropout_mask(self.dropout, h_batch, int(self.kernel.shape[0]), per_gate, dtype)
            in_mask.shape = (*lead, batch_dim, int(self.kernel.shape[0]))
        if _active(self.recurrent_dropout, training):
            rec_mask = _ops.dropout_mask(self.recurrent_dropout, h_batch, self.units, per_gate, dtype)
            rec_mask.shape = (*lead, batch_dim, self.units)
        return in_mask, rec_mask

    def _input_bias(self) -> Value | None:
        return self.bias

    def _project(self, x: Value, in_mask: Value | None) -> Value:
        """``(x * mask) @ kernel + bias`` for inputs of any rank ``(..., batch, in)``: every gate's input part."""
        shape = None if x.shape is None else (*x.shape[:-1], self.gates * self.units)
        bias = self._input_bias()
        bias = None if bias is None else _weight(bias)
        if in_mask is None or self._masks_per_gate is None:
            xm = x if in_mask is None else x * in_mask
            y = xm @ self.kernel
            y = y if bias is None else y + bias
        else:
            # One mask per gate: each gate sees its own dropped copy of the inputs.
            u, kernel = self.units, _weight(self.kernel)
            parts = []
            for g, m in enumerate(_gate_masks(in_mask, self.gates)):
                yg = (x * m) @ _ops.cols(kernel, g * u, (g + 1) * u)
                parts.append(yg if bias is None else yg + _ops.cols(bias, g * u, (g + 1) * u))
            y = x.builder.op("Concat", parts, axis=-1)
        y.shape = shape  # the Scan body's input type comes from it
        return y

    def _step_constants(self, rec_mask: Value | None) -> dict[str, Any]:
        """Outer-graph values the step reads (weight slices, per-gate masks): computed once, outside the loop."""
        return {}

    # ------------------------------------------------------------ Keras single-step API
    def call(self, inputs, states, training=False):
        """One step: ``inputs (batch, in)``, ``states`` a list of ``(batch, units)`` -> ``(output, new_states)``."""
        states = list(states) if isinstance(states, (list, tuple)) else [states]
        batch = _ops.dim(inputs, 0)
        in_mask, rec_mask = self._dropout_masks(inputs, batch, training)
        consts = self._step_constants(rec_mask)
        return self._step_with(self._project(inputs, in_mask), states, consts)

    def _step_with(self, xp: Value, states: list[Value], consts: dict[str, Any]) -> tuple[Value, list[Value]]:
        raise NotImplementedError

    def _regularize(self, ctx: Any) -> None:
        """Add this cell's weight penalties to a training trace (the RNN calls it: the cell is never
        ``__call__``-ed per step)."""
        self._add_regularization(ctx, [])

    def get_config(self):
        config = {**super().get_config(), "units": self.units}
        for arg in self._activation_args:
            config[arg] = activations_mod.serialize(getattr(self, arg))
        config.update({
            "use_bias": self.use_bias,
            "kernel_initializer": initializers_mod.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers_mod.serialize(self.recurrent_initializer),
            "bias_initializer": initializers_mod.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers_mod.serialize(self.kernel_regularizer),
            "recurrent_regularizer": regularizers_mod.serialize(self.recurrent_regularizer),
            "bias_regularizer": regularizers_mod.serialize(self.bias_regularizer),
            "kernel_constraint": constraints_mod.serialize(self.kernel_constraint),
            "recurrent_constraint": constraints_mod.serialize(self.recurrent_constraint),
            "bias_constraint": constraints_mod.serialize(self.bias_constraint),
            "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout, "seed": self.seed,
        })
        return config


def _weight(v: Any) -> Value:
    """A Variable's graph value in the current trace (a Value is returned as is)."""
    return v.__onnx_value__() if hasattr(v, "__onnx_value__") else v


def _gate_masks(mask: Value | None, gates: int) -> list[Value | None]:
    """The per-gate slices of a ``(gates, batch, size)`` dropout mask."""
    if mask is None:
        return [None] * gates
    return [_ops.row(mask, g) for g in range(gates)]


def _split(z: Value, parts: int, units: int) -> list[Value]:
    b = z.builder
    outs = b.op("Split", [z, b.const(np.asarray([units] * parts, np.int64))], outputs=parts, axis=-1)
    for o in outs:
        o.dtype = z.dtype
    return outs


class SimpleRNNCell(_RecurrentCell):
    """Fully connected recurrence: ``h = activation(x @ kernel + bias + h_prev @ recurrent_kernel)``.

    Example:
        >>> from onnxforge.layers.recurrent import SimpleRNNCell
        >>> cell = SimpleRNNCell(4); cell.build((None, 3))
        >>> [tuple(w.shape) for w in cell.weights]
        [(3, 4), (4, 4), (4,)]
    """

    gates = 1

    def _step_constants(self, rec_mask):
        return {"R": _weight(self.recurrent_kernel), "mask": rec_mask}

    def _step_with(self, xp, states, consts):
        h = states[0]
        if consts["mask"] is not None:
            h = h * consts["mask"]
        out = self.activation(xp + h @ consts["R"])
        return out, [out]


class LSTMCell(_RecurrentCell):
    """Long short-term memory cell (Hochreiter 1997), Keras gate order i, f, c, o.

    Args:
        units: size of the hidden and carry states.
        activation: cell-input and output activation (``tanh``).
        recurrent_activation: gate activation (``sigmoid``).
        unit_forget_bias: initialize the forget-gate bias to 1 (and the rest with ``bias_initializer``).
        Other arguments as ``SimpleRNNCell``.

    Example:
        >>> from onnxforge.layers.recurrent import LSTMCell
        >>> cell = LSTMCell(2); cell.build((None, 3))
        >>> [tuple(w.shape) for w in cell.weights], cell.bias.numpy().tolist()
        ([(3, 8), (2, 8), (8,)], [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    """

    gates = 4
    _activation_args = ("activation", "recurrent_activation")

    def __init__(self, units: int, activation: Any = "tanh", recurrent_activation: Any = "sigmoid",
                 use_bias: bool = True, kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "orthogonal", bias_initializer: Any = "zeros",
                 unit_forget_bias: bool = True, **kwargs: Any):
        super().__init__(units, activation=activation, use_bias=use_bias, kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer, **kwargs)
        self.recurrent_activation = activations_mod.get(recurrent_activation)
        self.unit_forget_bias = bool(unit_forget_bias)

    @property
    def state_size(self):
        return [self.units, self.units]

    def _bias_init(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        init, u = self.bias_initializer, self.units

        def bias_initializer(shape, dtype=None):
            # Keras: bias_initializer for i, ones for f, bias_initializer for c and o.
            dtype = np.dtype(dtype or "float32")
            return np.concatenate([np.asarray(init((u,), dtype=dtype)), np.ones((u,), dtype),
                                   np.asarray(init((2 * u,), dtype=dtype))]).astype(dtype)
        return bias_initializer

    def _step_constants(self, rec_mask):
        R = _weight(self.recurrent_kernel)
        if rec_mask is None:
            return {"R": R, "masks": None}
        u = self.units
        return {"Rg": [_ops.cols(R, g * u, (g + 1) * u) for g in range(4)], "masks": _gate_masks(rec_mask, 4)}

    def _step_with(self, xp, states, consts):
        h, c = states
        u, ra, act = self.units, self.recurrent_activation, self.activation
        if consts["masks"] is None:
            z_i, z_f, z_c, z_o = _split(xp + h @ consts["R"], 4, u)
        else:
            x_parts = _split(xp, 4, u)
            z_i, z_f, z_c, z_o = [x + (h * m) @ r for x, m, r in zip(x_parts, consts["masks"], consts["Rg"])]
        c_new = ra(z_f) * c + ra(z_i) * act(z_c)
        h_new = ra(z_o) * act(c_new)
        return h_new, [h_new, c_new]

    def get_config(self):
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}


class GRUCell(_RecurrentCell):
    """Gated recurrent unit (Cho 2014), Keras gate order z, r, h.

    Args:
        reset_after: apply the reset gate after the recurrent MatMul (``True``, the default, cuDNN and
            ONNX ``linear_before_reset=1`` compatible, bias ``(2, 3u)``) or before it (bias ``(3u,)``).
        Other arguments as ``LSTMCell`` (no ``unit_forget_bias``).

    Example:
        >>> from onnxforge.layers.recurrent import GRUCell
        >>> cell = GRUCell(2); cell.build((None, 3))
        >>> [tuple(w.shape) for w in cell.weights]
        [(3, 6), (2, 6), (2, 6)]
    """

    gates = 3
    _activation_args = ("activation", "recurrent_activation")

    def __init__(self, units: int, activation: Any = "tanh", recurrent_activation: Any = "sigmoid",
                 use_bias: bool = True, kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "orthogonal", bias_initializer: Any = "zeros",
                 reset_after: bool = True, **kwargs: Any):
        super().__init__(units, activation=activation, use_bias=use_bias, kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer, **kwargs)
        self.recurrent_activation = activations_mod.get(recurrent_activation)
        self.reset_after = bool(reset_after)

    def _bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def _input_bias(self):
        if self.bias is None:
            return None
        bias = _weight(self.bias)
        if not self.reset_after:
            return bias
        return _ops.row(bias, 0)

    def _recurrent_bias(self) -> Value | None:
        if self.bias is None or not self.reset_after:
            return None
        return _ops.row(_weight(self.bias), 1)

    def _step_constants(self, rec_mask):
        u = self.units
        R = _weight(self.recurrent_kernel)
        rb = self._recurrent_bias()
        consts: dict[str, Any] = {"masks": None if rec_mask is None else _gate_masks(rec_mask, 3)}
        if rec_mask is None and self.reset_after:
            consts.update(R=R, rb=rb)
        elif rec_mask is None:
            consts.update(R_zr=_ops.cols(R, 0, 2 * u), R_h=_ops.cols(R, 2 * u, 3 * u))
        else:
            consts.update(Rg=[_ops.cols(R, g * u, (g + 1) * u) for g in range(3)],
                          rbg=[None] * 3 if rb is None else [_ops.cols(rb, g * u, (g + 1) * u) for g in range(3)])
        return consts

    def _step_with(self, xp, states, consts):
        h = states[0]
        u, ra, act = self.units, self.recurrent_activation, self.activation
        x_z, x_r, x_h = _split(xp, 3, u)
        if consts["masks"] is None:
            if self.reset_after:
                inner = h @ consts["R"]
                if consts["rb"] is not None:
                    inner = inner + consts["rb"]
                r_z, r_r, r_h = _split(inner, 3, u)
                z, r = ra(x_z + r_z), ra(x_r + r_r)
                hh = act(x_h + r * r_h)
            else:
                r_z, r_r = _split(h @ consts["R_zr"], 2, u)
                z, r = ra(x_z + r_z), ra(x_r + r_r)
                hh = act(x_h + (r * h) @ consts["R_h"])
        else:
            h_z, h_r, h_h = [h * m for m in consts["masks"]]
            Rz, Rr, Rh = consts["Rg"]
            bz, br, bh = consts["rbg"]
            r_z, r_r = h_z @ Rz, h_r @ Rr
            if bz is not None:
                r_z, r_r = r_z + bz, r_r + br
            z, r = ra(x_z + r_z), ra(x_r + r_r)
            if self.reset_after:
                r_h = h_h @ Rh
                if bh is not None:
                    r_h = r_h + bh
                hh = act(x_h + r * r_h)
            else:
                hh = act(x_h + (r * h_h) @ Rh)
        h_new = z * h + (1.0 - z) * hh  # the blend reads the undropped state, as Keras does
        return h_new, [h_new]

    def get_config(self):
        return {**super().get_config(), "reset_after": self.reset_after}
