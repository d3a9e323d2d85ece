"""``keras.utils.bounding_boxes``' geometry and overlap functions, in ``keras.ops`` (arrays now, graph values inside a
model): ``crop``, ``pad`` and ``affine_transform`` of ``xyxy`` boxes, the anchor ``encode_box_to_deltas`` /
``decode_deltas_to_boxes`` pair of detection heads, ``compute_iou`` (pairwise) and ``compute_ciou`` (element-wise
Complete IoU), each with Keras 3's arithmetic (its epsilons included) so the numbers agree.

Example:
    >>> import numpy as np
    >>> np.asarray(pad(np.array([[10., 20., 30., 40.]]), top=5, left=2)).tolist()
    [[12.0, 25.0, 32.0, 45.0]]
"""
from __future__ import annotations

__all__ = ["affine_transform", "crop", "pad", "encode_box_to_deltas", "decode_deltas_to_boxes", "compute_iou",
           "compute_ciou"]

import math
from typing import Any

from .. import ops
from ..backend_config import epsilon
from .bounding_box_formats import convert_format

_ENCODINGS = ("center_xywh", "center_yxhw")


def _corners(boxes: Any) -> list[Any]:
    return list(ops.split(boxes, 4, axis=-1))


def _xyxy_only(fmt: str, what: str) -> None:
    if fmt != "xyxy":
        raise NotImplementedError(f"{what}() supports bounding_box_format='xyxy' only, as Keras. Received: "
                                  f"bounding_box_format={fmt!r}")


def crop(boxes: Any, top: Any, left: Any, height: Any, width: Any, bounding_box_format: str = "xyxy") -> Any:
    """``xyxy`` boxes in the frame of the ``height`` x ``width`` region at (``top``, ``left``), clipped to it.

    Example:
        >>> import numpy as np
        >>> np.asarray(crop(np.array([[10., 20., 50., 60.]]), top=10, left=20, height=40, width=30)).tolist()
        [[0.0, 10.0, 30.0, 40.0]]
    """
    _xyxy_only(bounding_box_format, "crop")
    x1, y1, x2, y2 = _corners(boxes)
    xs = [ops.clip(x - left, 0, width) for x in (x1, x2)]
    ys = [ops.clip(y - top, 0, height) for y in (y1, y2)]
    return ops.concatenate([xs[0], ys[0], xs[1], ys[1]], axis=-1)


def pad(boxes: Any, top: Any, left: Any, height: Any = None, width: Any = None,
        bounding_box_format: str = "xyxy") -> Any:
    """``xyxy`` boxes moved by the ``top`` / ``left`` padding of their image (``height`` / ``width`` unused, as in
    Keras)."""
    _xyxy_only(bounding_box_format, "pad")
    x1, y1, x2, y2 = _corners(boxes)
    return ops.concatenate([x1 + left, y1 + top, x2 + left, y2 + top], axis=-1)


def _inverse_affine(center_x: Any, center_y: Any, angle: Any, translate_x: Any, translate_y: Any, scale: Any,
                    shear_x: Any, shear_y: Any, height: Any, width: Any) -> tuple[Any, ...]:
    """The six coefficients (each ``(batch,)``) of the map Keras applies to box corners: TF's inverse affine
    matrix of a rotation, shear and scale about the centre followed by a translation (angles in degrees)."""
    radians = math.pi / 180.0
    rot, sx, sy = -angle * radians, -shear_x * radians, -shear_y * radians
    cx, cy = center_x * (width - 1), center_y * (height - 1)
    px, py = cx - translate_x * (width - 1), cy - translate_y * (height - 1)   # the centre after translation
    cos_sy, tan_sx = ops.cos(sy), ops.tan(sx)
    a = ops.cos(rot - sy) / cos_sy
    c = -ops.sin(rot - sy) / cos_sy
    b = a * tan_sx + ops.sin(rot)
    d = ops.cos(rot) - c * tan_sx
    # [[a, b], [c, d]] has determinant 1, so its inverse is [[d, -b], [-c, a]].
    a0, a1, b0, b1 = d * scale, -b * scale, -c * scale, a * scale
    return a0, a1, cx - a0 * px - a1 * py, b0, b1, cy - b0 * px - b1 * py


