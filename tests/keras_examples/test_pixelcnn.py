"""keras.io "PixelCNN": a ``PixelConvLayer`` that wraps a ``Conv2D``, builds it in ``build`` and makes a
NumPy mask from ``ops.shape(self.conv.kernel)``, then in every ``call`` writes the masked kernel back with
``self.conv.kernel.assign(self.conv.kernel * self.mask)`` before convolving (a variable assignment inside
the traced forward pass); ``ResidualBlock`` layers around it joined by ``keras.layers.add``; binary
cross-entropy on binarized digits; then the page's sampling loop, one ``predict`` per pixel feeding each
sampled pixel back into the image. Shrunk to 7x7 digits (4x4 block means of MNIST), 16 filters and 2
residual blocks, so the sampling loop runs 49 predicts.

Tolerance: Keras's initial weights copied and nothing random in the model, so predictions, one Adam step
and the reloaded model agree with Keras to float32 order (rtol 1e-4). The sampling loop's uniform draws
come from one NumPy generator in both runs (the page draws them with ``keras.random.uniform``, which each
framework makes its own way), so the sampled images must be the same bits except where a probability lies
within float32 noise of its draw: at most one pixel of the 4 x 49 may differ. The masks are checked too: the
kernels written back are zero exactly where the page's mask is.
"""
from __future__ import annotations

import numpy as np

from .equal_weights import compare, load_in_keras, predict_fit_reload
from .harness import keras as real_keras, mnist, run_both, to_numpy, workdir

SIZE, FILTERS = 7, 16


def pixelcnn_layers(keras):
    layers, ops = keras.layers, keras.ops

    class PixelConvLayer(layers.Layer):
        def __init__(self, mask_type, **kwargs):
            super().__init__()
            self.mask_type = mask_type
            self.conv = layers.Conv2D(**kwargs)

        def build(self, input_shape):
            # Build the conv2d layer to initialize kernel variables
            self.conv.build(input_shape)
            # Use the initialized kernel to create the mask
            kernel_shape = ops.shape(self.conv.kernel)
            self.mask = np.zeros(shape=kernel_shape)
            self.mask[: kernel_shape[0] // 2, ...] = 1.0
            self.mask[kernel_shape[0] // 2, : kernel_shape[1] // 2, ...] = 1.0
            if self.mask_type == "B":
                self.mask[kernel_shape[0] // 2, kernel_shape[1] // 2, ...] = 1.0

        def call(self, inputs):
            self.conv.kernel.assign(self.conv.kernel * self.mask)
            return self.conv(inputs)

    class ResidualBlock(keras.layers.Layer):
        def __init__(self, filters, **kwargs):
            super().__init__(**kwargs)
            self.conv1 = keras.layers.Conv2D(filters=filters, kernel_size=1, activation="relu")
            self.pixel_conv = PixelConvLayer(mask_type="B", filters=filters // 2, kernel_size=3,
                                             activation="relu", padding="same")
            self.conv2 = keras.layers.Conv2D(filters=filters, kernel_size=1, activation="relu")

        def call(self, inputs):
            x = self.conv1(inputs)
            x = self.pixel_conv(x)
            x = self.conv2(x)
            return keras.layers.add([inputs, x])

    return {"PixelConvLayer": PixelConvLayer, "ResidualBlock": ResidualBlock}


def pixelcnn(keras, data, init, tmp_path, n_residual_blocks=2):
    layers = keras.layers
    keras.utils.set_random_seed(3)
    custom = pixelcnn_layers(keras)
    PixelConvLayer, ResidualBlock = custom["PixelConvLayer"], custom["ResidualBlock"]
    input_shape = (SIZE, SIZE, 1)

    inputs = keras.Input(shape=input_shape)
    x = PixelConvLayer(mask_type="A", filters=FILTERS, kernel_size=7, padding="same", activation="relu")(inputs)
    for _ in range(n_residual_blocks):
        x = ResidualBlock(filters=FILTERS)(x)
    for _ in range(2):
        x = PixelConvLayer(mask_type="B", filters=FILTERS, kernel_size=1, strides=1, activation="relu",
                           padding="valid")(x)
    out = layers.Conv2D(filters=1, kernel_size=1, strides=1, activation="sigmoid", padding="valid")(x)
    pixel_cnn = keras.Model(inputs, out)
    init(pixel_cnn)
    adam = keras.optimizers.Adam(learning_rate=0.0005)
    pixel_cnn.compile(optimizer=adam, loss="binary_crossentropy")

    results = predict_fit_reload(keras, pixel_cnn, data[:32], data[:32], workdir(keras, tmp_path), custom)
    history = pixel_cnn.fit(x=data, y=data, batch_size=16, epochs=2, validation_split=0.1, verbose=0)
    results["history"] = np.array(history.history["loss"] + history.history["val_loss"])
    first = [layer for layer in pixel_cnn.layers if isinstance(layer, PixelConvLayer)][0]
    results["kernel"] = np.array(to_numpy(first.conv.kernel))
    results["mask"] = np.array(first.mask)

    # Sampling: one pixel at a time, each prediction conditioned on the pixels already drawn.
    draws = np.random.default_rng(7)
    batch = 4
    pixels = np.zeros(shape=(batch,) + (pixel_cnn.input_shape)[1:], dtype="float32")
    batch, rows, cols, channels = pixels.shape
    for row in range(rows):
        for col in range(cols):
            for channel in range(channels):
                probs = pixel_cnn.predict(pixels, verbose=0)[:, row, col, channel]
                pixels[:, row, col, channel] = np.ceil(probs - draws.uniform(size=probs.shape))
    results["samples"] = pixels
    return results


def binarized_digits(n):
    (x, _), _ = mnist(n, 1)
    small = x[:, :28, :28].reshape(n, SIZE, 4, SIZE, 4).mean(axis=(2, 4))
    return np.where(small < (0.33 * 256), 0, 1).astype(np.float32)[..., None]


def test_pixelcnn(tmp_path):
    data = binarized_digits(160)
    want, got = run_both(pixelcnn, data, copy_weights=True, tmp_path=tmp_path)
    compare(want, got)
    load_in_keras(got["path"], data[:32], got["reloaded"], pixelcnn_layers(real_keras))
    np.testing.assert_allclose(got["history"], want["history"], rtol=2e-3, err_msg="two epochs of fit")
    for run in (want, got):
        assert run["kernel"].shape == (7, 7, 1, FILTERS)
        assert (run["kernel"][run["mask"] == 0] == 0).all(), "the mask written back by assign"
        assert (run["kernel"][run["mask"] == 1] != 0).mean() > 0.9
        assert set(np.unique(run["samples"])) <= {0.0, 1.0}
        assert 0.05 < run["samples"].mean() < 0.95, "the sampled images are neither blank nor full"
    np.testing.assert_array_equal(got["mask"], want["mask"])
    assert (got["samples"] != want["samples"]).sum() <= 1, "sampled pixels"
