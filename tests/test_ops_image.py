"""``ops.image`` against real Keras 3 (torch backend): extract_patches (2-D and 3-D, strides, dilation,
padding, eager and inside a traced layer that trains), resize and affine_transform."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

from onnxforge import ops  # noqa: E402
from tests.layers.keras_parity import check_layer_parity  # noqa: E402

R = np.random.default_rng(10)


@pytest.mark.parametrize("shape,kwargs", [
    ((2, 8, 8, 3), dict(size=4)),
    ((2, 9, 7, 2), dict(size=(3, 2), strides=(2, 1))),
    ((1, 7, 7, 2), dict(size=3, strides=2, padding="same")),
    ((1, 8, 8, 1), dict(size=(2, 3), strides=1, dilation_rate=2)),
    ((8, 8, 3), dict(size=(2, 2))),
    ((2, 3, 8, 8), dict(size=(4, 4), data_format="channels_first")),
    ((2, 4, 6, 6, 2), dict(size=(2, 3, 3))),
])
def test_extract_patches_matches_keras(shape, kwargs):
    x = R.normal(size=shape).astype("float32")
    expected = keras.ops.convert_to_numpy(keras.ops.image.extract_patches(x, **kwargs))
    got = ops.image.extract_patches(x, **kwargs)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_patch_layer_of_a_vision_transformer_trains_like_keras():
    def make(lib):
        class Patches(lib.layers.Layer):
            def call(self, images):
                patches = lib.ops.image.extract_patches(images, size=2)
                return lib.ops.reshape(patches, (-1, 4, 2 * 2 * 3))

            def compute_output_shape(self, input_shape):
                return (input_shape[0], 4, 12)

        x = lib.Input((4, 4, 3))
        h = lib.layers.Conv2D(3, 1)(x)
        p = Patches()(h)
        return lib.Model(x, lib.layers.Dense(2)(lib.layers.Flatten()(p)))
    check_layer_parity(make, R.normal(size=(3, 4, 4, 3)).astype("float32"), train=True, native=True)


@pytest.mark.parametrize("kwargs", [dict(size=(5, 9)), dict(size=(3, 3), interpolation="nearest"),
                                    dict(size=(8, 4), interpolation="bicubic"),
                                    dict(size=(4, 4), crop_to_aspect_ratio=True),
                                    dict(size=(3, 5), antialias=True)])
def test_resize_matches_keras(kwargs):
    x = R.uniform(size=(2, 6, 7, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(keras.ops.image.resize(x, **kwargs))
    np.testing.assert_allclose(ops.image.resize(x, **kwargs), expected, rtol=1e-4, atol=1e-5)


def test_bicubic_resize_of_one_unbatched_image_matches_keras():
    # onnxforge's bicubic Resize needs a 4-D layout: an (H, W, C) image goes through as a batch of one.
    x = R.uniform(size=(6, 7, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(keras.ops.image.resize(x, (9, 4), interpolation="bicubic"))
    np.testing.assert_allclose(ops.image.resize(x, (9, 4), interpolation="bicubic"), expected, rtol=1e-4, atol=1e-5)


def test_affine_transform_matches_keras():
    x = R.uniform(size=(2, 5, 6, 2)).astype("float32")
    t = np.array([[1.1, 0.2, -0.5, -0.1, 0.9, 0.7, 0, 0], [0.8, 0.0, 1.0, 0.0, 1.2, -1.0, 0, 0]], "float32")
    expected = keras.ops.convert_to_numpy(keras.ops.image.affine_transform(x, t, fill_mode="reflect"))
    np.testing.assert_allclose(ops.image.affine_transform(x, t, fill_mode="reflect"), expected, rtol=1e-4,
                               atol=1e-5)