def affine_transform(boxes: Any, angle: Any, translate_x: Any, translate_y: Any, scale: Any, shear_x: Any,
                     shear_y: Any, height: Any, width: Any, center_x: Any = None, center_y: Any = None,
                     bounding_box_format: str = "xyxy") -> Any:
    """``(batch, N, 4)`` ``xyxy`` boxes through each image's affine transform (the parameters are ``(batch,)``:
    ``angle`` and shears in degrees, translations and the centre as fractions of the image), each box the
    bounds of its four transformed corners.

    Example:
        >>> import numpy as np
        >>> zero = np.zeros(1, np.float32)
        >>> out = affine_transform(np.array([[[10., 20., 30., 40.]]]), zero, zero + 0.1, zero, zero + 1, zero,
        ...                        zero, height=101, width=101)
        >>> np.round(np.asarray(out), 3).tolist()
        [[[20.0, 20.0, 40.0, 40.0]]]
    """
    _xyxy_only(bounding_box_format, "affine_transform")
    if len(ops.shape(boxes)) != 3:
        raise ValueError("affine_transform() expects batched boxes of shape (batch, N, 4). Received: "
                         f"boxes.shape={ops.shape(boxes)}")
    angle = ops.convert_to_tensor(angle)
    dtype = ops.dtype(angle) if "float" in str(ops.dtype(angle)) else "float32"
    params = [ops.cast(p, dtype) for p in (angle, translate_x, translate_y, scale, shear_x, shear_y)]
    coefficients = _inverse_affine(0.5 if center_x is None else center_x, 0.5 if center_y is None else center_y,
                                   *params, height, width)
    a0, a1, a2, b0, b1, b2 = (ops.expand_dims(ops.cast(k, dtype), -1) for k in coefficients)   # (batch, 1)
    x1, y1, x2, y2 = (ops.squeeze(p, -1) for p in _corners(ops.cast(boxes, dtype)))
    corners = [(x1, y1), (x2, y1), (x2, y2), (x1, y2)]
    xs = ops.stack([a0 * x + a1 * y + a2 for x, y in corners], axis=-1)
    ys = ops.stack([b0 * x + b1 * y + b2 for x, y in corners], axis=-1)
    return ops.stack([ops.min(xs, axis=-1), ops.min(ys, axis=-1), ops.max(xs, axis=-1), ops.max(ys, axis=-1)],
                     axis=-1)


def _variance(variance: Any) -> Any:
    if variance is None:
        return None
    variance = ops.convert_to_tensor(variance, "float32")
    if ops.shape(variance)[-1] != 4:
        raise ValueError(f"`variance` must be length 4, got {variance}")
    return variance


def _image_size(image_shape: Any) -> tuple[Any, Any]:
    if image_shape is None:
        return None, None
    height, width, _ = image_shape
    return height, width


def encode_box_to_deltas(anchors: Any, boxes: Any, anchor_format: str, box_format: str,
                         encoding_format: str = "center_yxhw", variance: Any = None, image_shape: Any = None) -> Any:
    """The offsets of ``boxes`` from ``anchors`` in ``encoding_format``: centre shifts over the anchor's size,
    log size ratios, divided by ``variance`` when given.

    Example:
        >>> import numpy as np
        >>> np.round(np.asarray(encode_box_to_deltas(np.array([[0., 0., 10., 10.]]), np.array([[5., 5., 15., 15.]]),
        ...                                          "xyxy", "xyxy")), 4).tolist()
        [[0.5, 0.5, 0.0, 0.0]]
    """
    variance = _variance(variance)
    if encoding_format not in _ENCODINGS:
        raise ValueError(f"`encoding_format` should be one of 'center_xywh' or 'center_yxhw', got {encoding_format}")
    height, width = _image_size(image_shape)
    anchors = convert_format(anchors, anchor_format, encoding_format, height=height, width=width)
    boxes = convert_format(boxes, box_format, encoding_format, height=height, width=width)
    anchor_size = ops.maximum(anchors[..., 2:], epsilon())
    box_size = ops.maximum(boxes[..., 2:], epsilon())
    deltas = ops.concatenate([(boxes[..., :2] - anchors[..., :2]) / anchor_size, ops.log(box_size / anchor_size)],
                             axis=-1)
    return deltas if variance is None else deltas / variance


def decode_deltas_to_boxes(anchors: Any, boxes_delta: Any, anchor_format: str, box_format: str,
                           encoded_format: str = "center_yxhw", variance: Any = None, image_shape: Any = None) -> Any:
    """Boxes in ``box_format`` from ``encode_box_to_deltas``' deltas (arrays, or dicts of them per pyramid level
    with the anchors in the same dict structure)."""
    variance = _variance(variance)
    if encoded_format not in _ENCODINGS:
        raise ValueError(f"`encoded_format` should be 'center_xywh' or 'center_yxhw', but got '{encoded_format}'.")
    height, width = _image_size(image_shape)

    def level(anchor: Any, delta: Any) -> Any:
        anchor = convert_format(anchor, anchor_format, encoded_format, height=height, width=width)
        if variance is not None:
            delta = delta * variance
        size = anchor[..., 2:]
        box = ops.concatenate([delta[..., :2] * size + anchor[..., :2], ops.exp(delta[..., 2:]) * size], axis=-1)
        return convert_format(box, encoded_format, box_format, height=height, width=width)

    if isinstance(anchors, dict) and isinstance(boxes_delta, dict):
        return {key: level(anchor, boxes_delta[key]) for key, anchor in anchors.items()}
    return level(anchors, boxes_delta)


