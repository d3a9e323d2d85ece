"""``tf.image``'s box sampling and suppression: ``combined_non_max_suppression`` (keras.io's RetinaNet decodes its
detections with it) and ``sample_distorted_bounding_box`` (the Inception-style random crop of FixRes and the
ImageNet input pipelines).

Both are graph functions, so they run on arrays, in a traced step, inside a Lambda or a layer's ``call()`` and in
a ``Dataset.map`` function.

``combined_non_max_suppression`` runs ONNX ``NonMaxSuppression`` per class (classes folded into the batch when
each class has its own boxes), then keeps the ``max_total_size`` best of the survivors by one ``TopK`` and pads
with zeros, as TensorFlow does: a box survives with a score above ``score_threshold`` and an IoU with every
better box of its class at most ``iou_threshold``.

``sample_distorted_bounding_box`` draws TensorFlow's ``max_attempts`` crops at once (aspect ratio, height, then
offsets, by its kernel's integer rules) and keeps the first that covers ``min_object_covered`` of some box, else
the whole image. Its draws come from onnxforge's generator: the distribution is TensorFlow's, the numbers are not.

Example:
    >>> import numpy as np
    >>> boxes = np.array([[[[0.0, 0.0, 0.5, 0.5]], [[0.0, 0.05, 0.5, 0.55]], [[0.5, 0.5, 1.0, 1.0]]]], "float32")
    >>> scores = np.array([[[0.9], [0.8], [0.7]]], "float32")
    >>> out = combined_non_max_suppression(boxes, scores, 5, 4, iou_threshold=0.5)
    >>> out.nmsed_scores.numpy().astype("float64").round(2).tolist(), out.valid_detections.numpy().tolist()
    ([[0.9, 0.7, 0.0, 0.0]], [2])
    >>> begin, size, box = sample_distorted_bounding_box([40, 60, 3], np.array([[[0.1, 0.1, 0.9, 0.9]]], "float32"),
    ...                                                  seed=1)
    >>> begin.numpy().tolist()[2], size.numpy().tolist()[2], box.shape
    (0, -1, TensorShape([1, 1, 4]))
"""
from __future__ import annotations

__all__ = ["combined_non_max_suppression", "sample_distorted_bounding_box", "non_max_suppression"]

import collections
from typing import Any

import numpy as np
import onnx

from ..graph import Value
from ..ops._util import as_value, builder_of, cast_value, symbolic
from ..ops.random import uniform_source
from .errors import InvalidArgumentError

_F32, _I64 = onnx.TensorProto.FLOAT, onnx.TensorProto.INT64

CombinedNonMaxSuppression = collections.namedtuple(
    "CombinedNonMaxSuppression", ["nmsed_boxes", "nmsed_scores", "nmsed_classes", "valid_detections"])


def _static_shape(x: Any) -> tuple:
    shape = x.shape if isinstance(x, Value) or hasattr(x, "shape") else np.shape(x)
    return tuple(shape) if shape is not None else ()


def _invalid(message: str) -> InvalidArgumentError:
    """TensorFlow's error for a bad attribute or box of the sampling op (a ``ValueError`` too)."""
    return InvalidArgumentError(None, None, message)


def _int(value: Any, name: str, fn: str) -> int:
    try:
        return int(np.asarray(value).item())
    except (TypeError, ValueError):
        raise TypeError(f"tf.image.{fn}: {name} must be a Python int or a scalar tensor known now (onnxforge fixes "
                        f"the output size when tracing). Received: {name}={value!r}") from None


