"""keras.io "Image classification with modern MLP models": MLP-Mixer and FNet blocks behind a ``Patches``
layer (``ops.image.extract_patches``), a Dense patch embedding, ``GlobalAveragePooling1D``, AdamW and top-5
accuracy. FNet mixes tokens with ``keras.ops.fft2((x, zeros_like(x)))[0]`` (the real part of a 2-D FFT over
the patch and channel axes), which onnxforge builds from real/imaginary pairs (graphs have no complex dtype).

Tolerance: Keras's initial weights copied and Dropout at rate 0 and no random augmentation, so both
frameworks compute the same function: predictions, one AdamW step and the reloaded model agree with Keras
to float32 summation order (rtol 1e-4). The onnxforge ``.keras`` file also loads in real Keras.
"""
from __future__ import annotations

import numpy as np

from .equal_weights import compare, load_in_keras, predict_fit_reload
from .harness import keras as real_keras, run_both, workdir

IMAGE_SIZE, PATCH_SIZE, EMBED, CLASSES = 16, 4, 32, 10
NUM_PATCHES = (IMAGE_SIZE // PATCH_SIZE) ** 2


def mlp_layers(keras):
    """The tutorial's custom layers, defined against the given ``keras`` module (registered for loading)."""
    layers, ops = keras.layers, keras.ops

    class Patches(layers.Layer):
        def __init__(self, patch_size, **kwargs):
            super().__init__(**kwargs)
            self.patch_size = patch_size

        def call(self, x):
            patches = ops.image.extract_patches(x, self.patch_size)
            batch_size = ops.shape(patches)[0]
            num_patches = ops.shape(patches)[1] * ops.shape(patches)[2]
            patch_dim = ops.shape(patches)[3]
            return ops.reshape(patches, (batch_size, num_patches, patch_dim))

        def get_config(self):
            return {**super().get_config(), "patch_size": self.patch_size}

    class MLPMixerLayer(layers.Layer):
        def __init__(self, num_patches, hidden_units, dropout_rate, **kwargs):
            super().__init__(**kwargs)
            self.num_patches, self.hidden_units, self.dropout_rate = num_patches, hidden_units, dropout_rate
            self.mlp1 = keras.Sequential([layers.Dense(units=num_patches, activation="gelu"),
                                          layers.Dense(units=num_patches), layers.Dropout(rate=dropout_rate)])
            self.mlp2 = keras.Sequential([layers.Dense(units=num_patches, activation="gelu"),
                                          layers.Dense(units=hidden_units), layers.Dropout(rate=dropout_rate)])
            self.normalize = layers.LayerNormalization(epsilon=1e-6)

        def build(self, input_shape):
            return super().build(input_shape)

        def call(self, inputs):
            x = self.normalize(inputs)
            x_channels = ops.transpose(x, axes=(0, 2, 1))   # mix along patches
            mlp1_outputs = ops.transpose(self.mlp1(x_channels), axes=(0, 2, 1))
            x = mlp1_outputs + inputs
            x_patches = self.normalize(x)
            return x + self.mlp2(x_patches)   # mix along channels

        def get_config(self):
            return {**super().get_config(), "num_patches": self.num_patches,
                    "hidden_units": self.hidden_units, "dropout_rate": self.dropout_rate}

    class FNetLayer(layers.Layer):
        def __init__(self, embedding_dim, dropout_rate, **kwargs):
            super().__init__(**kwargs)
            self.embedding_dim, self.dropout_rate = embedding_dim, dropout_rate
            self.ffn = keras.Sequential([layers.Dense(units=embedding_dim, activation="gelu"),
                                         layers.Dropout(rate=dropout_rate), layers.Dense(units=embedding_dim)])
            self.normalize1 = layers.LayerNormalization(epsilon=1e-6)
            self.normalize2 = layers.LayerNormalization(epsilon=1e-6)

        def call(self, inputs):
            real_part = inputs
            im_part = ops.zeros_like(inputs)
            x = ops.fft2((real_part, im_part))[0]   # the real part of the 2-D FFT
            x = x + inputs
            x = self.normalize1(x)
            x = x + self.ffn(x)
            return self.normalize2(x)

        def get_config(self):
            return {**super().get_config(), "embedding_dim": self.embedding_dim, "dropout_rate": self.dropout_rate}

    return {"Patches": Patches, "MLPMixerLayer": MLPMixerLayer, "FNetLayer": FNetLayer}


def mlp_models(keras, data, init, tmp_path, block):
    x, y = data
    layers = keras.layers
    keras.utils.set_random_seed(3)
    custom = mlp_layers(keras)
    if block == "mixer":
        blocks = keras.Sequential([custom["MLPMixerLayer"](NUM_PATCHES, EMBED, 0.0) for _ in range(2)])
    else:
        blocks = keras.Sequential([custom["FNetLayer"](EMBED, 0.0) for _ in range(2)])

    inputs = layers.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
    normalization = layers.Normalization()
    normalization.adapt(x)
    patches = custom["Patches"](PATCH_SIZE)(normalization(inputs))
    h = layers.Dense(units=EMBED)(patches)
    h = blocks(h)
    representation = layers.GlobalAveragePooling1D()(h)
    representation = layers.Dropout(rate=0.0)(representation)
    logits = layers.Dense(CLASSES)(representation)
    model = keras.Model(inputs=inputs, outputs=logits)
    init(model)
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate=0.005, weight_decay=0.0001),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc"),
                           keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5-acc")])
    out = predict_fit_reload(keras, model, x, y, workdir(keras, tmp_path), custom)
    history = model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False)
    out["fit_loss"] = float(history.history["loss"][-1])
    return out


def _data():
    rng = np.random.default_rng(0)
    return (rng.uniform(0, 255, (32, IMAGE_SIZE, IMAGE_SIZE, 3)).astype("float32"),
            rng.integers(0, CLASSES, 32))


def _check(block, tmp_path):
    data = _data()
    want, got = run_both(mlp_models, data, copy_weights=True, tmp_path=tmp_path, block=block)
    compare(want, got)
    assert abs(got["fit_loss"] - want["fit_loss"]) <= 1e-3 * abs(want["fit_loss"]) + 1e-4
    load_in_keras(got["path"], data[0], got["reloaded"], mlp_layers(real_keras))


def test_mlp_mixer(tmp_path):
    _check("mixer", tmp_path)


def test_fnet(tmp_path):
    _check("fnet", tmp_path)
