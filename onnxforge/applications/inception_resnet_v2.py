"""``keras.applications.inception_resnet_v2``: Inception-ResNet v2 (Szegedy et al., 2016).

An Inception stem, then three stacks of residual Inception blocks (10 ``block35`` at 35x35, 20 ``block17``
at 17x17, 10 ``block8`` at 8x8) with a reduction block between stacks. Each residual block adds its
branches' 1x1 projection, scaled by a constant, to its input: Keras's ``CustomScaleLayer``
(``keras.src.applications.inception_resnet_v2``), which .keras files name as Keras does. Layer names,
order and weights follow Keras 3.15 (the unnamed convolutions, BatchNorms and ReLUs get the automatic names
in Keras's creation order), so Keras's ImageNet files
(``inception_resnet_v2_weights_tf_dim_ordering_tf_kernels.h5``, read by layer order) and Keras-saved weights
load. Inputs are expected scaled to [-1, 1] (``preprocess_input``, "tf" mode).

Example:
    >>> from onnxforge.applications import inception_resnet_v2
    >>> model = inception_resnet_v2.InceptionResNetV2(  # doctest: +SKIP
    ...     weights=None, include_top=False, input_shape=(75, 75, 3), pooling="avg")
    >>> model.output_shape, model.count_params()  # doctest: +SKIP
    ((None, 1536), 54336736)
"""
from __future__ import annotations

__all__ = ["InceptionResNetV2", "CustomScaleLayer", "preprocess_input", "decode_predictions"]

from typing import Any

from .. import backend_config, layers
from ..keras_objects import register_builtin_classes
from ..models import Model
from . import imagenet_utils
from .imagenet_utils import decode_predictions  # one for every family, as in Keras

_BASE = "https://storage.googleapis.com/tensorflow/keras-applications/inception_resnet_v2/"
WEIGHTS = (("inception_resnet_v2_weights_tf_dim_ordering_tf_kernels.h5", "e693bd0210a403b3192acc6073ad2e96"),
           ("inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5", "d19885ff4a710c122648d3b5c3b684e4"))


def _axis() -> int:
    return 1 if backend_config.image_data_format() == "channels_first" else 3


class CustomScaleLayer(layers.Layer):
    """``inputs[0] + scale * inputs[1]``: a residual block's shortcut plus its scaled residual.

    Example:
        >>> x = layers.Input(shape=(4, 4, 8))
        >>> CustomScaleLayer(0.17)([x, x]).shape
        (None, 4, 4, 8)
    """

    _keras_module = "keras.src.applications.inception_resnet_v2"

    def __init__(self, scale: float, **kwargs: Any):
        super().__init__(**kwargs)
        self.scale = scale

    def call(self, inputs):
        shortcut, residual = inputs
        return shortcut + residual * self.scale

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


# Keras's .keras files name it by class: loading one must find onnxforge's.
register_builtin_classes({"CustomScaleLayer": CustomScaleLayer})


def conv2d_bn(x: Any, filters: int, kernel_size: Any, strides: Any = 1, padding: str = "same",
              activation: str | None = "relu", use_bias: bool = False, name: str | None = None) -> Any:
    """Conv, then (without a bias) a BatchNorm without scale, then ``activation``; ``name`` names them
    ``{name}``, ``{name}_bn`` and ``{name}_ac``, else all are named automatically."""
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=use_bias, name=name)(x)
    if not use_bias:
        x = layers.BatchNormalization(axis=_axis(), scale=False, name=f"{name}_bn" if name else None)(x)
    if activation is not None:
        x = layers.Activation(activation, name=f"{name}_ac" if name else None)(x)
    return x


#: block type -> its branches, each a list of (filters, kernel size), built in this (Keras's) order.
_BRANCHES = {
    "block35": (((32, 1),), ((32, 1), (32, 3)), ((32, 1), (48, 3), (64, 3))),
    "block17": (((192, 1),), ((128, 1), (160, (1, 7)), (192, (7, 1)))),
    "block8": (((192, 1),), ((192, 1), (224, (1, 3)), (256, (3, 1)))),
}


def inception_resnet_block(x: Any, scale: float, block_type: str, block_idx: int,
                           activation: str | None = "relu") -> Any:
    """One residual Inception block: its branches concatenated (``{block_type}_{block_idx}_mixed``), a 1x1
    conv with bias back to the input's channels (``..._conv``), ``x + scale * that``, then ``activation``
    (``..._ac``)."""
    if block_type not in _BRANCHES:
        raise ValueError('Unknown Inception-ResNet block type. Expects "block35", "block17" or "block8", '
                         f"but got: {block_type}")
    branches = []
    for convs in _BRANCHES[block_type]:
        y = x
        for filters, kernel_size in convs:
            y = conv2d_bn(y, filters, kernel_size)
        branches.append(y)
    prefix = f"{block_type}_{block_idx}"
    mixed = layers.Concatenate(axis=_axis(), name=f"{prefix}_mixed")(branches)
    up = conv2d_bn(mixed, x.shape[_axis()], 1, activation=None, use_bias=True, name=f"{prefix}_conv")
    x = CustomScaleLayer(scale)([x, up])
    if activation is not None:
        x = layers.Activation(activation, name=f"{prefix}_ac")(x)
    return x


