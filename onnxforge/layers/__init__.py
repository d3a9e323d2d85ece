"""Keras 3 layers that compile to ONNX.

Example:
    >>> from onnxforge import layers
    >>> x = layers.Input(shape=(8, 8, 3))
    >>> y = layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    >>> layers.GlobalAveragePooling2D()(y).shape
    (None, 4)
"""
from __future__ import annotations

from .activation_layers import ELU, LeakyReLU, PReLU, ReLU, Softmax
from .base import InputSpec, Layer, clear_session
from .convolutional import Conv1D, Conv2D, Conv2DTranspose, DepthwiseConv2D, SeparableConv2D
from .core import Activation, Dense, Embedding, Identity
from .input_layer import Input, InputLayer
from .keras_tensor import KerasTensor, Node
from .merging import Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract
from .merge_functions import add, average, concatenate, dot, maximum, minimum, multiply, subtract
from .normalization import BatchNormalization, LayerNormalization
from .operators import OpCall, TensorOperator
from .pooling import (AveragePooling1D, AveragePooling2D, AvgPool1D, AvgPool2D, GlobalAveragePooling1D,
                      GlobalAveragePooling2D, GlobalAvgPool1D, GlobalAvgPool2D, GlobalMaxPool1D, GlobalMaxPool2D,
                      GlobalMaxPooling1D, GlobalMaxPooling2D, MaxPool1D, MaxPool2D, MaxPooling1D, MaxPooling2D)
from .regularization import Dropout, GaussianNoise
from .reshaping import Flatten, Permute, Reshape, UpSampling2D, ZeroPadding2D
from ..keras_objects import register_builtin_classes
from .serialization import deserialize, get_registered_object, serialize

from .einsum_dense import EinsumDense  # noqa: E402
from .lambda_layer import Lambda  # noqa: E402
from .reversible_embedding import ReversibleEmbedding  # noqa: E402
from .wrapper import Pipeline, Wrapper  # noqa: E402
from .spectral_normalization import SpectralNormalization  # noqa: E402
from .normalization_extra import GroupNormalization, RMSNormalization, UnitNormalization  # noqa: E402
from .preprocessing import (CategoryEncoding, CenterCrop, Discretization, HashedCrossing, Hashing, IntegerLookup,  # noqa: E402
                            Normalization, RandomBrightness, RandomContrast, RandomCrop, RandomFlip, RandomRotation,
                            RandomTranslation, RandomZoom, Rescaling, Resizing, StringLookup, TextVectorization,
                            RandomGrayscale, RandomInvert, RandomHue, RandomSaturation, RandomColorDegeneration,
                            RandomSharpness, Solarization, RandomPosterization, AutoContrast, Equalization,
                            RandomShear, MixUp, CutMix, RandomColorJitter, RandAugment, RandomErasing,
                            RandomGaussianBlur, RandomPerspective, RandomElasticTransform, AugMix, STFTSpectrogram,
                            MelSpectrogram, MaxNumBoundingBoxes, ContrastLimitedAdaptiveHistogramEqualization)
from .regularization_extra import (ActivityRegularization, AlphaDropout, GaussianDropout,  # noqa: E402
                                   SpatialDropout1D, SpatialDropout2D, SpatialDropout3D)
from .convolutional_nd import (Conv1DTranspose, Conv3D, Conv3DTranspose, DepthwiseConv1D,  # noqa: E402
                               SeparableConv1D)
from .pooling_nd import (AdaptiveAveragePooling1D, AdaptiveAveragePooling2D, AdaptiveAveragePooling3D,  # noqa: E402
                         AdaptiveMaxPooling1D, AdaptiveMaxPooling2D, AdaptiveMaxPooling3D, AveragePooling3D,
                         AvgPool3D, GlobalAveragePooling3D, GlobalAvgPool3D, GlobalMaxPool3D, GlobalMaxPooling3D,
                         MaxPool3D, MaxPooling3D)
from .reshaping_nd import (Cropping1D, Cropping2D, Cropping3D, RepeatVector, UpSampling1D,  # noqa: E402
                           UpSampling3D, ZeroPadding1D, ZeroPadding3D)
