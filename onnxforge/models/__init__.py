"""Models: functional ``Model``, subclassed models, ``Sequential``.

Example:
    >>> from onnxforge.models import Sequential, Model, Input
    >>> from onnxforge.layers import Dense
    >>> model = Sequential([Input(shape=(4,)), Dense(3)])
    >>> model.count_params()
    15
"""
from __future__ import annotations

from ..layers.input_layer import Input, InputLayer
from .model import Model
from .sequential import Sequential
from ..saving.formats import load_model, save_model  # noqa: E402  (tf.keras.models.load_model)
from .cloning import clone_model

#: Keras 3's class name of functional models (configs say ``"Functional"``).
Functional = Model

__all__ = ["Model", "Sequential", "Input", "InputLayer", "Functional", "load_model", "save_model", "clone_model"]
