"""EfficientNetV2 B0-B3, S, M and L (Tan & Le, 2021), as ``keras.applications.efficientnet_v2`` builds them.

The early stages use fused MBConv blocks (one full convolution in place of the 1x1 expansion and the
depthwise convolution), the later ones MBConv blocks with squeeze-excite. The input scaling is part of the
model (``include_preprocessing``), so ``preprocess_input`` passes its argument through. Layer names, order
and weights are Keras's, so Keras's ``efficientnetv2-*.h5`` files and Keras-saved weights load.

Example:
    >>> model = EfficientNetV2B0(weights=None, input_shape=(32, 32, 3), include_top=False, pooling="avg")
    >>> model.output.shape, model.count_params()
    ((None, 1280), 5919312)
"""
from __future__ import annotations

__all__ = ["EfficientNetV2B0", "EfficientNetV2B1", "EfficientNetV2B2", "EfficientNetV2B3", "EfficientNetV2S",
           "EfficientNetV2M", "EfficientNetV2L", "preprocess_input", "decode_predictions"]

import math
from typing import Any

from .. import backend_config, layers
from ..models import Model
from . import imagenet_utils
from .imagenet_utils import decode_predictions  # one for every family, as in Keras
from .efficientnet import (CONV_KERNEL_INITIALIZER, DENSE_KERNEL_INITIALIZER, channel_axis, conv_bn, pooled,
                           residual, squeeze_excite)

BASE_WEIGHTS_PATH = "https://storage.googleapis.com/tensorflow/keras-applications/efficientnet_v2/"
#: variant -> (hash of the file with the classifier, hash of the ``_notop`` file), as Keras checks them.
WEIGHTS_HASHES = {
    "b0": ("21ecbf6da12460d5c40bb2f29ceb2188", "893217f2bb855e2983157299931e43ff"),
    "b1": ("069f0534ff22adf035c89e2d9547a9dc", "0e80663031ca32d657f9caa404b6ec37"),
    "b2": ("424e49f28180edbde1e94797771950a7", "1dfe2e7a5d45b6632553a8961ea609eb"),
    "b3": ("1f1fc43bd98a6e4fd8fdfd551e02c7a0", "f6abf7b5849ac99a89b50dd3fd532856"),
    "s": ("e1d88a8495beba45748fedd0cecbe016", "af0682fb74e8c54910f2d4393339c070"),
    "m": ("a3bf6aa3276309f4fc6a34aa114c95cd", "1b8dc055df72dde80d614482840fe342"),
    "l": ("27e6d408b53c7ebc868fefa357689935", "b0b66b5c863aef5b46e8608fe1711615"),
}

# Stages: (kernel, repeats, filters in, filters out, expand ratio, squeeze-excite ratio, strides, fused).
_B = ((3, 1, 32, 16, 1, 0, 1, True), (3, 2, 16, 32, 4, 0, 2, True), (3, 2, 32, 48, 4, 0, 2, True),
      (3, 3, 48, 96, 4, 0.25, 2, False), (3, 5, 96, 112, 6, 0.25, 1, False), (3, 8, 112, 192, 6, 0.25, 2, False))
STAGES = {
    "b0": _B, "b1": _B, "b2": _B, "b3": _B,
    "s": ((3, 2, 24, 24, 1, 0, 1, True), (3, 4, 24, 48, 4, 0, 2, True), (3, 4, 48, 64, 4, 0, 2, True),
          (3, 6, 64, 128, 4, 0.25, 2, False), (3, 9, 128, 160, 6, 0.25, 1, False),
          (3, 15, 160, 256, 6, 0.25, 2, False)),
    "m": ((3, 3, 24, 24, 1, 0, 1, True), (3, 5, 24, 48, 4, 0, 2, True), (3, 5, 48, 80, 4, 0, 2, True),
          (3, 7, 80, 160, 4, 0.25, 2, False), (3, 14, 160, 176, 6, 0.25, 1, False),
          (3, 18, 176, 304, 6, 0.25, 2, False), (3, 5, 304, 512, 6, 0.25, 1, False)),
    "l": ((3, 4, 32, 32, 1, 0, 1, True), (3, 7, 32, 64, 4, 0, 2, True), (3, 7, 64, 96, 4, 0, 2, True),
          (3, 10, 96, 192, 4, 0.25, 2, False), (3, 19, 192, 224, 6, 0.25, 1, False),
          (3, 25, 224, 384, 6, 0.25, 2, False), (3, 7, 384, 640, 6, 0.25, 1, False)),
}
#: variant -> (width coefficient, depth coefficient, default input size)
VARIANTS = {"b0": (1.0, 1.0, 224), "b1": (1.0, 1.1, 240), "b2": (1.1, 1.2, 260), "b3": (1.2, 1.4, 300),
            "s": (1.0, 1.0, 384), "m": (1.0, 1.0, 480), "l": (1.0, 1.0, 480)}
