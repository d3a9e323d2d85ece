"""``keras.applications.mobilenet_v3``: MobileNetV3Small and MobileNetV3Large, inverted residual blocks with
squeeze-and-excitation and hard-swish, and the rescaling to [-1, 1] inside the model.

Layer names, order and weights are Keras's, so Keras's ImageNet files
(``weights_mobilenet_v3_<small|large>[_minimalistic]_224_<alpha>_float[_no_top_v2].h5``) and Keras-saved weights
load. ``preprocess_input`` is the identity: the model rescales its 0-255 inputs itself (a ``Rescaling`` layer,
unless ``include_preprocessing=False``).

Example:
    >>> model = MobileNetV3Small(input_shape=(32, 32, 3), alpha=0.75, weights=None, classes=3)
    >>> model.output.shape, model.name
    ((None, 3), 'MobileNetV3Small')
"""
from __future__ import annotations

__all__ = ["MobileNetV3Small", "MobileNetV3Large", "preprocess_input", "decode_predictions"]

import warnings
from typing import Any, Callable

from .. import backend_config, layers
from ..layers.keras_tensor import KerasTensor
from ..models import Model
from . import imagenet_utils
from .imagenet_utils import decode_predictions  # one for every family, as in Keras

BASE_WEIGHT_PATH = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v3/"
# Keras's md5 of each ImageNet file: (with top, without top).
WEIGHTS_HASHES = {
    "large_224_0.75_float": ("765b44a33ad4005b3ac83185abf1d0eb", "40af19a13ebea4e2ee0c676887f69a2e"),
    "large_224_1.0_float": ("59e551e166be033d707958cf9e29a6a7", "07fb09a5933dd0c8eaafa16978110389"),
    "large_minimalistic_224_1.0_float": ("675e7b876c45c57e9e63e6d90a36599c", "ec5221f64a2f6d1ef965a614bdae7973"),
    "small_224_0.75_float": ("cb65d4e5be93758266aa0a7f2c6708b7", "ebdb5cc8e0b497cd13a7c275d475c819"),
    "small_224_1.0_float": ("8768d4c2e7dee89b9d02b2d03d65d862", "d3e8ec802a04aa4fc771ee12a9a9b836"),
    "small_minimalistic_224_1.0_float": ("99cd97fb2fcdad2bf028eb838de69e37", "cde8136e733e811080d9fcd8a252f7e4"),
}
# Blocks as (expansion, filters, kernel, stride, squeeze-excite, activation); kernel "k", "se" and "act" are
# the variant's (5 / 0.25 / hard-swish, or 3 / none / ReLU when minimalistic), "relu" is ReLU always.
_SMALL = [(1, 16, 3, 2, "se", "relu"), (72 / 16, 24, 3, 2, None, "relu"), (88 / 24, 24, 3, 1, None, "relu"),
          (4, 40, "k", 2, "se", "act"), (6, 40, "k", 1, "se", "act"), (6, 40, "k", 1, "se", "act"),
          (3, 48, "k", 1, "se", "act"), (3, 48, "k", 1, "se", "act"), (6, 96, "k", 2, "se", "act"),
          (6, 96, "k", 1, "se", "act"), (6, 96, "k", 1, "se", "act")]
_LARGE = [(1, 16, 3, 1, None, "relu"), (4, 24, 3, 2, None, "relu"), (3, 24, 3, 1, None, "relu"),
          (3, 40, "k", 2, "se", "relu"), (3, 40, "k", 1, "se", "relu"), (3, 40, "k", 1, "se", "relu"),
          (6, 80, 3, 2, None, "act"), (2.5, 80, 3, 1, None, "act"), (2.3, 80, 3, 1, None, "act"),
          (2.3, 80, 3, 1, None, "act"), (6, 112, 3, 1, "se", "act"), (6, 112, 3, 1, "se", "act"),
          (6, 160, "k", 2, "se", "act"), (6, 160, "k", 1, "se", "act"), (6, 160, "k", 1, "se", "act")]


def MobileNetV3Small(input_shape: Any = None, alpha: float = 1.0, minimalistic: bool = False,
                     include_top: bool = True, weights: Any = "imagenet", input_tensor: Any = None,
                     classes: int = 1000, pooling: str | None = None, dropout_rate: float = 0.2,
                     classifier_activation: Any = "softmax", include_preprocessing: bool = True,
                     name: str = "MobileNetV3Small") -> Model:
    """MobileNetV3-Small (Howard et al., 2019), Keras's layer for layer.

    Args:
        input_shape: ``(rows, cols, 3)`` (channels_last), any size from 32x32 (the model pools globally);
            free height and width by default.
        alpha: width multiplier (ImageNet weights: 0.75 or 1.0; 1.0 when minimalistic).
        minimalistic: no squeeze-and-excitation, no hard-swish, 3x3 kernels only.
        dropout_rate: rate of the dropout before the logits (none when 0).
        include_preprocessing: rescale 0-255 inputs to [-1, 1] inside the model.
        include_top, weights, input_tensor, classes, pooling, classifier_activation, name: as every
            ``keras.applications`` builder.

    Returns:
        A functional ``Model`` that takes 0-255 pixels (unless ``include_preprocessing=False``).

    Example:
        >>> m = MobileNetV3Small(input_shape=(32, 32, 3), include_top=False, pooling="avg", weights=None)
        >>> m.output.shape
        (None, 576)
    """
    return _mobilenet_v3(_SMALL, 1024, "small", input_shape, alpha, minimalistic, include_top, weights, input_tensor,
                         classes, pooling, dropout_rate, classifier_activation, include_preprocessing, name)


