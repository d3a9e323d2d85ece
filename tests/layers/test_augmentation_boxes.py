"""Image augmentation layers given ``{"images", "bounding_boxes"}``: Keras 3 (torch) refuses boxes without a
``bounding_box_format``, and onnxforge's layers (which take none and do not transform boxes) refuse them the same
way. Before, onnxforge returned the boxes untransformed from a flip or rotation (or failed in a RecursionError
while annotating the output shapes, which an eager call on ``{"images", "labels"}`` hit too)."""
from __future__ import annotations

import numpy as np
import pytest

from tests.keras_oracle.common import fkeras, keras

DATA = {"images": np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype(np.float32),
        "bounding_boxes": {"boxes": np.array([[[0, 0, 2, 2]], [[1, 1, 3, 3]]], np.float32),
                           "labels": np.array([[1], [2]])}}
LAYERS = [("RandomFlip", {"mode": "horizontal", "seed": 1}), ("RandomRotation", {"factor": 0.2, "seed": 1}),
          ("RandomBrightness", {"factor": 0.2, "seed": 1}), ("CutMix", {"seed": 1}),
          ("ContrastLimitedAdaptiveHistogramEqualization", {"tile_grid_size": (2, 2)})]


@pytest.mark.parametrize("name,kwargs", LAYERS)
@pytest.mark.parametrize("training", [True, False])
def test_boxes_without_a_format_are_refused_like_keras(name, kwargs, training):
    with pytest.raises(ValueError, match="bounding box format"):
        getattr(keras.layers, name)(**kwargs)({**DATA}, training=training)
    with pytest.raises(ValueError, match="bounding box format"):
        getattr(fkeras.layers, name)(**kwargs)({**DATA}, training=training)


@pytest.mark.parametrize("name,kwargs", LAYERS[:3])
def test_images_and_labels_dicts_work_eagerly(name, kwargs):
    """An eager call on ``{"images", "labels"}``: before, the older augmentation layers (flip, rotation, ...) hit a
    RecursionError (their ``compute_output_shape`` turned the dict into a tuple of its keys)."""
    labels = np.arange(2, dtype=np.float32)[:, None]
    out = getattr(fkeras.layers, name)(**kwargs)({"images": DATA["images"], "labels": labels}, training=False)
    want = getattr(keras.layers, name)(**kwargs)({"images": DATA["images"], "labels": labels}, training=False)
    np.testing.assert_array_equal(np.asarray(out["labels"]), keras.ops.convert_to_numpy(want["labels"]))
    np.testing.assert_allclose(np.asarray(out["images"]), keras.ops.convert_to_numpy(want["images"]), rtol=1e-6)
