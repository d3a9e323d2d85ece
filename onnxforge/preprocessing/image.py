"""``keras.preprocessing.image``: image files and arrays (``load_img``, ``img_to_array``, ...) and
``smart_resize``."""
from __future__ import annotations

from ..utils.image import array_to_img, img_to_array, load_img, save_img, smart_resize

__all__ = ["array_to_img", "img_to_array", "load_img", "save_img", "smart_resize"]
