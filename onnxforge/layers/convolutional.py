"""Convolution layers: ``Conv1D``, ``Conv2D``, ``DepthwiseConv2D``, ``SeparableConv2D``, ``Conv2DTranspose``.

Weights keep Keras layouts (``Conv2D`` kernel ``(kh, kw, in / groups, out)``, ``DepthwiseConv2D``
``(kh, kw, in, multiplier)``, ``Conv2DTranspose`` ``(kh, kw, out, in)``); ``call`` transposes them into
ONNX's ``(out, in / groups, kh, kw)`` in the graph, so gradients flow back to the Keras-layout variables.
Data is moved to channels_first for the ONNX op and back (see ``_ops`` for how consecutive layers avoid
bouncing between layouts).
"""
from __future__ import annotations

__all__ = ["Conv1D", "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose"]

from typing import Any

import numpy as np

from .. import activations as activations_mod
from .. import initializers as initializers_mod
from .. import regularizers as regularizers_mod
from .. import constraints as constraints_mod
from ..ops import _conv_utils as cu
from ..graph import emit as _ops
from .base import InputSpec, Layer
from .core import _flops_activation, apply_activation, check_positive_int, set_constraints
from .lora import LoraMixin
from .reshaping import normalize_data_format, normalize_tuple


def _elems(shape) -> int:
    return int(np.prod([d or 1 for d in shape[1:]]))


