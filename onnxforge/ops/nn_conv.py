"""Convolution and pooling as functions (``keras.ops.conv``, ``depthwise_conv``, ``separable_conv``,
``conv_transpose``, ``max_pool``, ``average_pool``), on Keras layouts: ``channels_last`` inputs by default
and kernels shaped ``(*kernel_size, in_channels, out_channels)`` (depthwise: ``(..., in, multiplier)``).

They emit ONNX ``Conv`` / ``ConvTranspose`` / pooling nodes between two transposes, as the layers do, so a
custom layer that overrides ``convolution_op`` (weight standardization) trains like a built-in one.

Example:
    >>> import numpy as np
    >>> from onnxforge import ops
    >>> ops.conv(np.ones((1, 5, 5, 2), "float32"), np.ones((3, 3, 2, 4), "float32")).shape
    TensorShape([1, 3, 3, 4])
"""
from __future__ import annotations

__all__ = ["conv", "depthwise_conv", "separable_conv", "conv_transpose", "max_pool", "average_pool"]

from typing import Any

import numpy as np

from ..graph import Value
from ._arrays_util import emit
from ._util import as_value, builder_of, promote, symbolic
from . import _conv_utils as cu


def _tuple(value: Any, n: int, name: str) -> list[int]:
    if isinstance(value, (int, np.integer)):
        return [int(value)] * n
    value = [int(v) for v in value]
    if len(value) == 1:
        return value * n
    if len(value) != n:
        raise ValueError(f"`{name}` must have {n} entries for a {n}-D operation. Received: {name}={value!r}")
    return value


def _check(padding: str, data_format: str | None) -> str:
    if padding not in ("valid", "same", "causal"):
        raise ValueError(f"`padding` must be 'valid' or 'same'. Received: padding={padding!r}")
    data_format = data_format or "channels_last"
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"`data_format` must be 'channels_last' or 'channels_first'. Received: {data_format!r}")
    return data_format


def _first(x: Value, data_format: str) -> Value:
    if data_format == "channels_first":
        return x
    r = len(x.shape)
    return emit(x.builder, "Transpose", [x], perm=[0, r - 1, *range(1, r - 1)])


def _last(x: Value, data_format: str) -> Value:
    if data_format == "channels_first":
        return x
    r = len(x.shape)
    return emit(x.builder, "Transpose", [x], perm=[0, *range(2, r), 1])


def _kernel_to_onnx(kernel: Value) -> Value:
    """Keras ``(*k, in, out)`` -> ONNX ``(out, in, *k)``."""
    r = len(kernel.shape) - 2
    return emit(kernel.builder, "Transpose", [kernel], perm=[r + 1, r, *range(r)])


def _conv(x: Value, w: Value, strides: list[int], padding: str, dilations: list[int], group: int) -> Value:
    kernel = list(w.shape[2:])
    spatial = list(x.shape[2:])
    if padding == "causal":
        x = emit(x.builder, "Pad", [x, as_value(np.asarray([0, 0, (kernel[0] - 1) * dilations[0], 0, 0, 0],
                                                          np.int64), x.builder)])
        padding = "valid"
    attrs = cu.padding_attrs(spatial, kernel, strides, dilations, padding)
    return emit(x.builder, "Conv", [x, w], kernel_shape=kernel, strides=strides, dilations=dilations, group=group,
                **attrs)


@symbolic
def conv(inputs: Any, kernel: Any, strides: Any = 1, padding: str = "valid", data_format: str | None = None,
         dilation_rate: Any = 1) -> Value:
    """N-D convolution; ``kernel`` is ``(*kernel_size, in_channels / groups, out_channels)``."""
    data_format = _check(padding, data_format)
    b = builder_of(inputs, kernel)
    x, k = promote(b, inputs, kernel)
    n = len(k.shape) - 2
    x_cf = _first(x, data_format)
    in_channels = x_cf.shape[1]
    group = in_channels // k.shape[-2] if isinstance(in_channels, int) else 1
    y = _conv(x_cf, _kernel_to_onnx(k), _tuple(strides, n, "strides"), padding,
              _tuple(dilation_rate, n, "dilation_rate"), group)
    return _last(y, data_format)


def _depthwise_kernel(k: Value) -> Value:
    """Keras ``(*k, in, multiplier)`` -> ONNX grouped ``(in * multiplier, 1, *k)``."""
    b = k.builder
    n = len(k.shape) - 2
    in_ch, mult = k.shape[-2], k.shape[-1]
    moved = emit(b, "Transpose", [k], perm=[n, n + 1, *range(n)])        # (in, mult, *k)
    return emit(b, "Reshape", [moved, as_value(np.asarray([in_ch * mult, 1, *k.shape[:n]], np.int64), b)])


