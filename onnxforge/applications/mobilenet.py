"""``keras.applications.mobilenet``: MobileNet (v1), depthwise-separable convolutions with a width multiplier
``alpha`` and a ``depth_multiplier`` for the depthwise convolutions.

Layer names, order and weights are Keras's, so Keras's ImageNet files
(``mobilenet_<alpha>_<rows>_tf[_no_top].h5``) and Keras-saved weights load.

Example:
    >>> model = MobileNet(input_shape=(32, 32, 3), alpha=0.25, weights=None, classes=3)
    >>> model.output.shape, model.name
    ((None, 3), 'mobilenet_0.25_32')
"""
from __future__ import annotations

__all__ = ["MobileNet", "preprocess_input", "decode_predictions"]

import warnings
from typing import Any

from .. import backend_config, layers
from ..models import Model
from . import imagenet_utils
from .imagenet_utils import decode_predictions  # one for every family, as in Keras

BASE_WEIGHT_PATH = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet/"
_ALPHA_TEXT = {1.0: "1_0", 0.75: "7_5", 0.5: "5_0", 0.25: "2_5"}
_SIZES = (128, 160, 192, 224)


def MobileNet(input_shape: Any = None, alpha: float = 1.0, depth_multiplier: int = 1, dropout: float = 1e-3,
              include_top: bool = True, weights: Any = "imagenet", input_tensor: Any = None,
              pooling: str | None = None, classes: int = 1000, classifier_activation: Any = "softmax",
              name: str | None = None) -> Model:
    """MobileNet (Howard et al., 2017), Keras's layer for layer.

    Args:
        input_shape: ``(rows, cols, 3)`` (channels_last); only with ``include_top=False`` may it differ from
            ``(224, 224, 3)`` for ImageNet weights; at least 32x32.
        alpha: width multiplier of every layer's filters (ImageNet weights: 0.25, 0.5, 0.75 or 1.0).
        depth_multiplier: output channels per input channel of the depthwise convolutions (1 for ImageNet).
        dropout: rate of the dropout before the classifier.
        include_top, weights, input_tensor, pooling, classes, classifier_activation, name: as every
            ``keras.applications`` builder (``name`` defaults to ``mobilenet_<alpha>_<rows>``).

    Returns:
        A functional ``Model``; its inputs want ``preprocess_input`` (scaled to [-1, 1]).

    Example:
        >>> m = MobileNet(input_shape=(32, 32, 3), alpha=0.25, include_top=False, pooling="avg", weights=None)
        >>> m.output.shape
        (None, 256)
    """
    imagenet_utils.check_weights_argument(weights, include_top, classes)
    first = backend_config.image_data_format() == "channels_first"
    default_size = 224
    if input_shape is not None:
        rows, cols = (input_shape[1], input_shape[2]) if first else (input_shape[0], input_shape[1])
        if rows == cols and rows in _SIZES:
            default_size = rows
    input_shape = imagenet_utils.obtain_input_shape(input_shape, default_size, 32,
                                                    backend_config.image_data_format(), include_top, weights)
    rows, cols = (input_shape[1], input_shape[2]) if first else (input_shape[0], input_shape[1])
    if weights == "imagenet":
        if depth_multiplier != 1:
            raise ValueError("If imagenet weights are being loaded, depth multiplier must be 1. "
                             f"Received: depth_multiplier={depth_multiplier}")
        if alpha not in _ALPHA_TEXT:
            raise ValueError("If imagenet weights are being loaded, alpha can be one of `0.25`, `0.50`, `0.75` "
                             f"or `1.0` only. Received: alpha={alpha}")
        if rows != cols or rows not in _SIZES:
            rows = 224   # the file (and the default name) of the 224x224 weights
            warnings.warn("`input_shape` is undefined or non-square, or `rows` is not in [128, 160, 192, 224]. "
                          "Weights for input shape (224, 224) will be loaded as the default.", stacklevel=2)
    img_input = imagenet_utils.input_layer(input_tensor, input_shape)

    x = _conv_block(img_input, 32, alpha, strides=(2, 2))
    # (pointwise filters, strides) of blocks 1..13: the stride-2 blocks halve the feature map.
    plan = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
    for block_id, (filters, stride) in enumerate(plan, start=1):
        x = _depthwise_conv_block(x, filters, alpha, depth_multiplier, strides=(stride, stride), block_id=block_id)

    if include_top:
        # The classifier is a 1x1 convolution on the pooled 1x1 map, as in the TF-slim checkpoint.
        x = layers.GlobalAveragePooling2D(keepdims=True)(x)
        x = layers.Dropout(dropout, name="dropout")(x)
        x = layers.Conv2D(classes, (1, 1), padding="same", name="conv_preds")(x)
        x = layers.Reshape((classes,), name="reshape_2")(x)
        imagenet_utils.validate_activation(classifier_activation, weights)
        x = layers.Activation(classifier_activation, name="predictions")(x)
    else:
        x = imagenet_utils.pooled_features(x, pooling)

    inputs = imagenet_utils.model_inputs(input_tensor, img_input)
    model = Model(inputs, x, name=name if name is not None else f"mobilenet_{alpha:0.2f}_{rows}")
    if weights == "imagenet":
        file_name = f"mobilenet_{_ALPHA_TEXT[alpha]}_{rows}_tf{'' if include_top else '_no_top'}.h5"
        imagenet_utils.load_application_weights(model, weights, file_name, BASE_WEIGHT_PATH + file_name)
    else:
        imagenet_utils.load_application_weights(model, weights, "", "")
    return model


