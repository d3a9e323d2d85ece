"""``keras.preprocessing.image``: image files and arrays (``load_img``, ``img_to_array``, ...),
``smart_resize``, and tf.keras's ``ImageDataGenerator``."""
from __future__ import annotations

from .image_generator import ImageDataGenerator, NumpyArrayIterator, apply_affine_transform, apply_channel_shift
from ..utils.image import array_to_img, img_to_array, load_img, save_img, smart_resize

__all__ = ["ImageDataGenerator", "NumpyArrayIterator", "apply_affine_transform", "apply_channel_shift", "array_to_img",
           "img_to_array", "load_img", "save_img", "smart_resize"]
