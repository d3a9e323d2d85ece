"""``RandomErasing`` (Zhong et al. 2017) as Keras 3.15 has it: in training each image, with a probability of its
own, has one axis-aligned box overwritten by a constant or by clipped Gaussian noise.

The draws follow Keras's: per image two side ratios ``sqrt(U(scale))`` (width first, then height), a start
``U(0, 1) * (length - side)`` on each axis (sides are not rounded: the box covers the pixels whose index lies in
``[start, start + side)``), then an erasing probability ``p ~ U(factor)`` and a threshold ``t ~ U(0, 1)``; the
box is erased when ``t < p``. With ``fill_value=None`` the fill is ``N(0, 1) * value_range[1]`` per pixel
(Box-Muller from two uniforms), clipped to ``value_range``; a number or three numbers (one per channel) are
clipped alike.
"""
from __future__ import annotations

__all__ = ["RandomErasing"]

from typing import Any

import numpy as np

from ...graph import emit as _ops
from ..regularization import standard_normal
from .image_base import ImageAugmentationLayer, factor_pair


def _fill_constant(fill_value: Any) -> np.ndarray | None:
    """Keras's accepted fills: ``None``, a number, or a list / tuple of three numbers."""
    error = "The `fill_value` argument should be a number (or a list of three numbers) "
    if fill_value is None:
        return None
    if isinstance(fill_value, (tuple, list)):
        if len(fill_value) != 3 or not all(isinstance(v, (int, float)) for v in fill_value):
            raise ValueError(error + f"Received: fill_value={fill_value}")
        return np.asarray(fill_value, np.float32)
    if isinstance(fill_value, (int, float)) and not isinstance(fill_value, bool):
        return np.float32(fill_value)
    raise ValueError(error + f"Received: fill_value={fill_value}")


class RandomErasing(ImageAugmentationLayer):
    """Erases one random box per image with probability ``U(factor)``; the box's sides are
    ``sqrt(U(scale))`` of the image's width and height, and it is filled with ``fill_value`` or, when that is
    ``None``, with Gaussian noise scaled by ``value_range[1]`` (both clipped to ``value_range``). Identity at
    inference, as Keras 3's ``RandomErasing``.

    Example:
        >>> import numpy as np
        >>> from onnxforge.layers import RandomErasing
        >>> images = np.full((2, 8, 8, 3), 100.0, np.float32)
        >>> out = RandomErasing(factor=(1.0, 1.0), scale=(0.25, 0.25), fill_value=0.0)(images, training=True)
        >>> [int((out[i] == 0).sum()) for i in range(2)]   # a 4 x 4 box of 3 channels in each image
        [48, 48]
        >>> bool((RandomErasing()(images, training=False) == images).all())
        True
    """

    def __init__(self, factor: Any = 1.0, scale: Any = (0.02, 0.33), fill_value: Any = None,
                 value_range: Any = (0, 255), seed: int | None = None, data_format: str | None = None,
                 **kwargs: Any):
        super().__init__(data_format, seed, **kwargs)
        self.factor = factor_pair(factor, (0, 1))
        self.scale = factor_pair(scale, (0, 1), "scale")
        self._fill = _fill_constant(fill_value)
        self.fill_value = list(fill_value) if isinstance(fill_value, tuple) else fill_value
        if not isinstance(value_range, (tuple, list)) or len(value_range) != 2:
            raise ValueError("The `value_range` argument should be a list of two numbers. "
                             f"Received: value_range={value_range}")
        self.value_range = list(value_range)   # kept as given, as Keras does (no sorting)

    def _draw(self, images):
        b = images.builder
        h, w = self._hw(images)
        ratio_x, ratio_y = (b.op("Sqrt", [u]) for u in self._uniform(images, *self.scale, count=2))
        bounds = []
        for ratio, length in ((ratio_x, w), (ratio_y, h)):
            side = ratio * float(length)
            start = self._uniform(images, 0.0, 1.0)[0] * (float(length) - side)
            bounds += [start, start + side]
        probability = self._uniform(images, *self.factor)[0]
        threshold = self._uniform(images, 0.0, 1.0)[0]
        apply = b.op("Less", [threshold, probability])
        noise = standard_normal(images) * float(self.value_range[1]) if self._fill is None else None
        return bounds, apply, noise

    def _transform(self, images, params):
        (x0, x1, y0, y1), apply, noise = params
        b = images.builder
        h, w = self._hw(images)
        last = self.data_format == "channels_last"
        grid_y = b.const(np.arange(h, dtype=np.float32).reshape((1, h, 1, 1) if last else (1, 1, h, 1)))
        grid_x = b.const(np.arange(w, dtype=np.float32).reshape((1, 1, w, 1) if last else (1, 1, 1, w)))

        def both(*conditions):
            return b.op("And", list(conditions))
        inside = both(both(b.op("GreaterOrEqual", [grid_x, x0]), b.op("Less", [grid_x, x1])),
                      both(b.op("GreaterOrEqual", [grid_y, y0]), b.op("Less", [grid_y, y1])))
        low, high = (float(v) for v in self.value_range)
        if noise is None:
            fill = np.minimum(np.maximum(self._fill, np.float32(low)), np.float32(high)).astype(np.float32)
            if fill.ndim == 1:   # one value per channel
                fill = fill.reshape((1, 1, 1, 3) if last else (1, 3, 1, 1))
            fill = b.const(fill, images.dtype)
        else:
            fill = b.op("Min", [b.op("Max", [noise, b.const(np.float32(low), noise.dtype)]),
                                b.const(np.float32(high), noise.dtype)])
            if fill.dtype != images.dtype:
                fill = b.op("Cast", [fill], to=images.dtype)
        erase = both(inside, apply)
        return _ops.set_shape(b.op("Where", [erase, fill, images], dtype=images.dtype), images.shape)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor), "scale": list(self.scale),
                "fill_value": self.fill_value, "value_range": list(self.value_range)}

    def _count_flops(self, input_shapes, output_shapes):
        return 0
