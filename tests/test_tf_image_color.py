"""``tf.image``'s colour spaces, ``psnr``, ``total_variation``, ``image_gradients`` and ``resize(method="area")``
(``onnxforge/tf_compat/image_color.py``, ``image_fns.py``) against TensorFlow: keras.io's ESPCN
super-resolution example trains on ``rgb_to_yuv``'s Y channel, downsampled with ``method="area"``, and
reports PSNR."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf
from onnxforge import keras

rtf = pytest.importorskip("tensorflow")

RNG = np.random.default_rng(1)
IMG = RNG.uniform(0, 1, (5, 7, 3)).astype("float32")
BATCH = RNG.uniform(0, 1, (2, 6, 8, 3)).astype("float32")
OTHER = RNG.uniform(0, 1, (2, 6, 8, 3)).astype("float32")
U8 = (BATCH * 255).astype("uint8")
U8_OTHER = (OTHER * 255).astype("uint8")

CASES = [
    ("rgb_to_yuv", (BATCH,)), ("yuv_to_rgb", (IMG,)), ("rgb_to_yiq", (IMG,)), ("yiq_to_rgb", (BATCH,)),
    ("rgb_to_hsv", (BATCH,)), ("hsv_to_rgb", (IMG,)), ("total_variation", (BATCH,)), ("total_variation", (IMG,)),
    ("psnr", (BATCH, OTHER, 1.0)), ("psnr", (IMG, IMG * 0.9, 2.0)), ("psnr", (U8, U8_OTHER, 255)),
    ("psnr", (IMG, IMG, 1.0)),
]


@pytest.mark.parametrize("fn,args", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_matches_tensorflow(fn, args):
    want = getattr(rtf.image, fn)(*[rtf.constant(a) if isinstance(a, np.ndarray) else a for a in args]).numpy()
    got = np.asarray(getattr(tf.image, fn)(*args))
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, got.shape, want.dtype, want.shape)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("images,size", [(IMG, (3, 4)), (BATCH, (4, 3)), (U8, (3, 3)), (IMG, (8, 9)),
                                         (BATCH, (6, 8))])
def test_area_resize_matches_tensorflow(images, size):
    want = rtf.image.resize(images, size, method="area").numpy()
    got = np.asarray(tf.image.resize(images, size, method=tf.image.ResizeMethod.AREA))
    assert got.dtype == want.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4 if images is U8 else 1e-5)


def test_image_gradients_match_tensorflow():
    for got, want in zip(tf.image.image_gradients(BATCH), rtf.image.image_gradients(rtf.constant(BATCH))):
        np.testing.assert_allclose(np.asarray(got), want.numpy(), atol=1e-6)


def test_in_dataset_map_and_in_a_model():
    # ESPCN's input pipeline: the Y channel of the YUV image, shrunk by area averaging.
    def process_input(image):
        y, _, _ = tf.split(tf.image.rgb_to_yuv(image), 3, axis=len(image.shape) - 1)
        return tf.image.resize(y, [3, 4], method="area")

    ds = tf.data.Dataset.from_tensor_slices(BATCH).batch(2).map(process_input)
    got = np.asarray(next(iter(ds)))
    y = rtf.split(rtf.image.rgb_to_yuv(BATCH), 3, axis=3)[0]
    np.testing.assert_allclose(got, rtf.image.resize(y, [3, 4], method="area").numpy(), atol=1e-5)
    inputs = keras.Input((6, 8, 3))
    luma = keras.layers.Lambda(lambda x: tf.image.rgb_to_yuv(x)[..., :1])(inputs)
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: tf.image.psnr(x, x * 0.5, 1.0))(luma))
    want = rtf.image.psnr(y, y * 0.5, 1.0).numpy()
    np.testing.assert_allclose(model.predict(BATCH, verbose=0), want, rtol=1e-5)


def test_bad_arguments_name_the_function_and_value():
    with pytest.raises(TypeError, match="rgb_to_yuv: 'images' must be a float tensor .*Received: dtype=uint8"):
        tf.image.rgb_to_yuv(U8)
    with pytest.raises(ValueError, match="rgb_to_yiq: 'images' must have 3 channels .*images.shape=\\(2, 6, 8, 1\\)"):
        tf.image.rgb_to_yiq(BATCH[..., :1])
    with pytest.raises(ValueError, match="psnr: 'a' and 'b' must be images of one shape"):
        tf.image.psnr(BATCH, IMG, 1.0)
    with pytest.raises(ValueError, match="image_gradients: 'image' must be 4-D"):
        tf.image.image_gradients(IMG)
