"""Tone curves of Keras 3: ``Solarization``, ``RandomPosterization``, ``AutoContrast`` and ``Equalization``.

All four work on a 0-255 scale (images are mapped there from ``value_range`` and back, as Keras does).
``AutoContrast`` is deterministic and, as in Keras, applies at inference too; the others act in training
only. ``Equalization`` follows Keras's histogram: one histogram per channel over the whole batch, built with
``ScatterElements(reduction="add")``, its cumulative sum turned into a lookup table read by ``Gather``.
"""
from __future__ import annotations

__all__ = ["Solarization", "RandomPosterization", "AutoContrast", "Equalization"]

from typing import Any

import numpy as np
import onnx

from ...graph import emit as _ops
from ...graph.size_limits import check_constant
from .image_base import ImageAugmentationLayer, factor_pair, to_range, value_range_pair

_I64 = onnx.TensorProto.INT64


def _clip(x, low: float, high: float):
    b = x.builder
    return b.op("Clip", [x, b.const(np.float32(low), x.dtype), b.const(np.float32(high), x.dtype)], shape=x.shape)


def _unit_factor(factor: Any, name: str) -> tuple[float, float]:
    """Solarization's factors: numbers in [0, 1]; a number ``f`` means ``(0, f)``."""
    error = (f"The `addition_factor` and `threshold_factor` arguments should be a number (or a list of two "
             f"numbers) in the range [0, 1]. Received: {name}={factor}")
    values = list(factor) if isinstance(factor, (tuple, list)) else [factor]
    if len(values) not in (1, 2) or (isinstance(factor, (tuple, list)) and len(values) != 2):
        raise ValueError(error)
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
            raise ValueError(error)
    return tuple(sorted(values)) if len(values) == 2 else (0, values[0])  # type: ignore[return-value]


def _scale(x, source: Any, target: Any):
    """Equalization's own linear map (Keras's ``_scale_values``: a scale and an offset)."""
    scale = (float(target[1]) - float(target[0])) / (float(source[1]) - float(source[0]))
    return x * scale + (float(target[0]) - float(source[0]) * scale)


class Solarization(ImageAugmentationLayer):
    """Adds ``U(addition_factor[0], 255 * addition_factor[1])`` to each image (0-255 scale, clipped), then
    inverts the pixels at or above ``U(threshold_factor[0], 255 * threshold_factor[1])`` (Keras 3's
    ``Solarization``; with the defaults every pixel is inverted).

    Example:
        >>> from onnxforge.layers import Input, Solarization
        >>> Solarization(threshold_factor=(0.5, 0.5), value_range=(0, 1))(Input(shape=(8, 8, 3))).shape
        (None, 8, 8, 3)
    """

    def __init__(self, addition_factor: Any = 0.0, threshold_factor: Any = 0.0, value_range: Any = (0, 255),
                 seed: int | None = None, **kwargs: Any):
        super().__init__(kwargs.pop("data_format", None), seed, **kwargs)
        self.addition_factor = _unit_factor(addition_factor, "addition_factor")
        self.threshold_factor = _unit_factor(threshold_factor, "threshold_factor")
        self.value_range = value_range_pair(value_range)

    def _draw(self, images):
        (add,) = self._uniform(images, self.addition_factor[0], self.addition_factor[1] * 255)
        (threshold,) = self._uniform(images, self.threshold_factor[0], self.threshold_factor[1] * 255)
        return add, threshold

    def _transform(self, images, params):
        add, threshold = params
        b = images.builder
        x = _clip(to_range(images, self.value_range, (0, 255)) + add, 0.0, 255.0)
        x = b.op("Where", [b.op("Less", [x, threshold]), x, 255.0 - x], dtype=x.dtype, shape=x.shape)
        return to_range(x, (0, 255), self.value_range)

    def get_config(self):
        return {**super().get_config(), "value_range": list(self.value_range),
                "addition_factor": list(self.addition_factor), "threshold_factor": list(self.threshold_factor)}


class RandomPosterization(ImageAugmentationLayer):
    """Keeps ``bits`` high bits of each 0-255 channel value, ``bits`` drawn per image from ``[1, factor)``
    (or fixed by ``factor=(b, b)``), as Keras 3's ``RandomPosterization``.

    Example:
        >>> from onnxforge.layers import Input, RandomPosterization
        >>> RandomPosterization((3, 3))(Input(shape=(8, 8, 3))).shape
        (None, 8, 8, 3)
    """

    def __init__(self, factor: Any, value_range: Any = (0, 255), data_format: str | None = None,
                 seed: int | None = None, **kwargs: Any):
        super().__init__(data_format, seed, **kwargs)
        self.factor = factor_pair(factor, (1, 8))
        self.value_range = value_range_pair(value_range)

    def _draw(self, images):
        low, high = self.factor
        if low == high:
            return float(2 ** (8 - int(low)))
        b = images.builder
        (u,) = self._uniform(images, 0.0, 1.0)
        bits = b.op("Floor", [u * float(int(high) - int(low))]) + float(int(low))  # randint: [low, high)
        return b.op("Pow", [b.const(np.float32(2.0), images.dtype), 8.0 - bits], shape=bits.shape)

    def _transform(self, images, step):
        b = images.builder
        x = _clip(b.op("Floor", [to_range(images, self.value_range, (0, 255))]), 0.0, 255.0)  # the uint8 cast
        x = b.op("Floor", [x / step]) * step
        return to_range(x, (0, 255), self.value_range)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor), "value_range": list(self.value_range)}


