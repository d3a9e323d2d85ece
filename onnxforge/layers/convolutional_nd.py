"""Convolutions of the other ranks: ``Conv3D``, ``Conv1DTranspose``, ``Conv3DTranspose``,
``DepthwiseConv1D``, ``SeparableConv1D`` (Keras 3 arguments, weight layouts and output sizes).

They share the N-D machinery of ``convolutional`` (ONNX ``Conv`` / ``ConvTranspose`` on channels_first
data, Keras-layout kernels transposed in the graph so gradients reach the Keras-layout weights).
"""
from __future__ import annotations

__all__ = ["Conv3D", "Conv1DTranspose", "Conv3DTranspose", "DepthwiseConv1D", "SeparableConv1D"]

from typing import Any

from .convolutional import _Conv, _ConvTranspose, _DepthwiseConv, _SeparableConv


class Conv3D(_Conv):
    """3-D convolution over ``(batch, d1, d2, d3, channels)``; kernel ``(k1, k2, k3, in / groups, filters)``.

    Example:
        >>> from onnxforge.layers import Conv3D, Input
        >>> Conv3D(4, 3, padding="same")(Input(shape=(5, 6, 7, 2))).shape
        (None, 5, 6, 7, 4)
    """

    def __init__(self, filters: int, kernel_size: Any, strides: Any = (1, 1, 1), padding: str = "valid",
                 data_format: str | None = None, dilation_rate: Any = (1, 1, 1), groups: int = 1,
                 activation: Any = None, use_bias: bool = True, kernel_initializer: Any = "glorot_uniform",
                 bias_initializer: Any = "zeros", kernel_regularizer: Any = None, bias_regularizer: Any = None,
                 activity_regularizer: Any = None, kernel_constraint: Any = None, bias_constraint: Any = None,
                 **kwargs: Any):
        super().__init__(3, filters, kernel_size, strides, padding, data_format, dilation_rate, groups, activation,
                         use_bias, kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
                         activity_regularizer, kernel_constraint, bias_constraint, **kwargs)


class Conv1DTranspose(_ConvTranspose):
    """Transposed 1-D convolution; kernel ``(k, filters, in)``.

    Example:
        >>> from onnxforge.layers import Conv1DTranspose, Input
        >>> Conv1DTranspose(4, 3, strides=2, padding="same")(Input(shape=(5, 2))).shape
        (None, 10, 4)
    """

    def __init__(self, filters: int, kernel_size: Any, strides: Any = 1, padding: str = "valid",
                 output_padding: Any = None, data_format: str | None = None, dilation_rate: Any = 1,
                 activation: Any = None, use_bias: bool = True, kernel_initializer: Any = "glorot_uniform",
                 bias_initializer: Any = "zeros", kernel_regularizer: Any = None, bias_regularizer: Any = None,
                 activity_regularizer: Any = None, kernel_constraint: Any = None, bias_constraint: Any = None,
                 **kwargs: Any):
        super().__init__(1, filters, kernel_size, strides, padding, output_padding, data_format, dilation_rate,
                         activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                         bias_regularizer, activity_regularizer, kernel_constraint, bias_constraint, **kwargs)


class Conv3DTranspose(_ConvTranspose):
    """Transposed 3-D convolution; kernel ``(k1, k2, k3, filters, in)``."""

    def __init__(self, filters: int, kernel_size: Any, strides: Any = (1, 1, 1), padding: str = "valid",
                 data_format: str | None = None, output_padding: Any = None, dilation_rate: Any = (1, 1, 1),
                 activation: Any = None, use_bias: bool = True, kernel_initializer: Any = "glorot_uniform",
                 bias_initializer: Any = "zeros", kernel_regularizer: Any = None, bias_regularizer: Any = None,
                 activity_regularizer: Any = None, kernel_constraint: Any = None, bias_constraint: Any = None,
                 **kwargs: Any):
        super().__init__(3, filters, kernel_size, strides, padding, output_padding, data_format, dilation_rate,
                         activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                         bias_regularizer, activity_regularizer, kernel_constraint, bias_constraint, **kwargs)


class DepthwiseConv1D(_DepthwiseConv):
    """Per-channel 1-D convolution; kernel ``(k, in, depth_multiplier)``."""

    def __init__(self, kernel_size: Any, strides: Any = 1, padding: str = "valid", depth_multiplier: int = 1,
                 data_format: str | None = None, dilation_rate: Any = 1, activation: Any = None,
                 use_bias: bool = True, depthwise_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 depthwise_regularizer: Any = None, bias_regularizer: Any = None, activity_regularizer: Any = None,
                 depthwise_constraint: Any = None, bias_constraint: Any = None, **kwargs: Any):
        super().__init__(1, kernel_size, strides, padding, depth_multiplier, data_format, dilation_rate, activation,
                         use_bias, depthwise_initializer, bias_initializer, depthwise_regularizer, bias_regularizer,
                         activity_regularizer, depthwise_constraint, bias_constraint, **kwargs)


class SeparableConv1D(_SeparableConv):
    """Depthwise 1-D convolution then a pointwise one: ``depthwise_kernel (k, in, depth_multiplier)``,
    ``pointwise_kernel (1, in * depth_multiplier, filters)``, ``bias (filters,)``."""

    def __init__(self, filters: int, kernel_size: Any, strides: Any = 1, padding: str = "valid",
                 data_format: str | None = None, dilation_rate: Any = 1, depth_multiplier: int = 1,
                 activation: Any = None, use_bias: bool = True, depthwise_initializer: Any = "glorot_uniform",
                 pointwise_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 depthwise_regularizer: Any = None, pointwise_regularizer: Any = None, bias_regularizer: Any = None,
                 activity_regularizer: Any = None, depthwise_constraint: Any = None, pointwise_constraint: Any = None,
                 bias_constraint: Any = None, **kwargs: Any):
        super().__init__(1, filters, kernel_size, strides, padding, data_format, dilation_rate, depth_multiplier,
                         activation, use_bias, depthwise_initializer, pointwise_initializer, bias_initializer,
                         depthwise_regularizer, pointwise_regularizer, bias_regularizer, activity_regularizer,
                         depthwise_constraint, pointwise_constraint, bias_constraint, **kwargs)
