"""``ConvLSTM1D`` / ``ConvLSTM2D`` / ``ConvLSTM3D``: an LSTM whose gates are convolutions (Keras 3).

Per step, with ``*`` a convolution (the input one with the layer's ``strides`` / ``padding`` /
``dilation_rate``, the recurrent one stride 1, ``"same"``)::

    z = x_t * kernel + h * recurrent_kernel + bias        (4 * filters channels, gates i, f, c, o)
    c = sigmoid(z_f) * c + sigmoid(z_i) * tanh(z_c);  h = sigmoid(z_o) * tanh(c)

Keras's weights and layouts: ``kernel (*k, in, 4 * filters)``, ``recurrent_kernel (*k, filters, 4 * filters)``,
``bias (4 * filters,)`` with the forget block at ones (``unit_forget_bias``). The input convolution of every
step runs as one Conv over ``batch * time`` before the loop; the recurrence is one ONNX ``Scan`` whose body
holds the recurrent Conv (differentiated by the Scan gradient rule), in channels-first layout inside the loop.

Example:
    >>> from onnxforge.layers import Input
    >>> ConvLSTM2D(4, 3, padding="same", return_sequences=True)(Input(shape=(None, 8, 8, 1))).shape
    (None, None, 8, 8, 4)
"""
from __future__ import annotations

__all__ = ["ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"]

from typing import Any

import numpy as np

from ... import activations as activations_mod
from ... import initializers as initializers_mod
from ... import regularizers as regularizers_mod
from ... import constraints as constraints_mod
from ...graph import Value
from ...ops import _conv_utils as cu
from ...graph import emit as layer_ops
from ..base import InputSpec, Layer
from ..seed_state import LayerSeedGenerator
from ..core import apply_activation, check_positive_int, set_constraints
from . import _ops as rnn_ops
from ._scan import scan


def _tuple(layer: str, arg: str, value: Any, rank: int) -> tuple[int, ...]:
    values = (value,) * rank if isinstance(value, (int, np.integer)) else tuple(value)
    if len(values) != rank or not all(isinstance(v, (int, np.integer)) and v > 0 for v in values):
        raise ValueError(f"Layer {layer}: `{arg}` must be an int or a tuple of {rank} positive ints. "
                         f"Received: {arg}={value!r}")
    return tuple(int(v) for v in values)