def combined_non_max_suppression(boxes: Any, scores: Any, max_output_size_per_class: Any, max_total_size: Any,
                                 iou_threshold: float = 0.5, score_threshold: float = float("-inf"),
                                 pad_per_class: bool = False, clip_boxes: bool = True,
                                 name: str | None = None) -> CombinedNonMaxSuppression:
    """``tf.image.combined_non_max_suppression``: per-class greedy NMS over a batch, then the best
    ``max_total_size`` across classes, zero-padded.

    Args:
        boxes: ``[batch, num_boxes, q, 4]`` corners ``[y1, x1, y2, x2]`` (any diagonal pair); ``q`` is 1 (one box
            for every class) or ``num_classes``.
        scores: ``[batch, num_boxes, num_classes]``.
        max_output_size_per_class, max_total_size: ints (the outputs' sizes).
        pad_per_class: pad to ``min(max_output_size_per_class * num_classes, max_total_size)`` instead.
        clip_boxes: clip the returned coordinates to ``[0, 1]``.

    Returns:
        ``(nmsed_boxes [batch, size, 4], nmsed_scores [batch, size], nmsed_classes [batch, size] float32,
        valid_detections [batch] int32)``, a namedtuple with those field names.
    """
    fn = "combined_non_max_suppression"
    per_class, total = _int(max_output_size_per_class, "max_output_size_per_class", fn), \
        _int(max_total_size, "max_total_size", fn)
    box_shape, score_shape = _static_shape(boxes), _static_shape(scores)
    if len(box_shape) != 4 or box_shape[-1] != 4:
        raise ValueError(f"tf.image.{fn}: boxes must be 4-D [batch_size, num_boxes, q, 4]. Received shape "
                         f"{box_shape}")
    if len(score_shape) != 3:
        raise ValueError(f"tf.image.{fn}: scores must be 3-D [batch_size, num_boxes, num_classes]. Received shape "
                         f"{score_shape}")
    q, classes = box_shape[2], score_shape[2]
    if not isinstance(classes, int) or not isinstance(q, int) or q not in (1, classes):
        raise ValueError(f"tf.image.{fn}: the third dimension of boxes (q={q}) must be 1 or the number of classes "
                         f"(the last dimension of scores, {classes}), and both must be known")
    if per_class <= 0 or total <= 0:
        raise ValueError(f"tf.image.{fn}: max_output_size_per_class and max_total_size must be > 0. Received: "
                         f"{per_class}, {total}")
    if not 0.0 <= float(iou_threshold) <= 1.0:
        raise ValueError(f"tf.image.{fn}: iou_threshold must be in [0, 1]. Received: {iou_threshold}")
    size = min(total, per_class * classes) if pad_per_class else total
    out = _combined_nms(boxes, scores, per_class, size, float(iou_threshold), float(score_threshold), q,
                        bool(clip_boxes))
    return CombinedNonMaxSuppression(*out)


def non_max_suppression(boxes: Any, scores: Any, max_output_size: Any, iou_threshold: float = 0.5,
                        score_threshold: float = float("-inf"), name: str | None = None) -> Any:
    """``tf.image.non_max_suppression``: the int32 indices of at most ``max_output_size`` boxes, by descending
    score, each overlapping every box kept before it by an IoU of at most ``iou_threshold``; boxes scoring
    ``score_threshold`` or less are dropped. ONNX ``NonMaxSuppression`` on ``[y1, x1, y2, x2]`` boxes (either
    corner order), so the result's length is known only when it runs.

    Example:
        >>> boxes = np.array([[0, 0, 1, 1], [0, 0.1, 1, 1.1], [0, 2, 1, 3]], np.float32)
        >>> non_max_suppression(boxes, np.array([0.9, 0.8, 0.7], np.float32), 3).tolist()
        [0, 2]
    """
    size = _int(max_output_size, "max_output_size", "non_max_suppression")
    box_shape, score_shape = _static_shape(boxes), _static_shape(scores)
    if len(box_shape) != 2 or box_shape[-1] != 4 or len(score_shape) != 1:
        raise _invalid(f"tf.image.non_max_suppression: boxes must be [num_boxes, 4] and scores [num_boxes]. "
                       f"Received: boxes.shape={list(box_shape)}, scores.shape={list(score_shape)}")
    if not 0.0 <= float(iou_threshold) <= 1.0:
        raise _invalid(f"tf.image.non_max_suppression: iou_threshold must be in [0, 1]. "
                       f"Received: iou_threshold={iou_threshold}")
    if size < 0:
        raise _invalid(f"tf.image.non_max_suppression: max_output_size must be non-negative. Received: {size}")
    return _nms(boxes, scores, size=size, iou=float(iou_threshold), threshold=float(score_threshold))


