"""Random colour augmentation active in training programs only (identity at inference): ``RandomGrayscale``
and ``RandomInvert``, Keras 3's layers with its draws (one uniform per image from the program's in-graph RNG)
and its arithmetic.
"""
from __future__ import annotations

__all__ = ["RandomGrayscale", "RandomInvert"]

from typing import Any

from ...graph import Value
from ...ops.image import rgb_to_grayscale
from .augmentation import _RandomImageLayer


class RandomGrayscale(_RandomImageLayer):
    """Turns each image to grayscale (``0.2989 R + 0.587 G + 0.114 B`` in every channel) with probability
    ``factor``, as Keras 3's ``RandomGrayscale``.

    Example:
        >>> from onnxforge.layers import Input, RandomGrayscale
        >>> RandomGrayscale(0.3)(Input(shape=(8, 8, 3))).shape
        (None, 8, 8, 3)
    """

    def __init__(self, factor: float = 0.5, data_format: str | None = None, seed: int | None = None,
                 **kwargs: Any):
        super().__init__(data_format, seed, **kwargs)
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 <= factor <= 1:
            raise ValueError(f"`factor` should be between 0 and 1. Received: factor={factor}")
        self.factor = float(factor)

    def _augment(self, images: Value) -> Value:
        b = images.builder
        (u,) = self._uniform(images, 0.0, 1.0)
        gray = rgb_to_grayscale(images, data_format=self.data_format)  # one channel, broadcast by Where
        return b.op("Where", [b.op("Less", [u, self.factor]), gray, images], dtype=images.dtype,
                    shape=images.shape)

    def get_config(self):
        config = {**super().get_config(), "factor": self.factor}
        config.pop("seed")  # Keras 3's RandomGrayscale does not write its seed
        return config


class RandomInvert(_RandomImageLayer):
    """Replaces an image by ``value_range[1] - image`` where a ``U(0, 1)`` draw falls below a probability drawn
    from ``U(factor)`` (Keras 3's ``RandomInvert``: a number ``f`` in ``[0, 1]`` means ``U(0, f)``, so the default
    ``factor=1.0`` inverts half of the images; a pair ``(lo, hi)`` means ``U(lo, hi)``).

    Example:
        >>> from onnxforge.layers import Input, RandomInvert
        >>> RandomInvert(value_range=(0, 1))(Input(shape=(4, 4, 3))).shape
        (None, 4, 4, 3)
    """

    def __init__(self, factor: Any = 1.0, value_range: Any = (0, 255), seed: int | None = None,
                 data_format: str | None = None, **kwargs: Any):
        super().__init__(data_format, seed, **kwargs)
        self.factor = _factor_range(factor, (0.0, 1.0))
        if not isinstance(value_range, (tuple, list)) or len(value_range) != 2:
            raise ValueError(f"The `value_range` argument should be a list of two numbers. "
                             f"Received: value_range={value_range}")
        self.value_range = tuple(value_range)

    def _augment(self, images: Value) -> Value:
        b = images.builder
        (probability,) = self._uniform(images, self.factor[0], self.factor[1])
        (threshold,) = self._uniform(images, 0.0, 1.0)
        inverted = float(self.value_range[1]) - images
        return b.op("Where", [b.op("Less", [threshold, probability]), inverted, images], dtype=images.dtype,
                    shape=images.shape)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor), "value_range": list(self.value_range)}


def _factor_range(factor: Any, bounds: tuple[float, float]) -> tuple[float, float]:
    """Keras 3's reading of an image layer's ``factor`` within ``bounds``: a number ``f`` is
    ``(max(-|f|, low), |f|)``; a pair is sorted, refused only when it lies wholly outside ``bounds``."""
    error = ("The `factor` argument should be a number (or a list of two numbers) in the range "
             f"[{bounds[0]}, {bounds[1]}]. Received: factor={factor}")
    if isinstance(factor, (tuple, list)):
        if len(factor) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in factor):
            raise ValueError(error)
        if factor[0] > bounds[1] or factor[1] < bounds[0]:
            raise ValueError(error)
        low, high = sorted(float(v) for v in factor)
        return low, high
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not bounds[0] <= factor <= bounds[1]:
        raise ValueError(error)
    return max(-abs(float(factor)), bounds[0]), abs(float(factor))
