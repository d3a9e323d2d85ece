"""``tf.data``: ``Dataset`` is onnxforge's in-memory ``keras.utils.Dataset``, which ``fit`` accepts.

It has ``from_tensor_slices`` and the methods tutorials chain (``shuffle``, ``batch``, ``map``,
``prefetch``, ``cache``, ``take``, ``skip``, ``repeat``, ``filter``, ``unbatch``); iterating it yields
``EagerTensor`` batches. Readers of files and generators (``TFRecordDataset``, ``from_generator``) are not
here: load the data into arrays, or use a ``keras.utils.PyDataset``.

Example:
    >>> import numpy as np
    >>> ds = Dataset.from_tensor_slices((np.arange(4.0), np.arange(4))).batch(2).prefetch(AUTOTUNE)
    >>> [y.tolist() for _, y in ds]
    [[0, 1], [2, 3]]
"""
from __future__ import annotations

__all__ = ["Dataset", "AUTOTUNE", "experimental"]

import types

from ..utils.dataset import AUTOTUNE, Dataset

experimental = types.SimpleNamespace(AUTOTUNE=AUTOTUNE)


def __getattr__(name: str) -> None:
    raise AttributeError(f"onnxforge's tf.data has only Dataset (in memory: from_tensor_slices) and AUTOTUNE; "
                         f"tf.data.{name} is not supported. Load the data into NumPy arrays, or use a "
                         f"keras.utils.PyDataset.")
