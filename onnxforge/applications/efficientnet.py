"""EfficientNet B0-B7 (Tan & Le, 2019), as ``keras.applications.efficientnet`` builds them.

The input scaling is part of the model (``Rescaling`` to [0, 1], then a ``Normalization`` whose mean and
variance come with the ImageNet weights), so the models take pixels in [0, 255] and ``preprocess_input``
passes its argument through. Layer names, order and weights are Keras's, so Keras's ``efficientnetb*.h5``
files and Keras-saved weights load.

Example:
    >>> model = EfficientNetB0(weights=None, input_shape=(32, 32, 3), include_top=False, pooling="avg")
    >>> model.output.shape, model.count_params()
    ((None, 1280), 4049571)
"""
from __future__ import annotations

__all__ = ["EfficientNetB0", "EfficientNetB1", "EfficientNetB2", "EfficientNetB3", "EfficientNetB4",
           "EfficientNetB5", "EfficientNetB6", "EfficientNetB7", "preprocess_input", "decode_predictions"]

import math
from typing import Any

from .. import backend_config, layers
from ..models import Model
from . import imagenet_utils
from .imagenet_utils import decode_predictions  # one for every family, as in Keras

BASE_WEIGHTS_PATH = "https://storage.googleapis.com/keras-applications/"
#: variant -> (hash of the file with the classifier, hash of the ``_notop`` file), as Keras checks them.
WEIGHTS_HASHES = {
    "b0": ("902e53a9f72be733fc0bcb005b3ebbac", "50bc09e76180e00e4465e1a485ddc09d"),
    "b1": ("1d254153d4ab51201f1646940f018540", "74c4e6b3e1f6a1eea24c589628592432"),
    "b2": ("b15cce36ff4dcbd00b6dd88e7857a6ad", "111f8e2ac8aa800a7a99e3239f7bfb39"),
    "b3": ("ffd1fdc53d0ce67064dc6a9c7960ede0", "af6d107764bb5b1abb91932881670226"),
    "b4": ("18c95ad55216b8f92d7e70b3a046e2fc", "ebc24e6d6c33eaebbd558eafbeedf1ba"),
    "b5": ("ace28f2a6363774853a83a0b21b9421a", "38879255a25d3c92d5e44e04ae6cec6f"),
    "b6": ("165f6e37dce68623721b423839de8be5", "9ecce42647a20130c1f39a5d4cb75743"),
    "b7": ("8c03f828fec3ef71311cd463b6759d99", "cbcfe4450ddf6f3ad90b1b398090fe4a"),
}

#: The B0 stages: (kernel, repeats, filters in, filters out, expand ratio, strides); every block has a
#: squeeze-excite of ratio 0.25 and an identity skip where its shape allows one.
STAGES = ((3, 1, 32, 16, 1, 1), (3, 2, 16, 24, 6, 2), (5, 2, 24, 40, 6, 2), (3, 3, 40, 80, 6, 2),
          (5, 3, 80, 112, 6, 1), (5, 4, 112, 192, 6, 2), (3, 1, 192, 320, 6, 1))
SE_RATIO = 0.25

#: variant -> (width coefficient, depth coefficient, default input size, top dropout rate)
VARIANTS = {"b0": (1.0, 1.0, 224, 0.2), "b1": (1.0, 1.1, 240, 0.2), "b2": (1.1, 1.2, 260, 0.3),
            "b3": (1.2, 1.4, 300, 0.3), "b4": (1.4, 1.8, 380, 0.4), "b5": (1.6, 2.2, 456, 0.4),
            "b6": (1.8, 2.6, 528, 0.5), "b7": (2.0, 3.1, 600, 0.5)}

# Keras's initializers for these models (He-like fan-out for convolutions, a small uniform for the
# classifier); the same configs, so a model saved from here rebuilds as Keras would build it.
CONV_KERNEL_INITIALIZER = {"class_name": "VarianceScaling",
                           "config": {"scale": 2.0, "mode": "fan_out", "distribution": "truncated_normal"}}
DENSE_KERNEL_INITIALIZER = {"class_name": "VarianceScaling",
                            "config": {"scale": 1.0 / 3.0, "mode": "fan_out", "distribution": "uniform"}}
IMAGENET_STDDEV_RGB = (0.229, 0.224, 0.225)


def channel_axis() -> int:
    """The channel axis of image batches under the current data format."""
    return 3 if backend_config.image_data_format() == "channels_last" else 1


