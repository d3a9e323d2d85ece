"""Shrunk calls of keras.io vision pages (tests/keras_oracle/test_keras_io_vision_rest.py), written against
``tf`` and ``keras`` so that ``tf_oracle`` runs them under TensorFlow and the tests under onnxforge.
Each returns ``{name: array}``.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def vivit_uint8_frames(tf: Any, keras: Any) -> dict[str, np.ndarray]:
    """examples/vision/vivit: uint8 MedMNIST volumes through a ``@tf.function`` preprocessing map that
    ``convert_image_dtype``\\ s them to float32 (scaled by 255 because the argument stays uint8), and integer
    arguments of other widths, which a ``tf.function`` keeps too."""
    frames = (np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4) * 10).astype(np.uint8)
    labels = np.array([3, 7], np.uint8)

    @tf.function
    def preprocess(frames, label):
        return tf.image.convert_image_dtype(frames[..., tf.newaxis], tf.float32), tf.cast(label, tf.float32)

    batch = next(iter(tf.data.Dataset.from_tensor_slices((frames, labels)).map(preprocess).batch(2)))

    @tf.function
    def halve(x):
        return x // 2 + 1, tf.cast(x, tf.float32) / 2

    out = {"frames": np.asarray(batch[0]), "labels": np.asarray(batch[1])}
    for dtype in ("uint8", "int16"):
        half, scaled = halve(np.array([9, 255], dtype))
        out[f"{dtype}_half"], out[f"{dtype}_scaled"] = np.asarray(half), np.asarray(scaled)
        out[f"{dtype}_half_dtype"] = np.array(str(np.asarray(half).dtype))
    return out


def focalnet_shape_arguments(tf: Any, keras: Any) -> dict[str, np.ndarray]:
    """examples/vision/focal_modulation_network: a patch embedding returns ``tf.shape(x)[1]`` (and [2], [3])
    next to its tokens, and the blocks take them positionally (``block(x, height, width, channels)``) to
    ``tf.reshape`` back to maps; a layer keeps ``self.gates`` from its last call, read after ``model(images)``."""
    layers = keras.layers

    class Embed(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.proj = layers.Conv2D(4, 2, strides=2)
            self.flatten = layers.Reshape((-1, 4))

        def call(self, x):
            x = self.proj(x)
            return self.flatten(x), tf.shape(x)[1], tf.shape(x)[2], tf.shape(x)[3]

    class Block(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.mix = layers.Conv2D(5, 3, padding="same")

        def call(self, x, height, width, channels):
            maps = self.mix(tf.reshape(x, shape=(-1, height, width, channels)))
            self.gates = maps[..., 4:]
            return x + tf.reshape(maps[..., :4] * self.gates, shape=(-1, height * width, channels))

    class Net(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.embed, self.block = Embed(), Block()
            self.head = layers.Dense(3, activation="softmax")

        def call(self, x):
            x, height, width, channels = self.embed(x)
            x = self.block(x, height, width, channels)
            return self.head(layers.GlobalAveragePooling1D()(x))

    rng = np.random.default_rng(0)
    images = rng.uniform(size=(4, 6, 6, 2)).astype("float32")
    labels = np.array([0, 1, 2, 1])
    net = Net()
    net(images)
    net.set_weights([rng.normal(0, 0.3, np.shape(w)).astype("float32") for w in net.get_weights()])
    # Small weights and steps: no softmax saturates, where Keras on TensorFlow reads the logits under it.
    net.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
    out = {"predict": np.asarray(net.predict(images, verbose=0))}
    out["loss"] = np.asarray(net.fit(images, labels, batch_size=2, epochs=1, shuffle=False, verbose=0).history["loss"])
    net(images[:1])
    out["gates"] = np.asarray(net.block.gates)
    return out
