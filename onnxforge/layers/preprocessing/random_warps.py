"""``RandomPerspective`` and ``RandomElasticTransform`` as Keras 3.15 has them: each image is warped with a
probability of its own (``p ~ U(factor)``, applied when a threshold ``t ~ U(0, 1)`` falls below it), training
only; the warps are ``ops.image.perspective_transform`` and the elastic warp of ``ops.image.elastic_transform``.

``RandomPerspective`` moves each image's four corners by ``corner * U(-scale / 2, scale / 2)`` (per corner and
coordinate). ``RandomElasticTransform`` draws one strength ``f ~ U(scale)`` per batch, which sets
``alpha = 0.1 f max(H, W)`` and ``sigma = 0.05 f min(H, W)``; since Keras's blur kernel has ``6 int(sigma) + 1``
taps, a size only known at run time, the graph holds the largest kernel ``scale`` allows and drops the taps
beyond ``3 int(sigma)`` (zero weights, which the zero padding of the blur makes the same numbers).
"""
from __future__ import annotations

__all__ = ["RandomPerspective", "RandomElasticTransform"]

from typing import Any

import numpy as np

from ...graph import emit as _ops
from ...ops.image_warp import elastic_warp, perspective_transform
from .image_base import ImageAugmentationLayer, factor_pair

_INTERPOLATIONS = ("nearest", "bilinear")
_ELASTIC_FILL_MODES = ("constant", "nearest", "wrap", "mirror", "reflect")


def _interpolation(interpolation: Any) -> str:
    if interpolation not in _INTERPOLATIONS:
        raise NotImplementedError(f"Unknown `interpolation` {interpolation}. Expected of one {_INTERPOLATIONS}.")
    return interpolation


class _ProbableWarp(ImageAugmentationLayer):
    """Shared: the per-image decision ``U(0, 1) < U(factor)``."""

    def _apply_mask(self, images):
        probability, threshold = self._uniform(images, *self.factor), self._uniform(images, 0.0, 1.0)
        return images.builder.op("Less", [threshold[0], probability[0]])


class RandomPerspective(_ProbableWarp):
    """Warps each image (with probability ``U(factor)``) by the perspective that moves its corners by up to
    ``scale / 2`` of their coordinates; uncovered pixels get ``fill_value``. Identity at inference, as Keras 3's
    ``RandomPerspective``.

    Example:
        >>> import numpy as np
        >>> from onnxforge.layers import RandomPerspective
        >>> images = np.random.default_rng(0).random((2, 8, 8, 3)).astype(np.float32)
        >>> RandomPerspective(factor=1.0, scale=0.5)(images, training=True).shape
        TensorShape([2, 8, 8, 3])
        >>> bool((RandomPerspective()(images, training=False) == images).all())
        True
    """

    def __init__(self, factor: Any = 1.0, scale: float = 1.0, interpolation: str = "bilinear",
                 fill_value: float = 0.0, seed: int | None = None, data_format: str | None = None, **kwargs: Any):
        super().__init__(data_format, seed, **kwargs)
        self.factor = factor_pair(factor, (0, 1))
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0.0 <= scale <= 1.0:
            raise ValueError(f"The `scale` argument should be a number in the range [0,1]. Received: scale={scale}")
        self.scale = scale
        self.interpolation = _interpolation(interpolation)
        self.fill_value = fill_value

    def corners(self, images):
        """The start points ``[[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]]`` of every image, ``(B, 4, 2)``."""
        b = images.builder
        h, w = self._hw(images)
        start = np.asarray([[0.0, 0.0], [w - 1, 0.0], [0.0, h - 1], [w - 1, h - 1]], np.float32)
        batch = b.op("Slice", [b.op("Shape", [images]), _ops.ints(b, [0]), _ops.ints(b, [1])])
        shape = b.op("Concat", [batch, _ops.ints(b, [4, 2])], axis=0)
        return b.op("Expand", [b.const(start[None], images.dtype), shape], shape=(images.shape[0], 4, 2))

    def _draw(self, images):
        b = images.builder
        apply = self._apply_mask(images)
        half = 0.5 * float(self.scale)
        draws = [b.op("Reshape", [u, _ops.ints(b, [-1, 1])]) for u in self._uniform(images, -half, half, 8)]
        factors = b.op("Reshape", [b.op("Concat", draws, axis=1), _ops.ints(b, [-1, 4, 2])])
        start = self.corners(images)
        return apply, start, _ops.set_shape(start + start * factors, start.shape)

    def _transform(self, images, params):
        apply, start, end = params
        b = images.builder
        warped = perspective_transform(images, start, end, self.interpolation, self.fill_value, self.data_format)
        return b.op("Where", [apply, warped, images], dtype=images.dtype, shape=images.shape)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor), "scale": self.scale,
                "interpolation": self.interpolation, "fill_value": self.fill_value}


