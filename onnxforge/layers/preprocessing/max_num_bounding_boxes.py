"""``MaxNumBoundingBoxes``: Keras 3's layer that gives every image the same number of bounding boxes, so that a
detection batch has dense ``(batch, max_number, 4)`` boxes and ``(batch, max_number)`` labels.

Extra boxes are dropped, missing ones are ``fill_value`` (boxes and labels alike), in ``Slice`` and ``Pad`` ops
whose pad width is computed in the graph (the number of boxes may be unknown until run time). Images and any
other entry pass through unchanged, at training and inference alike, as in Keras.
"""
from __future__ import annotations

__all__ = ["MaxNumBoundingBoxes"]

from typing import Any

import numpy as np

from ...graph import Value
from ...graph.value import np_dtype
from ...graph import emit as _ops
from ..base import Layer


def _fit(x: Value, axis: int, count: int, fill: Any) -> Value:
    """``x`` cut or padded (with ``fill``) to ``count`` entries along ``axis``."""
    b = x.builder
    rank = len(x.shape)
    x = b.op("Slice", [x, _ops.ints(b, [0]), _ops.ints(b, [count]), _ops.ints(b, [axis])])
    have = b.op("Gather", [b.op("Shape", [x]), _ops.ints(b, [axis])], axis=0)
    zeros = [0] * rank
    ends = b.op("Concat", [_ops.ints(b, zeros[:axis]), _ops.ints(b, [count]) - have, _ops.ints(b, zeros[axis + 1:])],
                axis=0) if rank > 1 else _ops.ints(b, [count]) - have
    pads = b.op("Concat", [_ops.ints(b, zeros), ends], axis=0)
    shape = None if x.shape is None else tuple(count if k == axis else d for k, d in enumerate(x.shape))
    return b.op("Pad", [x, pads, b.const(np.asarray(fill, dtype=np_dtype(x.dtype)))], mode="constant", shape=shape)


class MaxNumBoundingBoxes(Layer):
    """Cuts or pads each image's bounding boxes to ``max_number`` (Keras 3's ``MaxNumBoundingBoxes``).

    Args:
        max_number: boxes per image in the output.
        fill_value: the boxes' coordinates and labels written where an image has fewer boxes (default -1).
        bounding_box_format: the boxes' format; Keras requires one when the input holds ``"bounding_boxes"``.

    Input: ``{"images": ..., "bounding_boxes": {"boxes": (batch, N, 4), "labels": (batch, N)}}`` (or one image,
    ``(N, 4)`` / ``(N,)``), or images alone, which pass through.

    Example:
        >>> import numpy as np
        >>> layer = MaxNumBoundingBoxes(max_number=3, bounding_box_format="xyxy")
        >>> out = layer({"images": np.zeros((1, 8, 8, 3), np.float32),
        ...              "bounding_boxes": {"boxes": np.ones((1, 2, 4), np.float32), "labels": np.array([[4, 5]])}})
        >>> np.asarray(out["bounding_boxes"]["labels"]).tolist()
        [[4, 5, -1]]
    """

    _autocast = False

    def __init__(self, max_number: int, fill_value: int = -1, bounding_box_format: str | None = None,
                 data_format: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        if isinstance(max_number, bool) or not isinstance(max_number, (int, np.integer)) or max_number < 1:
            raise ValueError(f"MaxNumBoundingBoxes {self.name!r}: `max_number` must be a positive integer. Received: "
                             f"max_number={max_number!r}")
        self.max_number, self.fill_value = int(max_number), int(fill_value)
        self.bounding_box_format, self.data_format = bounding_box_format, data_format or "channels_last"

    def call(self, inputs, training=True):
        if not isinstance(inputs, dict) or "bounding_boxes" not in inputs:
            return inputs
        if not self.bounding_box_format:
            raise ValueError("You passed an input with a 'bounding_boxes' key, but you didn't specify a bounding box "
                             "format. Pass a `bounding_box_format` argument to your MaxNumBoundingBoxes layer, e.g. "
                             "`bounding_box_format='xyxy'`.")
        boxes = dict(inputs["bounding_boxes"])
        extra = set(boxes) - {"boxes", "labels"}
        if extra or "boxes" not in boxes or "labels" not in boxes:
            raise KeyError(f"MaxNumBoundingBoxes {self.name!r}: `bounding_boxes` must hold 'boxes' and 'labels' only. "
                           f"Received keys: {sorted(boxes)}")
        box, label = boxes["boxes"], boxes["labels"]
        if len(box.shape) not in (2, 3) or len(label.shape) != len(box.shape) - 1:
            raise ValueError(f"MaxNumBoundingBoxes {self.name!r}: expected boxes (batch, N, 4) with labels (batch, N), "
                             f"or (N, 4) with (N,). Received: boxes.shape={_ops.static_shape(box)}, "
                             f"labels.shape={_ops.static_shape(label)}")
        boxes["boxes"] = _fit(box, len(box.shape) - 2, self.max_number, self.fill_value)
        boxes["labels"] = _fit(label, len(label.shape) - 1, self.max_number, self.fill_value)
        out = dict(inputs)
        out["bounding_boxes"] = boxes
        return out

    def get_config(self):
        # Keras 3.15's config holds max_number and data_format only; the other two are written when they differ
        # from their defaults, so a default layer's config is Keras's and a chosen fill value still round-trips.
        config = {**super().get_config(), "data_format": self.data_format, "max_number": self.max_number}
        if self.fill_value != -1:
            config["fill_value"] = self.fill_value
        if self.bounding_box_format is not None:
            config["bounding_box_format"] = self.bounding_box_format
        return config
