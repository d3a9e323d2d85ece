"""Random colour adjustments of Keras 3, active in training only: ``RandomHue``, ``RandomSaturation``,
``RandomColorDegeneration``, ``RandomSharpness``.

Each draws one factor per image from the program's RNG with Keras's distribution and applies Keras's
arithmetic to it (HSV through ``ops._color_kernels``; sharpness as Keras's 3x3 smoothing kernel, a grouped
``Conv`` with zero padding).
"""
from __future__ import annotations

__all__ = ["RandomHue", "RandomSaturation", "RandomColorDegeneration", "RandomSharpness"]

from typing import Any

import numpy as np

from ...backend_config import epsilon
from ...graph import Value
from ...graph import emit as _ops
from ...ops.image import rgb_to_grayscale
from ...ops._color_kernels import hsv_to_rgb, join_channels, rgb_to_hsv, split_channels
from .image_base import ImageAugmentationLayer, factor_pair, to_range, value_range_pair


def _clip(x: Value, low: float, high: float) -> Value:
    b = x.builder
    return b.op("Clip", [x, b.const(np.float32(low), x.dtype), b.const(np.float32(high), x.dtype)], shape=x.shape)


class _FactorLayer(ImageAugmentationLayer):
    """``factor`` read within ``_BOUNDS`` and a checked ``value_range`` (Keras's argument order)."""

    _BOUNDS = (-1, 1)

    def __init__(self, factor: Any, value_range: Any = (0, 255), data_format: str | None = None,
                 seed: int | None = None, **kwargs: Any):
        super().__init__(data_format, seed, **kwargs)
        self.factor = factor_pair(factor, self._BOUNDS)
        self.value_range = value_range_pair(value_range)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor), "value_range": list(self.value_range)}


class RandomHue(_FactorLayer):
    """Shifts each image's hue by ``±U(factor) / 2`` of a turn (the sign drawn with probability 1/2), as
    Keras 3's ``RandomHue``: images go from ``value_range`` to [0, 1], through HSV, and back.

    Example:
        >>> from onnxforge.layers import Input, RandomHue
        >>> RandomHue(0.2, value_range=(0, 1))(Input(shape=(8, 8, 3))).shape
        (None, 8, 8, 3)
    """

    _BOUNDS = (0, 1)

    def __init__(self, factor: Any, value_range: Any = (0, 255), data_format: str | None = None,
                 seed: int | None = None, **kwargs: Any):
        super().__init__(factor, value_range, data_format, seed, **kwargs)
        self.value_range = tuple(value_range)  # Keras keeps RandomHue's range as given

    def _draw(self, images):
        b = images.builder
        invert, amount = self._uniform(images, 0.0, 1.0), self._uniform(images, *self.factor)
        sign = b.op("Where", [b.op("Greater", [invert[0], 0.5]), b.const(np.float32(-1.0), images.dtype),
                              b.const(np.float32(1.0), images.dtype)], dtype=images.dtype)
        return sign * amount[0] * 0.5

    def _transform(self, images, shift):
        hsv = rgb_to_hsv(to_range(images, self.value_range, (0, 1)), self.data_format)
        hue, saturation, value = split_channels(hsv, self.data_format)
        b = images.builder
        hue = hue + shift
        hue = b.op("Where", [b.op("Greater", [hue, 1.0]), hue - 1.0, hue], dtype=hue.dtype, shape=hue.shape)
        hue = b.op("Where", [b.op("Less", [hue, 0.0]), hue + 1.0, hue], dtype=hue.dtype, shape=hue.shape)
        rgb = hsv_to_rgb(join_channels([hue, saturation, value], self.data_format, hsv), self.data_format)
        return to_range(_clip(rgb, 0.0, 1.0), (0, 1), self.value_range)


class RandomSaturation(_FactorLayer):
    """Scales each image's HSV saturation by ``f / (1 - f + epsilon)``, ``f ~ U(factor)`` (``factor`` in
    [0, 1]: 0.5 keeps the image, 0 makes it gray, 1 saturates it), clipping the scaled saturation to
    ``value_range`` as Keras 3's ``RandomSaturation`` does (which reads a number ``f`` as ``U(-f, f)``: the
    negative half grays the image fully).

    Example:
        >>> from onnxforge.layers import Input, RandomSaturation
        >>> RandomSaturation((0.5, 0.5))(Input(shape=(8, 8, 3))).shape
        (None, 8, 8, 3)
    """

    def _draw(self, images):
        (f,) = self._uniform(images, *self.factor)
        return f / (1.0 - f + epsilon())

    def _transform(self, images, scale):
        hue, saturation, value = split_channels(rgb_to_hsv(images, self.data_format), self.data_format)
        saturation = _clip(saturation * scale, *self.value_range)
        return hsv_to_rgb(join_channels([hue, saturation, value], self.data_format, images), self.data_format)


class RandomColorDegeneration(_FactorLayer):
    """Blends each image towards its grayscale version by ``U(factor)`` (a number ``f`` means
    ``U(-f, f)``, as Keras 3's ``RandomColorDegeneration``), clipped to ``value_range``.

    Example:
        >>> from onnxforge.layers import Input, RandomColorDegeneration
        >>> RandomColorDegeneration(0.5)(Input(shape=(8, 8, 3))).shape
        (None, 8, 8, 3)
    """

    def _draw(self, images):
        return self._uniform(images, *self.factor)[0]

    def _transform(self, images, factor):
        gray = rgb_to_grayscale(images, data_format=self.data_format)
        return _clip(images + factor * (gray - images), *self.value_range)


class RandomSharpness(_FactorLayer):
    """Moves each image away from (or towards) its 3x3-smoothed version: ``image + (1 - 2 U(factor)) *
    (smoothed - image)``, clipped to ``value_range`` (Keras 3's ``RandomSharpness``: its kernel, zero
    padding at the borders).

    Example:
        >>> from onnxforge.layers import Input, RandomSharpness
        >>> RandomSharpness(0.5)(Input(shape=(8, 8, 3))).shape
        (None, 8, 8, 3)
    """

    _BOUNDS = (0, 1)

    def _draw(self, images):
        return self._uniform(images, *self.factor)[0]

    def _transform(self, images, factor):
        b = images.builder
        channels_last = self.data_format == "channels_last"
        x = _ops.transpose(images, (0, 3, 1, 2)) if channels_last else images
        c = _ops.static_shape(x)[1]
        if c is None:
            raise ValueError(f"RandomSharpness {self.name!r} needs a known number of channels. "
                             f"Received shape {_ops.static_shape(images)}")
        a, center = 1.0 / 13.0, 5.0 / 13.0
        kernel = np.full((3, 3), a, np.float32)
        kernel[1, 1] = center
        weights = b.const(np.tile(kernel[None, None], (c, 1, 1, 1)), x.dtype)
        smoothed = b.op("Conv", [x, weights], group=c, pads=[1, 1, 1, 1], kernel_shape=[3, 3], shape=x.shape)
        if channels_last:
            smoothed = _ops.transpose(smoothed, (0, 2, 3, 1))
        out = images + (1.0 - factor * 2.0) * (smoothed - images)
        return _clip(out, *self.value_range)
