"""``RandomColorJitter``: Keras 3's brightness, contrast, saturation and hue jitter, in that order, each with
its own draws (the layers of ``augmentation`` and ``color_adjust`` it is made of)."""
from __future__ import annotations

__all__ = ["RandomColorJitter"]

from typing import Any

from .augmentation import RandomBrightness, RandomContrast
from .color_adjust import RandomHue, RandomSaturation
from .image_base import ImageAugmentationLayer


class RandomColorJitter(ImageAugmentationLayer):
    """Applies, in training, ``RandomBrightness``, ``RandomContrast``, ``RandomSaturation`` and ``RandomHue``
    for the factors given (``None`` skips one), all on ``value_range``, as Keras 3's ``RandomColorJitter``.

    Example:
        >>> from onnxforge.layers import Input, RandomColorJitter
        >>> jitter = RandomColorJitter(value_range=(0, 1), brightness_factor=0.2, hue_factor=0.1)
        >>> jitter(Input(shape=(8, 8, 3))).shape
        (None, 8, 8, 3)
    """

    def __init__(self, value_range: Any = (0, 255), brightness_factor: Any = None, contrast_factor: Any = None,
                 saturation_factor: Any = None, hue_factor: Any = None, seed: int | None = None,
                 data_format: str | None = None, **kwargs: Any):
        super().__init__(data_format, seed, **kwargs)
        self.value_range = value_range
        self.brightness_factor, self.contrast_factor = brightness_factor, contrast_factor
        self.saturation_factor, self.hue_factor = saturation_factor, hue_factor
        # Keras builds the parts with the jitter's range and seed (and the default data format).
        parts = [(RandomBrightness, brightness_factor), (RandomContrast, contrast_factor),
                 (RandomSaturation, saturation_factor), (RandomHue, hue_factor)]
        self._parts = [cls(factor=factor, value_range=value_range, seed=seed)
                       for cls, factor in parts if factor is not None]

    def _transform(self, images, params):
        for part in self._parts:   # each part draws on the images it receives, as in Keras
            out = part._transform(images, part._draw(images))
            out.shape = out.shape if out.shape is not None else images.shape
            images = out
        return images

    def get_config(self):
        def plain(v):
            return list(v) if isinstance(v, tuple) else v
        return {**super().get_config(), "value_range": plain(self.value_range),
                "brightness_factor": plain(self.brightness_factor), "contrast_factor": plain(self.contrast_factor),
                "saturation_factor": plain(self.saturation_factor), "hue_factor": plain(self.hue_factor)}