def squeeze_excite(x: Any, filters: int, filters_se: int, activation: Any, prefix: str) -> Any:
    """Channel attention: pool each channel, squeeze to ``filters_se``, gate ``x`` by a sigmoid per channel."""
    se = layers.GlobalAveragePooling2D(name=f"{prefix}se_squeeze")(x)
    se_shape = (1, 1, filters) if channel_axis() == 3 else (filters, 1, 1)
    se = layers.Reshape(se_shape, name=f"{prefix}se_reshape")(se)
    se = layers.Conv2D(filters_se, 1, padding="same", activation=activation,
                       kernel_initializer=CONV_KERNEL_INITIALIZER, name=f"{prefix}se_reduce")(se)
    se = layers.Conv2D(filters, 1, padding="same", activation="sigmoid",
                       kernel_initializer=CONV_KERNEL_INITIALIZER, name=f"{prefix}se_expand")(se)
    return layers.multiply([x, se], name=f"{prefix}se_excite")


def conv_bn(x: Any, filters: int, kernel: int, prefix: str, activation: Any = None, strides: int = 1,
            conv: str = "conv", bn: str = "bn", momentum: float = 0.99) -> Any:
    """Bias-free ``Conv2D`` (``<prefix><conv>``), ``BatchNormalization`` (``<prefix><bn>``), and the
    activation (``<prefix>activation`` style names are the caller's: pass ``activation=(fn, name)``)."""
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False,
                      kernel_initializer=CONV_KERNEL_INITIALIZER, name=f"{prefix}{conv}")(x)
    x = layers.BatchNormalization(axis=channel_axis(), momentum=momentum, name=f"{prefix}{bn}")(x)
    if activation is not None:
        fn, name = activation
        x = layers.Activation(fn, name=name)(x)
    return x


def residual(x: Any, inputs: Any, drop_rate: float, prefix: str) -> Any:
    """The identity skip; the residual branch is dropped per sample (stochastic depth) while training."""
    if drop_rate > 0:
        x = layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=f"{prefix}drop")(x)
    return layers.add([x, inputs], name=f"{prefix}add")


def mbconv_block(inputs: Any, activation: Any, drop_rate: float, prefix: str, filters_in: int, filters_out: int,
                 kernel_size: int, strides: int, expand_ratio: int) -> Any:
    """The inverted residual block: 1x1 expansion, depthwise conv, squeeze-excite, 1x1 projection."""
    filters = filters_in * expand_ratio
    x = inputs
    if expand_ratio != 1:
        x = conv_bn(x, filters, 1, prefix, (activation, f"{prefix}expand_activation"), conv="expand_conv",
                    bn="expand_bn")
    padding = "same"
    if strides == 2:   # TensorFlow's 'same' padding of the weights' origin is asymmetric: pad explicitly
        x = layers.ZeroPadding2D(padding=imagenet_utils.correct_pad(x, kernel_size), name=f"{prefix}dwconv_pad")(x)
        padding = "valid"
    x = layers.DepthwiseConv2D(kernel_size, strides=strides, padding=padding, use_bias=False,
                               depthwise_initializer=CONV_KERNEL_INITIALIZER, name=f"{prefix}dwconv")(x)
    x = layers.BatchNormalization(axis=channel_axis(), name=f"{prefix}bn")(x)
    x = layers.Activation(activation, name=f"{prefix}activation")(x)
    x = squeeze_excite(x, filters, max(1, int(filters_in * SE_RATIO)), activation, prefix)
    x = conv_bn(x, filters_out, 1, prefix, conv="project_conv", bn="project_bn")
    if strides == 1 and filters_in == filters_out:
        x = residual(x, inputs, drop_rate, prefix)
    return x