def InceptionResNetV2(include_top: bool = True, weights: Any = "imagenet", input_tensor: Any = None,
                      input_shape: Any = None, pooling: str | None = None, classes: int = 1000,
                      classifier_activation: Any = "softmax", name: str = "inception_resnet_v2") -> Model:
    """Inception-ResNet v2, ImageNet weights from Keras's cache by default.

    Args:
        include_top: end with the ``classes``-way classifier; else the feature map, or pooled by ``pooling``
            (``None``, ``"avg"``, ``"max"``).
        weights: ``"imagenet"``, ``None`` (random) or the path of a weights file.
        input_tensor: a tensor to build the model on, instead of a new ``Input``.
        input_shape: ``(height, width, 3)``, at least 75x75; only free when ``include_top=False``
            (the ImageNet top needs 299x299).
        classes, classifier_activation: the classifier's size and activation (``None`` for logits).
        name: the model's name.

    Example:
        >>> InceptionResNetV2(weights=None, include_top=False, input_shape=(75, 75, 3)).output_shape  # doctest: +SKIP
        (None, 1, 1, 1536)
    """
    imagenet_utils.check_weights_argument(weights, include_top, classes)
    input_shape = imagenet_utils.obtain_input_shape(input_shape, default_size=299, min_size=75,
                                                    data_format=backend_config.image_data_format(),
                                                    require_flatten=include_top, weights=weights)
    img_input = imagenet_utils.input_layer(input_tensor, input_shape)

    # stem: to 35x35x192
    x = conv2d_bn(img_input, 32, 3, strides=2, padding="valid")
    x = conv2d_bn(x, 32, 3, padding="valid")
    x = conv2d_bn(x, 64, 3)
    x = layers.MaxPooling2D(3, strides=2)(x)
    x = conv2d_bn(x, 80, 1, padding="valid")
    x = conv2d_bn(x, 192, 3, padding="valid")
    x = layers.MaxPooling2D(3, strides=2)(x)
    # mixed_5b: 320 channels
    b0 = conv2d_bn(x, 96, 1)
    b1 = conv2d_bn(conv2d_bn(x, 48, 1), 64, 5)
    b2 = conv2d_bn(conv2d_bn(conv2d_bn(x, 64, 1), 96, 3), 96, 3)
    bp = conv2d_bn(layers.AveragePooling2D(3, strides=1, padding="same")(x), 64, 1)
    x = layers.Concatenate(axis=_axis(), name="mixed_5b")([b0, b1, b2, bp])
    for i in range(1, 11):
        x = inception_resnet_block(x, 0.17, "block35", i)
    # mixed_6a: to 17x17x1088
    b0 = conv2d_bn(x, 384, 3, strides=2, padding="valid")
    b1 = conv2d_bn(conv2d_bn(conv2d_bn(x, 256, 1), 256, 3), 384, 3, strides=2, padding="valid")
    bp = layers.MaxPooling2D(3, strides=2, padding="valid")(x)
    x = layers.Concatenate(axis=_axis(), name="mixed_6a")([b0, b1, bp])
    for i in range(1, 21):
        x = inception_resnet_block(x, 0.1, "block17", i)
    # mixed_7a: to 8x8x2080
    b0 = conv2d_bn(conv2d_bn(x, 256, 1), 384, 3, strides=2, padding="valid")
    b1 = conv2d_bn(conv2d_bn(x, 256, 1), 288, 3, strides=2, padding="valid")
    b2 = conv2d_bn(conv2d_bn(conv2d_bn(x, 256, 1), 288, 3), 320, 3, strides=2, padding="valid")
    bp = layers.MaxPooling2D(3, strides=2, padding="valid")(x)
    x = layers.Concatenate(axis=_axis(), name="mixed_7a")([b0, b1, b2, bp])
    for i in range(1, 10):
        x = inception_resnet_block(x, 0.2, "block8", i)
    # the last block: unscaled and no activation
    x = inception_resnet_block(x, 1.0, "block8", 10, activation=None)
    x = conv2d_bn(x, 1536, 1, name="conv_7b")

    x = imagenet_utils.top_or_pooled(x, include_top, classes, classifier_activation, weights, pooling)

    model = Model(imagenet_utils.model_inputs(input_tensor, img_input), x, name=name)
    file_name, file_hash = WEIGHTS[0 if include_top else 1]
    imagenet_utils.load_application_weights(model, weights, file_name, _BASE + file_name, file_hash)
    return model


def preprocess_input(x: Any, data_format: str | None = None) -> Any:
    """InceptionResNetV2's "tf" preprocessing: pixels (0-255) scaled to [-1, 1].

    Example:
        >>> import numpy as np
        >>> preprocess_input(np.array([[[[0.0, 127.5, 255.0]]]], np.float32))[0, 0, 0].tolist()
        [-1.0, 0.0, 1.0]
    """
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")
