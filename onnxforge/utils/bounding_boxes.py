"""``keras.utils.bounding_boxes``: format conversion and clipping (``bounding_box_formats``), crop / pad / affine
transforms, anchor deltas and IoUs (``bounding_box_ops``), all in ``keras.ops``.

Example:
    >>> import numpy as np
    >>> np.asarray(convert_format(np.array([[10, 20, 30, 40]]), source="xyxy", target="xywh")).tolist()
    [[10.0, 20.0, 20.0, 20.0]]
"""
from __future__ import annotations

__all__ = ["convert_format", "clip_to_image_size", "affine_transform", "crop", "pad", "encode_box_to_deltas",
           "decode_deltas_to_boxes", "compute_iou", "compute_ciou", "SUPPORTED_FORMATS"]

from .bounding_box_formats import SUPPORTED_FORMATS, clip_to_image_size, convert_format
from .bounding_box_ops import (affine_transform, compute_ciou, compute_iou, crop, decode_deltas_to_boxes,
                               encode_box_to_deltas, pad)