class _BaseConv(Layer):
    """Shared arguments, validation, shapes and op emission of the N-D convolutions."""

    _op = "Conv"
    _paddings: tuple[str, ...] = ("valid", "same")

    def __init__(self, rank: int, filters: int | None, kernel_size: Any, strides: Any = 1, padding: str = "valid",
                 data_format: str | None = None, dilation_rate: Any = 1, groups: int = 1, activation: Any = None,
                 use_bias: bool = True, kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None, activity_regularizer: Any = None,
                 kernel_constraint: Any = None, bias_constraint: Any = None, **kwargs: Any):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.rank = rank
        self.filters = None if filters is None else check_positive_int(self.name, "filters", filters)
        self.groups = check_positive_int(self.name, "groups", groups)
        if self.filters is not None and self.filters % self.groups:
            raise ValueError("The number of filters must be evenly divisible by the number of groups. "
                             f"Received: groups={groups}, filters={filters}.")
        self.kernel_size = normalize_tuple(kernel_size, rank, "kernel_size")
        self.strides = normalize_tuple(strides, rank, "strides")
        self.dilation_rate = normalize_tuple(dilation_rate, rank, "dilation_rate")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError("`strides > 1` not supported in conjunction with `dilation_rate > 1`. "
                             f"Received: strides={self.strides} and dilation_rate={self.dilation_rate}")
        self.padding = cu.check_padding(self.name, padding, self._paddings)
        self.data_format = normalize_data_format(data_format)
        set_constraints(self, kernel_constraint=kernel_constraint, bias_constraint=bias_constraint)
        self.activation = activations_mod.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers_mod.get(kernel_initializer)
        self.bias_initializer = initializers_mod.get(bias_initializer)
        self.kernel_regularizer = regularizers_mod.get(kernel_regularizer)
        self.bias_regularizer = regularizers_mod.get(bias_regularizer)
        self.input_spec = InputSpec(ndim=rank + 2)

    # --------------------------------------------------------------- shapes
    @property
    def _channel_axis(self) -> int:
        return -1 if self.data_format == "channels_last" else 1

    def _spatial(self, shape) -> tuple:
        return tuple(shape[1:-1]) if self.data_format == "channels_last" else tuple(shape[2:])

    def _with_spatial(self, shape, spatial, channels) -> tuple:
        if self.data_format == "channels_last":
            return (shape[0], *spatial, channels)
        return (shape[0], channels, *spatial)

    def _input_channels(self, input_shape) -> int:
        channels = input_shape[self._channel_axis]
        if channels is None:
            raise ValueError(f"Layer {self.name!r} needs a known channel dimension. "
                             f"Received: input_shape={tuple(input_shape)}")
        if channels % self.groups:
            raise ValueError("The number of input channels must be evenly divisible by the number of groups. "
                             f"Received groups={self.groups}, but the input has {channels} channels "
                             f"(full input shape is {tuple(input_shape)}).")
        return channels

    def _out_channels(self, in_channels: int) -> int:
        return self.filters

    def compute_output_shape(self, input_shape):
        spatial = tuple(cu.conv_output_length(n, k, self.padding, s, d) for n, k, s, d in
                        zip(self._spatial(input_shape), self.kernel_size, self.strides, self.dilation_rate))
        if any(n is not None and n <= 0 for n in spatial):
            raise ValueError(f"Layer {self.name!r}: computed output size would be negative. Received "
                             f"input_shape={tuple(input_shape)}, kernel_size={self.kernel_size}, "
                             f"strides={self.strides}, dilation_rate={self.dilation_rate}, padding={self.padding!r}")
        return self._with_spatial(input_shape, spatial, self._out_channels(input_shape[self._channel_axis]))

    def _finish_build(self, input_shape, in_channels: int) -> None:
        self.compute_output_shape(input_shape)  # reject windows larger than the input while building
        self.input_spec = InputSpec(ndim=self.rank + 2, axes={self._channel_axis: in_channels})
        self.built = True

    # --------------------------------------------------------------- emission
    def _conv(self, x_cf, weight, bias, in_shape, out_channels: int, group: int, kernel=None, strides=None,
              dilations=None, padding=None):
        """One ONNX Conv on a channels_first value, with a static shape annotation."""
        kernel = kernel or self.kernel_size
        strides = strides or self.strides
        dilations = dilations or self.dilation_rate
        padding = padding or self.padding
        spatial_in = tuple(in_shape[2:])
        if x_cf.shape is not None:
            cu.require_windows(self, x_cf.shape[2:], kernel, dilations, padding)
        attrs = cu.padding_attrs(spatial_in, kernel, strides, dilations, padding)
        spatial = tuple(cu.conv_output_length(n, k, padding, s, d)
                        for n, k, s, d in zip(spatial_in, kernel, strides, dilations))
        shape = (x_cf.shape[0], out_channels, *spatial)
        inputs = [x_cf, weight] + ([bias] if bias is not None else [])
        return x_cf.builder.op("Conv", inputs, kernel_shape=list(kernel), strides=list(strides),
                               dilations=list(dilations), group=group, shape=shape, **attrs)

    def _weight_to_onnx(self, b, kernel):
        """Keras ``(*k, in / groups, out)`` -> ONNX ``(out, in / groups, *k)``."""
        r = self.rank
        return b.op("Transpose", [kernel], perm=[r + 1, r, *range(r)])

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": tuple(self.kernel_size),
                "strides": tuple(self.strides), "padding": self.padding, "data_format": self.data_format,
                "dilation_rate": tuple(self.dilation_rate), "groups": self.groups,
                "activation": activations_mod.serialize(self.activation), "use_bias": self.use_bias,
                "kernel_initializer": initializers_mod.serialize(self.kernel_initializer),
                "bias_initializer": initializers_mod.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers_mod.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers_mod.serialize(self.bias_regularizer),
                # Keras's convolutions write this key even when it is None (the base Layer only when set).
                "activity_regularizer": regularizers_mod.serialize(self.activity_regularizer),
                "kernel_constraint": constraints_mod.serialize(self.kernel_constraint),
                "bias_constraint": constraints_mod.serialize(self.bias_constraint)}