def MobileNetV3Large(input_shape: Any = None, alpha: float = 1.0, minimalistic: bool = False,
                     include_top: bool = True, weights: Any = "imagenet", input_tensor: Any = None,
                     classes: int = 1000, pooling: str | None = None, dropout_rate: float = 0.2,
                     classifier_activation: Any = "softmax", include_preprocessing: bool = True,
                     name: str = "MobileNetV3Large") -> Model:
    """MobileNetV3-Large (Howard et al., 2019), Keras's layer for layer; arguments as ``MobileNetV3Small``.

    Example:
        >>> m = MobileNetV3Large(input_shape=(32, 32, 3), minimalistic=True, include_top=False, weights=None)
        >>> m.output.shape
        (None, 1, 1, 960)
    """
    return _mobilenet_v3(_LARGE, 1280, "large", input_shape, alpha, minimalistic, include_top, weights, input_tensor,
                         classes, pooling, dropout_rate, classifier_activation, include_preprocessing, name)


def _mobilenet_v3(blocks: list, last_point_ch: int, model_type: str, input_shape: Any, alpha: float,
                  minimalistic: bool, include_top: bool, weights: Any, input_tensor: Any, classes: int,
                  pooling: str | None, dropout_rate: float, classifier_activation: Any, include_preprocessing: bool,
                  name: str | None) -> Model:
    imagenet_utils.check_weights_argument(weights, include_top, classes)
    first = backend_config.image_data_format() == "channels_first"
    input_shape = _input_shape(input_tensor, input_shape, first)
    rows, cols = (input_shape[1], input_shape[2]) if first else (input_shape[0], input_shape[1])
    if rows and cols and (rows < 32 or cols < 32):
        raise ValueError(f"Input size must be at least 32x32; Received: input_shape={input_shape}")
    if weights == "imagenet":
        if alpha not in ((1.0,) if minimalistic else (0.75, 1.0)):
            raise ValueError("If imagenet weights are being loaded, alpha can be one of `0.75`, `1.0` for non "
                             f"minimalistic or `1.0` for minimalistic only. Received: alpha={alpha}, "
                             f"minimalistic={minimalistic}")
        if rows != cols or rows != 224:
            warnings.warn("`input_shape` is undefined or non-square, or `rows` is not 224. Weights for input "
                          "shape (224, 224) will be loaded as the default.", stacklevel=3)
    img_input = imagenet_utils.input_layer(input_tensor, input_shape)
    axis = 1 if first else -1
    activation = _relu if minimalistic else _hard_swish
    kernel, se_ratio = (3, None) if minimalistic else (5, 0.25)

    x = img_input
    if include_preprocessing:
        x = layers.Rescaling(scale=1.0 / 127.5, offset=-1.0)(x)
    x = layers.Conv2D(16, kernel_size=3, strides=(2, 2), padding="same", use_bias=False, name="conv")(x)
    x = layers.BatchNormalization(axis=axis, epsilon=1e-3, momentum=0.999, name="conv_bn")(x)
    x = activation(x)
    for block_id, (expansion, filters, k, stride, se, act) in enumerate(blocks):
        x = _inverted_res_block(x, expansion, _depth(filters * alpha), kernel if k == "k" else k, stride,
                                se_ratio if se else None, activation if act == "act" else _relu, block_id)
    last_conv_ch = _depth(x.shape[axis] * 6)
    if alpha > 1.0:   # alpha < 1 leaves the head as wide; alpha > 1 widens it
        last_point_ch = _depth(last_point_ch * alpha)
    x = layers.Conv2D(last_conv_ch, kernel_size=1, padding="same", use_bias=False, name="conv_1")(x)
    x = layers.BatchNormalization(axis=axis, epsilon=1e-3, momentum=0.999, name="conv_1_bn")(x)
    x = activation(x)

    if include_top:
        x = layers.GlobalAveragePooling2D(keepdims=True)(x)
        x = layers.Conv2D(last_point_ch, kernel_size=1, padding="same", use_bias=True, name="conv_2")(x)
        x = activation(x)
        if dropout_rate > 0:
            x = layers.Dropout(dropout_rate)(x)
        x = layers.Conv2D(classes, kernel_size=1, padding="same", name="logits")(x)
        x = layers.Flatten()(x)
        imagenet_utils.validate_activation(classifier_activation, weights)
        x = layers.Activation(classifier_activation, name="predictions")(x)
    else:
        x = imagenet_utils.pooled_features(x, pooling, avg_name="avg_pool", max_name="max_pool")

    model = Model(imagenet_utils.model_inputs(input_tensor, img_input), x, name=name)
    if weights == "imagenet":
        model_name = f"{model_type}{'_minimalistic' if minimalistic else ''}_224_{float(alpha)}_float"
        file_name = f"weights_mobilenet_v3_{model_name}{'.h5' if include_top else '_no_top_v2.h5'}"
        imagenet_utils.load_application_weights(model, weights, file_name, BASE_WEIGHT_PATH + file_name,
                                                WEIGHTS_HASHES[model_name][0 if include_top else 1])
    else:
        imagenet_utils.load_application_weights(model, weights, "", "")
    return model