BN_MOMENTUM = 0.9


def round_filters(filters: float, width: float, divisor: int = 8) -> int:
    """Channels scaled by ``width``, rounded to the nearest multiple of ``divisor`` (at least one)."""
    return int(max(divisor, int(filters * width + divisor / 2) // divisor * divisor))


def mbconv_block(inputs: Any, prefix: str, filters_in: int, filters_out: int, expand_ratio: int, kernel: int,
                 strides: int, se_ratio: float, drop_rate: float, activation: Any) -> Any:
    """1x1 expansion, depthwise conv, squeeze-excite, 1x1 projection, identity skip where shapes allow."""
    filters = filters_in * expand_ratio
    x = inputs
    if expand_ratio != 1:
        x = conv_bn(x, filters, 1, prefix, (activation, f"{prefix}expand_activation"), conv="expand_conv",
                    bn="expand_bn", momentum=BN_MOMENTUM)
    x = layers.DepthwiseConv2D(kernel, strides=strides, padding="same", use_bias=False,
                               depthwise_initializer=CONV_KERNEL_INITIALIZER, name=f"{prefix}dwconv2")(x)
    x = layers.BatchNormalization(axis=channel_axis(), momentum=BN_MOMENTUM, name=f"{prefix}bn")(x)
    x = layers.Activation(activation, name=f"{prefix}activation")(x)
    if 0 < se_ratio <= 1:
        x = squeeze_excite(x, filters, max(1, int(filters_in * se_ratio)), activation, prefix)
    x = conv_bn(x, filters_out, 1, prefix, conv="project_conv", bn="project_bn", momentum=BN_MOMENTUM)
    if strides == 1 and filters_in == filters_out:
        x = residual(x, inputs, drop_rate, prefix)
    return x


def fused_mbconv_block(inputs: Any, prefix: str, filters_in: int, filters_out: int, expand_ratio: int, kernel: int,
                       strides: int, se_ratio: float, drop_rate: float, activation: Any) -> Any:
    """One full ``kernel`` conv (the expansion, strided) then a 1x1 projection; without expansion the
    projection itself is the strided ``kernel`` conv, followed by the activation."""
    filters = filters_in * expand_ratio
    x = inputs
    if expand_ratio != 1:
        x = conv_bn(x, filters, kernel, prefix, (activation, f"{prefix}expand_activation"), strides=strides,
                    conv="expand_conv", bn="expand_bn", momentum=BN_MOMENTUM)
    if 0 < se_ratio <= 1:
        x = squeeze_excite(x, filters, max(1, int(filters_in * se_ratio)), activation, prefix)
    fused = expand_ratio == 1
    x = conv_bn(x, filters_out, kernel if fused else 1, prefix,
                (activation, f"{prefix}project_activation") if fused else None, strides=strides if fused else 1,
                conv="project_conv", bn="project_bn", momentum=BN_MOMENTUM)
    if strides == 1 and filters_in == filters_out:
        x = residual(x, inputs, drop_rate, prefix)
    return x


def _efficientnet_v2(variant: str, include_top: bool, weights: Any, input_tensor: Any, input_shape: Any,
                     pooling: str | None, classes: int, classifier_activation: Any, include_preprocessing: bool,
                     name: str) -> Model:
    width, depth, default_size = VARIANTS[variant]
    imagenet_utils.check_weights_argument(weights, include_top, classes)
    input_shape = imagenet_utils.obtain_input_shape(input_shape, default_size, 32,
                                                    backend_config.image_data_format(), include_top, weights)
    img_input = imagenet_utils.input_layer(input_tensor, input_shape)
    axis, activation = channel_axis(), "swish"
    stages = STAGES[variant]

    x = img_input
    if include_preprocessing:
        # The B models were trained on ImageNet-standardized pixels, the S/M/L ones on pixels in [-1, 1].
        if variant.startswith("b") and input_shape[axis - 1] == 3:
            x = layers.Rescaling(scale=1.0 / 255)(x)
            x = layers.Normalization(mean=[0.485, 0.456, 0.406], variance=[0.229**2, 0.224**2, 0.225**2],
                                     axis=axis)(x)
        else:
            x = layers.Rescaling(scale=1.0 / 128.0, offset=-1)(x)
    x = conv_bn(x, round_filters(stages[0][2], width), 3, "stem_", (activation, "stem_activation"), strides=2,
                momentum=BN_MOMENTUM)

    done, total = 0, float(sum(stage[1] for stage in stages))
    for i, (kernel, repeats, f_in, f_out, expand, se_ratio, strides, fused) in enumerate(stages):
        f_in, f_out = round_filters(f_in, width), round_filters(f_out, width)
        block = fused_mbconv_block if fused else mbconv_block
        for j in range(int(math.ceil(depth * repeats))):
            # Keras passes this "survival probability" on as the Dropout rate: 0 at the first block,
            # rising towards 0.2 (it counts the unscaled repeats, so deeper variants pass 0.2).
            x = block(x, f"block{i + 1}{chr(j + 97)}_", f_in if j == 0 else f_out, f_out, expand, kernel,
                      strides if j == 0 else 1, se_ratio, 0.2 * done / total, activation)
            done += 1

    x = conv_bn(x, round_filters(1280, width), 1, "top_", (activation, "top_activation"), momentum=BN_MOMENTUM)
    if include_top:
        imagenet_utils.validate_activation(classifier_activation, weights)
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dropout(0.2, name="top_dropout")(x)
        x = layers.Dense(classes, activation=classifier_activation, kernel_initializer=DENSE_KERNEL_INITIALIZER,
                         bias_initializer={"class_name": "Constant", "config": {"value": 0.0}},
                         name="predictions")(x)
    else:
        x = pooled(x, pooling)
    model = Model(imagenet_utils.model_inputs(input_tensor, img_input), x, name=name)
    file_name = ("efficientnetv2-" + variant) + (".h5" if include_top else "_notop.h5")
    imagenet_utils.load_application_weights(model, weights, file_name, BASE_WEIGHTS_PATH + file_name,
                                            WEIGHTS_HASHES[variant][0 if include_top else 1])
    return model


def EfficientNetV2B0(include_top: bool = True, weights: Any = "imagenet", input_tensor: Any = None,
                     input_shape: Any = None, pooling: str | None = None, classes: int = 1000,
                     classifier_activation: Any = "softmax", include_preprocessing: bool = True,
                     name: str = "efficientnetv2-b0") -> Model:
    """EfficientNetV2-B0 (224x224 by default), Keras's layers and weights; inputs are pixels in [0, 255].

    Args:
        include_top: end in the ImageNet classifier (``avg_pool``, ``top_dropout``, ``predictions``).
        weights: ``None``, ``"imagenet"`` (Keras's cached file) or the path of a weights file.
        input_tensor: a functional tensor to build the model on.
        input_shape: ``(height, width, 3)``, each side at least 32; fixed by ``include_top`` with ImageNet.
        pooling: without the top: ``None`` (the feature map), ``"avg"`` or ``"max"``.
        classes, classifier_activation: the classifier's size and activation.
        include_preprocessing: scale the pixels inside the model (the ImageNet weights expect it).
        name: the model's name.

    Example:
        >>> EfficientNetV2B0(weights=None, input_shape=(32, 32, 3), include_top=False).output.shape
        (None, 1, 1, 1280)
    """
    return _efficientnet_v2("b0", include_top, weights, input_tensor, input_shape, pooling, classes,
                            classifier_activation, include_preprocessing, name)


def _variant(variant: str) -> Any:
    def builder(include_top: bool = True, weights: Any = "imagenet", input_tensor: Any = None,
                input_shape: Any = None, pooling: str | None = None, classes: int = 1000,
                classifier_activation: Any = "softmax", include_preprocessing: bool = True,
                name: str = f"efficientnetv2-{variant}") -> Model:
        return _efficientnet_v2(variant, include_top, weights, input_tensor, input_shape, pooling, classes,
                                classifier_activation, include_preprocessing, name)

    size = VARIANTS[variant][2]
    builder.__name__ = builder.__qualname__ = f"EfficientNetV2{variant.upper()}"
    builder.__doc__ = (f"EfficientNetV2-{variant.upper()} ({size}x{size} by default); arguments as "
                       f":func:`EfficientNetV2B0`.\n\n    Example:\n        >>> model = {builder.__name__}("
                       "weights=None)  # doctest: +SKIP\n")
    return builder


EfficientNetV2B1 = _variant("b1")
EfficientNetV2B2 = _variant("b2")
EfficientNetV2B3 = _variant("b3")
EfficientNetV2S = _variant("s")
EfficientNetV2M = _variant("m")
EfficientNetV2L = _variant("l")


def preprocess_input(x: Any, data_format: str | None = None) -> Any:
    """Returns ``x`` unchanged: EfficientNetV2 scales its inputs itself (kept for Keras's API).

    Example:
        >>> preprocess_input([255.0])
        [255.0]
    """
    return x
