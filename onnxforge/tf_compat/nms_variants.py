"""``tf.image.non_max_suppression_padded`` and ``non_max_suppression_with_scores``: the forms of
``tf.image.non_max_suppression`` (``image_boxes``) that detection heads call for fixed-size outputs and
for the kept boxes' scores.

``non_max_suppression_padded`` pads the kept indices with zeros to ``max_output_size`` (required for batched
boxes, as TensorFlow requires it) and returns how many are valid, so a traced model gets a result of a
size known when it is built; a batch of ``[..., num_boxes, 4]`` boxes is one ONNX ``NonMaxSuppression`` per
item. ``non_max_suppression_with_scores`` returns the indices and their scores; its Soft-NMS mode
(``soft_nms_sigma > 0``, which rescales scores instead of dropping boxes) is not implemented and says so.

One known difference: given a box whose corners come flipped (``y1 > y2``), TensorFlow's padded variant
(its tiled algorithm) may keep it next to a kept box it overlaps, where ``tf.image.non_max_suppression``
drops it; onnxforge's padded variant gives ``non_max_suppression``'s answer for such boxes too.

Example:
    >>> import numpy as np
    >>> import onnxforge as tf
    >>> boxes = np.array([[0, 0, 1, 1], [0, 0.1, 1, 1.1], [0, 2, 1, 3]], np.float32)
    >>> picked, valid = tf.image.non_max_suppression_padded(boxes, np.array([0.9, 0.8, 0.7], np.float32), 3,
    ...                                                     pad_to_max_output_size=True)
    >>> picked.tolist(), int(valid)
    ([0, 2, 0], 2)
"""
from __future__ import annotations

__all__ = ["non_max_suppression_padded", "non_max_suppression_with_scores"]

from typing import Any

import numpy as np

from .. import ops as _ops
from .image_boxes import non_max_suppression


def _padded(indices: Any, size: int) -> Any:
    # Appending ``size`` zeros and keeping the first ``size`` entries gives a static length even when the
    # number kept is only known at run time.
    return _ops.concatenate([indices, _ops.zeros((size,), "int32")], axis=0)[:size]


def non_max_suppression_padded(boxes: Any, scores: Any, max_output_size: int, iou_threshold: float = 0.5,
                               score_threshold: float = float("-inf"), pad_to_max_output_size: bool = False,
                               name: str | None = None, sorted_input: bool = False,
                               canonicalized_coordinates: bool = False, tile_size: int = 512) -> tuple[Any, Any]:
    """``tf.image.non_max_suppression_padded``: ``(selected_indices, num_valid)``, int32; with
    ``pad_to_max_output_size`` the indices are zero-padded to ``max_output_size``. ``boxes`` ``[..., N, 4]``
    with ``scores`` ``[..., N]`` give ``[..., max_output_size]`` and ``[...]``. ``sorted_input``,
    ``canonicalized_coordinates`` and ``tile_size`` are accepted (speed hints in TensorFlow)."""
    shape = tuple(_ops.shape(boxes))
    size = int(max_output_size)
    if len(shape) > 2 and not pad_to_max_output_size:
        raise ValueError(f"'pad_to_max_output_size' (value {pad_to_max_output_size}) must be True for batched "
                         "input")
    if len(shape) == 2:
        picked = non_max_suppression(boxes, scores, size, iou_threshold, score_threshold)
        valid = _ops.cast(_ops.shape(picked)[0], "int32")
        return (_padded(picked, size) if pad_to_max_output_size else picked), valid
    lead = shape[:-2]
    if not all(isinstance(d, int) for d in lead):
        raise ValueError(f"tf.image.non_max_suppression_padded: the batch dimensions of boxes must be known while "
                         f"tracing (one NonMaxSuppression per item). Received shape {list(shape)}")
    count = int(np.prod(lead))
    flat_boxes = _ops.reshape(boxes, (count, shape[-2], 4))
    flat_scores = _ops.reshape(scores, (count, shape[-2]))
    rows, counts = [], []
    for i in range(count):
        picked, valid = non_max_suppression_padded(flat_boxes[i], flat_scores[i], size, iou_threshold,
                                                   score_threshold, True)
        rows.append(picked)
        counts.append(valid)
    return _ops.reshape(_ops.stack(rows), (*lead, size)), _ops.reshape(_ops.stack(counts), lead)


def non_max_suppression_with_scores(boxes: Any, scores: Any, max_output_size: int, iou_threshold: float = 0.5,
                                    score_threshold: float = float("-inf"), soft_nms_sigma: float = 0.0,
                                    name: str | None = None) -> tuple[Any, Any]:
    """``tf.image.non_max_suppression_with_scores``: ``(selected_indices, selected_scores)`` of hard NMS
    (``soft_nms_sigma=0``)."""
    if float(soft_nms_sigma) != 0.0:
        raise NotImplementedError(f"tf.image.non_max_suppression_with_scores: Soft-NMS (soft_nms_sigma > 0) is not "
                                  f"implemented; only hard NMS (soft_nms_sigma=0). Received: "
                                  f"soft_nms_sigma={soft_nms_sigma}")
    picked = non_max_suppression(boxes, scores, max_output_size, iou_threshold, score_threshold)
    values = np.asarray(scores, np.float32) if isinstance(scores, (list, tuple)) else scores
    return picked, _ops.take(values, picked, axis=0)