class AutoContrast(ImageAugmentationLayer):
    """Stretches each image's channels to the full ``value_range`` (min to the low end, max to the high end;
    constant channels stay as they are), in training and at inference alike, as Keras 3's ``AutoContrast``.

    Example:
        >>> from onnxforge.layers import Input, AutoContrast
        >>> AutoContrast(value_range=(0, 1))(Input(shape=(8, 8, 3))).shape
        (None, 8, 8, 3)
    """

    _draws = False   # deterministic: Keras gives it no SeedGenerator (layers/seed_state.py)

    _ALWAYS = True

    def __init__(self, value_range: Any = (0, 255), **kwargs: Any):
        super().__init__(kwargs.pop("data_format", None), None, **kwargs)
        self.value_range = value_range_pair(value_range)

    def _transform(self, images, params):
        b = images.builder
        x = to_range(images, self.value_range, (0, 255))
        # Keras reduces over axes (1, 2) whatever the data format.
        low = _ops.reduce("ReduceMin", x, [1, 2], True)
        high = _ops.reduce("ReduceMax", x, [1, 2], True)
        scale = 255.0 / (high - low)
        out = to_range(_clip(x * scale + (-low * scale), 0.0, 255.0), (0, 255), self.value_range)
        # A constant channel divides by zero: NaN there, and Keras keeps the input.
        return b.op("Where", [b.op("IsNaN", [out]), images, out], dtype=out.dtype, shape=images.shape)

    def get_config(self):
        config = {**super().get_config(), "value_range": list(self.value_range)}
        config.pop("seed")
        return config


class Equalization(ImageAugmentationLayer):
    """Histogram equalization per channel over ``bins`` bins (Keras 3's ``Equalization``: one histogram per
    channel over the whole batch; channels with at most one occupied bin stay as they are).

    Example:
        >>> from onnxforge.layers import Input, Equalization
        >>> Equalization(value_range=(0, 1))(Input(shape=(8, 8, 3))).shape
        (None, 8, 8, 3)
    """

    _draws = False   # deterministic: Keras gives it no SeedGenerator (layers/seed_state.py)

    def __init__(self, value_range: Any = (0, 255), bins: int = 256, data_format: str | None = None,
                 **kwargs: Any):
        super().__init__(data_format, None, **kwargs)
        self.bins = int(bins)
        self.value_range = value_range_pair(value_range)

    def _transform(self, images, params):
        b = images.builder
        axis = self._channel_axis()
        channels = _ops.static_shape(images)[axis]
        if channels is None:
            raise ValueError(f"Equalization {self.name!r} needs a known number of channels. "
                             f"Received shape {_ops.static_shape(images)}")
        bins = self.bins
        check_constant((bins, channels), 4, "the histogram")   # before numpy allocates it
        x = _scale(images, self.value_range, (0, 255))
        # Channel last, flattened: the histogram index of a pixel is bin * channels + channel.
        last = _ops.transpose(x, (0, 2, 3, 1)) if axis == 1 else x
        index = b.op("Cast", [b.op("Clip", [b.op("Floor", [last * float(bins - 1) / 255.0]),
                                            b.const(np.float32(0), x.dtype), b.const(np.float32(bins - 1), x.dtype)])],
                     to=_I64)
        flat = b.op("Reshape", [index * channels + b.const(np.arange(channels, dtype=np.int64)), _ops.ints(b, [-1])])
        ones = b.op("Cast", [b.op("ConstantOfShape", [b.op("Shape", [flat])])], to=onnx.TensorProto.FLOAT) + 1.0
        hist = b.op("ScatterElements", [b.const(np.zeros(bins * channels, np.float32)), flat, ones],
                    axis=0, reduction="add")
        hist = b.op("Reshape", [hist, _ops.ints(b, [bins, channels])], shape=(bins, channels))
        cdf = b.op("CumSum", [hist, b.const(np.asarray(0, np.int64))], shape=(bins, channels))
        cdf_min = _ops.reduce("ReduceMin", b.op("Where", [b.op("Greater", [cdf, 0.0]), cdf, float(np.inf)]),
                              [0], True)
        total = b.op("Slice", [cdf, _ops.ints(b, [-1]), _ops.ints(b, [bins]), _ops.ints(b, [0])])
        denominator = total - cdf_min
        denominator = b.op("Where", [b.op("Equal", [denominator, 0.0]), 1.0, denominator])
        table = _clip(b.op("Round", [(cdf - cdf_min) * 255.0 / denominator]), 0.0, 255.0)
        lookup = b.op("Cast", [_clip(b.op("Floor", [last / 255.0 * float(bins - 1)]), 0.0, float(bins - 1))], to=_I64)
        lookup = lookup * channels + b.const(np.arange(channels, dtype=np.int64))
        equalized = b.op("Gather", [b.op("Reshape", [table, _ops.ints(b, [-1])]), lookup], axis=0, shape=last.shape)
        occupied = _ops.reduce("ReduceSum", b.op("Cast", [b.op("Greater", [hist, 0.0])], to=onnx.TensorProto.FLOAT),
                               [0], False)
        out = b.op("Where", [b.op("LessOrEqual", [occupied, 1.0]), last, b.op("Cast", [equalized], to=x.dtype)],
                   dtype=x.dtype, shape=last.shape)
        out = _ops.transpose(out, (0, 3, 1, 2)) if axis == 1 else out
        return _scale(out, (0, 255), self.value_range)

    def get_config(self):
        config = {**super().get_config(), "bins": self.bins, "value_range": list(self.value_range)}
        config.pop("seed")
        return config