@symbolic
def _nms(boxes: Any, scores: Any, size: int, iou: float, threshold: float) -> Value:
    b = builder_of(boxes, scores)
    bx, sc = as_value(boxes, b, dtype="float32"), as_value(scores, b, dtype="float32")
    const = lambda a, t=np.int64: b.const(np.asarray(a, t))   # noqa: E731
    # One batch item and one class: ONNX's [batch, class, box] triples, of which the box column is the answer.
    selected = b.op("NonMaxSuppression", [b.op("Unsqueeze", [bx, const([0])]),
                                          b.op("Unsqueeze", [sc, const([0, 1])]), const([size]),
                                          const([iou], np.float32), const([threshold], np.float32)])
    column = b.op("Slice", [selected, const([2]), const([3]), const([1])])
    return cast_value(b.op("Reshape", [column, const([-1])]), onnx.TensorProto.INT32)


def _shape_part(b: Any, x: Value, start: int, end: int) -> Value:
    return b.op("Slice", [b.op("Shape", [x]), b.const(np.asarray([start], np.int64)),
                          b.const(np.asarray([end], np.int64))])


@symbolic
def _combined_nms(boxes: Any, scores: Any, per_class: int, size: int, iou: float, threshold: float, q: int,
                  clip: bool) -> tuple:
    b = builder_of(boxes, scores)
    bx, sc = as_value(boxes, b, dtype="float32"), as_value(scores, b, dtype="float32")
    const = lambda a, t=np.int64: b.const(np.asarray(a, t))   # noqa: E731
    n = _shape_part(b, sc, 1, 2)                                   # [num_boxes]
    by_class = b.op("Transpose", [sc], perm=[0, 2, 1])            # [batch, classes, n]
    if q == 1:   # every class ranks the same boxes: ONNX's own layout
        nms_boxes = b.op("Squeeze", [bx, const([2])])
        nms_scores = by_class
        flat_boxes = b.op("Reshape", [nms_boxes, const([-1, 4])])
        stride = n                                                 # boxes per batch item in flat_boxes
    else:        # a box per class: each (item, class) is its own NMS batch
        per = b.op("Transpose", [bx], perm=[0, 2, 1, 3])          # [batch, classes, n, 4]
        nms_boxes = b.op("Reshape", [per, b.op("Concat", [const([-1]), n, const([4])], axis=0)])
        nms_scores = b.op("Reshape", [by_class, b.op("Concat", [const([-1, 1]), n], axis=0)])
        flat_boxes = b.op("Reshape", [per, const([-1, 4])])
        stride = b.op("Mul", [n, const([q])])
    selected = b.op("NonMaxSuppression", [nms_boxes, nms_scores, const([per_class]), const([iou], np.float32),
                                          const([threshold], np.float32)])
    # The survivors' scores on a -inf canvas: one TopK across classes ranks them and leaves the rest last.
    canvas = b.op("Expand", [const(-np.inf, np.float32), b.op("Shape", [nms_scores])])
    kept = b.op("ScatterND", [canvas, selected, b.op("GatherND", [nms_scores, selected])])
    flat = b.op("Reshape", [kept, b.op("Concat", [_shape_part(b, sc, 0, 1), const([-1])], axis=0)])   # [batch, c * n]
    k = b.op("Min", [const([size]), _shape_part(b, flat, 1, 2)])
    values, index = b.op("TopK", [flat, k], axis=-1, largest=1, sorted=1, outputs=2)
    pads = b.op("Concat", [const([0, 0, 0]), b.op("Sub", [const([size]), k])], axis=0)
    values = b.op("Pad", [values, pads, const(-np.inf, np.float32)], mode="constant")
    index = b.op("Pad", [index, pads, const(0)], mode="constant")
    valid = b.op("Greater", [values, const(-np.inf, np.float32)])
    batch = b.op("Unsqueeze", [b.op("Range", [const(0), b.op("Squeeze", [_shape_part(b, sc, 0, 1), const([0])]),
                                              const(1)]), const([1])])
    within = b.op("Mod", [index, n]) if q == 1 else index
    picked = b.op("Gather", [flat_boxes, b.op("Add", [b.op("Mul", [batch, stride]), within])], axis=0)
    if clip:
        picked = b.op("Clip", [picked, const(0.0, np.float32), const(1.0, np.float32)])
    zero = const(0.0, np.float32)
    out_boxes = b.op("Where", [b.op("Unsqueeze", [valid, const([-1])]), picked, zero])
    out_scores = b.op("Where", [valid, values, zero])
    out_classes = b.op("Where", [valid, cast_value(b.op("Div", [index, n]), _F32), zero])
    count = b.op("ReduceSum", [cast_value(valid, onnx.TensorProto.INT32), const([1])], keepdims=0)
    return out_boxes, out_scores, out_classes, count