def _input_shape(input_tensor: Any, input_shape: Any, first: bool) -> tuple:
    """The input's shape: ``input_shape``, else ``input_tensor``'s, else free height and width. Both given,
    they must agree on the width (Keras's check)."""
    if input_tensor is not None and input_shape is not None:
        if not isinstance(input_tensor, KerasTensor):
            raise ValueError(f"input_tensor is not a Keras tensor; Received: input_tensor={input_tensor!r}")
        have = input_tensor.shape[1] if first else input_tensor.shape[2]
        if have != input_shape[1]:
            raise ValueError(f"input_shape does not match input_tensor's width ({input_shape[1]} expected); "
                             f"Received: input_shape={input_shape}, input_tensor.shape={input_tensor.shape}")
    if input_shape is None and isinstance(input_tensor, KerasTensor):
        shape = tuple(input_tensor.shape)
        return (3,) + shape[2:4] if first else shape[1:3] + (3,)
    if input_shape is None:
        return (3, None, None) if first else (None, None, 3)
    return tuple(input_shape)


def _relu(x: Any) -> Any:
    return layers.ReLU()(x)


def _hard_sigmoid(x: Any) -> Any:
    # Written as Keras writes it (ops around a ReLU6 layer), so the layer list and its names match.
    return layers.ReLU(6.0)(x + 3.0) * (1.0 / 6.0)


def _hard_swish(x: Any) -> Any:
    return layers.Activation("hard_swish")(x)


def _depth(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """``v`` rounded to a multiple of ``divisor`` (at least ``min_value``), never more than 10% below ``v``."""
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def _se_block(inputs: Any, filters: int, se_ratio: float, prefix: str) -> Any:
    """Squeeze-and-excitation: channel weights from the pooled map, through a bottleneck and a hard sigmoid."""
    x = layers.GlobalAveragePooling2D(keepdims=True, name=f"{prefix}squeeze_excite_avg_pool")(inputs)
    x = layers.Conv2D(_depth(filters * se_ratio), kernel_size=1, padding="same",
                      name=f"{prefix}squeeze_excite_conv")(x)
    x = layers.ReLU(name=f"{prefix}squeeze_excite_relu")(x)
    x = layers.Conv2D(filters, kernel_size=1, padding="same", name=f"{prefix}squeeze_excite_conv_1")(x)
    x = _hard_sigmoid(x)
    return layers.Multiply(name=f"{prefix}squeeze_excite_mul")([inputs, x])


def _inverted_res_block(x: Any, expansion: float, filters: int, kernel_size: int, stride: int,
                        se_ratio: float | None, activation: Callable, block_id: int) -> Any:
    """Expand (1x1), depthwise, optional squeeze-excite, project (1x1, linear), residual add where it fits."""
    axis = 1 if backend_config.image_data_format() == "channels_first" else -1
    shortcut = x
    prefix = "expanded_conv_"
    infilters = x.shape[axis]
    if block_id:
        prefix = f"expanded_conv_{block_id}_"
        x = layers.Conv2D(_depth(infilters * expansion), kernel_size=1, padding="same", use_bias=False,
                          name=f"{prefix}expand")(x)
        x = layers.BatchNormalization(axis=axis, epsilon=1e-3, momentum=0.999, name=f"{prefix}expand_bn")(x)
        x = activation(x)
    if stride == 2:
        x = layers.ZeroPadding2D(padding=imagenet_utils.correct_pad(x, kernel_size),
                                 name=f"{prefix}depthwise_pad")(x)
    x = layers.DepthwiseConv2D(kernel_size, strides=stride, padding="same" if stride == 1 else "valid",
                               use_bias=False, name=f"{prefix}depthwise")(x)
    x = layers.BatchNormalization(axis=axis, epsilon=1e-3, momentum=0.999, name=f"{prefix}depthwise_bn")(x)
    x = activation(x)
    if se_ratio:
        x = _se_block(x, _depth(infilters * expansion), se_ratio, prefix)
    x = layers.Conv2D(filters, kernel_size=1, padding="same", use_bias=False, name=f"{prefix}project")(x)
    x = layers.BatchNormalization(axis=axis, epsilon=1e-3, momentum=0.999, name=f"{prefix}project_bn")(x)
    if stride == 1 and infilters == filters:
        x = layers.Add(name=f"{prefix}add")([shortcut, x])
    return x


def preprocess_input(x: Any, data_format: str | None = None) -> Any:
    """The identity: MobileNetV3 models rescale their inputs themselves (``include_preprocessing``).

    Example:
        >>> preprocess_input([0.0, 255.0])
        [0.0, 255.0]
    """
    return x
