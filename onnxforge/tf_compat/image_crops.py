"""``tf.image.crop_and_resize``: boxes cut from a batch of images and resampled to one size, as object
detectors (Faster R-CNN's ROI pooling, Mask R-CNN's mask heads) and box-level augmentations use it.

Each crop is two interpolation matrices applied with ``Einsum``: row weights ``(num_boxes, crop_height,
height)`` and column weights ``(num_boxes, crop_width, width)``. For bilinear sampling a weight is
``max(0, 1 - |sample position - pixel|)``, which is exactly TensorFlow's lerp between the two neighbouring
pixels; for nearest sampling it is 1 at the rounded position. So the crop is standard ONNX that runs eagerly,
in a ``tf.function`` and in a model, with gradients for the image and the boxes. Sample positions outside the
image take ``extrapolation_value``.

Example:
    >>> import numpy as np
    >>> import onnxforge as tf
    >>> image = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    >>> crop = tf.image.crop_and_resize(image, [[0.0, 0.0, 1.0, 1.0]], [0], [2, 2])
    >>> crop[..., 0].tolist()
    [[[0.0, 3.0], [12.0, 15.0]]]
"""
from __future__ import annotations

__all__ = ["crop_and_resize"]

from typing import Any

import numpy as np

from .. import ops as _ops
from ..ops._util import symbolic
from .errors import InvalidArgumentError, OutOfRangeError


def _positions(lo: Any, hi: Any, size: Any, crop: int) -> Any:
    """Where each of ``crop`` samples between normalized ``lo`` and ``hi`` (``(N, 1)``) falls in pixels."""
    last = size - 1.0
    if crop == 1:
        return (lo + hi) * 0.5 * last
    steps = _ops.reshape(_ops.arange(crop, dtype="float32"), (1, crop))
    return lo * last + steps * ((hi - lo) * last / float(crop - 1))


def _weights(position: Any, size: Any, method: str) -> Any:
    """``(N, crop, size)`` interpolation weights of each sample ``position`` ``(N, crop)`` over the pixels."""
    pixels = _ops.reshape(_ops.arange(size, dtype="float32"), (1, 1, -1))
    offset = _ops.expand_dims(position, -1) - pixels
    if method == "nearest":   # TensorFlow rounds half away from zero; positions inside the image are >= 0
        return _ops.cast(_ops.equal(pixels, _ops.floor(_ops.expand_dims(position, -1) + 0.5)), "float32")
    return _ops.relu(1.0 - _ops.abs(offset))


def _inside(position: Any, size: Any) -> Any:
    return _ops.logical_and(position >= 0.0, position <= size - 1.0)


def _crop_size(crop_size: Any) -> tuple[int, int]:
    try:
        sizes = [int(v) for v in np.asarray(crop_size).reshape(-1).tolist()]
    except (TypeError, ValueError):
        raise TypeError(f"tf.image.crop_and_resize: crop_size must be two ints known now. Received: "
                        f"crop_size={crop_size!r}") from None
    if len(sizes) != 2:
        raise InvalidArgumentError(f"tf.image.crop_and_resize: crop_size must be a 1-D tensor of 2 elements "
                                   f"[crop_height, crop_width]. Received: crop_size={sizes}")
    if min(sizes) <= 0:
        raise InvalidArgumentError(f"tf.image.crop_and_resize: crop dimensions must be positive. Received: "
                                   f"crop_size={sizes}")
    return sizes[0], sizes[1]


