"""``RandomShear``: Keras 3's random shear along x and y, training only, resampled like the other affine
augmentations (``augmentation._AffineLayer``: Keras's ``affine_transform`` on its torch backend)."""
from __future__ import annotations

__all__ = ["RandomShear"]

from typing import Any

import numpy as np

from .augmentation import _AffineLayer


def _shear_range(factor: Any, name: str) -> tuple[float, float]:
    """A number ``f`` in [0, 1] means ``(-f, f)``; a pair of numbers in [0, 1] is sorted."""
    error = ("The `factor` argument should be a number (or a list of two numbers) in the range [0, 1.0]. "
             f"Received: {name}={factor}")
    values = list(factor) if isinstance(factor, (tuple, list)) else [factor]
    if len(values) == 2 and all(isinstance(v, (int, float)) for v in values) and values[0] == -values[1] < 0:
        values = [values[1]]   # the (-f, f) that Keras 3.15 writes for f (its own constructor refuses it)
    elif isinstance(factor, (tuple, list)) and len(values) != 2:
        raise ValueError(error)
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
            raise ValueError(error)
    if len(values) == 2:
        low, high = sorted(values)
        return low, high
    return -abs(values[0]), abs(values[0])


class RandomShear(_AffineLayer):
    """Shears each image by ``s_x ~ U(x_factor)`` and ``s_y ~ U(y_factor)``, both negated together with
    probability 1/2 (Keras 3's ``RandomShear``: the sampling grid is ``x' = x + s_x y``, ``y' = s_y x + y``).

    Example:
        >>> from onnxforge.layers import Input, RandomShear
        >>> RandomShear(0.2, 0.2)(Input(shape=(8, 8, 3))).shape
        (None, 8, 8, 3)
    """

    def __init__(self, x_factor: Any = 0.0, y_factor: Any = 0.0, interpolation: str = "bilinear",
                 fill_mode: str = "reflect", fill_value: float = 0.0, data_format: str | None = None,
                 seed: int | None = None, **kwargs: Any):
        super().__init__(fill_mode, interpolation, fill_value, data_format, seed, **kwargs)
        self.x_factor = _shear_range(x_factor, "x_factor")
        self.y_factor = _shear_range(y_factor, "y_factor")
        # The config keeps the arguments as given: Keras 3.15 writes the (-f, f) range it read from a number f,
        # which its own constructor then refuses (-f < 0), so its RandomShear files do not load again.
        self._factor_args = (x_factor, y_factor)

    def _draw(self, images):
        b = images.builder
        (invert,) = self._uniform(images, 0.0, 1.0)
        (shear_y,) = self._uniform(images, *self.y_factor)
        (shear_x,) = self._uniform(images, *self.x_factor)
        sign = b.op("Where", [b.op("Greater", [invert, 0.5]), b.const(np.float32(-1.0), images.dtype),
                              b.const(np.float32(1.0), images.dtype)], dtype=images.dtype)
        return shear_x * sign, shear_y * sign

    def _transform(self, images, params):
        shear_x, shear_y = params
        one, zero = shear_x * 0.0 + 1.0, shear_x * 0.0
        return self._apply(images, [one, shear_x, zero, shear_y, one, zero])

    def _augment(self, images):
        return self._transform(images, self._draw(images))

    def get_config(self):
        # Keras 3.15 writes each factor as its (low, high) range; the constructor reads that form back.
        return {**super().get_config(), "x_factor": list(self.x_factor), "y_factor": list(self.y_factor)}