def sample_distorted_bounding_box(image_size: Any, bounding_boxes: Any, seed: Any = None,
                                  min_object_covered: float = 0.1, aspect_ratio_range: Any = None,
                                  area_range: Any = None, max_attempts: int | None = None,
                                  use_image_if_no_bounding_boxes: bool | None = None,
                                  name: str | None = None) -> tuple:
    """``tf.image.sample_distorted_bounding_box``: a random crop ``(begin, size, bboxes)`` for ``tf.slice``.

    Args:
        image_size: ``[height, width, channels]`` (``tf.shape(image)``).
        bounding_boxes: ``[batch, N, 4]`` boxes ``[ymin, xmin, ymax, xmax]`` in ``[0, 1]``.
        min_object_covered: the fraction of some box the crop must cover.
        aspect_ratio_range, area_range: the crop's width / height and its fraction of the image
            (defaults ``(0.75, 1.33)`` and ``(0.05, 1.0)``).
        max_attempts: crops tried before the whole image is returned (default 100).
        use_image_if_no_bounding_boxes: with no boxes, cover the whole image instead of failing.

    Returns:
        ``begin`` ``[offset_y, offset_x, 0]`` and ``size`` ``[height, width, -1]`` (``image_size``'s dtype),
        ``bboxes`` ``[1, 1, 4]`` float32: the crop in ``[0, 1]`` coordinates.
    """
    fn = "sample_distorted_bounding_box"
    aspect = (0.75, 1.33) if aspect_ratio_range is None else tuple(float(v) for v in aspect_ratio_range)
    area = (0.05, 1.0) if area_range is None else tuple(float(v) for v in area_range)
    attempts = 100 if max_attempts is None else int(max_attempts)
    if len(aspect) != 2 or not (aspect[0] > 0 and aspect[1] > 0):
        raise _invalid(f"tf.image.{fn}: aspect_ratio_range must be 2 positive numbers. Received: {aspect_ratio_range}")
    if len(area) != 2 or not (0 < area[0] <= 1 and 0 < area[1] <= 1):
        raise _invalid(f"tf.image.{fn}: area_range must be 2 numbers in (0, 1]. Received: {area_range}")
    if attempts <= 0:
        raise _invalid(f"tf.image.{fn}: max_attempts must be positive. Received: {max_attempts}")
    if not isinstance(min_object_covered, Value) and float(min_object_covered) < 0:
        raise _invalid(f"tf.image.{fn}: min_object_covered must be non-negative. Received: {min_object_covered}")
    if _static_shape(image_size) != (3,):
        raise ValueError(f"tf.image.{fn}: image_size must be 1-D with 3 elements [height, width, channels]. "
                         f"Received shape {_static_shape(image_size)}")
    box_shape = _static_shape(bounding_boxes)
    if len(box_shape) != 3 or box_shape[-1] != 4:
        raise ValueError(f"tf.image.{fn}: bounding_boxes must be 3-D [batch, num_boxes, 4]. Received shape "
                         f"{box_shape}")
    if not isinstance(bounding_boxes, Value):
        array = np.asarray(bounding_boxes, np.float32)
        if array.size == 0 and not use_image_if_no_bounding_boxes:
            raise _invalid(f"tf.image.{fn}: no bounding boxes were given; pass use_image_if_no_bounding_boxes="
                             "True to sample crops of the whole image")
        if array.size and not np.all((array >= 0.0) & (array <= 1.0)):
            raise _invalid(f"tf.image.{fn}: all bounding box coordinates must be in [0.0, 1.0]. Received values "
                             f"in [{array.min()}, {array.max()}]")
    # begin and size take image_size's dtype: int32 from tf.shape and Python lists (TensorFlow's conversion).
    dtype = "int64" if isinstance(image_size, Value) and image_size.dtype == "int64" or \
        isinstance(image_size, np.ndarray) and image_size.dtype == np.int64 else "int32"
    return tuple(_sample_crop(image_size, bounding_boxes, min_object_covered, aspect, area, attempts, dtype,
                              seed=seed))


