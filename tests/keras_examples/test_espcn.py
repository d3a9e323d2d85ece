"""keras.io "Image Super-Resolution using an Efficient Sub-Pixel CNN": four ``Conv2D`` (orthogonal
initializer, relu, same padding) on inputs of any size (``Input((None, None, 1))``), then the page's
``DepthToSpace`` layer (``ops.reshape`` with the run-time shape, ``ops.transpose``, ``ops.reshape``), an
``ESPCNCallback`` computing PSNR from each validation batch's loss (``on_test_batch_end``), EarlyStopping
and a ModelCheckpoint of the best model whose weights are loaded back, then ``predict`` on a larger image.
A second variant does the upscaling with ``keras.ops.depth_to_space`` in a custom layer.

Tolerance: Keras's initial weights copied and no randomness (``shuffle=False``): predictions, one Adam
step, the reloaded model, the per-epoch losses and the callback's PSNR agree with Keras to float32 order.
The onnxforge ``.keras`` file also loads in real Keras.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from .equal_weights import compare, load_in_keras, predict_fit_reload
from .harness import keras as real_keras, run_both, to_numpy, workdir

UPSCALE = 3


def espcn_layers(keras):
    """The page's ``DepthToSpace`` and a ``keras.ops.depth_to_space`` variant, against ``keras``."""
    ops = keras.ops

    class DepthToSpace(keras.layers.Layer):
        def __init__(self, block_size, **kwargs):
            super().__init__(**kwargs)
            self.block_size = block_size

        def call(self, input):
            batch, height, width, depth = ops.shape(input)
            depth = depth // (self.block_size**2)
            x = ops.reshape(input, [batch, height, width, self.block_size, self.block_size, depth])
            x = ops.transpose(x, [0, 1, 3, 2, 4, 5])
            return ops.reshape(x, [batch, height * self.block_size, width * self.block_size, depth])

        def get_config(self):
            return {**super().get_config(), "block_size": self.block_size}

    class OpsDepthToSpace(DepthToSpace):
        def call(self, input):
            return ops.depth_to_space(input, self.block_size)

    return {"DepthToSpace": DepthToSpace, "OpsDepthToSpace": OpsDepthToSpace}


def espcn(keras, data, init, tmp_path, variant):
    low, high, big = data
    layers = keras.layers
    keras.utils.set_random_seed(11)
    custom = espcn_layers(keras)
    folder = workdir(keras, tmp_path)

    class ESPCNCallback(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epoch_psnr = []

        def on_epoch_begin(self, epoch, logs=None):
            self.psnr = []

        def on_epoch_end(self, epoch, logs=None):
            self.epoch_psnr.append(float(np.mean(self.psnr)))

        def on_test_batch_end(self, batch, logs=None):
            self.psnr.append(10 * math.log10(1 / logs["loss"]))

    conv_args = {"activation": "relu", "kernel_initializer": "orthogonal", "padding": "same"}
    inputs = keras.Input(shape=(None, None, 1))
    x = layers.Conv2D(16, 5, **conv_args)(inputs)
    x = layers.Conv2D(16, 3, **conv_args)(x)
    x = layers.Conv2D(8, 3, **conv_args)(x)
    x = layers.Conv2D(1 * (UPSCALE**2), 3, **conv_args)(x)
    outputs = custom[variant](UPSCALE)(x)
    model = keras.Model(inputs, outputs)
    init(model)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.001), loss=keras.losses.MeanSquaredError())
    out = predict_fit_reload(keras, model, low, high, folder, custom)

    checkpoint = str(folder / "checkpoint.keras")
    psnr = ESPCNCallback()
    callbacks = [psnr, keras.callbacks.EarlyStopping(monitor="loss", patience=10),
                 keras.callbacks.ModelCheckpoint(filepath=checkpoint, save_weights_only=False, monitor="loss",
                                                 mode="min", save_best_only=True)]
    history = model.fit(low[:6], high[:6], epochs=2, batch_size=2, callbacks=callbacks, shuffle=False,
                        validation_data=(low[6:], high[6:]), verbose=0)
    model.load_weights(checkpoint)
    for i, (loss, val) in enumerate(zip(history.history["loss"], history.history["val_loss"])):
        out[f"loss{i}"], out[f"val_loss{i}"], out[f"psnr{i}"] = float(loss), float(val), psnr.epoch_psnr[i]
    out["upscaled"] = np.asarray(to_numpy(model.predict(big, verbose=0)))
    return out


@pytest.mark.parametrize("variant", ["DepthToSpace", "OpsDepthToSpace"])
def test_espcn(tmp_path, variant):
    rng = np.random.default_rng(2)
    high = rng.uniform(0, 1, (8, 12, 12, 1)).astype("float32")
    low = high.reshape(8, 4, 3, 4, 3, 1).mean(axis=(2, 4))   # a 3x box downscale of each image
    big = rng.uniform(0, 1, (1, 5, 7, 1)).astype("float32")   # another size: the model is size-agnostic
    want, got = run_both(espcn, (low, high, big), copy_weights=True, tmp_path=tmp_path, variant=variant)
    compare(want, got)
    for key in ("loss0", "loss1", "val_loss0", "val_loss1", "psnr0", "psnr1"):
        assert abs(got[key] - want[key]) <= 1e-4 * abs(want[key]) + 1e-6, (key, got[key], want[key])
    assert got["upscaled"].shape == (1, 15, 21, 1)
    np.testing.assert_allclose(got["upscaled"], want["upscaled"], rtol=1e-4, atol=1e-5)
    load_in_keras(got["path"], low, got["reloaded"], espcn_layers(real_keras))
