"""Keras 3 layers that compile to ONNX.

Example:
    >>> from onnxforge import layers
    >>> x = layers.Input(shape=(8, 8, 3))
    >>> y = layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    >>> layers.GlobalAveragePooling2D()(y).shape
    (None, 4)
"""
from __future__ import annotations

from .activation_layers import ELU, LeakyReLU, ReLU, Softmax
from .base import InputSpec, Layer, clear_session
from .convolutional import Conv1D, Conv2D, Conv2DTranspose, DepthwiseConv2D, SeparableConv2D
from .core import Activation, Dense, Embedding
from .input_layer import Input, InputLayer
from .keras_tensor import KerasTensor, Node
from .merging import Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract
from .normalization import BatchNormalization, LayerNormalization
from .operators import OpCall, TensorOperator
from .pooling import (AveragePooling1D, AveragePooling2D, AvgPool1D, AvgPool2D, GlobalAveragePooling1D,
                      GlobalAveragePooling2D, GlobalAvgPool1D, GlobalAvgPool2D, GlobalMaxPool1D, GlobalMaxPool2D,
                      GlobalMaxPooling1D, GlobalMaxPooling2D, MaxPool1D, MaxPool2D, MaxPooling1D, MaxPooling2D)
from .regularization import Dropout, GaussianNoise
from .reshaping import Flatten, Permute, Reshape, UpSampling2D, ZeroPadding2D
from .serialization import deserialize, get_registered_object, serialize

# Recurrent layers live in their own package (one Scan per layer); re-exported so `layers.LSTM` works.
from .recurrent import (GRU, LSTM, RNN, Bidirectional, GRUCell, LSTMCell, Masking,  # noqa: E402
                        SimpleRNN, SimpleRNNCell, TimeDistributed)

Convolution1D, Convolution2D = Conv1D, Conv2D
Convolution2DTranspose, SeparableConvolution2D = Conv2DTranspose, SeparableConv2D

__all__ = [
    "Layer", "InputSpec", "KerasTensor", "Node", "Input", "InputLayer", "clear_session",
    "Dense", "Activation", "Embedding", "Flatten", "Reshape", "Permute", "ZeroPadding2D", "UpSampling2D",
    "Dropout", "GaussianNoise",
    "Conv1D", "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose",
    "Convolution1D", "Convolution2D", "Convolution2DTranspose", "SeparableConvolution2D",
    "MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D", "GlobalAveragePooling1D",
    "GlobalAveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "MaxPool1D", "MaxPool2D", "AvgPool1D",
    "AvgPool2D", "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalMaxPool1D", "GlobalMaxPool2D",
    "BatchNormalization", "LayerNormalization", "TensorOperator", "OpCall",
    "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate",
    "ReLU", "LeakyReLU", "ELU", "Softmax",
    "RNN", "SimpleRNN", "LSTM", "GRU", "SimpleRNNCell", "LSTMCell", "GRUCell", "Bidirectional", "TimeDistributed",
    "Masking",
    "serialize", "deserialize", "get_registered_object",
]