@symbolic
def depthwise_conv(inputs: Any, kernel: Any, strides: Any = 1, padding: str = "valid",
                   data_format: str | None = None, dilation_rate: Any = 1) -> Value:
    """Depthwise convolution; ``kernel`` is ``(*kernel_size, in_channels, channel_multiplier)``."""
    data_format = _check(padding, data_format)
    b = builder_of(inputs, kernel)
    x, k = promote(b, inputs, kernel)
    n = len(k.shape) - 2
    y = _conv(_first(x, data_format), _depthwise_kernel(k), _tuple(strides, n, "strides"), padding,
              _tuple(dilation_rate, n, "dilation_rate"), int(k.shape[-2]))
    return _last(y, data_format)


@symbolic
def separable_conv(inputs: Any, depthwise_kernel: Any, pointwise_kernel: Any, strides: Any = 1,
                   padding: str = "valid", data_format: str | None = None, dilation_rate: Any = 1) -> Value:
    """A depthwise convolution followed by a 1x1 ``pointwise_kernel`` convolution."""
    depth = depthwise_conv(inputs, depthwise_kernel, strides, padding, data_format, dilation_rate)
    return conv(depth, pointwise_kernel, 1, "valid", data_format, 1)


@symbolic
def conv_transpose(inputs: Any, kernel: Any, strides: Any = 1, padding: str = "valid", output_padding: Any = None,
                   data_format: str | None = None, dilation_rate: Any = 1) -> Value:
    """Transposed convolution; ``kernel`` is ``(*kernel_size, out_channels, in_channels)`` as in Keras."""
    data_format = _check(padding, data_format)
    b = builder_of(inputs, kernel)
    x, k = promote(b, inputs, kernel)
    n = len(k.shape) - 2
    strides_ = _tuple(strides, n, "strides")
    dil = _tuple(dilation_rate, n, "dilation_rate")
    out_pad = [None] * n if output_padding is None else _tuple(output_padding, n, "output_padding")
    kernel_size = list(k.shape[:n])
    pads = [cu.transpose_padding(ks, padding, op, s, d) for ks, op, s, d in zip(kernel_size, out_pad, strides_, dil)]
    # Keras (*k, out, in) -> ONNX ConvTranspose (in, out, *k).
    w = emit(b, "Transpose", [k], perm=[n + 1, n, *range(n)])
    y = emit(b, "ConvTranspose", [_first(x, data_format), w], kernel_shape=kernel_size, strides=strides_,
             dilations=dil, pads=[p[0] for p in pads] + [p[1] for p in pads], output_padding=[p[2] for p in pads])
    return _last(y, data_format)


def _pool(op_type: str, inputs: Any, pool_size: Any, strides: Any, padding: str, data_format: str | None) -> Value:
    data_format = _check(padding, data_format)
    b = builder_of(inputs)
    x = as_value(inputs, b)
    n = len(x.shape) - 2
    size = _tuple(pool_size, n, "pool_size")
    stride = size if strides is None else _tuple(strides, n, "strides")
    x_cf = _first(x, data_format)
    spatial = list(x_cf.shape[2:])
    if padding.lower() == "valid" and any(isinstance(d, int) and k > d for d, k in zip(spatial, size)):
        # Keras's own refusal, here before onnxruntime fails the run on it
        raise ValueError(f"Computed output size would be zero or negative. Received: `inputs.shape={tuple(x.shape)}`, "
                         f"`pool_size={pool_size}`, `strides={strides if strides is not None else pool_size}`, "
                         "`padding=valid`.")
    attrs = cu.padding_attrs(spatial, size, stride, [1] * n, padding)
    if op_type == "AveragePool":
        attrs["count_include_pad"] = 0   # Keras averages over the window's real entries at the border
    return _last(emit(b, op_type, [x_cf], kernel_shape=size, strides=stride, **attrs), data_format)


@symbolic
def max_pool(inputs: Any, pool_size: Any, strides: Any = None, padding: str = "valid",
             data_format: str | None = None) -> Value:
    return _pool("MaxPool", inputs, pool_size, strides, padding, data_format)


@symbolic
def average_pool(inputs: Any, pool_size: Any, strides: Any = None, padding: str = "valid",
                 data_format: str | None = None) -> Value:
    return _pool("AveragePool", inputs, pool_size, strides, padding, data_format)
