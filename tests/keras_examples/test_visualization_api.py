"""Keras 3.15's ``keras.visualization`` against real Keras: ``draw_segmentation_masks`` (palette and mapped
colors, blending, ``ignore_index``, channels-first) and ``draw_bounding_boxes`` (box formats, labels with
confidences, ``-1`` labels skipped, float images) give the same arrays; the ``plot_*`` galleries, drawn with
matplotlib's Agg backend and saved to PNG, give the same pixels. Exact equality: both run the same NumPy /
OpenCV / matplotlib calls on the same values.

``draw_bounding_boxes`` (and so ``plot_bounding_box_gallery``) needs OpenCV in Keras and here; where ``cv2`` is
not installed those comparisons skip, and the ImportError is checked to name the package as Keras's does.
"""
from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from .harness import fkeras, keras as real_keras, to_numpy

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")


def _images(rng, dtype="uint8", shape=(2, 24, 32, 3)):
    if dtype == "uint8":
        return rng.integers(0, 256, size=shape).astype("uint8")
    return rng.uniform(0, 1, size=shape).astype(dtype)


def _masks(rng, shape=(2, 24, 32, 1)):
    return rng.integers(-1, 4, size=shape).astype("int32")


def test_draw_segmentation_masks_matches_keras():
    rng = np.random.default_rng(0)
    images, masks = _images(rng), _masks(rng)
    # Keras's torch backend refuses class ids >= num_classes in one_hot (TensorFlow's and JAX's give a zero row,
    # as onnxforge does): the cases with fewer classes than the masks hold compare on masks clipped below.
    cases = [dict(num_classes=4), dict(num_classes=4, alpha=0.3, ignore_index=0),
             dict(num_classes=3, color_mapping={0: (1, 2, 3), 1: (250, 0, 10), 2: (0, 255, 0)}),
             dict(num_classes=4, blend=False), dict(num_classes=5)]
    for kwargs in cases:
        masks = np.minimum(_masks(np.random.default_rng(0)), kwargs["num_classes"] - 1)
        want = np.asarray(to_numpy(real_keras.visualization.draw_segmentation_masks(images, masks, **kwargs)))
        got = fkeras.visualization.draw_segmentation_masks(images, masks, **kwargs)
        assert got.dtype == want.dtype and got.shape == want.shape, kwargs
        np.testing.assert_array_equal(got, want, err_msg=str(kwargs))
    masks = _masks(rng)
    # num_classes defaults to the largest id, which then gets no color (Keras's reading of one_hot).
    np.testing.assert_array_equal(fkeras.visualization.draw_segmentation_masks(images, masks),
                                  fkeras.visualization.draw_segmentation_masks(images, masks, num_classes=3))
    chw = dict(data_format="channels_first", num_classes=4)
    want = to_numpy(real_keras.visualization.draw_segmentation_masks(images.transpose(0, 3, 1, 2),
                                                                     masks.transpose(0, 3, 1, 2), **chw))
    got = fkeras.visualization.draw_segmentation_masks(images.transpose(0, 3, 1, 2), masks.transpose(0, 3, 1, 2), **chw)
    np.testing.assert_array_equal(got, want)
    with pytest.raises(TypeError, match="integer dtype"):
        fkeras.visualization.draw_segmentation_masks(images, masks.astype("float32"))
    with pytest.raises(ValueError, match="batched 4D"):
        fkeras.visualization.draw_segmentation_masks(images[0], masks[0])


def _boxes():
    return {"boxes": np.array([[[2, 3, 20, 18], [10, 1, 30, 9], [0, 0, 5, 5]],
                               [[4, 12, 28, 22], [1, 1, 8, 30], [3, 3, 6, 6]]], "float32"),
            "labels": np.array([[0, 1, -1], [2, 0, 1]]),
            "confidences": np.array([[0.9, 0.25, 0.1], [0.5, 0.75, 0.3]], "float32")}


