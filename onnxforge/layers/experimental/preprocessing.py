"""``tf.keras.layers.experimental.preprocessing``: TensorFlow 2.3-2.5's home of the preprocessing layers,
as aliases of the ``keras.layers`` classes.

Example:
    >>> from onnxforge.keras.layers.experimental.preprocessing import Normalization
    >>> import onnxforge
    >>> Normalization is onnxforge.keras.layers.Normalization
    True
"""
from __future__ import annotations

from .. import (CategoryEncoding, CenterCrop, Discretization, Hashing, IntegerLookup, Normalization, RandomContrast,
                RandomCrop, RandomFlip, RandomRotation, RandomTranslation, RandomZoom, Rescaling, Resizing,
                StringLookup, TextVectorization)

__all__ = ["CategoryEncoding", "CenterCrop", "Discretization", "Hashing", "IntegerLookup", "Normalization",
           "RandomContrast", "RandomCrop", "RandomFlip", "RandomRotation", "RandomTranslation", "RandomZoom",
           "Rescaling", "Resizing", "StringLookup", "TextVectorization"]
