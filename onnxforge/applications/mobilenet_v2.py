"""``keras.applications.mobilenet_v2``: MobileNetV2, inverted residual blocks with linear bottlenecks.

Layer names, order and weights are Keras's, so Keras's ImageNet files
(``mobilenet_v2_weights_tf_dim_ordering_tf_kernels_<alpha>_<rows>[_no_top].h5``) and Keras-saved weights load.

Example:
    >>> model = MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=3)
    >>> model.output.shape, model.name
    ((None, 3), 'mobilenetv2_0.35_32')
"""
from __future__ import annotations

__all__ = ["MobileNetV2", "preprocess_input", "decode_predictions"]

import warnings
from typing import Any

from .. import backend_config, layers
from ..layers.keras_tensor import KerasTensor
from ..models import Model
from . import imagenet_utils
from .imagenet_utils import decode_predictions  # one for every family, as in Keras

BASE_WEIGHT_PATH = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"
_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
_SIZES = (96, 128, 160, 192, 224)
# (filters, stride, expansion) of blocks 0..16.
_BLOCKS = ([(16, 1, 1), (24, 2, 6), (24, 1, 6), (32, 2, 6), (32, 1, 6), (32, 1, 6), (64, 2, 6)]
           + [(64, 1, 6)] * 3 + [(96, 1, 6)] * 3 + [(160, 2, 6), (160, 1, 6), (160, 1, 6), (320, 1, 6)])


def MobileNetV2(input_shape: Any = None, alpha: float = 1.0, include_top: bool = True, weights: Any = "imagenet",
                input_tensor: Any = None, pooling: str | None = None, classes: int = 1000,
                classifier_activation: Any = "softmax", name: str | None = None) -> Model:
    """MobileNetV2 (Sandler et al., 2018), Keras's layer for layer.

    Args:
        input_shape: ``(rows, cols, 3)`` (channels_last); only with ``include_top=False`` may it differ from
            ``(224, 224, 3)`` for ImageNet weights; at least 32x32.
        alpha: width multiplier (ImageNet weights: 0.35, 0.5, 0.75, 1.0, 1.3 or 1.4); above 1 it widens the
            last convolution too.
        include_top, weights, input_tensor, pooling, classes, classifier_activation, name: as every
            ``keras.applications`` builder (``name`` defaults to ``mobilenetv2_<alpha>_<rows>``).

    Returns:
        A functional ``Model``; its inputs want ``preprocess_input`` (scaled to [-1, 1]).

    Example:
        >>> m = MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, include_top=False, pooling="avg", weights=None)
        >>> m.output.shape
        (None, 1280)
    """
    imagenet_utils.check_weights_argument(weights, include_top, classes)
    first = backend_config.image_data_format() == "channels_first"
    _check_input_tensor(input_tensor, input_shape, first)
    # Where the image size is one of the ImageNet files', it is the default size.
    if input_shape is not None:
        rows, cols = (input_shape[1], input_shape[2]) if first else (input_shape[0], input_shape[1])
    elif isinstance(input_tensor, KerasTensor):
        rows, cols = (input_tensor.shape[2], input_tensor.shape[3]) if first else input_tensor.shape[1:3]
    else:
        rows = cols = 224
    default_size = rows if rows == cols and rows in _SIZES else 224
    input_shape = imagenet_utils.obtain_input_shape(input_shape, default_size, 32,
                                                    backend_config.image_data_format(), include_top, weights)
    rows, cols = (input_shape[1], input_shape[2]) if first else (input_shape[0], input_shape[1])
    if weights == "imagenet":
        if alpha not in _ALPHAS:
            raise ValueError("If imagenet weights are being loaded, alpha must be one of `0.35`, `0.50`, `0.75`, "
                             f"`1.0`, `1.3` or `1.4` only; Received: alpha={alpha}")
        if rows != cols or rows not in _SIZES:
            rows = 224   # the file (and the default name) of the 224x224 weights
            warnings.warn("`input_shape` is undefined or non-square, or `rows` is not in [96, 128, 160, 192, "
                          "224]. Weights for input shape (224, 224) will be loaded as the default.", stacklevel=2)
    img_input = imagenet_utils.input_layer(input_tensor, input_shape)
    axis = 1 if first else -1

    x = layers.Conv2D(_make_divisible(32 * alpha, 8), kernel_size=3, strides=(2, 2), padding="same",
                      use_bias=False, name="Conv1")(img_input)
    x = layers.BatchNormalization(axis=axis, epsilon=1e-3, momentum=0.999, name="bn_Conv1")(x)
    x = layers.ReLU(6.0, name="Conv1_relu")(x)
    for block_id, (filters, stride, expansion) in enumerate(_BLOCKS):
        x = _inverted_res_block(x, expansion=expansion, stride=stride, alpha=alpha, filters=filters,
                                block_id=block_id)
    # The last convolution is not narrowed by alpha < 1 (the paper's choice), only widened by alpha > 1.
    last_filters = _make_divisible(1280 * alpha, 8) if alpha > 1.0 else 1280
    x = layers.Conv2D(last_filters, kernel_size=1, use_bias=False, name="Conv_1")(x)
    x = layers.BatchNormalization(axis=axis, epsilon=1e-3, momentum=0.999, name="Conv_1_bn")(x)
    x = layers.ReLU(6.0, name="out_relu")(x)

    if include_top:
        x = layers.GlobalAveragePooling2D()(x)
        imagenet_utils.validate_activation(classifier_activation, weights)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    else:
        x = imagenet_utils.pooled_features(x, pooling)

    inputs = imagenet_utils.model_inputs(input_tensor, img_input)
    model = Model(inputs, x, name=name if name is not None else f"mobilenetv2_{alpha:0.2f}_{rows}")
    if weights == "imagenet":
        file_name = (f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{rows}"
                     f"{'' if include_top else '_no_top'}.h5")
        imagenet_utils.load_application_weights(model, weights, file_name, BASE_WEIGHT_PATH + file_name)
    else:
        imagenet_utils.load_application_weights(model, weights, "", "")
    return model