def test_draw_bounding_boxes_matches_keras():
    pytest.importorskip("cv2")
    rng = np.random.default_rng(1)
    mapping = {0: "cat", 1: "dog", 2: "bird"}
    for images, fmt, kwargs in [
        (_images(rng), "xyxy", dict(class_mapping=mapping)),
        (_images(rng, "float32"), "xyxy", dict(class_mapping=mapping, color=(255, 0, 0), line_thickness=1)),
        (_images(rng) * 0 + 200, "yxyx", dict(font_scale=0.5, text_thickness=2, class_mapping=mapping)),
        (_images(rng), "xywh", dict()),
    ]:
        boxes = _boxes()
        if fmt != "xyxy":
            boxes["boxes"] = np.asarray(fkeras.utils.bounding_boxes.convert_format(boxes["boxes"], "xyxy", fmt))
        want = to_numpy(real_keras.visualization.draw_bounding_boxes(images, dict(boxes), fmt, **kwargs))
        got = fkeras.visualization.draw_bounding_boxes(images, dict(boxes), fmt, **kwargs)
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, want, err_msg=f"{fmt} {kwargs}")
    relative = _boxes()
    relative["boxes"] = relative["boxes"] / np.array([32, 24, 32, 24], "float32")
    images = _images(rng)
    np.testing.assert_array_equal(fkeras.visualization.draw_bounding_boxes(images, dict(relative), "rel_xyxy"),
                                  to_numpy(real_keras.visualization.draw_bounding_boxes(images, dict(relative),
                                                                                        "rel_xyxy")))


def test_draw_bounding_boxes_without_opencv_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)   # `import cv2` now raises ImportError
    with pytest.raises(ImportError, match=r"requires the `cv2` package.*pip install opencv-python"):
        fkeras.visualization.draw_bounding_boxes(np.zeros((1, 4, 4, 3), "uint8"), _boxes(), "xyxy")


def _png(plot, api, tmp_path, name, *args, **kwargs):
    import matplotlib.image

    path = str(tmp_path / f"{name}_{'onnxforge' if api is fkeras else 'keras'}.png")
    plot(api)(*args, path=path, **kwargs)
    return matplotlib.image.imread(path)


def test_plot_galleries_match_keras(tmp_path):
    rng = np.random.default_rng(2)
    images = _images(rng, shape=(4, 16, 16, 3))
    cases = [("images", lambda k: k.visualization.plot_image_gallery, (images,),
              dict(y_true=np.array([0, 1, 1, 0]), y_pred=np.array([0, 0, 1, 0]), label_map={0: "a", 1: "b"})),
             ("images01", lambda k: k.visualization.plot_image_gallery, (images / 255.0,),
              dict(value_range=(0, 1), rows=1, cols=3)),
             ("masks", lambda k: k.visualization.plot_segmentation_mask_gallery, (images[:2],),
              dict(num_classes=4, y_true=_masks(rng, (2, 16, 16, 1)), y_pred=_masks(rng, (2, 16, 16, 1))))]
    if importlib.util.find_spec("cv2") is not None:
        boxes = _boxes()
        boxes["boxes"] = boxes["boxes"] / 2
        cases.append(("boxes", lambda k: k.visualization.plot_bounding_box_gallery, (images[:2], "xyxy"),
                      dict(y_true=boxes, y_pred=boxes, class_mapping={0: "x", 1: "y", 2: "z"}, legend=True,
                           font_scale=0.3)))
    for name, plot, args, kwargs in cases:
        want = _png(plot, real_keras, tmp_path, name, *args, **kwargs)
        got = _png(plot, fkeras, tmp_path, name, *args, **kwargs)
        assert got.shape == want.shape, name
        np.testing.assert_array_equal(got, want, err_msg=name)
    with pytest.raises(ValueError, match="label_map"):
        fkeras.visualization.plot_image_gallery(images, y_true=np.array([0, 1, 1, 0]), show=False)
