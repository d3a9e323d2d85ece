"""``tf.keras.layers.experimental``: TensorFlow 2.x's names for layers that later left "experimental"
(``EinsumDense``, and the ``preprocessing`` layers). Keras 3 dropped the namespace; onnxforge keeps it as
aliases so tf.keras 2 code runs unchanged. Each name is the same class as its ``keras.layers`` one.

Example:
    >>> import onnxforge as tf
    >>> tf.keras.layers.experimental.preprocessing.Rescaling is tf.keras.layers.Rescaling
    True
"""
from __future__ import annotations

from .. import EinsumDense
from . import preprocessing

__all__ = ["EinsumDense", "preprocessing"]