from .attention import (AdditiveAttention, Attention, GroupedQueryAttention, GroupQueryAttention,  # noqa: E402
                        MultiHeadAttention)

# Recurrent layers live in their own package (one Scan per layer); re-exported so `layers.LSTM` works.
from .recurrent import (GRU, LSTM, RNN, Bidirectional, GRUCell, LSTMCell, Masking,  # noqa: E402
                        SimpleRNN, SimpleRNNCell, StackedRNNCells, TimeDistributed)
from .recurrent.conv_lstm import ConvLSTM1D, ConvLSTM2D, ConvLSTM3D  # noqa: E402

Convolution1D, Convolution2D, Convolution3D = Conv1D, Conv2D, Conv3D
Convolution2DTranspose, SeparableConvolution2D = Conv2DTranspose, SeparableConv2D
Convolution1DTranspose, Convolution3DTranspose, SeparableConvolution1D = Conv1DTranspose, Conv3DTranspose, SeparableConv1D

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
    "RNN", "SimpleRNN", "LSTM", "GRU", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D", "SimpleRNNCell", "LSTMCell", "GRUCell", "StackedRNNCells", "Bidirectional", "TimeDistributed",
    "Masking", "EinsumDense", "MultiHeadAttention", "Attention", "AdditiveAttention", "GroupQueryAttention",
    "GroupedQueryAttention",
    "Identity", "Lambda", "ReversibleEmbedding", "Wrapper", "Pipeline", "SpectralNormalization", "Dot", "RepeatVector", "Cropping1D", "Cropping2D", "Cropping3D", "ZeroPadding1D",
    "ZeroPadding3D", "UpSampling1D", "UpSampling3D",
    "Conv3D", "Conv1DTranspose", "Conv3DTranspose", "DepthwiseConv1D", "SeparableConv1D", "Convolution3D",
    "Convolution1DTranspose", "Convolution3DTranspose", "SeparableConvolution1D",
    "MaxPooling3D", "AveragePooling3D", "GlobalAveragePooling3D", "GlobalMaxPooling3D", "MaxPool3D", "AvgPool3D",
    "GlobalAvgPool3D", "GlobalMaxPool3D", "AdaptiveAveragePooling1D", "AdaptiveAveragePooling2D",
    "AdaptiveAveragePooling3D", "AdaptiveMaxPooling1D", "AdaptiveMaxPooling2D", "AdaptiveMaxPooling3D",
    "PReLU", "GroupNormalization", "UnitNormalization", "RMSNormalization", "ActivityRegularization",
    "AlphaDropout", "GaussianDropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
    "Normalization", "Rescaling", "Resizing", "CenterCrop", "CategoryEncoding", "Discretization", "Hashing",
    "HashedCrossing", "StringLookup", "IntegerLookup", "TextVectorization", "RandomFlip", "RandomRotation", "RandomZoom",
    "RandomTranslation", "RandomContrast", "RandomBrightness", "RandomCrop", "RandomGrayscale", "RandomInvert",
    "RandomHue", "RandomSaturation", "RandomColorDegeneration", "RandomSharpness", "Solarization",
    "RandomPosterization", "AutoContrast", "Equalization", "RandomShear", "MixUp", "CutMix", "RandomColorJitter",
    "RandAugment", "RandomErasing", "RandomGaussianBlur", "RandomPerspective", "RandomElasticTransform", "AugMix",
    "STFTSpectrogram", "MelSpectrogram", "MaxNumBoundingBoxes", "ContrastLimitedAdaptiveHistogramEqualization",
    "add", "subtract", "multiply", "average", "maximum", "minimum", "concatenate", "dot",
    "serialize", "deserialize", "get_registered_object",
]

# onnxforge's own layers, by their exported names, for ``deserialize`` / ``load_model`` (the registry sits
# below the layers, in ``onnxforge.keras_objects``, so it never imports them).
register_builtin_classes({name: obj for name, obj in dict(globals()).items()
                          if name in __all__ and isinstance(obj, type) and issubclass(obj, Layer)})

# tf.keras 2's `layers.experimental.preprocessing.Rescaling` ... (aliases; imported last: it reads this module).
from . import experimental  # noqa: E402
