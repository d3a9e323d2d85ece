"""``layers.MaxNumBoundingBoxes`` against Keras 3 (torch backend): boxes and labels cut or padded with ``fill_value``,
batched and single images, images passing through, the config round trip, in a compiled model whose box count
is only known at run time, and Keras's errors. Before, onnxforge had no such layer."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from tests.keras_oracle.common import fkeras, keras


def _data(n_boxes, batched=True):
    rng = np.random.default_rng(n_boxes)
    lead = (2,) if batched else ()
    return {"images": rng.uniform(0, 255, lead + (6, 6, 3)).astype(np.float32),
            "bounding_boxes": {"boxes": rng.uniform(0, 6, lead + (n_boxes, 4)).astype(np.float32),
                               "labels": rng.integers(0, 9, lead + (n_boxes,))}}


def _same(got, want):
    assert set(got) == set(want)
    for key in want:
        if isinstance(want[key], dict):
            _same(got[key], want[key])
        else:
            w = keras.ops.convert_to_numpy(want[key])
            g = np.asarray(got[key])
            assert g.shape == w.shape and g.dtype == w.dtype
            np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("n_boxes", [1, 3, 5, 8])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("fill_value", [-1, 7])
def test_matches_keras(n_boxes, batched, fill_value):
    kwargs = {"max_number": 5, "fill_value": fill_value, "bounding_box_format": "xyxy"}
    data = _data(n_boxes, batched)
    want = keras.layers.MaxNumBoundingBoxes(**kwargs)(data)
    got = fkeras.layers.MaxNumBoundingBoxes(**kwargs)(data)
    _same(got, want)
    for training in (False,):
        _same(fkeras.layers.MaxNumBoundingBoxes(**kwargs)(data, training=training),
              keras.layers.MaxNumBoundingBoxes(**kwargs)(data, training=training))


def test_images_alone_and_other_entries_pass_through():
    data = _data(3)
    layer = fkeras.layers.MaxNumBoundingBoxes(2, bounding_box_format="xyxy")
    np.testing.assert_array_equal(np.asarray(layer(data["images"])), data["images"])
    out = layer({**data, "labels": np.ones((2, 1), np.float32)})
    np.testing.assert_array_equal(np.asarray(out["labels"]), np.ones((2, 1)))


def test_config_round_trip_and_keras_reads_it():
    layer = fkeras.layers.MaxNumBoundingBoxes(4, fill_value=-2, bounding_box_format="yxyx", name="mnb")
    config = layer.get_config()
    again = fkeras.layers.MaxNumBoundingBoxes.from_config(config)
    assert (again.max_number, again.fill_value, again.bounding_box_format) == (4, -2, "yxyx")
    theirs = keras.layers.MaxNumBoundingBoxes.from_config(config)
    assert (theirs.max_number, theirs.fill_value) == (4, -2)


def test_in_a_model_with_a_run_time_box_count(tmp_path):
    boxes = fkeras.Input((None, 4), name="boxes")
    labels = fkeras.Input((None,), dtype="int64", name="labels")
    images = fkeras.Input((6, 6, 3), name="images")
    out = fkeras.layers.MaxNumBoundingBoxes(4, bounding_box_format="xyxy")(
        {"images": images, "bounding_boxes": {"boxes": boxes, "labels": labels}})
    model = fkeras.Model([images, boxes, labels], [out["bounding_boxes"]["boxes"], out["bounding_boxes"]["labels"]])
    want = keras.layers.MaxNumBoundingBoxes(4, bounding_box_format="xyxy")
    for n in (2, 6):
        data = _data(n)
        got = model.predict([data["images"], data["bounding_boxes"]["boxes"], data["bounding_boxes"]["labels"]],
                            verbose=0)
        expected = want(data)["bounding_boxes"]
        np.testing.assert_array_equal(got[0], keras.ops.convert_to_numpy(expected["boxes"]))
        np.testing.assert_array_equal(got[1], keras.ops.convert_to_numpy(expected["labels"]))
    model.export(tmp_path / "m.onnx")
    onnx.checker.check_model(onnx.load(tmp_path / "m.onnx"), full_check=True)


def test_errors():
    with pytest.raises(ValueError, match="bounding box format"):
        fkeras.layers.MaxNumBoundingBoxes(3)(_data(2))
    with pytest.raises(ValueError, match="max_number"):
        fkeras.layers.MaxNumBoundingBoxes(0)
    bad = _data(2)
    bad["bounding_boxes"]["scores"] = np.ones((2, 2), np.float32)
    with pytest.raises(KeyError, match="scores"):
        fkeras.layers.MaxNumBoundingBoxes(3, bounding_box_format="xyxy")(bad)
