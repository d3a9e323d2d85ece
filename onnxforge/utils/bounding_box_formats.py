"""``keras.utils.bounding_boxes``' box-format conversion and clipping, in ``keras.ops`` so they run on arrays now and
on symbolic tensors inside a model or layer.

Formats (case-insensitive): ``xyxy`` [left, top, right, bottom], ``yxyx``, ``xywh`` [left, top, width, height],
``center_xywh``, ``center_yxhw``, and the relative ``rel_xyxy``, ``rel_yxyx``, ``rel_xywh``, ``rel_center_xywh``
(coordinates divided by the image ``width`` / ``height``).

Example:
    >>> import numpy as np
    >>> np.asarray(convert_format(np.array([[10, 20, 30, 40]]), source="xyxy", target="xywh")).tolist()
    [[10.0, 20.0, 20.0, 20.0]]
"""
from __future__ import annotations

__all__ = ["convert_format", "clip_to_image_size", "SUPPORTED_FORMATS"]

from typing import Any

from .. import ops

SUPPORTED_FORMATS = ("xyxy", "yxyx", "xywh", "center_xywh", "center_yxhw", "rel_xyxy", "rel_yxyx", "rel_xywh",
                     "rel_center_xywh")


def _parts(boxes: Any) -> list[Any]:
    return list(ops.split(boxes, 4, axis=-1))


def _join(parts: list[Any]) -> Any:
    return ops.concatenate(parts, axis=-1)


def _to_xyxy(boxes: Any, source: str, height: Any, width: Any) -> Any:
    a, b, c, d = _parts(boxes)
    if source == "xyxy":
        return boxes
    if source == "yxyx":
        return _join([b, a, d, c])
    if source == "xywh":
        return _join([a, b, a + c, b + d])
    if source == "center_xywh":
        return _join([a - c / 2.0, b - d / 2.0, a + c / 2.0, b + d / 2.0])
    if source == "center_yxhw":
        return _join([b - d / 2.0, a - c / 2.0, b + d / 2.0, a + c / 2.0])
    if source == "rel_xyxy":
        return _join([a * width, b * height, c * width, d * height])
    if source == "rel_yxyx":
        return _join([b * width, a * height, d * width, c * height])
    if source == "rel_xywh":
        return _join([a * width, b * height, (a + c) * width, (b + d) * height])
    # rel_center_xywh
    return _join([(a - c / 2.0) * width, (b - d / 2.0) * height, (a + c / 2.0) * width, (b + d / 2.0) * height])


def _from_xyxy(boxes: Any, target: str, height: Any, width: Any) -> Any:
    x1, y1, x2, y2 = _parts(boxes)
    w, h = x2 - x1, y2 - y1
    cx, cy = x1 + w / 2.0, y1 + h / 2.0
    table = {
        "xyxy": lambda: boxes,
        "yxyx": lambda: _join([y1, x1, y2, x2]),
        "xywh": lambda: _join([x1, y1, w, h]),
        "center_xywh": lambda: _join([cx, cy, w, h]),
        "center_yxhw": lambda: _join([cy, cx, h, w]),
        "rel_xyxy": lambda: _join([x1 / width, y1 / height, x2 / width, y2 / height]),
        "rel_yxyx": lambda: _join([y1 / height, x1 / width, y2 / height, x2 / width]),
        "rel_xywh": lambda: _join([x1 / width, y1 / height, w / width, h / height]),
        "rel_center_xywh": lambda: _join([cx / width, cy / height, w / width, h / height]),
    }
    return table[target]()