@symbolic
def _sample_crop(image_size: Any, boxes: Any, covered: Any, aspect: tuple, area: tuple, attempts: int,
                 dtype: str, seed: Any = None) -> tuple:
    b = builder_of(image_size, boxes, covered)
    f32 = lambda a: b.const(np.asarray(a, np.float32))   # noqa: E731
    op = b.op
    dims = cast_value(as_value(image_size, b), _F32)
    height = op("Gather", [dims, b.const(np.asarray(0, np.int64))], axis=0)
    width = op("Gather", [dims, b.const(np.asarray(1, np.int64))], axis=0)
    draws = uniform_source(b, seed)(b.const(np.zeros((4, attempts), np.float32)))
    pick = lambda i: op("Gather", [draws, b.const(np.asarray(i, np.int64))], axis=0)   # noqa: E731
    ratio = op("Add", [op("Mul", [pick(0), f32(aspect[1] - aspect[0])]), f32(aspect[0])])
    image_area = op("Mul", [width, height])
    min_area, max_area = op("Mul", [f32(area[0]), image_area]), op("Mul", [f32(area[1]), image_area])
    rint = lambda x: op("Round", [x])                                # lrintf: to nearest, ties to even
    low = rint(op("Sqrt", [op("Div", [min_area, ratio])]))
    high = rint(op("Sqrt", [op("Div", [max_area, ratio])]))
    # The tallest crop whose rounded width still fits the image (TensorFlow's kernel, step by step).
    fitted = op("Floor", [op("Div", [op("Add", [width, f32(0.5 - 1e-7)]), ratio])])
    fitted = op("Where", [op("Greater", [rint(op("Mul", [fitted, ratio])), width]), op("Sub", [fitted, f32(1.0)]),
                          fitted])
    high = op("Where", [op("Greater", [rint(op("Mul", [high, ratio])), width]), fitted, high])
    high = op("Min", [high, height])
    low = op("Min", [low, high])
    crop_h = op("Add", [low, op("Floor", [op("Mul", [pick(1), op("Add", [op("Sub", [high, low]), f32(1.0)])])])])

    def width_area(h: Value) -> tuple:
        w = rint(op("Mul", [h, ratio]))
        return w, op("Mul", [w, h])

    crop_w, crop_area = width_area(crop_h)
    grow = op("Less", [crop_area, min_area])
    crop_h = op("Where", [grow, op("Add", [crop_h, f32(1.0)]), crop_h])
    crop_w, crop_area = width_area(crop_h)
    shrink = op("Greater", [crop_area, max_area])
    crop_h = op("Where", [shrink, op("Sub", [crop_h, f32(1.0)]), crop_h])
    crop_w, crop_area = width_area(crop_h)
    ok = [op("GreaterOrEqual", [crop_area, min_area]), op("LessOrEqual", [crop_area, max_area]),
          op("LessOrEqual", [crop_w, width]), op("LessOrEqual", [crop_h, height]),
          op("Greater", [crop_w, f32(0.0)]), op("Greater", [crop_h, f32(0.0)])]
    # Offsets uniform over [0, extent - size): TensorFlow's Uniform(n) never draws n itself.
    top = op("Floor", [op("Mul", [pick(2), op("Sub", [height, crop_h])])])
    left = op("Floor", [op("Mul", [pick(3), op("Sub", [width, crop_w])])])
    # Boxes in whole pixels (truncated, as the kernel casts); no box at all means the whole image.
    flat = op("Reshape", [cast_value(as_value(boxes, b), _F32), b.const(np.asarray([-1, 4], np.int64))])
    scale = op("Concat", [op("Unsqueeze", [v, b.const(np.asarray([0], np.int64))]) for v in
                          (height, width, height, width)], axis=0)
    pixels = op("Floor", [op("Mul", [flat, scale])])
    whole = op("Unsqueeze", [op("Concat", [f32([0.0, 0.0]), op("Unsqueeze", [height, b.const(np.asarray([0],
                              np.int64))]), op("Unsqueeze", [width, b.const(np.asarray([0], np.int64))])], axis=0),
                             b.const(np.asarray([0], np.int64))])
    none = op("Equal", [op("Size", [flat]), b.const(np.asarray(0, np.int64))])
    # One more row: the whole image when there are no boxes, else an empty box (never counted).
    pixels = op("Concat", [pixels, op("Where", [none, whole, f32([[0.0, 0.0, 0.0, 0.0]])])], axis=0)
    col = lambda i: op("Unsqueeze", [op("Gather", [pixels, b.const(np.asarray(i, np.int64))], axis=1),   # noqa: E731
                                     b.const(np.asarray([1], np.int64))])
    y0, x0, y1, x1 = col(0), col(1), col(2), col(3)                  # [N, 1] against [attempts]
    span_y = op("Max", [op("Sub", [op("Min", [y1, op("Add", [top, crop_h])]), op("Max", [y0, top])]), f32(0.0)])
    span_x = op("Max", [op("Sub", [op("Min", [x1, op("Add", [left, crop_w])]), op("Max", [x0, left])]), f32(0.0)])
    box_area = op("Mul", [op("Sub", [y1, y0]), op("Sub", [x1, x0])])
    counted = op("GreaterOrEqual", [box_area, f32(1.0)])             # boxes under a pixel never count
    share = op("Div", [op("Mul", [span_y, span_x]), op("Max", [box_area, f32(1.0)])])
    enough = op("And", [counted, op("GreaterOrEqual", [share, cast_value(as_value(covered, b, dtype="float32"),
                                                                          _F32)])])
    ok.append(op("Cast", [op("ReduceMax", [op("Cast", [enough], to=onnx.TensorProto.INT32),
                                           b.const(np.asarray([0], np.int64))], keepdims=0)],
                 to=onnx.TensorProto.BOOL))
    ok.append(op("GreaterOrEqual", [crop_area, f32(1.0)]))
    good = ok[0]
    for cond in ok[1:]:
        good = op("And", [good, cond])
    good_i = op("Cast", [good], to=onnx.TensorProto.INT32)
    first = op("ArgMax", [good_i], axis=0, keepdims=1)               # the first attempt that passed
    found = op("Cast", [op("ReduceMax", [good_i], keepdims=1)], to=onnx.TensorProto.BOOL)
    at = lambda v, default: op("Where", [found, op("Gather", [v, first], axis=0), default])   # noqa: E731
    zero1 = f32([0.0])
    y, x = at(top, zero1), at(left, zero1)
    h = at(crop_h, op("Unsqueeze", [height, b.const(np.asarray([0], np.int64))]))
    w = at(crop_w, op("Unsqueeze", [width, b.const(np.asarray([0], np.int64))]))
    to = onnx.TensorProto.INT64 if dtype == "int64" else onnx.TensorProto.INT32
    begin = cast_value(op("Concat", [y, x, zero1], axis=0), to)
    size = cast_value(op("Concat", [h, w, f32([-1.0])], axis=0), to)
    unit = op("Concat", [op("Div", [y, op("Unsqueeze", [height, b.const(np.asarray([0], np.int64))])]),
                         op("Div", [x, op("Unsqueeze", [width, b.const(np.asarray([0], np.int64))])]),
                         op("Div", [op("Add", [y, h]), op("Unsqueeze", [height, b.const(np.asarray([0], np.int64))])]),
                         op("Div", [op("Add", [x, w]), op("Unsqueeze", [width, b.const(np.asarray([0], np.int64))])])],
                axis=0)
    return begin, size, op("Reshape", [unit, b.const(np.asarray([1, 1, 4], np.int64))])