class ConvLSTMCell(Layer):
    """Holds a ConvLSTM layer's ``kernel``, ``recurrent_kernel`` and ``bias`` (the layer runs the steps)."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.kernel = self.recurrent_kernel = self.bias = None


class _ConvLSTM(Layer):
    """The rank-generic ConvLSTM layer (see the module docstring)."""

    rank = 2

    def __init__(self, filters: int, kernel_size: Any, strides: Any = 1, padding: str = "valid",
                 data_format: str | None = None, dilation_rate: Any = 1, activation: Any = "tanh",
                 recurrent_activation: Any = "sigmoid", use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", recurrent_initializer: Any = "orthogonal",
                 bias_initializer: Any = "zeros", unit_forget_bias: bool = True, kernel_regularizer: Any = None,
                 recurrent_regularizer: Any = None, bias_regularizer: Any = None, activity_regularizer: Any = None,
                 kernel_constraint: Any = None, recurrent_constraint: Any = None, bias_constraint: Any = None,
                 dropout: float = 0.0, recurrent_dropout: float = 0.0, seed: int | None = None,
                 return_sequences: bool = False, return_state: bool = False, go_backwards: bool = False,
                 stateful: bool = False, **kwargs: Any):
        kwargs.pop("unroll", None)
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.filters = check_positive_int(self.name, "filters", filters)
        r = self.rank
        self.kernel_size = _tuple(self.name, "kernel_size", kernel_size, r)
        self.strides = _tuple(self.name, "strides", strides, r)
        self.dilation_rate = _tuple(self.name, "dilation_rate", dilation_rate, r)
        self.padding = cu.check_padding(self.name, padding, ("valid", "same"))
        self.data_format = data_format or "channels_last"
        if self.data_format != "channels_last":
            raise NotImplementedError(f"Layer {self.name}: onnxforge's ConvLSTM runs channels_last inputs. "
                                      f"Received: data_format={data_format!r}")
        for arg, value in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if value:
                raise NotImplementedError(f"Layer {self.name}: `{arg}` is not supported by onnxforge's ConvLSTM "
                                          f"yet; add a SpatialDropout or Dropout layer around it. Received: "
                                          f"{arg}={value!r}")
        if stateful:
            raise ValueError(f"Layer {self.name}: stateful=True is not supported by onnxforge (compiled programs keep "
                             "no state between batches). Received: stateful=True")
        set_constraints(self, kernel_constraint=kernel_constraint, recurrent_constraint=recurrent_constraint,
                        bias_constraint=bias_constraint)
        self.activation = activations_mod.get(activation)
        self.recurrent_activation = activations_mod.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers_mod.get(kernel_initializer)
        self.recurrent_initializer = initializers_mod.get(recurrent_initializer)
        self.bias_initializer = initializers_mod.get(bias_initializer)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.kernel_regularizer = regularizers_mod.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers_mod.get(recurrent_regularizer)
        self.bias_regularizer = regularizers_mod.get(bias_regularizer)
        self.dropout, self.recurrent_dropout, self.seed = 0.0, 0.0, seed
        self.return_sequences, self.return_state = bool(return_sequences), bool(return_state)
        self.go_backwards, self.stateful = bool(go_backwards), False
        self.input_spec = InputSpec(ndim=r + 3)
        # Keras keeps the weights on a cell (``.keras`` files store them under ``<layer>/cell``).
        self.cell = ConvLSTMCell(name=f"{self.name}_cell", dtype=self.dtype_policy)
        self.cell.seed_generator = LayerSeedGenerator(seed)   # Keras's cell holds one (layers/seed_state.py)

    @property
    def kernel(self) -> Any:
        return self.cell.kernel

    @property
    def recurrent_kernel(self) -> Any:
        return self.cell.recurrent_kernel

    @property
    def bias(self) -> Any:
        return self.cell.bias

    # ------------------------------------------------------------ shapes and weights
    def _spatial_out(self, spatial: tuple) -> tuple:
        return tuple(cu.conv_output_length(n, k, self.padding, s, d)
                     for n, k, s, d in zip(spatial, self.kernel_size, self.strides, self.dilation_rate))

    def compute_output_shape(self, input_shape, initial_state_shape=None):
        shape = tuple(input_shape)
        if len(shape) != self.rank + 3:
            raise ValueError(f"Layer {self.name} expects inputs of rank {self.rank + 3} (batch, time, "
                             f"{'spatial, ' * self.rank}channels). Received: input_shape={shape}")
        spatial = self._spatial_out(shape[2:-1])
        if any(n is not None and n <= 0 for n in spatial):
            raise ValueError(f"Layer {self.name}: the kernel does not fit the input. Received input_shape={shape}, "
                             f"kernel_size={self.kernel_size}, padding={self.padding!r}")
        state = (shape[0], *spatial, self.filters)
        out = (shape[0], shape[1], *spatial, self.filters) if self.return_sequences else state
        return (out, state, state) if self.return_state else out

    def build(self, input_shape, initial_state_shape=None):
        shape = tuple(input_shape)
        self.compute_output_shape(shape)
        channels = shape[-1]
        if channels is None:
            raise ValueError(f"Layer {self.name} needs a known channel dimension. Received: input_shape={shape}")
        f, cell = self.filters, self.cell
        cell.kernel = cell.add_weight(shape=(*self.kernel_size, channels, 4 * f), initializer=self.kernel_initializer,
                                      name="kernel", regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        cell.recurrent_kernel = cell.add_weight(shape=(*self.kernel_size, f, 4 * f), name="recurrent_kernel",
                                                initializer=self.recurrent_initializer,
                                                regularizer=self.recurrent_regularizer,
                                                constraint=self.recurrent_constraint)
        cell.bias = cell.add_weight(shape=(4 * f,), initializer=self._bias_init(), name="bias",
                                    regularizer=self.bias_regularizer,
                                    constraint=self.bias_constraint) if self.use_bias else None
        cell.built = True
        self.input_spec = InputSpec(ndim=self.rank + 3, axes={-1: channels})

    def _bias_init(self) -> Any:
        if not self.unit_forget_bias:
            return self.bias_initializer
        init, f = self.bias_initializer, self.filters

        def bias_initializer(shape, dtype=None):
            # Keras: bias_initializer for i, ones for f, bias_initializer for c and o.
            dtype = np.dtype(dtype or "float32")
            return np.concatenate([np.asarray(init((f,), dtype=dtype)), np.ones((f,), dtype),
                                   np.asarray(init((2 * f,), dtype=dtype))]).astype(dtype)

        return bias_initializer

    # ------------------------------------------------------------ graph
    def _onnx_kernel(self, b: Any, kernel: Any) -> Value:
        """Keras ``(*k, in, out)`` -> ONNX ``(out, in, *k)``."""
        r = self.rank
        shape = tuple(kernel.shape)
        return b.op("Transpose", [kernel], perm=[r + 1, r, *range(r)], shape=(shape[-1], shape[-2], *shape[:r]))

    def _conv(self, x_cf: Value, weight: Value, bias: Value | None, spatial_in: tuple, strides: tuple,
              dilations: tuple, padding: str) -> Value:
        attrs = cu.padding_attrs(spatial_in, self.kernel_size, strides, dilations, padding)
        spatial = tuple(cu.conv_output_length(n, k, padding, s, d)
                        for n, k, s, d in zip(spatial_in, self.kernel_size, strides, dilations))
        inputs = [x_cf, weight] + ([bias] if bias is not None else [])
        return x_cf.builder.op("Conv", inputs, kernel_shape=list(self.kernel_size), strides=list(strides),
                               dilations=list(dilations), shape=(x_cf.shape[0], weight.shape[0], *spatial), **attrs)

    def _add_regularization(self, ctx: Any, outputs: Any) -> None:
        # The weights live on the cell, which is never called: its penalties join every loss from here.
        super()._add_regularization(ctx, outputs)
        self.cell._add_regularization(ctx, [])

    def call(self, inputs, initial_state=None, mask=None, training=None):
        if mask is not None:
            raise NotImplementedError(f"Layer {self.name}: masks are not supported by onnxforge's ConvLSTM. "
                                      f"Received: mask={mask!r}")
        x = inputs
        b, r, f = x.builder, self.rank, self.filters
        shape = tuple(x.shape)
        spatial_in = tuple(shape[2:-1])
        if any(not isinstance(n, int) for n in spatial_in):
            raise ValueError(f"Layer {self.name} needs static spatial dimensions. Received: input shape {shape}")
        spatial = self._spatial_out(spatial_in)
        batch_dim, time_dim = shape[0], shape[1]
        # Time-major, channels-first frames: (time * batch, channels, *spatial) for one input Conv.
        x_tm = layer_ops.transpose(x, (1, 0, r + 2, *range(2, r + 2)))
        lead = b.op("Shape", [x_tm], start=0, end=2, shape=(2,))
        frames = b.op("Reshape", [x_tm, layer_ops.ints(b, [-1, shape[-1], *spatial_in])],
                      shape=(None, shape[-1], *spatial_in))
        projected = self._conv(frames, self._onnx_kernel(b, self.kernel), self.bias, spatial_in, self.strides,
                               self.dilation_rate, self.padding)
        seq_shape = b.op("Concat", [lead, layer_ops.ints(b, [4 * f, *spatial])], axis=0, shape=(r + 3,))
        projected = b.op("Reshape", [projected, seq_shape], shape=(time_dim, batch_dim, 4 * f, *spatial))
        recurrent = self._onnx_kernel(b, self.recurrent_kernel)
        state_shape = (batch_dim, f, *spatial)
        states0 = self._initial_states(x, initial_state, state_shape)
        ones = (1,) * r

        def step(states: list[Value], seq: list[Value]) -> tuple[list[Value], list[Value]]:
            h, c = states
            z = seq[0] + self._conv(h, recurrent, None, spatial, ones, ones, "same")
            z.shape = (batch_dim, 4 * f, *spatial)
            sb = z.builder
            z_i, z_f, z_c, z_o = sb.op("Split", [z, layer_ops.ints(sb, [f] * 4)], axis=1, outputs=4)
            for g in (z_i, z_f, z_c, z_o):
                g.shape, g.dtype = state_shape, z.dtype
            i = apply_activation(self.recurrent_activation, z_i)
            fg = apply_activation(self.recurrent_activation, z_f)
            o = apply_activation(self.recurrent_activation, z_o)
            c_new = fg * c + i * apply_activation(self.activation, z_c)
            h_new = o * apply_activation(self.activation, c_new)
            for v in (c_new, h_new):
                v.shape, v.dtype = state_shape, z.dtype
            return [h_new, c_new], ([h_new] if self.return_sequences else [])

        (h, c), stacked = scan(b, step, states0, [projected], num_outputs=int(self.return_sequences),
                               reverse=self.go_backwards, name=self.name)
        to_last = (0, *range(2, r + 2), 1)
        h_last, c_last = layer_ops.transpose(h, to_last), layer_ops.transpose(c, to_last)
        if self.return_sequences:
            out = layer_ops.transpose(stacked[0], (1, 0, *range(3, r + 3), 2))
            out.shape = (batch_dim, time_dim, *spatial, f)
        else:
            out = h_last
            if self.return_state:   # two graph outputs need two names
                out = b.op("Identity", [h_last], dtype=h_last.dtype)
        for v in (h_last, c_last) + (() if self.return_sequences else (out,)):
            v.shape = (batch_dim, *spatial, f)
        return [out, h_last, c_last] if self.return_state else out

    def _initial_states(self, x: Value, initial_state: Any, state_shape: tuple) -> list[Value]:
        b, r = x.builder, self.rank
        if initial_state is None:
            dims = [rnn_ops.dim(x, 0), *state_shape[1:]]
            return [rnn_ops.zeros(b, dims, x.dtype, shape=state_shape) for _ in range(2)]
        states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        if len(states) != 2 or not all(isinstance(s, Value) for s in states):
            raise ValueError(f"Layer {self.name} expects `initial_state` as [h, c], two tensors of shape "
                             f"(batch, *spatial, {self.filters}). Received: {initial_state!r}")
        out = []
        for s in states:
            v = layer_ops.transpose(s, (0, r + 1, *range(1, r + 1)))
            v.shape = state_shape
            out.append(v)
        return out

    def get_config(self):
        ser = initializers_mod.serialize
        reg = regularizers_mod.serialize
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding, "data_format": self.data_format,
                "dilation_rate": self.dilation_rate, "activation": activations_mod.serialize(self.activation),
                "recurrent_activation": activations_mod.serialize(self.recurrent_activation),
                "use_bias": self.use_bias, "kernel_initializer": ser(self.kernel_initializer),
                "recurrent_initializer": ser(self.recurrent_initializer),
                "bias_initializer": ser(self.bias_initializer), "unit_forget_bias": self.unit_forget_bias,
                "kernel_regularizer": reg(self.kernel_regularizer),
                "recurrent_regularizer": reg(self.recurrent_regularizer),
                "bias_regularizer": reg(self.bias_regularizer),
                "activity_regularizer": reg(self.activity_regularizer),
                "kernel_constraint": constraints_mod.serialize(self.kernel_constraint),
                "recurrent_constraint": constraints_mod.serialize(self.recurrent_constraint),
                "bias_constraint": constraints_mod.serialize(self.bias_constraint),
                "dropout": 0.0, "recurrent_dropout": 0.0,
                "seed": self.seed, "return_sequences": self.return_sequences, "return_state": self.return_state,
                "go_backwards": self.go_backwards, "stateful": False}


class ConvLSTM1D(_ConvLSTM):
    """ConvLSTM over ``(batch, time, steps, channels)`` (see the module docstring)."""

    rank = 1


class ConvLSTM2D(_ConvLSTM):
    """ConvLSTM over ``(batch, time, rows, cols, channels)`` (see the module docstring)."""

    rank = 2


class ConvLSTM3D(_ConvLSTM):
    """ConvLSTM over ``(batch, time, depth, rows, cols, channels)`` (see the module docstring)."""

    rank = 3