def compute_iou(boxes1: Any, boxes2: Any, bounding_box_format: str, use_masking: bool = False, mask_val: Any = -1,
                image_shape: Any = None) -> Any:
    """Pairwise IoU: ``(M, 4)`` / ``(batch, M, 4)`` against ``(N, 4)`` / ``(batch, N, 4)`` gives ``(M, N)`` or
    ``(batch, M, N)``. ``use_masking``: pairs with a box whose coordinates are all negative get ``mask_val``.

    Example:
        >>> import numpy as np
        >>> iou = compute_iou(np.array([[0., 0., 2., 2.]]), np.array([[1., 1., 3., 3.], [0., 0., 2., 2.]]), "xyxy")
        >>> [round(float(v), 4) for v in np.asarray(iou)[0]]
        [0.1429, 1.0]
    """
    ranks = len(ops.shape(boxes1)), len(ops.shape(boxes2))
    for name, rank in zip(("boxes1", "boxes2"), ranks):
        if rank not in (2, 3):
            raise ValueError(f"compute_iou() expects {name} to be batched, or to be unbatched. Received "
                             f"len(boxes1.shape)={ranks[0]}, len(boxes2.shape)={ranks[1]}. Expected either "
                             f"len({name}.shape)=2 AND or len({name}.shape)=3.")
    if "rel" in bounding_box_format and image_shape is None:
        raise ValueError("When using relative bounding box formats (e.g. `rel_yxyx`) the `image_shape` argument "
                         f"must be provided.Received `image_shape`: {image_shape}")
    height, width = _image_size(image_shape)
    boxes1 = convert_format(boxes1, bounding_box_format, "xyxy", height=height, width=width)
    boxes2 = convert_format(boxes2, bounding_box_format, "xyxy", height=height, width=width)
    x1a, y1a, x2a, y2a = _corners(boxes1)                                      # (..., M, 1)
    x1b, y1b, x2b, y2b = (ops.swapaxes(c, -1, -2) for c in _corners(boxes2))   # (..., 1, N)
    inter_h = ops.maximum(ops.minimum(y2a, y2b) - ops.maximum(y1a, y1b), 0.0)
    inter_w = ops.maximum(ops.minimum(x2a, x2b) - ops.maximum(x1a, x1b), 0.0)
    inter = inter_h * inter_w
    union = (y2a - y1a) * (x2a - x1a) + (y2b - y1b) * (x2b - x1b) - inter
    iou = inter / (union + epsilon())
    if not use_masking:
        return iou
    background = ops.logical_or(ops.max(boxes1, axis=-1, keepdims=True) < 0.0,
                                ops.swapaxes(ops.max(boxes2, axis=-1, keepdims=True), -1, -2) < 0.0)
    return ops.where(background, ops.cast(mask_val, ops.dtype(iou)) * ops.ones_like(iou), iou)


def compute_ciou(boxes1: Any, boxes2: Any, bounding_box_format: str, image_shape: Any = None) -> Any:
    """Element-wise Complete IoU of two ``(..., 4)`` sets of boxes: IoU less the normalised centre distance and
    an aspect-ratio term (CIoU loss is ``1 - compute_ciou``).

    Example:
        >>> import numpy as np
        >>> float(np.round(np.asarray(compute_ciou(np.array([[0., 0., 2., 2.]]), np.array([[0., 0., 2., 2.]]),
        ...                                        "xyxy"))[0], 4))
        1.0
    """
    if "rel" in bounding_box_format:   # Keras refuses them whatever image_shape is
        raise ValueError("When using relative bounding box formats (e.g. `rel_yxyx`) the `image_shape` argument "
                         f"must be provided.Received `image_shape`: {image_shape}")
    height, width = _image_size(image_shape)
    x1a, y1a, x2a, y2a = _corners(convert_format(boxes1, bounding_box_format, "xyxy", height=height, width=width))
    x1b, y1b, x2b, y2b = _corners(convert_format(boxes2, bounding_box_format, "xyxy", height=height, width=width))
    eps = epsilon()
    w1, h1 = x2a - x1a, y2a - y1a + eps
    w2, h2 = x2b - x1b, y2b - y1b + eps
    inter = ops.maximum(ops.minimum(x2a, x2b) - ops.maximum(x1a, x1b), 0) * \
        ops.maximum(ops.minimum(y2a, y2b) - ops.maximum(y1a, y1b), 0)
    union = w1 * h1 + w2 * h2 - inter + eps
    iou = ops.squeeze(inter / (union + eps), axis=-1)
    hull_w = ops.maximum(x2a, x2b) - ops.minimum(x1a, x1b)
    hull_h = ops.maximum(y2a, y2b) - ops.minimum(y1a, y1b)
    diagonal = ops.squeeze(hull_w ** 2 + hull_h ** 2 + eps, axis=-1)
    centres = ops.squeeze(((x1a + x2a) / 2 - (x1b + x2b) / 2) ** 2 + ((y1a + y2a) / 2 - (y1b + y2b) / 2) ** 2, axis=-1)
    v = ops.squeeze((4 / math.pi ** 2) * (ops.arctan(w2 / h2) - ops.arctan(w1 / h1)) ** 2, axis=-1)
    alpha = v / (v - iou + (1 + eps))
    return iou - (centres / diagonal + v * alpha)
