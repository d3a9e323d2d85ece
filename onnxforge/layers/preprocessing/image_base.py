"""The base of the image augmentation layers that, like Keras 3's ``BaseImagePreprocessingLayer``, take a
batch of images, one image, or a dict ``{"images": ..., "labels": ...}``.

A layer splits its work the way Keras does: ``_draw(images)`` returns the random parameters of one call
(from the program's in-graph RNG), ``_transform(images, params)`` applies them, and ``_transform_labels``
(MixUp, CutMix) mixes the labels with the *same* parameters. ``RandAugment`` reuses that split to draw each
sub-layer's parameters once per call, as Keras does. Outside training the images pass through unchanged.

Example:
    >>> import numpy as np
    >>> from onnxforge.layers import RandomHue
    >>> data = {"images": np.zeros((2, 4, 4, 3), np.float32), "labels": np.ones((2, 5), np.float32)}
    >>> sorted(RandomHue(0.5)(data, training=True))
    ['images', 'labels']
"""
from __future__ import annotations

__all__ = ["ImageAugmentationLayer", "value_range_pair", "to_range", "factor_pair"]

from typing import Any

import onnx

from ...graph import Value
from .augmentation import _RandomImageLayer

_FLOATS = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16)


def value_range_pair(value_range: Any) -> list:
    """Keras's check of ``value_range`` (two numbers), sorted."""
    if not isinstance(value_range, (tuple, list)) or len(value_range) != 2:
        raise ValueError("The `value_range` argument should be a list of two numbers. "
                         f"Received: value_range={value_range}")
    return sorted(value_range)


def factor_pair(factor: Any, bounds: tuple[float, float], name: str = "factor") -> tuple[float, float]:
    """Keras's base ``_set_factor``: a number ``f`` in ``bounds`` is ``(max(-|f|, low), |f|)``; a pair is sorted and
    refused only when it lies wholly outside ``bounds``."""
    error = (f"The `{name}` argument should be a number (or a list of two numbers) in the range "
             f"[{bounds[0]}, {bounds[1]}]. Received: {name}={factor}")
    if isinstance(factor, (tuple, list)):
        if len(factor) != 2 or factor[0] > bounds[1] or factor[1] < bounds[0]:
            raise ValueError(error)
        low, high = sorted(factor)
        return low, high
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not bounds[0] <= factor <= bounds[1]:
        raise ValueError(error)
    return max(-abs(factor), bounds[0]), abs(factor)


def to_range(images: Value, source: Any, target: Any) -> Value:
    """Keras's ``_transform_value_range``: a linear map of ``source`` onto ``target`` (none when they agree), in
    Keras's order of operations so that the float32 results agree."""
    if float(source[0]) == float(target[0]) and float(source[1]) == float(target[1]):
        return images
    unit = (images - float(source[0])) / float(float(source[1]) - float(source[0]))
    return unit * float(float(target[1]) - float(target[0])) + float(target[0])


class ImageAugmentationLayer(_RandomImageLayer):
    """Shared: the draw/transform split (its draws also reach ``_transform_labels``) and float images; dict
    inputs, single images and identity outside training come from ``_RandomImageLayer.call``."""

    def _prepare(self, images: Value) -> Value:
        if images.dtype not in _FLOATS:
            images = images.builder.op("Cast", [images], to=onnx.TensorProto.FLOAT, shape=images.shape)
        return images

    def _augment_with_params(self, images: Value) -> tuple[Value, Any]:
        params = self._draw(images)
        return self._transform(images, params), params

    def _channel_axis(self) -> int:
        return 3 if self.data_format == "channels_last" else 1

    def compute_output_shape(self, input_shape):
        if isinstance(input_shape, dict):
            return dict(input_shape)
        return tuple(input_shape)