def _channel_axis() -> int:
    return 1 if backend_config.image_data_format() == "channels_first" else -1


def _conv_block(inputs: Any, filters: int, alpha: float, kernel: tuple = (3, 3), strides: tuple = (1, 1)) -> Any:
    """The stem: convolution, batch normalization, ReLU6."""
    x = layers.Conv2D(int(filters * alpha), kernel, padding="same", use_bias=False, strides=strides,
                      name="conv1")(inputs)
    x = layers.BatchNormalization(axis=_channel_axis(), name="conv1_bn")(x)
    return layers.ReLU(6.0, name="conv1_relu")(x)


def _depthwise_conv_block(inputs: Any, pointwise_filters: int, alpha: float, depth_multiplier: int = 1,
                          strides: tuple = (1, 1), block_id: int = 1) -> Any:
    """Depthwise 3x3 then pointwise 1x1 convolution, each followed by batch normalization and ReLU6."""
    x = inputs
    if strides != (1, 1):
        # TF's 'same' for stride 2 pads bottom/right only; explicit padding keeps the weights' alignment.
        x = layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"conv_pad_{block_id}")(x)
    x = layers.DepthwiseConv2D((3, 3), padding="same" if strides == (1, 1) else "valid",
                               depth_multiplier=depth_multiplier, strides=strides, use_bias=False,
                               name=f"conv_dw_{block_id}")(x)
    x = layers.BatchNormalization(axis=_channel_axis(), name=f"conv_dw_{block_id}_bn")(x)
    x = layers.ReLU(6.0, name=f"conv_dw_{block_id}_relu")(x)
    x = layers.Conv2D(int(pointwise_filters * alpha), (1, 1), padding="same", use_bias=False, strides=(1, 1),
                      name=f"conv_pw_{block_id}")(x)
    x = layers.BatchNormalization(axis=_channel_axis(), name=f"conv_pw_{block_id}_bn")(x)
    return layers.ReLU(6.0, name=f"conv_pw_{block_id}_relu")(x)


def preprocess_input(x: Any, data_format: str | None = None) -> Any:
    """Scale RGB pixels (0-255) to [-1, 1], as MobileNet was trained.

    Example:
        >>> import numpy as np
        >>> preprocess_input(np.array([[0.0, 127.5, 255.0]], np.float32)).tolist()
        [[-1.0, 0.0, 1.0]]
    """
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")