class RandomElasticTransform(_ProbableWarp):
    """Deforms each image (with probability ``U(factor)``) by a smooth random displacement field whose strength
    ``f ~ U(scale)`` is drawn once per batch (``alpha = 0.1 f max(H, W)``, ``sigma = 0.05 f min(H, W)``), then
    clips the batch to ``value_range``. Identity at inference, as Keras 3's ``RandomElasticTransform``.

    Example:
        >>> import numpy as np
        >>> from onnxforge.layers import RandomElasticTransform
        >>> images = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 3)).astype(np.float32)
        >>> out = RandomElasticTransform(factor=1.0, scale=1.0)(images, training=True)
        >>> out.shape, bool(out.min() >= 0 and out.max() <= 255)
        (TensorShape([2, 16, 16, 3]), True)
    """

    def __init__(self, factor: Any = 1.0, scale: Any = 1.0, interpolation: str = "bilinear",
                 fill_mode: str = "reflect", fill_value: float = 0.0, value_range: Any = (0, 255),
                 seed: int | None = None, data_format: str | None = None, **kwargs: Any):
        super().__init__(data_format, seed, **kwargs)
        self.factor = factor_pair(factor, (0, 1))
        self.scale = factor_pair(scale, (0, 1), "scale")
        self.interpolation = _interpolation(interpolation)
        if fill_mode not in _ELASTIC_FILL_MODES:
            raise NotImplementedError(f"Unknown `fill_mode` {fill_mode}. Expected of one {set(_ELASTIC_FILL_MODES)}.")
        self.fill_mode, self.fill_value = fill_mode, fill_value
        if not isinstance(value_range, (tuple, list)) or len(value_range) != 2:
            raise ValueError("The `value_range` argument should be a list of two numbers. "
                             f"Received: value_range={value_range}")
        self.value_range = list(value_range)

    def _active(self) -> bool:
        return self.scale[1] != 0 and self.factor[1] != 0   # Keras skips the layer entirely otherwise

    def _draw(self, images):
        if not self._active():
            return None
        b = images.builder
        apply = self._apply_mask(images)
        rank = len(images.shape)
        first = b.op("Slice", [images, _ops.ints(b, [0] * rank), _ops.ints(b, [1] * rank),
                               _ops.ints(b, list(range(rank)))], shape=(1,) * rank)
        from ...tracing import current_trace

        low, high = self.scale
        strength = current_trace().random_uniform(first) * float(high - low) + float(low)
        return apply, b.op("Reshape", [strength, _ops.ints(b, [])], shape=())

    def _transform(self, images, params):
        if params is None:
            return images
        apply, strength = params
        b = images.builder
        h, w = self._hw(images)
        alpha = strength * (0.1 * max(h, w))
        sigma = strength * (0.05 * min(h, w))
        support = b.op("Floor", [sigma]) * 3.0
        largest = 6 * int(float(np.float32(min(h, w) * 0.05 * self.scale[1]))) + 1
        safe_sigma = b.op("Max", [sigma, b.const(np.float32(1e-12), sigma.dtype)])
        warped = elastic_warp(images, alpha, safe_sigma, largest, _INTERPOLATIONS.index(self.interpolation),
                              self.fill_mode, self.fill_value, self.data_format, support=support)
        out = b.op("Where", [apply, warped, images], dtype=images.dtype)
        low, high = (b.const(np.float32(v), images.dtype) for v in self.value_range)
        return _ops.set_shape(b.op("Min", [b.op("Max", [out, low]), high]), images.shape)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor), "scale": list(self.scale),
                "interpolation": self.interpolation, "fill_mode": self.fill_mode, "fill_value": self.fill_value,
                "value_range": list(self.value_range)}