def round_filters(filters: float, width: float, divisor: int = 8) -> int:
    """Channels scaled by ``width``, rounded to a multiple of ``divisor`` and never more than 10% down."""
    filters *= width
    rounded = max(divisor, int(filters + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * filters else rounded)


def pooled(x: Any, pooling: str | None) -> Any:
    """``include_top=False``'s output: the features, or their ``avg_pool`` / ``max_pool``."""
    return imagenet_utils.pooled_features(x, pooling, named=True)


def _efficientnet(variant: str, include_top: bool, weights: Any, input_tensor: Any, input_shape: Any,
                  pooling: str | None, classes: int, classifier_activation: Any, name: str) -> Model:
    width, depth, default_size, dropout_rate = VARIANTS[variant]
    imagenet_utils.check_weights_argument(weights, include_top, classes)
    input_shape = imagenet_utils.obtain_input_shape(input_shape, default_size, 32,
                                                    backend_config.image_data_format(), include_top, weights)
    img_input = imagenet_utils.input_layer(input_tensor, input_shape)
    axis, activation = channel_axis(), "swish"

    # Pixels to [0, 1], then standardized; the Normalization's statistics come with the weights. ImageNet's
    # files were made with the variance where the standard deviation belongs, which the last Rescaling undoes.
    x = layers.Rescaling(1.0 / 255.0)(img_input)
    x = layers.Normalization(axis=axis)(x)
    if weights == "imagenet":
        x = layers.Rescaling([1.0 / math.sqrt(s) for s in IMAGENET_STDDEV_RGB])(x)
    x = layers.ZeroPadding2D(padding=imagenet_utils.correct_pad(x, 3), name="stem_conv_pad")(x)
    x = layers.Conv2D(round_filters(32, width), 3, strides=2, padding="valid", use_bias=False,
                      kernel_initializer=CONV_KERNEL_INITIALIZER, name="stem_conv")(x)
    x = layers.BatchNormalization(axis=axis, name="stem_bn")(x)
    x = layers.Activation(activation, name="stem_activation")(x)

    repeats = [int(math.ceil(depth * stage[1])) for stage in STAGES]
    done, total = 0, float(sum(repeats))
    for i, ((kernel, _, f_in, f_out, expand, strides), count) in enumerate(zip(STAGES, repeats)):
        f_in, f_out = round_filters(f_in, width), round_filters(f_out, width)
        for j in range(count):
            # Later blocks go deeper with a higher drop rate (0.2 at the last), as in the paper.
            x = mbconv_block(x, activation, 0.2 * done / total, f"block{i + 1}{chr(j + 97)}_",
                             f_in if j == 0 else f_out, f_out, kernel, strides if j == 0 else 1, expand)
            done += 1

    x = conv_bn(x, round_filters(1280, width), 1, "top_", (activation, "top_activation"))
    if include_top:
        imagenet_utils.validate_activation(classifier_activation, weights)
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout_rate > 0:
            x = layers.Dropout(dropout_rate, name="top_dropout")(x)
        x = layers.Dense(classes, activation=classifier_activation, kernel_initializer=DENSE_KERNEL_INITIALIZER,
                         name="predictions")(x)
    else:
        x = pooled(x, pooling)
    model = Model(imagenet_utils.model_inputs(input_tensor, img_input), x, name=name)
    file_name = f"efficientnet{variant}" + (".h5" if include_top else "_notop.h5")
    imagenet_utils.load_application_weights(model, weights, file_name, BASE_WEIGHTS_PATH + file_name,
                                            WEIGHTS_HASHES[variant][0 if include_top else 1])
    return model


def EfficientNetB0(include_top: bool = True, weights: Any = "imagenet", input_tensor: Any = None,
                   input_shape: Any = None, pooling: str | None = None, classes: int = 1000,
                   classifier_activation: Any = "softmax", name: str = "efficientnetb0") -> Model:
    """EfficientNet-B0 (224x224 by default), Keras's layers and weights; inputs are pixels in [0, 255].

    Args:
        include_top: end in the ImageNet classifier (``avg_pool``, ``top_dropout``, ``predictions``).
        weights: ``None``, ``"imagenet"`` (Keras's cached file) or the path of a weights file.
        input_tensor: a functional tensor to build the model on.
        input_shape: ``(height, width, 3)``, each side at least 32; fixed by ``include_top`` with ImageNet.
        pooling: without the top: ``None`` (the feature map), ``"avg"`` or ``"max"``.
        classes, classifier_activation: the classifier's size and activation.
        name: the model's name.

    Example:
        >>> EfficientNetB0(weights=None, input_shape=(32, 32, 3), include_top=False).output.shape
        (None, 1, 1, 1280)
    """
    return _efficientnet("b0", include_top, weights, input_tensor, input_shape, pooling, classes,
                         classifier_activation, name)


def _variant(variant: str) -> Any:
    def builder(include_top: bool = True, weights: Any = "imagenet", input_tensor: Any = None,
                input_shape: Any = None, pooling: str | None = None, classes: int = 1000,
                classifier_activation: Any = "softmax", name: str = f"efficientnet{variant}") -> Model:
        return _efficientnet(variant, include_top, weights, input_tensor, input_shape, pooling, classes,
                             classifier_activation, name)

    size = VARIANTS[variant][2]
    builder.__name__ = builder.__qualname__ = f"EfficientNet{variant.upper()}"
    builder.__doc__ = (f"EfficientNet-{variant.upper()} ({size}x{size} by default); arguments as "
                       f":func:`EfficientNetB0`.\n\n    Example:\n        >>> model = {builder.__name__}("
                       "weights=None)  # doctest: +SKIP\n")
    return builder


EfficientNetB1 = _variant("b1")
EfficientNetB2 = _variant("b2")
EfficientNetB3 = _variant("b3")
EfficientNetB4 = _variant("b4")
EfficientNetB5 = _variant("b5")
EfficientNetB6 = _variant("b6")
EfficientNetB7 = _variant("b7")


def preprocess_input(x: Any, data_format: str | None = None) -> Any:
    """Returns ``x`` unchanged: EfficientNet scales its inputs itself (kept for Keras's API).

    Example:
        >>> preprocess_input([255.0])
        [255.0]
    """
    return x
