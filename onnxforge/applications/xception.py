"""``keras.applications.xception``: Xception (Chollet, 2017), depthwise-separable convolutions with
residual connections.

Layer names, order and weights follow Keras 3.15 (its shortcut convolutions and BatchNorms are unnamed
there and get the same automatic names here), so Keras's ImageNet files
(``xception_weights_tf_dim_ordering_tf_kernels.h5``...) and Keras-saved weights load. Inputs are expected
scaled to [-1, 1] (``preprocess_input``, "tf" mode).

Example:
    >>> from onnxforge.applications import xception
    >>> xception.Xception(weights=None, include_top=False, input_shape=(71, 71, 3), pooling="max").output_shape
    (None, 2048)
"""
from __future__ import annotations

__all__ = ["Xception", "preprocess_input", "decode_predictions"]

from typing import Any

from .. import backend_config, layers
from ..models import Model
from . import imagenet_utils
from .imagenet_utils import decode_predictions  # one for every family, as in Keras

_BASE = "https://storage.googleapis.com/tensorflow/keras-applications/xception/"
WEIGHTS = (("xception_weights_tf_dim_ordering_tf_kernels.h5", "0a58e3b7378bc2990ea3b43d5981f1f6"),
           ("xception_weights_tf_dim_ordering_tf_kernels_notop.h5", "b0042744bf5b25fce3cb969f33bebb97"))


def _axis() -> int:
    return 1 if backend_config.image_data_format() == "channels_first" else -1


def _sep_bn(x: Any, filters: int, name: str) -> Any:
    x = layers.SeparableConv2D(filters, (3, 3), padding="same", use_bias=False, name=name)(x)
    return layers.BatchNormalization(axis=_axis(), name=f"{name}_bn")(x)


def _strided_block(x: Any, filters: tuple[int, int], block: int, first_relu: bool = True) -> Any:
    """Two separable convs and a stride-2 max pool, added to a 1x1 stride-2 projection of the input."""
    residual = layers.Conv2D(filters[1], (1, 1), strides=(2, 2), padding="same", use_bias=False)(x)
    residual = layers.BatchNormalization(axis=_axis())(residual)
    if first_relu:   # block2 follows the stem's own ReLU
        x = layers.Activation("relu", name=f"block{block}_sepconv1_act")(x)
    x = _sep_bn(x, filters[0], f"block{block}_sepconv1")
    x = layers.Activation("relu", name=f"block{block}_sepconv2_act")(x)
    x = _sep_bn(x, filters[1], f"block{block}_sepconv2")
    x = layers.MaxPooling2D((3, 3), strides=(2, 2), padding="same", name=f"block{block}_pool")(x)
    return layers.add([x, residual])


def Xception(include_top: bool = True, weights: Any = "imagenet", input_tensor: Any = None,
             input_shape: Any = None, pooling: str | None = None, classes: int = 1000,
             classifier_activation: Any = "softmax", name: str = "xception") -> Model:
    """Xception, ImageNet weights from Keras's cache by default.

    Args:
        include_top: end with the ``classes``-way classifier; else the feature map, or pooled by ``pooling``
            (``None``, ``"avg"``, ``"max"``).
        weights: ``"imagenet"``, ``None`` (random) or the path of a weights file.
        input_tensor: a tensor to build the model on, instead of a new ``Input``.
        input_shape: ``(height, width, 3)``, at least 71x71; only free when ``include_top=False``
            (the ImageNet top needs 299x299).
        classes, classifier_activation: the classifier's size and activation (``None`` for logits).
        name: the model's name.

    Example:
        >>> Xception(weights=None, include_top=False, input_shape=(71, 71, 3)).output_shape
        (None, 3, 3, 2048)
    """
    imagenet_utils.check_weights_argument(weights, include_top, classes)
    input_shape = imagenet_utils.obtain_input_shape(input_shape, default_size=299, min_size=71,
                                                    data_format=backend_config.image_data_format(),
                                                    require_flatten=include_top, weights=weights)
    img_input = imagenet_utils.input_layer(input_tensor, input_shape)

    x = layers.Conv2D(32, (3, 3), strides=(2, 2), use_bias=False, name="block1_conv1")(img_input)
    x = layers.BatchNormalization(axis=_axis(), name="block1_conv1_bn")(x)
    x = layers.Activation("relu", name="block1_conv1_act")(x)
    x = layers.Conv2D(64, (3, 3), use_bias=False, name="block1_conv2")(x)
    x = layers.BatchNormalization(axis=_axis(), name="block1_conv2_bn")(x)
    x = layers.Activation("relu", name="block1_conv2_act")(x)

    x = _strided_block(x, (128, 128), 2, first_relu=False)
    x = _strided_block(x, (256, 256), 3)
    x = _strided_block(x, (728, 728), 4)
    for block in range(5, 13):   # the middle flow: eight identity-shortcut blocks
        residual = x
        for i in (1, 2, 3):
            x = layers.Activation("relu", name=f"block{block}_sepconv{i}_act")(x)
            x = _sep_bn(x, 728, f"block{block}_sepconv{i}")
        x = layers.add([x, residual])
    x = _strided_block(x, (728, 1024), 13)
    for i, filters in ((1, 1536), (2, 2048)):
        x = _sep_bn(x, filters, f"block14_sepconv{i}")
        x = layers.Activation("relu", name=f"block14_sepconv{i}_act")(x)

    x = imagenet_utils.top_or_pooled(x, include_top, classes, classifier_activation, weights, pooling)

    model = Model(imagenet_utils.model_inputs(input_tensor, img_input), x, name=name)
    file_name, file_hash = WEIGHTS[0 if include_top else 1]
    imagenet_utils.load_application_weights(model, weights, file_name, _BASE + file_name, file_hash)
    return model


def preprocess_input(x: Any, data_format: str | None = None) -> Any:
    """Xception's "tf" preprocessing: pixels (0-255) scaled to [-1, 1].

    Example:
        >>> import numpy as np
        >>> preprocess_input(np.array([[[[0.0, 127.5, 255.0]]]], np.float32))[0, 0, 0].tolist()
        [-1.0, 0.0, 1.0]
    """
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")
