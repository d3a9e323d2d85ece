"""Layer (de)serialization in Keras 3's format, under its Keras path (``keras.layers.serialize``).

The registry and the functions live in ``onnxforge.keras_objects``, below the layers, so that activations
and other low modules can use them; this module names them where Keras users look for them.
"""
from __future__ import annotations

from ..keras_objects import (deserialize, get_registered_name, get_registered_object, register_keras_serializable,
                             serialize)

__all__ = ["serialize", "deserialize", "get_registered_object", "get_registered_name",
           "register_keras_serializable"]