def _check(image: Any, boxes: Any, box_indices: Any) -> None:
    shape, box_shape = tuple(_ops.shape(image)), tuple(_ops.shape(boxes))
    if len(shape) != 4:
        raise InvalidArgumentError(f"tf.image.crop_and_resize: input image must be 4-D [batch, height, width, "
                                   f"depth]. Received shape {list(shape)}")
    if len(box_shape) != 2 or box_shape[1] != 4:
        raise InvalidArgumentError(f"tf.image.crop_and_resize: boxes must be 2-D [num_boxes, 4]. Received "
                                   f"shape {list(box_shape)}")
    index_shape = tuple(_ops.shape(box_indices))
    if len(index_shape) != 1 or (isinstance(box_shape[0], int) and isinstance(index_shape[0], int)
                                 and index_shape[0] != box_shape[0]):
        raise InvalidArgumentError(f"tf.image.crop_and_resize: box_indices must be 1-D with one entry per box "
                                   f"({box_shape[0]}). Received shape {list(index_shape)}")
    if isinstance(box_indices, (np.ndarray, list, tuple)) and isinstance(shape[0], int):
        idx = np.asarray(box_indices)
        if idx.size and (idx.min() < 0 or idx.max() >= shape[0]):
            raise OutOfRangeError(f"tf.image.crop_and_resize: box_indices has values outside [0, "
                                       f"batch_size={shape[0]}). Received: {idx.tolist()}")


def crop_and_resize(image: Any, boxes: Any, box_indices: Any, crop_size: Any, method: str = "bilinear",
                    extrapolation_value: float = 0.0, name: str | None = None) -> Any:
    """``tf.image.crop_and_resize``: float32 crops ``[num_boxes, crop_height, crop_width, depth]``.

    Args:
        image: ``[batch, height, width, depth]``, any number dtype.
        boxes: ``[num_boxes, 4]`` normalized ``[y1, x1, y2, x2]`` (``y2 < y1`` flips the crop; values outside
            ``[0, 1]`` sample outside the image).
        box_indices: ``[num_boxes]`` int, the image each box is cut from.
        crop_size: ``[crop_height, crop_width]``.
        method: ``"bilinear"`` or ``"nearest"``.
        extrapolation_value: the value of samples outside the image.
    """
    if method not in ("bilinear", "nearest"):
        raise InvalidArgumentError(f"tf.image.crop_and_resize: method must be 'bilinear' or 'nearest'. Received: "
                         f"method={method!r}")
    boxes = np.asarray(boxes, np.float32) if isinstance(boxes, (list, tuple)) else boxes
    box_indices = np.asarray(box_indices, np.int32) if isinstance(box_indices, (list, tuple)) else box_indices
    _check(image, boxes, box_indices)
    crop_h, crop_w = _crop_size(crop_size)
    return _crop(image, boxes, box_indices, crop_h=crop_h, crop_w=crop_w, method=method,
                 extrapolation_value=float(extrapolation_value))


@symbolic   # eagerly one compiled program per signature, not one per step
def _crop(image: Any, boxes: Any, box_indices: Any, crop_h: int, crop_w: int, method: str,
          extrapolation_value: float) -> Any:
    image = _ops.cast(image, "float32")
    boxes = _ops.cast(boxes, "float32")
    dims = _ops.shape(image)
    height, width = (_ops.cast(d, "float32") if not isinstance(d, int) else float(d) for d in dims[1:3])
    rows = _positions(boxes[:, 0:1], boxes[:, 2:3], height, crop_h)             # (N, crop_h)
    cols = _positions(boxes[:, 1:2], boxes[:, 3:4], width, crop_w)              # (N, crop_w)
    picked = _ops.take(image, _ops.cast(box_indices, "int64"), axis=0)         # (N, H, W, D)
    crops = _ops.einsum("nch,nhwd->ncwd", _weights(rows, dims[1], method), picked)
    crops = _ops.einsum("ncwd,nkw->nckd", crops, _weights(cols, dims[2], method))
    inside = _ops.logical_and(_ops.expand_dims(_ops.expand_dims(_inside(rows, height), -1), -1),
                              _ops.expand_dims(_ops.expand_dims(_inside(cols, width), 1), -1))
    return _ops.where(inside, crops, _ops.cast(extrapolation_value, "float32"))