def convert_format(boxes: Any, source: str, target: str, height: Any = None, width: Any = None,
                   dtype: Any = "float32") -> Any:
    """``boxes`` (``(..., 4)``, or a dict whose ``"boxes"`` are converted in place, as Keras does) from
    ``source`` to ``target`` format, cast to ``dtype``. Relative formats need the image ``height`` and ``width`` (even
    between two relative formats, as in Keras).

    Example:
        >>> import numpy as np
        >>> out = convert_format(np.array([[10., 20., 30., 40.]]), "xyxy", "rel_center_xywh", height=200, width=100)
        >>> np.round(np.asarray(out, np.float64), 3).tolist()
        [[0.2, 0.15, 0.2, 0.1]]
    """
    if isinstance(boxes, dict):
        boxes["boxes"] = convert_format(boxes["boxes"], source, target, height=height, width=width, dtype=dtype)
        return boxes
    shape = ops.shape(boxes)
    if shape[-1] != 4:
        raise ValueError(f"`boxes` must be a tensor with the last dimension of 4. Received: boxes.shape={shape}")
    if not isinstance(source, str) or not isinstance(target, str) or source.lower() not in SUPPORTED_FORMATS \
            or target.lower() not in SUPPORTED_FORMATS:
        raise ValueError(f"Invalid source or target format. Supported formats: {SUPPORTED_FORMATS}. Received: "
                         f"source={source!r}, target={target!r}")
    source, target = source.lower(), target.lower()
    if (source.startswith("rel_") or target.startswith("rel_")) and (width is None or height is None):
        raise ValueError("convert_format() must receive `height` and `width` when transforming between relative and "
                         f"absolute formats. Received: source={source!r}, target={target!r}, height={height}, "
                         f"width={width}")
    boxes = ops.cast(boxes, dtype)
    if source == target:
        return boxes
    width = None if width is None else ops.cast(width, dtype)
    height = None if height is None else ops.cast(height, dtype)
    if source.startswith("rel_") and target.startswith("rel_"):   # the image size cancels out
        source, target = source[len("rel_"):], target[len("rel_"):]
    return _from_xyxy(_to_xyxy(boxes, source, height, width), target, height, width)


def clip_to_image_size(bounding_boxes: dict[str, Any], height: Any = None, width: Any = None,
                       bounding_box_format: str = "xyxy") -> dict[str, Any]:
    """A copy of ``bounding_boxes`` (``{"boxes": (..., N, 4), "labels": (..., N)}``) with the boxes clipped to the
    image (``[0, width] x [0, height]``, or ``[0, 1]`` for ``rel_xyxy``) and the label of every box left with no
    area set to -1.

    Example:
        >>> import numpy as np
        >>> out = clip_to_image_size({"boxes": np.array([[-10., -20., 150., 160.], [130., 40., 170., 80.]]),
        ...                           "labels": np.array([0, 1])}, height=100, width=120)
        >>> np.asarray(out["boxes"]).tolist(), np.asarray(out["labels"]).tolist()
        ([[0.0, 0.0, 120.0, 100.0], [120.0, 40.0, 120.0, 80.0]], [0, -1])
    """
    if not isinstance(bounding_boxes, dict) or "boxes" not in bounding_boxes:
        raise ValueError("`bounding_boxes` must be a dict with a 'boxes' entry (and optionally 'labels'). Received: "
                         f"bounding_boxes={type(bounding_boxes).__name__}")
    if bounding_box_format not in ("xyxy", "rel_xyxy"):
        raise NotImplementedError("clip_to_image_size supports bounding_box_format 'xyxy' and 'rel_xyxy' (as Keras). "
                                  f"Received: bounding_box_format={bounding_box_format!r}")
    if bounding_box_format == "xyxy" and (height is None or width is None):
        raise ValueError("`height` and `width` must be set if `format='xyxy'`. Received: "
                         f"height={height}, width={width}")
    boxes = bounding_boxes["boxes"]
    labels = bounding_boxes.get("labels")
    if bounding_box_format == "xyxy":
        dtype = ops.dtype(boxes)
        hi_x, hi_y = ops.cast(width, dtype), ops.cast(height, dtype)
    else:
        hi_x = hi_y = 1.0
    x1, y1, x2, y2 = _parts(boxes)
    x1, x2 = ops.clip(x1, 0, hi_x), ops.clip(x2, 0, hi_x)
    y1, y2 = ops.clip(y1, 0, hi_y), ops.clip(y2, 0, hi_y)
    result = dict(bounding_boxes)
    result["boxes"] = _join([x1, y1, x2, y2])
    if labels is not None:
        area = ops.squeeze((x2 - x1) * (y2 - y1), axis=-1)
        result["labels"] = ops.where(area > 0, labels, -1)
    return result
