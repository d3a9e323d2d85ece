"""``tf.image`` (``onnxforge/tf_compat/image_fns.py``) against TensorFlow: TensorFlow's image tutorials resize,
crop, flip and colour-adjust images in ``dataset.map`` and Lambda layers."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf
from onnxforge import keras

rtf = pytest.importorskip("tensorflow")

RNG = np.random.default_rng(0)
IMG = RNG.uniform(0, 1, (5, 7, 3)).astype("float32")
BATCH = RNG.uniform(0, 1, (2, 6, 8, 3)).astype("float32")
U8 = (RNG.uniform(0, 255, (6, 4, 3))).astype("uint8")
GRAY = IMG[..., :1]

CASES = [
    ("resize", (IMG, [10, 14]), {}), ("resize", (BATCH, [3, 4]), {}), ("resize", (IMG, [3, 3]), {"antialias": True}),
    ("resize", (BATCH, [12, 5]), {"method": "bicubic"}), ("resize", (U8, [3, 2]), {}),
    ("resize", (U8, [12, 8]), {"method": "nearest"}), ("resize", (IMG, [10, 10]), {"preserve_aspect_ratio": True}),
    ("flip_left_right", (IMG,), {}), ("flip_up_down", (BATCH,), {}), ("rot90", (IMG,), {}),
    ("rot90", (BATCH,), {"k": 3}), ("rot90", (IMG, 2), {}), ("rgb_to_grayscale", (BATCH,), {}),
    ("rgb_to_grayscale", (U8,), {}), ("grayscale_to_rgb", (GRAY,), {}), ("adjust_brightness", (IMG, 0.2), {}),
    ("adjust_brightness", (U8, 0.1), {}), ("adjust_contrast", (BATCH, 1.7), {}), ("adjust_contrast", (U8, 0.5), {}),
    ("adjust_saturation", (IMG, 3.0), {}), ("adjust_saturation", (BATCH, 0.3), {}), ("adjust_hue", (IMG, 0.2), {}),
    ("adjust_hue", (BATCH, -0.45), {}), ("adjust_gamma", (IMG, 2.0, 0.5), {}), ("per_image_standardization", (BATCH,), {}),
    ("per_image_standardization", (U8,), {}), ("convert_image_dtype", (U8, "float32"), {}),
    ("convert_image_dtype", (IMG, "uint8"), {}), ("convert_image_dtype", (IMG * 1.5, "uint8"), {"saturate": True}),
    ("convert_image_dtype", (U8, "int16"), {}), ("central_crop", (IMG, 0.5), {}), ("central_crop", (BATCH, 0.7), {}),
    ("crop_to_bounding_box", (BATCH, 1, 2, 3, 4), {}), ("pad_to_bounding_box", (IMG, 1, 2, 8, 10), {}),
    ("resize_with_crop_or_pad", (IMG, 3, 11), {}), ("resize_with_crop_or_pad", (BATCH, 9, 4), {}),
    # float64 images: float32 results, nearest keeps float64 (eager ops compute float64 arrays in float64)
    ("resize", (IMG.astype("float64"), [3, 4]), {}), ("resize", (IMG.astype("float64"), [10, 9]), {"method": "nearest"}),
    ("flip_left_right", (IMG.astype("float64"),), {}), ("adjust_brightness", (IMG.astype("float64"), 0.2), {}),
    # the patchify step of keras.io's "ViT on small datasets": TensorFlow's [1, h, w, 1] lists
    ("extract_patches", (BATCH,), {"sizes": [1, 2, 3, 1], "strides": [1, 2, 3, 1], "rates": [1, 1, 1, 1],
                                   "padding": "VALID"}),
    ("extract_patches", (BATCH,), {"sizes": [1, 3, 3, 1], "strides": [1, 2, 3, 1], "rates": [1, 1, 1, 1],
                                   "padding": "SAME"}),
    ("extract_patches", (BATCH,), {"sizes": [1, 2, 2, 1], "strides": [1, 1, 1, 1], "rates": [1, 2, 3, 1],
                                   "padding": "VALID"}),
]


def _tf_arg(value):
    if isinstance(value, str):
        return rtf.dtypes.as_dtype(value)
    return rtf.constant(value) if isinstance(value, np.ndarray) else value


@pytest.mark.parametrize("fn,args,kwargs", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_matches_tensorflow(fn, args, kwargs):
    want = getattr(rtf.image, fn)(*[_tf_arg(a) for a in args], **kwargs).numpy()
    got = np.asarray(getattr(tf.image, fn)(*args, **kwargs))
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, got.shape, want.dtype, want.shape)
    # uint8 results may round one step apart where the float32 values sit on a half; TensorFlow's bicubic
    # kernel reads its weights from a 1024-entry table, a few 1e-4 off the exact Keys cubic.
    atol = 1.0 if got.dtype.kind in "iu" else 1e-3 if kwargs.get("method") == "bicubic" else 2e-5
    np.testing.assert_allclose(got.astype("float64"), want.astype("float64"), rtol=2e-5, atol=atol)


def test_resize_method_names_and_bad_arguments():
    assert tf.image.ResizeMethod.NEAREST_NEIGHBOR == "nearest"
    np.testing.assert_allclose(np.asarray(tf.image.resize(IMG, [3, 3], method=tf.image.ResizeMethod.BICUBIC)),
                               rtf.image.resize(IMG, [3, 3], method="bicubic").numpy(), atol=1e-3)
    with pytest.raises(ValueError, match="method must be one of .*Received: method='lanczos3'"):
        tf.image.resize(IMG, [2, 2], method="lanczos3")
    with pytest.raises(ValueError, match="must be 3-D .* or 4-D .*Received shape \\(7, 3\\)"):
        tf.image.flip_left_right(IMG[0])
    with pytest.raises(ValueError, match="central_fraction must be within \\(0, 1\\]"):
        tf.image.central_crop(IMG, 0.0)
    with pytest.raises(ValueError, match="does not fit a 5x7 image"):
        tf.image.crop_to_bounding_box(IMG, 2, 0, 4, 2)


@pytest.mark.parametrize("kwargs,error", [
    ({"sizes": [2, 2]}, "InvalidArgumentError"), ({"sizes": [2, 2, 2, 2]}, "UnimplementedError"),
    ({"padding": "valid"}, "InvalidArgumentError"), ({"images": IMG}, "InvalidArgumentError")])
def test_extract_patches_bad_arguments_raise_tensorflows_error_classes(kwargs, error):
    args = {"images": BATCH, "sizes": [1, 2, 2, 1], "strides": [1, 1, 1, 1], "rates": [1, 1, 1, 1],
            "padding": "VALID", **kwargs}
    with pytest.raises(Exception) as theirs:
        rtf.image.extract_patches(**{k: rtf.constant(v) if k == "images" else v for k, v in args.items()})
    with pytest.raises((ValueError, NotImplementedError)) as ours:   # tf.errors classes, also Python's
        tf.image.extract_patches(**args)
    assert type(theirs.value).__name__ == type(ours.value).__name__ == error


def test_random_augmentations_draw_within_their_ranges():
    flipped = np.asarray(tf.image.random_flip_left_right(np.repeat(BATCH[:1], 64, axis=0), seed=3))
    is_flipped = [bool(np.array_equal(f, BATCH[0, :, ::-1])) for f in flipped]
    assert all(is_flipped[i] or np.array_equal(flipped[i], BATCH[0]) for i in range(64))
    assert 10 < sum(is_flipped) < 54   # each image on its own coin
    bright = np.asarray(tf.image.random_brightness(IMG, 0.3)) - IMG
    assert np.ptp(bright) < 1e-6 and abs(bright.flat[0]) <= 0.3
    crop = np.asarray(tf.image.random_crop(BATCH, [2, 4, 4, 3]))
    assert crop.shape == (2, 4, 4, 3)
    assert any(np.array_equal(crop, BATCH[:, i:i + 4, j:j + 4]) for i in range(3) for j in range(5))
    contrast = np.asarray(tf.image.random_contrast(IMG, 0.5, 1.5))
    factor = (contrast - IMG.mean((0, 1))) / (IMG - IMG.mean((0, 1)))
    assert 0.5 <= float(np.median(factor)) < 1.5
    one = np.asarray(tf.image.stateless_random_crop(BATCH, [2, 3, 3, 3], seed=(1, 2)))
    np.testing.assert_array_equal(one, np.asarray(tf.image.stateless_random_crop(BATCH, [2, 3, 3, 3], seed=(1, 2))))
    np.testing.assert_array_equal(np.asarray(tf.image.stateless_random_brightness(IMG, 0.2, (1, 2))),
                                  np.asarray(tf.image.stateless_random_brightness(IMG, 0.2, seed=(1, 2))))
    hue = np.asarray(tf.image.stateless_random_hue(IMG, 0.1, seed=(4, 5)))
    assert hue.shape == IMG.shape and np.isfinite(hue).all()


def test_in_dataset_map_and_in_a_lambda_layer():
    # TensorFlow's "Data augmentation" tutorial: resize and rescale in dataset.map, augment in a Lambda layer.
    ds = tf.data.Dataset.from_tensor_slices((np.repeat(U8[None], 4, 0), np.arange(4))).map(
        lambda x, y: (tf.image.resize(tf.cast(x, tf.float32) / 255.0, [8, 8]), y)).batch(2)
    images, labels = next(iter(ds))
    assert tuple(images.shape) == (2, 8, 8, 3) and str(images.dtype) == "float32"
    np.testing.assert_allclose(np.asarray(images[0]), rtf.image.resize(U8 / 255.0, [8, 8]).numpy(), atol=1e-5)
    model = keras.Sequential([keras.Input((6, 8, 3)), keras.layers.Lambda(
        lambda x: tf.image.adjust_contrast(tf.image.flip_left_right(x), 2.0))])
    np.testing.assert_allclose(model.predict(BATCH, verbose=0),
                               rtf.image.adjust_contrast(rtf.image.flip_left_right(BATCH), 2.0).numpy(), atol=2e-5)


def test_psnr_as_a_metric_of_a_model_with_free_height_and_width():
    """keras.io's MIRNet: ``tf.image.psnr`` as a compiled metric of an ``Input([None, None, 3])`` model, whose
    traced output and target sizes are symbolic."""
    inputs = keras.Input(shape=[None, None, 3])
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1)(inputs))

    def peak_signal_noise_ratio(y_true, y_pred):
        return tf.image.psnr(y_pred, y_true, max_val=255.0)

    model.compile(optimizer="adam", loss="mse", metrics=[peak_signal_noise_ratio])
    x, y = BATCH, BATCH[::-1].copy()
    got = model.evaluate(x, y, verbose=0, return_dict=True)["peak_signal_noise_ratio"]
    want = float(np.mean(rtf.image.psnr(rtf.constant(model.predict(x, verbose=0)), rtf.constant(y), max_val=255.0)))
    np.testing.assert_allclose(got, want, rtol=1e-5)
