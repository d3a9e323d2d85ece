"""keras.utils.bounding_boxes' convert_format and clip_to_image_size against Keras 3 (torch backend): every pair of
formats on arrays, inside a compiled model (symbolic tensors), clipping with labels; argument errors."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as of
from onnxforge.utils import bounding_boxes
from tests.keras_oracle.common import keras

FORMATS = bounding_boxes.SUPPORTED_FORMATS


@pytest.fixture
def boxes(rng):
    corner = rng.uniform(0, 40, (2, 3, 2))
    return np.concatenate([corner, corner + rng.uniform(1, 30, (2, 3, 2))], axis=-1).astype(np.float32)


@pytest.mark.parametrize("source", FORMATS)
def test_convert_format_matches_keras(boxes, source):
    for target in FORMATS:
        got = bounding_boxes.convert_format(boxes, source, target, height=90, width=120)
        want = keras.utils.bounding_boxes.convert_format(boxes, source, target, height=90, width=120)
        np.testing.assert_allclose(np.asarray(got), keras.ops.convert_to_numpy(want), rtol=1e-6, atol=1e-5)
    relative = bounding_boxes.convert_format({"boxes": boxes / 100}, "rel_xyxy", "rel_xywh", 5, 7)["boxes"]
    np.testing.assert_allclose(np.asarray(relative)[..., 2:], (boxes[..., 2:] - boxes[..., :2]) / 100, rtol=1e-6)


def test_convert_format_in_a_model(boxes):
    inputs = of.keras.Input((3, 4))
    outputs = bounding_boxes.convert_format(inputs, "xyxy", "rel_center_xywh", height=90, width=120)
    got = of.keras.Model(inputs, outputs).predict(boxes, verbose=0)
    want = keras.utils.bounding_boxes.convert_format(boxes, "xyxy", "rel_center_xywh", height=90, width=120)
    np.testing.assert_allclose(got, keras.ops.convert_to_numpy(want), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("fmt,height,width", [("xyxy", 30, 50), ("rel_xyxy", None, None)])
def test_clip_to_image_size_matches_keras(boxes, fmt, height, width):
    data = boxes if fmt == "xyxy" else boxes / 40 - 0.2
    labels = np.arange(6).reshape(2, 3)
    got = bounding_boxes.clip_to_image_size({"boxes": data, "labels": labels}, height, width, fmt)
    want = keras.utils.bounding_boxes.clip_to_image_size({"boxes": data, "labels": labels}, height, width, fmt)
    np.testing.assert_allclose(np.asarray(got["boxes"]), keras.ops.convert_to_numpy(want["boxes"]), atol=1e-6)
    assert np.asarray(got["labels"]).tolist() == keras.ops.convert_to_numpy(want["labels"]).tolist()
    assert (np.asarray(got["labels"]) == -1).any() or fmt == "rel_xyxy"


def test_errors_are_clear(boxes):
    with pytest.raises(ValueError, match="last dimension of 4"):
        bounding_boxes.convert_format(boxes[..., :3], "xyxy", "xywh")
    with pytest.raises(ValueError, match="target='xyxz'"):
        bounding_boxes.convert_format(boxes, "xyxy", "xyxz")
    with pytest.raises(ValueError, match="height=None"):
        bounding_boxes.convert_format(boxes, "xyxy", "rel_xyxy")
    with pytest.raises(ValueError, match="`height` and `width` must be set"):
        bounding_boxes.clip_to_image_size({"boxes": boxes})
    with pytest.raises(NotImplementedError, match="bounding_box_format='xywh'"):
        bounding_boxes.clip_to_image_size({"boxes": boxes}, 10, 10, "xywh")
