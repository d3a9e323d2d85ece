"""Models: functional ``Model``, subclassed models, ``Sequential``.

Example:
    >>> from onnxforge.models import Sequential, Model, Input
    >>> from onnxforge.layers import Dense
    >>> model = Sequential([Input(shape=(4,)), Dense(3)])
    >>> model.count_params()
    15
"""
from __future__ import annotations

from ..keras_objects import register_builtin_classes
from ..layers.input_layer import Input, InputLayer
from .model import Model
from .onnx_model import OnnxModel
from .sequential import Sequential
from .cloning import clone_model

#: Keras 3's class name of functional models (configs say ``"Functional"``).
Functional = Model

# load_model / save_model / model_from_json (tf.keras.models.load_model) are onnxforge.saving's functions, set here by
# onnxforge.saving when imported: saving sits above the models, which cannot import it.
__all__ = ["Model", "Sequential", "Input", "InputLayer", "Functional", "load_model", "save_model", "model_from_json",
           "clone_model"]

# The model classes, by their exported names, for ``deserialize`` / ``load_model`` (see ``onnxforge.layers``).
register_builtin_classes({"OnnxModel": OnnxModel, "Model": Model, "Sequential": Sequential, "Functional": Model,
                          "InputLayer": InputLayer})