class _Conv(LoraMixin, _BaseConv):   # LoraMixin takes lora_rank / lora_alpha and adds them to the config

    def _keras_saved_variables(self):    # Keras's BaseConv.save_own_variables writes exactly these
        return [v for v in (getattr(self, "kernel", None), getattr(self, "bias", None)) if v is not None]

    def build(self, input_shape):
        in_channels = self._input_channels(input_shape)
        self.kernel = self.add_weight(shape=(*self.kernel_size, in_channels // self.groups, self.filters),
                                      initializer=self.kernel_initializer, name="kernel",
                                      regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        self.bias = (self.add_weight(shape=(self.filters,), initializer=self.bias_initializer, name="bias",
                                     regularizer=self.bias_regularizer,
                                     constraint=self.bias_constraint) if self.use_bias else None)
        self._finish_build(input_shape, in_channels)
        self._build_lora()

    def convolution_op(self, inputs, kernel):
        """``inputs`` convolved by ``kernel`` (Keras layout ``(*kernel_size, in / groups, filters)``), without
        bias or activation: Keras's hook, which subclasses override (weight standardization) or call."""
        b = inputs.builder
        x = cu.to_channels_first(inputs, self.data_format)
        y = self._conv(x, self._weight_to_onnx(b, kernel), None, _cf_shape(x), self.filters, self.groups)
        return cu.to_channels_last(y, self.data_format)

    def call(self, inputs):
        if type(self).convolution_op is not _Conv.convolution_op:
            # A subclass's own convolution: Keras's call, bias and activation around it.
            outputs = self.convolution_op(inputs, self._lora_weight())
            if self.use_bias:
                shape = (1,) * (self.rank + 1) + (self.filters,) if self.data_format == "channels_last" else \
                    (1, self.filters) + (1,) * self.rank
                bias = outputs.builder.op("Reshape", [self.bias, _ops.ints(outputs.builder, shape)], shape=shape)
                outputs = outputs + bias
            return apply_activation(self.activation, outputs)
        b = inputs.builder
        x = cu.to_channels_first(inputs, self.data_format)
        y = self._conv(x, self._weight_to_onnx(b, self._lora_weight()), self.bias, _cf_shape(x), self.filters,
                       self.groups)
        return apply_activation(self.activation, cu.to_channels_last(y, self.data_format))

    def _count_flops(self, input_shapes, output_shapes):
        in_channels = input_shapes[0][self._channel_axis]
        out = _elems(output_shapes[0])
        macs = out * int(np.prod(self.kernel_size)) * (in_channels // self.groups)
        return 2 * macs + (out if self.use_bias else 0) + _flops_activation(self.activation, out)


def _cf_shape(x) -> tuple:
    return _ops.static_shape(x)


class Conv1D(_Conv):
    """1-D convolution over ``(batch, steps, channels)``; ``padding`` may also be ``"causal"``.

    Example:
        >>> from onnxforge.layers import Conv1D, Input
        >>> Conv1D(8, 3, padding="causal")(Input(shape=(10, 4))).shape
        (None, 10, 8)
    """

    _paddings = ("valid", "same", "causal")

    def __init__(self, filters: int, kernel_size: Any, strides: Any = 1, padding: str = "valid",
                 data_format: str | None = None, dilation_rate: Any = 1, groups: int = 1, activation: Any = None,
                 use_bias: bool = True, kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None, activity_regularizer: Any = None,
                 kernel_constraint: Any = None, bias_constraint: Any = None, **kwargs: Any):
        super().__init__(1, filters, kernel_size, strides, padding, data_format, dilation_rate, groups, activation,
                         use_bias, kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
                         activity_regularizer, kernel_constraint, bias_constraint, **kwargs)


class Conv2D(_Conv):
    """2-D convolution over ``(batch, rows, cols, channels)`` (or channels_first).

    Example:
        >>> from onnxforge.layers import Conv2D, Input
        >>> Conv2D(8, 3, strides=2, padding="same")(Input(shape=(9, 9, 3))).shape
        (None, 5, 5, 8)
    """

    def __init__(self, filters: int, kernel_size: Any, strides: Any = (1, 1), padding: str = "valid",
                 data_format: str | None = None, dilation_rate: Any = (1, 1), groups: int = 1,
                 activation: Any = None, use_bias: bool = True, kernel_initializer: Any = "glorot_uniform",
                 bias_initializer: Any = "zeros", kernel_regularizer: Any = None, bias_regularizer: Any = None,
                 activity_regularizer: Any = None, kernel_constraint: Any = None, bias_constraint: Any = None,
                 **kwargs: Any):
        super().__init__(2, filters, kernel_size, strides, padding, data_format, dilation_rate, groups, activation,
                         use_bias, kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
                         activity_regularizer, kernel_constraint, bias_constraint, **kwargs)


class _DepthwiseConv(_BaseConv):
    """Per-channel N-D convolution: ``depth_multiplier`` filters per input channel.

    Kernel ``(*kernel_size, in, depth_multiplier)``; output channel ``c * depth_multiplier + m`` (Keras's order).
    """

    def __init__(self, rank: int, kernel_size: Any, strides: Any = 1, padding: str = "valid",
                 depth_multiplier: int = 1, data_format: str | None = None, dilation_rate: Any = 1,
                 activation: Any = None, use_bias: bool = True, depthwise_initializer: Any = "glorot_uniform",
                 bias_initializer: Any = "zeros", depthwise_regularizer: Any = None, bias_regularizer: Any = None,
                 activity_regularizer: Any = None, depthwise_constraint: Any = None, bias_constraint: Any = None,
                 **kwargs: Any):
        super().__init__(rank, None, kernel_size, strides, padding, data_format, dilation_rate, 1, activation,
                         use_bias, depthwise_initializer, bias_initializer, depthwise_regularizer, bias_regularizer,
                         activity_regularizer, depthwise_constraint, bias_constraint, **kwargs)
        self.depth_multiplier = check_positive_int(self.name, "depth_multiplier", depth_multiplier)

    def _out_channels(self, in_channels):
        return None if in_channels is None else in_channels * self.depth_multiplier

    def build(self, input_shape):
        in_channels = self._input_channels(input_shape)
        self.kernel = self.add_weight(shape=(*self.kernel_size, in_channels, self.depth_multiplier),
                                      initializer=self.kernel_initializer, name="kernel",
                                      regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        self.bias = (self.add_weight(shape=(in_channels * self.depth_multiplier,), initializer=self.bias_initializer,
                                     name="bias", regularizer=self.bias_regularizer,
                                     constraint=self.bias_constraint) if self.use_bias else None)
        self._finish_build(input_shape, in_channels)

    def call(self, inputs):
        b = inputs.builder
        x = cu.to_channels_first(inputs, self.data_format)
        in_channels = _cf_shape(x)[1]
        y = self._conv(x, _depthwise_weight(b, self.kernel, in_channels, self.depth_multiplier, self.kernel_size),
                       self.bias, _cf_shape(x), in_channels * self.depth_multiplier, in_channels)
        return apply_activation(self.activation, cu.to_channels_last(y, self.data_format))

    def _count_flops(self, input_shapes, output_shapes):
        out = _elems(output_shapes[0])
        return 2 * out * int(np.prod(self.kernel_size)) + (out if self.use_bias else 0) + \
            _flops_activation(self.activation, out)

    def get_config(self):
        config = super().get_config()
        for key in ("filters", "groups"):
            config.pop(key)
        for old, new in (("kernel_initializer", "depthwise_initializer"),
                         ("kernel_regularizer", "depthwise_regularizer"),
                         ("kernel_constraint", "depthwise_constraint")):
            config[new] = config.pop(old)
        config["depth_multiplier"] = self.depth_multiplier
        return config


class DepthwiseConv2D(_DepthwiseConv):
    """Per-channel 2-D convolution: ``depth_multiplier`` filters per input channel.

    Kernel ``(kh, kw, in, depth_multiplier)``; output channel ``c * depth_multiplier + m`` (Keras's order).
    """

    def __init__(self, kernel_size: Any, strides: Any = (1, 1), padding: str = "valid", depth_multiplier: int = 1,
                 data_format: str | None = None, dilation_rate: Any = (1, 1), activation: Any = None,
                 use_bias: bool = True, depthwise_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 depthwise_regularizer: Any = None, bias_regularizer: Any = None, activity_regularizer: Any = None,
                 depthwise_constraint: Any = None, bias_constraint: Any = None, **kwargs: Any):
        super().__init__(2, kernel_size, strides, padding, depth_multiplier, data_format, dilation_rate, activation,
                         use_bias, depthwise_initializer, bias_initializer, depthwise_regularizer, bias_regularizer,
                         activity_regularizer, depthwise_constraint, bias_constraint, **kwargs)


def _depthwise_weight(b, kernel, in_channels: int, multiplier: int, kernel_size):
    """Keras ``(*k, in, mult)`` -> ONNX grouped ``(in * mult, 1, *k)``."""
    r = len(kernel_size)
    w = b.op("Transpose", [kernel], perm=[r, r + 1, *range(r)])
    return b.op("Reshape", [w, _ops.ints(b, [in_channels * multiplier, 1, *kernel_size])])


class _SeparableConv(_BaseConv):
    """N-D depthwise convolution followed by a pointwise (size-1) convolution, bias and activation at the end."""

    def __init__(self, rank: int, filters: int, kernel_size: Any, strides: Any = 1, padding: str = "valid",
                 data_format: str | None = None, dilation_rate: Any = 1, depth_multiplier: int = 1,
                 activation: Any = None, use_bias: bool = True, depthwise_initializer: Any = "glorot_uniform",
                 pointwise_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 depthwise_regularizer: Any = None, pointwise_regularizer: Any = None, bias_regularizer: Any = None,
                 activity_regularizer: Any = None, depthwise_constraint: Any = None, pointwise_constraint: Any = None,
                 bias_constraint: Any = None, **kwargs: Any):
        super().__init__(rank, filters, kernel_size, strides, padding, data_format, dilation_rate, 1, activation,
                         use_bias, depthwise_initializer, bias_initializer, depthwise_regularizer, bias_regularizer,
                         activity_regularizer, depthwise_constraint, bias_constraint, **kwargs)
        set_constraints(self, pointwise_constraint=pointwise_constraint)
        self.depth_multiplier = check_positive_int(self.name, "depth_multiplier", depth_multiplier)
        self.pointwise_initializer = initializers_mod.get(pointwise_initializer)
        self.pointwise_regularizer = regularizers_mod.get(pointwise_regularizer)

    def build(self, input_shape):
        in_channels = self._input_channels(input_shape)
        self.depthwise_kernel = self.add_weight(shape=(*self.kernel_size, in_channels, self.depth_multiplier),
                                                initializer=self.kernel_initializer, name="depthwise_kernel",
                                                regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        self.pointwise_kernel = self.add_weight(shape=(*(1,) * self.rank, in_channels * self.depth_multiplier,
                                                       self.filters),
                                                initializer=self.pointwise_initializer, name="pointwise_kernel",
                                                regularizer=self.pointwise_regularizer,
                                                constraint=self.pointwise_constraint)
        self.bias = (self.add_weight(shape=(self.filters,), initializer=self.bias_initializer, name="bias",
                                     regularizer=self.bias_regularizer,
                                     constraint=self.bias_constraint) if self.use_bias else None)
        self._finish_build(input_shape, in_channels)

    def call(self, inputs):
        b = inputs.builder
        x = cu.to_channels_first(inputs, self.data_format)
        in_channels = _cf_shape(x)[1]
        mid = in_channels * self.depth_multiplier
        depthwise = _depthwise_weight(b, self.depthwise_kernel, in_channels, self.depth_multiplier,
                                      self.kernel_size)
        y = self._conv(x, depthwise, None, _cf_shape(x), mid, in_channels)
        y = self._conv(y, self._weight_to_onnx(b, self.pointwise_kernel), self.bias, _cf_shape(y), self.filters, 1,
                       kernel=(1,) * self.rank, strides=(1,) * self.rank, dilations=(1,) * self.rank,
                       padding="valid")
        return apply_activation(self.activation, cu.to_channels_last(y, self.data_format))

    def _count_flops(self, input_shapes, output_shapes):
        in_channels = input_shapes[0][self._channel_axis]
        out_spatial = int(np.prod([d or 1 for d in self._spatial(output_shapes[0])]))
        mid = in_channels * self.depth_multiplier
        out = out_spatial * self.filters
        return (2 * out_spatial * mid * int(np.prod(self.kernel_size)) + 2 * out_spatial * mid * self.filters
                + (out if self.use_bias else 0) + _flops_activation(self.activation, out))

    def get_config(self):
        config = super().get_config()
        config.pop("groups")
        for old, new in (("kernel_initializer", "depthwise_initializer"),
                         ("kernel_regularizer", "depthwise_regularizer"),
                         ("kernel_constraint", "depthwise_constraint")):
            config[new] = config.pop(old)
        config.update({"depth_multiplier": self.depth_multiplier,
                       "pointwise_initializer": initializers_mod.serialize(self.pointwise_initializer),
                       "pointwise_regularizer": regularizers_mod.serialize(self.pointwise_regularizer),
                       "pointwise_constraint": constraints_mod.serialize(self.pointwise_constraint)})
        return config


class SeparableConv2D(_SeparableConv):
    """Depthwise convolution followed by a 1x1 pointwise convolution (bias and activation at the end).

    Weights: ``depthwise_kernel (kh, kw, in, depth_multiplier)``, ``pointwise_kernel
    (1, 1, in * depth_multiplier, filters)``, ``bias (filters,)``.
    """

    def __init__(self, filters: int, kernel_size: Any, strides: Any = (1, 1), padding: str = "valid",
                 data_format: str | None = None, dilation_rate: Any = (1, 1), depth_multiplier: int = 1,
                 activation: Any = None, use_bias: bool = True, depthwise_initializer: Any = "glorot_uniform",
                 pointwise_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 depthwise_regularizer: Any = None, pointwise_regularizer: Any = None, bias_regularizer: Any = None,
                 activity_regularizer: Any = None, depthwise_constraint: Any = None, pointwise_constraint: Any = None,
                 bias_constraint: Any = None, **kwargs: Any):
        super().__init__(2, filters, kernel_size, strides, padding, data_format, dilation_rate, depth_multiplier,
                         activation, use_bias, depthwise_initializer, pointwise_initializer, bias_initializer,
                         depthwise_regularizer, pointwise_regularizer, bias_regularizer, activity_regularizer,
                         depthwise_constraint, pointwise_constraint, bias_constraint, **kwargs)


class _ConvTranspose(_BaseConv):
    """Transposed N-D convolution (the gradient of a convolution w.r.t. its input), Keras output sizes.

    Kernel ``(*kernel_size, filters, in)``. ``output_padding`` (each < stride) adds steps at the end.
    """

    def __init__(self, rank: int, filters: int, kernel_size: Any, strides: Any = 1, padding: str = "valid",
                 output_padding: Any = None, data_format: str | None = None, dilation_rate: Any = 1,
                 activation: Any = None, use_bias: bool = True, kernel_initializer: Any = "glorot_uniform",
                 bias_initializer: Any = "zeros", kernel_regularizer: Any = None, bias_regularizer: Any = None,
                 activity_regularizer: Any = None, kernel_constraint: Any = None, bias_constraint: Any = None,
                 **kwargs: Any):
        super().__init__(rank, filters, kernel_size, strides, padding, data_format, dilation_rate, 1, activation,
                         use_bias, kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
                         activity_regularizer, kernel_constraint, bias_constraint, **kwargs)
        if output_padding is None:
            self.output_padding = None
        else:
            self.output_padding = normalize_tuple(output_padding, rank, "output_padding", allow_zero=True)
            for s, p in zip(self.strides, self.output_padding):
                if p >= s:
                    raise ValueError(f"Strides must be greater than output padding. Received strides={self.strides}, "
                                     f"output_padding={self.output_padding}.")

    def build(self, input_shape):
        in_channels = self._input_channels(input_shape)
        self.kernel = self.add_weight(shape=(*self.kernel_size, self.filters, in_channels),
                                      initializer=self.kernel_initializer, name="kernel",
                                      regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        self.bias = (self.add_weight(shape=(self.filters,), initializer=self.bias_initializer, name="bias",
                                     regularizer=self.bias_regularizer,
                                     constraint=self.bias_constraint) if self.use_bias else None)
        self.input_spec = InputSpec(ndim=self.rank + 2, axes={self._channel_axis: in_channels})
        self.built = True

    def _paddings_per_axis(self):
        ops = self.output_padding or (None,) * self.rank
        return [cu.transpose_padding(k, self.padding, p, s, d)
                for k, p, s, d in zip(self.kernel_size, ops, self.strides, self.dilation_rate)]

    def compute_output_shape(self, input_shape):
        ops = self.output_padding or (None,) * self.rank
        spatial = tuple(cu.transpose_output_length(n, k, self.padding, p, s, d) for n, k, p, s, d in
                        zip(self._spatial(input_shape), self.kernel_size, ops, self.strides, self.dilation_rate))
        return self._with_spatial(input_shape, spatial, self.filters)

    def call(self, inputs):
        b = inputs.builder
        x = cu.to_channels_first(inputs, self.data_format)
        # Keras (*k, out, in) -> ONNX ConvTranspose (in, out, *k).
        r = self.rank
        weight = b.op("Transpose", [self.kernel], perm=[r + 1, r, *range(r)])
        pads = self._paddings_per_axis()
        in_shape = _cf_shape(x)
        spatial = self._spatial(self.compute_output_shape(self._with_spatial(in_shape, in_shape[2:], in_shape[1])))
        inputs_ = [x, weight] + ([self.bias] if self.bias is not None else [])
        y = b.op("ConvTranspose", inputs_, kernel_shape=list(self.kernel_size), strides=list(self.strides),
                 dilations=list(self.dilation_rate), pads=[p[0] for p in pads] + [p[1] for p in pads],
                 output_padding=[p[2] for p in pads], shape=(x.shape[0], self.filters, *spatial))
        return apply_activation(self.activation, cu.to_channels_last(y, self.data_format))

    def _count_flops(self, input_shapes, output_shapes):
        in_channels = input_shapes[0][self._channel_axis]
        in_spatial = int(np.prod([d or 1 for d in self._spatial(input_shapes[0])]))
        out = _elems(output_shapes[0])
        return (2 * in_spatial * in_channels * self.filters * int(np.prod(self.kernel_size))
                + (out if self.use_bias else 0) + _flops_activation(self.activation, out))

    def get_config(self):
        config = super().get_config()
        config.pop("groups")
        config["output_padding"] = None if self.output_padding is None else tuple(self.output_padding)
        return config


class Conv2DTranspose(_ConvTranspose):
    """Transposed 2-D convolution (the gradient of ``Conv2D`` w.r.t. its input), Keras output sizes.

    Kernel ``(kh, kw, filters, in)``. ``output_padding`` (each < stride) adds rows/columns at the end.
    """

    def __init__(self, filters: int, kernel_size: Any, strides: Any = (1, 1), padding: str = "valid",
                 output_padding: Any = None, data_format: str | None = None, dilation_rate: Any = (1, 1),
                 activation: Any = None, use_bias: bool = True, kernel_initializer: Any = "glorot_uniform",
                 bias_initializer: Any = "zeros", kernel_regularizer: Any = None, bias_regularizer: Any = None,
                 activity_regularizer: Any = None, kernel_constraint: Any = None, bias_constraint: Any = None,
                 **kwargs: Any):
        super().__init__(2, filters, kernel_size, strides, padding, output_padding, data_format, dilation_rate,
                         activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                         bias_regularizer, activity_regularizer, kernel_constraint, bias_constraint, **kwargs)
