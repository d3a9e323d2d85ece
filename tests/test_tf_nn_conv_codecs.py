"""``tf.nn.conv2d`` / ``conv1d`` / ``conv3d`` / ``convolution`` and the ``tf.nn`` pools (``nn_fns``), and the
image codecs ``tf.image.decode_png`` ... (``image_codecs``), against real TensorFlow; the convolution's gradient
against torch's autograd."""
from __future__ import annotations

import io

import numpy as np
import pytest

import onnxforge as tf

rtf = pytest.importorskip("tensorflow")
Image = pytest.importorskip("PIL.Image")

RNG = np.random.default_rng(0)
X = RNG.normal(size=(2, 9, 10, 3)).astype("float32")
K = RNG.normal(size=(3, 3, 3, 4)).astype("float32")


@pytest.mark.parametrize("strides", [1, [2, 1], [1, 2, 2, 1]])
@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_conv2d_matches_tensorflow(strides, padding):
    want = rtf.nn.conv2d(X, K, strides=strides, padding=padding).numpy()
    np.testing.assert_allclose(tf.nn.conv2d(X, K, strides=strides, padding=padding), want, rtol=1e-5, atol=1e-5)


def test_dilated_nchw_1d_3d_and_convolution():
    want = rtf.nn.conv2d(X, K, 1, "SAME", dilations=2).numpy()
    np.testing.assert_allclose(tf.nn.conv2d(X, K, 1, "SAME", dilations=2), want, rtol=1e-5, atol=1e-5)
    nchw = np.transpose(X, (0, 3, 1, 2))
    got = tf.nn.conv2d(nchw, K, [1, 1, 2, 2], "VALID", data_format="NCHW")
    np.testing.assert_allclose(np.transpose(got, (0, 2, 3, 1)), rtf.nn.conv2d(X, K, 2, "VALID").numpy(), rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(tf.nn.conv1d(X[:, 0], K[0], 2, "SAME"), rtf.nn.conv1d(X[:, 0], K[0], 2, "SAME").numpy(),
                               rtol=1e-5, atol=1e-5)
    x3, k3 = X[..., None, :], K[:, :, None]
    np.testing.assert_allclose(tf.nn.conv3d(x3, k3, [1, 1, 1, 1, 1], "SAME"),
                               rtf.nn.conv3d(x3, k3, [1, 1, 1, 1, 1], "SAME").numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(tf.nn.convolution(X, K, padding="SAME"), rtf.nn.convolution(X, K, padding="SAME").numpy(),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fn", ["avg_pool2d", "max_pool2d", "avg_pool", "max_pool"])
@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_pools_match_tensorflow(fn, padding):
    want = getattr(rtf.nn, fn)(X, ksize=3, strides=2, padding=padding).numpy()
    np.testing.assert_allclose(getattr(tf.nn, fn)(X, ksize=3, strides=2, padding=padding), want, rtol=1e-6, atol=1e-6)
    want = getattr(rtf.nn, fn)(X, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding=padding).numpy()
    np.testing.assert_allclose(getattr(tf.nn, fn)(X, [1, 2, 2, 1], [1, 2, 2, 1], padding), want, rtol=1e-6)


def test_conv2d_gradient_matches_torch_autograd_and_finite_differences():
    torch = pytest.importorskip("torch")
    x, k = X[:1, :5, :5], K
    with tf.GradientTape() as tape:
        kv = tf.Variable(k)
        loss = tf.reduce_sum(tf.square(tf.nn.avg_pool2d(tf.nn.conv2d(x, kv, 1, "SAME"), 2, 2, "VALID")))
    got = np.asarray(tape.gradient(loss, kv))
    kt = torch.tensor(np.transpose(k, (3, 2, 0, 1)), requires_grad=True)
    out = torch.nn.functional.conv2d(torch.tensor(np.transpose(x, (0, 3, 1, 2))), kt, padding=1)
    torch.nn.functional.avg_pool2d(out, 2).square().sum().backward()
    np.testing.assert_allclose(got, np.transpose(kt.grad.numpy(), (2, 3, 1, 0)), rtol=1e-4, atol=1e-4)

    def f64(kernel):   # the same loss in float64 NumPy, through TensorFlow's float64 kernels
        y = rtf.nn.avg_pool2d(rtf.nn.conv2d(x.astype("float64"), kernel, 1, "SAME"), 2, 2, "VALID")
        return float(rtf.reduce_sum(y * y))

    eps, k64 = 1e-6, k.astype("float64")
    for index in [(0, 0, 0, 0), (1, 2, 1, 3), (2, 1, 2, 1)]:
        up, down = k64.copy(), k64.copy()
        up[index] += eps
        down[index] -= eps
        assert got[index] == pytest.approx((f64(up) - f64(down)) / (2 * eps), rel=1e-3, abs=1e-3)


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match=r"strides must be .* Received: strides=\[2, 2, 2, 2\]"):
        tf.nn.conv2d(X, K, [2, 2, 2, 2], "SAME")
    with pytest.raises(ValueError, match=r"padding must be 'SAME' or 'VALID'.*Received: padding=\[\[0, 0\]"):
        tf.nn.conv2d(X, K, 1, [[0, 0], [1, 1], [1, 1], [0, 0]])
    with pytest.raises(ValueError, match="data_format must be"):
        tf.nn.avg_pool2d(X, 2, 2, "SAME", data_format="NWC")


def _encoded(array, fmt):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


IMG = RNG.integers(0, 256, (12, 10, 3)).astype("uint8")
CASES = [("RGB", IMG), ("L", IMG[..., 0]), ("RGBA", np.concatenate([IMG, IMG[..., :1]], -1)),
         ("LA", IMG[..., :2])]


@pytest.mark.parametrize("mode,array", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("channels", [0, 1, 3, 4])
def test_png_decodes_as_tensorflow(mode, array, channels):
    data = _encoded(array, "PNG")
    want = rtf.image.decode_png(data, channels=channels).numpy()
    got = tf.image.decode_png(data, channels=channels)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(tf.io.decode_image(data, channels=channels), want)


def test_read_file_decode_resize_pipeline_and_float_decode(tmp_path):
    path = str(tmp_path / "x.png")
    Image.fromarray(IMG).save(path)
    want = rtf.image.resize(rtf.image.decode_png(rtf.io.read_file(path), channels=3), [6, 5]).numpy()
    got = tf.image.resize(tf.image.decode_png(tf.io.read_file(path), channels=3), [6, 5])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    floats = tf.image.decode_image(tf.io.read_file(path), dtype=tf.float32)
    np.testing.assert_allclose(floats, rtf.image.decode_image(rtf.io.read_file(path), dtype=rtf.float32).numpy(),
                               atol=1e-7)


def test_jpeg_bmp_gif_and_encoders():
    smooth = np.clip(np.add.outer(np.arange(12), np.arange(10))[..., None] * np.array([4, 8, 12]), 0, 255)
    jpeg = _encoded(smooth.astype("uint8"), "JPEG")
    got, want = tf.image.decode_jpeg(jpeg, channels=3), rtf.image.decode_jpeg(jpeg, channels=3).numpy()
    assert got.shape == want.shape and np.abs(got.astype(int) - want.astype(int)).max() <= 4   # see the module doc
    with pytest.raises(ValueError, match="JPEG does not support 4 channels"):
        tf.image.decode_jpeg(jpeg, channels=4)
    np.testing.assert_array_equal(tf.image.decode_bmp(_encoded(IMG, "BMP")), IMG)
    gif = _encoded(IMG[..., 0], "GIF")
    np.testing.assert_array_equal(tf.image.decode_gif(gif), rtf.image.decode_gif(gif).numpy())
    png = tf.image.encode_png(IMG)
    np.testing.assert_array_equal(rtf.image.decode_png(png.item()).numpy(), IMG)
    assert rtf.image.decode_jpeg(tf.image.encode_jpeg(IMG).item()).numpy().shape == IMG.shape


def test_codecs_refuse_what_they_cannot_read():
    with pytest.raises(ValueError, match="not an image file Pillow can decode"):
        tf.image.decode_png(b"not a png at all")
    with pytest.raises(ValueError, match="channels must be 0"):
        tf.image.decode_png(_encoded(IMG, "PNG"), channels=2)
    with pytest.raises(TypeError, match="expects a uint8 image"):
        tf.image.encode_png(IMG.astype("float32"))
