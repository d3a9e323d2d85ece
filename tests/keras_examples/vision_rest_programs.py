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