def _check_input_tensor(input_tensor: Any, input_shape: Any, first: bool) -> None:
    """Keras's checks when both ``input_tensor`` and ``input_shape`` are given: they must agree on the width."""
    if input_tensor is None or input_shape is None:
        return
    if not isinstance(input_tensor, KerasTensor):
        raise ValueError(f"input_tensor is not a Keras tensor; Received: input_tensor={input_tensor!r}")
    have, want = (input_tensor.shape[1], input_shape[1]) if first else (input_tensor.shape[2], input_shape[1])
    if have != want:
        raise ValueError(f"input_shape does not match input_tensor's width ({want} expected, channels "
                         f"{'first' if first else 'last'}); Received: input_tensor.shape={input_tensor.shape}, "
                         f"input_shape={input_shape}")


def _inverted_res_block(inputs: Any, expansion: int, stride: int, alpha: float, filters: int, block_id: int) -> Any:
    """Expand (1x1), depthwise 3x3, project (1x1, linear), with a residual add where the shapes allow."""
    axis = 1 if backend_config.image_data_format() == "channels_first" else -1
    in_channels = inputs.shape[axis]
    pointwise_filters = _make_divisible(int(filters * alpha), 8)
    x = inputs
    prefix = f"block_{block_id}_"
    if block_id:
        x = layers.Conv2D(expansion * in_channels, kernel_size=1, padding="same", use_bias=False, activation=None,
                          name=f"{prefix}expand")(x)
        x = layers.BatchNormalization(axis=axis, epsilon=1e-3, momentum=0.999, name=f"{prefix}expand_BN")(x)
        x = layers.ReLU(6.0, name=f"{prefix}expand_relu")(x)
    else:
        prefix = "expanded_conv_"   # block 0 has no expansion, and the checkpoint's name for it
    if stride == 2:
        x = layers.ZeroPadding2D(padding=imagenet_utils.correct_pad(x, 3), name=f"{prefix}pad")(x)
    x = layers.DepthwiseConv2D(kernel_size=3, strides=stride, activation=None, use_bias=False,
                               padding="same" if stride == 1 else "valid", name=f"{prefix}depthwise")(x)
    x = layers.BatchNormalization(axis=axis, epsilon=1e-3, momentum=0.999, name=f"{prefix}depthwise_BN")(x)
    x = layers.ReLU(6.0, name=f"{prefix}depthwise_relu")(x)
    x = layers.Conv2D(pointwise_filters, kernel_size=1, padding="same", use_bias=False, activation=None,
                      name=f"{prefix}project")(x)
    x = layers.BatchNormalization(axis=axis, epsilon=1e-3, momentum=0.999, name=f"{prefix}project_BN")(x)
    if in_channels == pointwise_filters and stride == 1:
        return layers.Add(name=f"{prefix}add")([inputs, x])
    return x


def _make_divisible(v: float, divisor: int, min_value: int | None = None) -> int:
    """``v`` rounded to a multiple of ``divisor`` (at least ``min_value``), never more than 10% below ``v``."""
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def preprocess_input(x: Any, data_format: str | None = None) -> Any:
    """Scale RGB pixels (0-255) to [-1, 1], as MobileNetV2 was trained.

    Example:
        >>> import numpy as np
        >>> preprocess_input(np.array([[0.0, 255.0]], np.float32)).tolist()
        [[-1.0, 1.0]]
    """
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")
