"""``RandAugment`` (Cubuk et al. 2019) as Keras 3 builds it: eleven augmentation layers, each drawing its
parameters once per call; ``num_ops`` times, one of them (the same for the whole batch, drawn per call) is
applied. Every candidate is computed and the drawn one kept with ``Where``, as Keras does, so the graph is
static; training only.
"""
from __future__ import annotations

__all__ = ["RandAugment"]

from typing import Any

import numpy as np

from ...graph import emit as _ops
from ...tracing import current_trace
from .augmentation import RandomBrightness, RandomContrast, RandomRotation, RandomTranslation
from .color_adjust import RandomColorDegeneration, RandomSharpness
from .image_base import ImageAugmentationLayer, factor_pair
from .random_shear import RandomShear
from .tone import AutoContrast, Equalization, RandomPosterization, Solarization


class RandAugment(ImageAugmentationLayer):
    """Applies ``num_ops`` augmentations drawn from shear, translation, rotation, brightness, colour
    degeneration, contrast, sharpness, posterization, solarization, auto-contrast and equalization, each of
    strength ``factor`` (Keras 3's ``RandAugment`` and its order of the eleven).

    Example:
        >>> from onnxforge.layers import Input, RandAugment
        >>> RandAugment(value_range=(0, 1), num_ops=2, factor=0.3)(Input(shape=(8, 8, 3))).shape
        (None, 8, 8, 3)
    """

    def __init__(self, value_range: Any = (0, 255), num_ops: int = 2, factor: Any = 0.5,
                 interpolation: str = "bilinear", seed: int | None = None, data_format: str | None = None,
                 **kwargs: Any):
        super().__init__(data_format, seed, **kwargs)
        if isinstance(num_ops, bool) or not isinstance(num_ops, (int, np.integer)) or num_ops < 0:
            raise ValueError(f"RandAugment: `num_ops` must be a non-negative integer. Received: num_ops={num_ops}")
        self.value_range, self.num_ops, self.interpolation = value_range, int(num_ops), interpolation
        self.factor = factor_pair(factor, (0, 1))
        f, vr, fmt = self.factor, value_range, data_format
        self._ops = [
            RandomShear(x_factor=f, y_factor=f, interpolation=interpolation, seed=seed, data_format=fmt),
            RandomTranslation(height_factor=f, width_factor=f, interpolation=interpolation, seed=seed,
                              data_format=fmt),
            RandomRotation(factor=f, interpolation=interpolation, seed=seed, data_format=fmt),
            RandomBrightness(factor=f, value_range=vr, seed=seed, data_format=fmt),
            RandomColorDegeneration(factor=f, value_range=vr, seed=seed, data_format=fmt),
            RandomContrast(factor=f, value_range=vr, seed=seed, data_format=fmt),
            RandomSharpness(factor=f, value_range=vr, seed=seed, data_format=fmt),
            RandomPosterization(factor=max(1, int(8 * f[1])), value_range=vr, seed=seed, data_format=fmt),
            Solarization(addition_factor=f, threshold_factor=f, value_range=vr, seed=seed, data_format=fmt),
            AutoContrast(value_range=vr, data_format=fmt),
            Equalization(value_range=vr, data_format=fmt),
        ]

    def _draw(self, images):
        b = images.builder
        first = b.op("Slice", [images, _ops.ints(b, [0, 0, 0, 0]), _ops.ints(b, [1, 1, 1, 1]),
                               _ops.ints(b, [0, 1, 2, 3])])
        like = b.op("Tile", [b.op("Reshape", [first, _ops.ints(b, [1, 1])]), _ops.ints(b, [1, max(self.num_ops, 1)])],
                    shape=(1, max(self.num_ops, 1)))
        # randint(0, 11) per op, one draw for the whole batch.
        choice = b.op("Floor", [current_trace().random_uniform(like) * float(len(self._ops))])
        return choice, [op._draw(images) for op in self._ops]

    def _transform(self, images, params):
        choice, drawn = params
        b = images.builder
        for i in range(self.num_ops):
            picked = b.op("Reshape", [b.op("Slice", [choice, _ops.ints(b, [i]), _ops.ints(b, [i + 1]), _ops.ints(b, [1])]),
                                      _ops.ints(b, [1, 1, 1, 1])])
            for k, (op, p) in enumerate(zip(self._ops, drawn)):
                out = op._transform(images, p)
                images = b.op("Where", [b.op("Equal", [picked, float(k)]), out, images], dtype=images.dtype,
                              shape=images.shape)
        return images

    def get_config(self):
        return {**super().get_config(), "value_range": list(self.value_range), "num_ops": self.num_ops,
                "factor": list(self.factor), "interpolation": self.interpolation}
