"""keras.utils.bounding_boxes' crop, pad, affine_transform, encode_box_to_deltas / decode_deltas_to_boxes, compute_iou
and compute_ciou against Keras 3 (torch backend) on the same boxes, on arrays and inside a compiled model. Before,
onnxforge's module lacked them (``dir()`` of both modules compared)."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

import onnxforge as of
from onnxforge.utils import bounding_boxes as ours
from tests.keras_oracle.common import keras

theirs = keras.utils.bounding_boxes


def _np(x):
    return keras.ops.convert_to_numpy(x) if not isinstance(x, np.ndarray) else x


def _boxes(rng, shape, scale=60.0):
    corner = rng.uniform(-5, scale, shape + (2,))
    return np.concatenate([corner, corner + rng.uniform(0.5, 30, shape + (2,))], axis=-1).astype(np.float32)


def _close(got, want, atol=1e-4):
    np.testing.assert_allclose(np.asarray(got, np.float64), _np(want).astype(np.float64), rtol=1e-5, atol=atol)


def test_every_keras_function_is_here():
    public = {n for n in dir(theirs) if not n.startswith("_")}
    assert public <= set(dir(ours))


def test_crop_and_pad_match_keras(rng):
    boxes = _boxes(rng, (2, 5))
    for args in ((10, 20, 40, 30), (0, 5.5, 100, 80)):
        _close(ours.crop(boxes, *args), theirs.crop(boxes, *args))
        _close(ours.crop(boxes[0], *args), theirs.crop(boxes[0], *args))
    _close(ours.pad(boxes, 7, 3), theirs.pad(boxes, 7, 3))
    _close(ours.pad(boxes[0], 7, 3, height=9, width=9), theirs.pad(boxes[0], 7, 3, height=9, width=9))


def test_affine_transform_matches_keras(rng):
    boxes = _boxes(rng, (3, 4))
    params = [rng.uniform(lo, hi, 3).astype(np.float32)
              for lo, hi in ((-40, 40), (-0.2, 0.2), (-0.2, 0.2), (0.7, 1.3), (-15, 15), (-15, 15))]
    for center in ((None, None), (np.float32(0.3), np.float32(0.6))):
        want = theirs.affine_transform(boxes, *params, height=90, width=120, center_x=center[0], center_y=center[1])
        got = ours.affine_transform(boxes, *params, height=90, width=120, center_x=center[0], center_y=center[1])
        _close(got, want, atol=2e-3)


@pytest.mark.parametrize("anchor_format,box_format,encoding", [
    ("xyxy", "xyxy", "center_yxhw"), ("xywh", "center_xywh", "center_xywh"), ("yxyx", "rel_xyxy", "center_yxhw")])
def test_deltas_match_keras_both_ways(rng, anchor_format, box_format, encoding):
    anchors = ours.convert_format(_boxes(rng, (6,)), "xyxy", anchor_format)
    boxes = _boxes(rng, (2, 6)) / (100.0 if box_format.startswith("rel") else 1.0)
    kwargs = {"variance": [0.1, 0.1, 0.2, 0.2], "image_shape": (100, 100, 3)}
    k_anchors, k_boxes = (keras.ops.convert_to_tensor(np.asarray(v)) for v in (anchors, boxes))
    want = theirs.encode_box_to_deltas(k_anchors, k_boxes, anchor_format, box_format, encoding, **kwargs)
    got = ours.encode_box_to_deltas(anchors, boxes, anchor_format, box_format, encoding, **kwargs)
    _close(got, want)
    back = ours.decode_deltas_to_boxes(anchors, got, anchor_format, box_format, encoding, **kwargs)
    _close(back, theirs.decode_deltas_to_boxes(k_anchors, want, anchor_format, box_format, encoding, **kwargs))
    _close(back, boxes, atol=1e-3)
    levels = ours.decode_deltas_to_boxes({"p3": anchors}, {"p3": got}, anchor_format, box_format, encoding, **kwargs)
    _close(levels["p3"], back)


@pytest.mark.parametrize("shapes", [((4,), (5,)), ((2, 4), (2, 5)), ((2, 4), (5,)), ((4,), (2, 5))])
@pytest.mark.parametrize("fmt", ["xyxy", "center_xywh", "rel_yxyx"])
def test_compute_iou_matches_keras(rng, shapes, fmt):
    scale = 1 / 100.0 if fmt.startswith("rel") else 1.0
    a, b = (ours.convert_format(_boxes(rng, s) * scale, "xyxy", fmt, height=1, width=1) for s in shapes)
    a, b = np.asarray(a), np.asarray(b)
    b[..., 0, :] = a[..., 0, :] if a.ndim == b.ndim else b[..., 0, :]    # an exact overlap: IoU 1
    kwargs = {"image_shape": (100, 120, 3)} if fmt.startswith("rel") else {}
    _close(ours.compute_iou(a, b, fmt, **kwargs), theirs.compute_iou(a, b, fmt, **kwargs))


def test_compute_iou_masking_matches_keras(rng):
    a, b = _boxes(rng, (2, 4)), _boxes(rng, (2, 3))
    a[0, 1] = -1.0
    b[1, 2] = -3.0
    for args in ((a, b), (a[0], b[0])):
        _close(ours.compute_iou(*args, "xyxy", use_masking=True, mask_val=-7),
               theirs.compute_iou(*args, "xyxy", use_masking=True, mask_val=-7))


@pytest.mark.parametrize("fmt", ["xyxy", "xywh", "center_yxhw"])
def test_compute_ciou_matches_keras(rng, fmt):
    a, b = (np.asarray(ours.convert_format(_boxes(rng, (2, 5)), "xyxy", fmt)) for _ in range(2))
    b[0, 0] = a[0, 0]
    _close(ours.compute_ciou(a, b, fmt), theirs.compute_ciou(a, b, fmt))


def test_iou_and_deltas_in_a_model(rng, tmp_path):
    anchors = _boxes(rng, (6,))
    inputs = of.keras.Input((6, 4))
    iou = ours.compute_iou(inputs, anchors, "xyxy")
    deltas = ours.encode_box_to_deltas(anchors, inputs, "xyxy", "xyxy")
    model = of.keras.Model(inputs, [iou, deltas])
    boxes = _boxes(rng, (2, 6))
    got = model.predict(boxes, verbose=0)
    _close(got[0], theirs.compute_iou(boxes, anchors, "xyxy"))
    _close(got[1], theirs.encode_box_to_deltas(anchors, boxes, "xyxy", "xyxy"))
    model.export(tmp_path / "m.onnx")
    onnx.checker.check_model(onnx.load(tmp_path / "m.onnx"), full_check=True)


def test_bad_arguments_are_refused(rng):
    boxes = _boxes(rng, (2, 3))
    with pytest.raises(NotImplementedError, match="bounding_box_format='yxyx'"):
        ours.crop(boxes, 0, 0, 5, 5, bounding_box_format="yxyx")
    with pytest.raises(ValueError, match="variance"):
        ours.encode_box_to_deltas(boxes[0], boxes, "xyxy", "xyxy", variance=[1.0, 2.0])
    with pytest.raises(ValueError, match="encoding_format"):
        ours.encode_box_to_deltas(boxes[0], boxes, "xyxy", "xyxy", encoding_format="xyxy")
    with pytest.raises(ValueError, match="image_shape"):
        ours.compute_iou(boxes, boxes, "rel_xyxy")
    with pytest.raises(ValueError, match="boxes1"):
        ours.compute_iou(boxes[0, 0], boxes, "xyxy")
    with pytest.raises(ValueError, match="batched"):
        ours.affine_transform(boxes[0], *[np.zeros(1, np.float32)] * 6, height=5, width=5)
