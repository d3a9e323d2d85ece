"""The ``ops.image`` functions Keras 3.15 added against Keras on its TensorFlow backend (its backend module called
directly, whatever backend this process loaded): colour spaces, blur, Sobel, SSIM, crops and pads,
``scale_and_translate``, ``map_coordinates``, ``perspective_transform``, ``extract_patches_3d``; the random
``elastic_transform`` by its invariants; and the ops inside a traced layer that trains, graphs fully checked."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

from keras.src.backend.tensorflow import image as tf_image  # noqa: E402

import onnxforge  # noqa: E402
from onnxforge import ops  # noqa: E402
from tests.conftest import check_full  # noqa: E402

R = np.random.default_rng(31)
X = R.random((2, 6, 7, 3)).astype("float32")
Y = R.random((2, 6, 7, 3)).astype("float32")
CF = np.ascontiguousarray(X.transpose(0, 3, 1, 2))


def _close(got, want, tol=1e-5):
    want = np.asarray(want)
    assert np.shape(got) == want.shape
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("images,fmt", [(X, None), (X[0], None), (CF, "channels_first")])
def test_hsv_round_trip_matches_tensorflow(images, fmt):
    hsv = ops.image.rgb_to_hsv(images, data_format=fmt)
    _close(hsv, tf_image.rgb_to_hsv(images, data_format=fmt))
    _close(ops.image.hsv_to_rgb(np.asarray(hsv), data_format=fmt), tf_image.hsv_to_rgb(np.asarray(hsv), fmt))
    _close(ops.image.hsv_to_rgb(np.asarray(hsv), data_format=fmt), images)


@pytest.mark.parametrize("kernel_size,sigma", [((3, 3), (1.0, 1.0)), ((5, 3), (1.5, 0.7)), ((4, 4), (1.0, 2.0)),
                                               ((3, 5), (0.8, 1.3))])
def test_gaussian_blur_matches_tensorflow(kernel_size, sigma):
    _close(ops.image.gaussian_blur(X, kernel_size, sigma), tf_image.gaussian_blur(X, kernel_size, sigma))
    _close(ops.image.gaussian_blur(CF, kernel_size, sigma, data_format="channels_first"),
           tf_image.gaussian_blur(CF, kernel_size, sigma, data_format="channels_first"))
    _close(ops.image.gaussian_blur(X[0], kernel_size, sigma), tf_image.gaussian_blur(X[0], kernel_size, sigma))


def test_sobel_edges_and_ssim_match_keras():
    _close(ops.image.sobel_edges(X), tf_image.sobel_edges(X))
    _close(ops.image.sobel_edges(CF, data_format="channels_first"),
           tf_image.sobel_edges(CF, data_format="channels_first"))
    for kwargs in (dict(filter_size=3), dict(filter_size=5, max_val=2.0, filter_sigma=0.8, k1=0.02)):
        _close(ops.image.ssim(X, Y, **kwargs), keras.ops.image.ssim(X, Y, **kwargs))
        _close(ops.image.ssim(X[0], Y[0], **kwargs), keras.ops.image.ssim(X[0], Y[0], **kwargs))
    _close(ops.image.ssim(CF, CF, filter_size=3, data_format="channels_first"), np.ones(2, np.float32))


@pytest.mark.parametrize("fn,kwargs", [
    ("pad_images", dict(top_padding=1, left_padding=2, target_height=9, target_width=11)),
    ("pad_images", dict(bottom_padding=2, right_padding=0, target_height=8, target_width=7)),
    ("pad_images", dict(top_padding=0, bottom_padding=3, left_padding=1, right_padding=1)),
    ("crop_images", dict(top_cropping=1, left_cropping=2, bottom_cropping=1, target_width=3)),
    ("crop_images", dict(bottom_cropping=2, right_cropping=1, target_height=3, target_width=4)),
])
def test_pad_and_crop_match_keras(fn, kwargs):
    for images, fmt in ((X, None), (X[0], None), (CF, "channels_first")):
        _close(getattr(ops.image, fn)(images, data_format=fmt, **kwargs),
               getattr(keras.ops.image, fn)(images, data_format=fmt, **kwargs))


def test_pad_and_crop_refuse_bad_arguments_by_name():
    with pytest.raises(ValueError, match="exactly two"):
        ops.image.pad_images(X, 1, 1)
    with pytest.raises(ValueError, match="top_padding=-1"):
        ops.image.pad_images(X, -1, 1, 0, 0)
    with pytest.raises(ValueError, match="top_cropping must be >= 0"):
        ops.image.crop_images(X, None, 0, 1, target_height=8, target_width=3)
    with pytest.raises(ValueError, match="rank"):
        ops.image.crop_images(X[0, 0], 1, 1, 1, 1)


@pytest.mark.parametrize("method", ["linear", "cubic", "lanczos3", "lanczos5"])
@pytest.mark.parametrize("antialias", [True, False])
def test_scale_and_translate_matches_tensorflow(method, antialias):
    args = (X, (2, 9, 5, 3), np.float32([1.5, 0.7]), np.float32([0.3, -0.4]), (1, 2), method, antialias)
    _close(ops.image.scale_and_translate(*args), tf_image.scale_and_translate(*args))
    ints = (X * 255).astype("uint8")
    args = (ints, (2, 4, 9, 3), np.float32([0.6, 1.2]), np.float32([0.0, 0.5]), (1, 2), method, antialias)
    _close(ops.image.scale_and_translate(*args), keras.ops.image.scale_and_translate(*args), tol=1)


@pytest.mark.parametrize("fill_mode", ["constant", "nearest", "wrap", "reflect"])
@pytest.mark.parametrize("order", [0, 1])
def test_map_coordinates_matches_tensorflow(fill_mode, order):
    inputs = R.random((5, 6)).astype("float32")
    coordinates = R.uniform(-4, 9, (2, 3, 4)).astype("float32")
    _close(ops.image.map_coordinates(inputs, coordinates, order, fill_mode, 0.5),
           tf_image.map_coordinates(inputs, coordinates, order, fill_mode, 0.5))
    volume = R.random((3, 4, 2)).astype("float32")
    points = R.uniform(-1, 4, (3, 7)).astype("float32")
    _close(ops.image.map_coordinates(volume, points, order, fill_mode),
           tf_image.map_coordinates(volume, points, order, fill_mode))
    ints = (inputs * 100).astype("int32")
    _close(ops.image.map_coordinates(ints, coordinates, order, fill_mode),
           tf_image.map_coordinates(ints, coordinates, order, fill_mode))


def test_map_coordinates_mirror_stays_in_range_and_bad_arguments_are_named():
    inputs = R.random((5, 6)).astype("float32")
    out = ops.image.map_coordinates(inputs, R.uniform(-9, 14, (2, 40)).astype("float32"), 1, "mirror")
    assert out.shape == (40,) and out.min() >= inputs.min() - 1e-6 and out.max() <= inputs.max() + 1e-6
    with pytest.raises(ValueError, match="fill_mode=edge"):
        ops.image.map_coordinates(inputs, np.zeros((2, 3), np.float32), 1, "edge")
    with pytest.raises(ValueError, match="leading dim of 3"):
        ops.image.map_coordinates(inputs, np.zeros((3, 3), np.float32), 1)


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_perspective_transform_matches_tensorflow(interpolation):
    start = np.float32([[0, 0], [6, 0], [0, 5], [6, 5]])
    end = start + R.uniform(-1.5, 1.5, (2, 4, 2)).astype("float32")
    starts = np.stack([start, start])
    _close(ops.image.perspective_transform(X, starts, end, interpolation, fill_value=0.3),
           tf_image.perspective_transform(X, starts, end, interpolation, fill_value=0.3), tol=1e-4)
    _close(ops.image.perspective_transform(X, start, end[0], interpolation),     # one transform for the batch
           tf_image.perspective_transform(X, start, end[0], interpolation), tol=1e-4)
    _close(ops.image.perspective_transform(X[0], start, end[0], interpolation),
           tf_image.perspective_transform(X[0], start, end[0], interpolation), tol=1e-4)
    _close(ops.image.perspective_transform(CF, starts, end, interpolation, data_format="channels_first"),
           tf_image.perspective_transform(CF, starts, end, interpolation, data_format="channels_first"), tol=1e-4)
    with pytest.raises(ValueError, match="start_points"):
        ops.image.perspective_transform(X, np.zeros((2, 3, 2), np.float32), np.zeros((2, 3, 2), np.float32))


def test_extract_patches_3d_matches_keras():
    volumes = R.random((2, 4, 6, 6, 2)).astype("float32")
    _close(ops.image.extract_patches_3d(volumes, (2, 3, 3)), keras.ops.image.extract_patches_3d(volumes, (2, 3, 3)))
    _close(ops.image.extract_patches_3d(volumes[0], 2, strides=1),
           keras.ops.image.extract_patches_3d(volumes[0], 2, strides=1))


def test_elastic_transform_invariants():
    out = ops.image.elastic_transform(X, alpha=3.0, sigma=1.0, seed=3)
    assert out.shape == X.shape and out.dtype == np.float32 and not np.allclose(out, X)
    assert out.min() >= X.min() - 1e-6 and out.max() <= X.max() + 1e-6     # reflect: pixels are mixed, not made
    np.testing.assert_array_equal(ops.image.elastic_transform(X, alpha=3.0, sigma=1.0, seed=3), out)
    assert not np.array_equal(ops.image.elastic_transform(X, alpha=3.0, sigma=1.0, seed=4), out)
    _close(ops.image.elastic_transform(X, alpha=0.0, sigma=1.0, seed=1), X)      # no displacement
    _close(ops.image.elastic_transform(X, 0.0, 2.0, seed=1), tf_image.elastic_transform(X, 0.0, 2.0, seed=1))
    single = ops.image.elastic_transform(CF[0], 2.0, 1.0, "nearest", "constant", seed=2, data_format="channels_first")
    assert single.shape == CF[0].shape and set(np.unique(single)) <= set(np.unique(CF[0])) | {0.0}


def test_image_ops_inside_a_layer_train_with_fit_and_graphs_pass_the_checker():
    class Features(onnxforge.layers.Layer):
        def call(self, x):
            blurred = ops.image.gaussian_blur(x, (3, 3), (1.0, 1.0))
            hsv = ops.image.rgb_to_hsv(ops.clip(blurred, 0.0, 1.0))
            edges = ops.reshape(ops.image.sobel_edges(blurred), (-1, 6, 7, 6))
            warped = ops.image.perspective_transform(x, np.float32([[0, 0], [6, 0], [0, 5], [6, 5]]),
                                                     np.float32([[1, 0], [6, 1], [0, 5], [5, 4]]))
            padded = ops.image.crop_images(ops.image.pad_images(warped, 1, 1, 1, 1), 1, 1, 1, 1)
            return ops.concatenate([hsv, edges, padded], axis=-1)

    model = onnxforge.Sequential([onnxforge.layers.Input((6, 7, 3)), onnxforge.layers.Conv2D(3, 1), Features(),
                                  onnxforge.layers.GlobalAveragePooling2D(), onnxforge.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(X, np.ones((2, 1), np.float32), epochs=1, batch_size=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    for program in model.compiled_programs.values():
        check_full(program.model)
