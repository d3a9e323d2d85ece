"""``keras.applications.nasnet``: NASNet-A (Mobile and Large), cells found by architecture search: normal cells
keep the feature map's size, reduction cells halve it, each cell also reading the previous cell's output.

Layer names, order and weights are Keras's, so Keras's ImageNet files (``nasnet_mobile[_no_top].h5``,
``nasnet_large[_no_top].h5``) and Keras-saved weights load. (Keras 3.15 refuses ``NASNetMobile`` on its torch
backend because of a torch-side bug; onnxforge's graphs run it.)

Example:
    >>> model = NASNetMobile(input_shape=(32, 32, 3), weights=None, classes=3)  # doctest: +SKIP
    >>> model.output.shape  # doctest: +SKIP
    (None, 3)
"""
from __future__ import annotations

__all__ = ["NASNetMobile", "NASNetLarge", "preprocess_input", "decode_predictions"]

from typing import Any

from .. import backend_config, layers
from ..models import Model
from . import imagenet_utils
from .imagenet_utils import decode_predictions  # one for every family, as in Keras

BASE_WEIGHTS_PATH = "https://storage.googleapis.com/tensorflow/keras-applications/nasnet/"
# (file name in Keras's cache, origin, md5) by (default size, include_top).
_WEIGHTS = {
    (224, True): ("nasnet_mobile.h5", "NASNet-mobile.h5", "020fb642bf7360b370c678b08e0adf61"),
    (224, False): ("nasnet_mobile_no_top.h5", "NASNet-mobile-no-top.h5", "1ed92395b5b598bdda52abe5c0dbfd63"),
    (331, True): ("nasnet_large.h5", "NASNet-large.h5", "11577c9a518f0070763c2b964a382f17"),
    (331, False): ("nasnet_large_no_top.h5", "NASNet-large-no-top.h5", "d81d89dc07e6e56530c4e77faddd61b5"),
}
_BN = dict(axis=-1, momentum=0.9997, epsilon=1e-3)   # NASNet is channels_last only (as in Keras)


def NASNetMobile(input_shape: Any = None, include_top: bool = True, weights: Any = "imagenet",
                 input_tensor: Any = None, pooling: str | None = None, classes: int = 1000,
                 classifier_activation: Any = "softmax", name: str = "nasnet_mobile") -> Model:
    """NASNet-A Mobile (4 @ 1056; Zoph et al., 2018), Keras's layer for layer, for 224x224 images.

    Args:
        input_shape: ``(rows, cols, 3)``; ``(224, 224, 3)`` with the top and ImageNet weights; at least 32x32.
        include_top, weights, input_tensor, pooling, classes, classifier_activation, name: as every
            ``keras.applications`` builder.

    Returns:
        A functional ``Model``; its inputs want ``preprocess_input`` (scaled to [-1, 1]).

    Example:
        >>> m = NASNetMobile(input_shape=(32, 32, 3), include_top=False, pooling="avg", weights=None)  # doctest: +SKIP
        >>> m.output.shape  # doctest: +SKIP
        (None, 1056)
    """
    if not include_top and input_shape is None:
        input_shape = (224, 224, 3)
    return _nasnet(input_shape, 1056, 4, 32, False, 2, include_top, weights, input_tensor, pooling, classes, 224,
                   classifier_activation, name)


def NASNetLarge(input_shape: Any = None, include_top: bool = True, weights: Any = "imagenet",
                input_tensor: Any = None, pooling: str | None = None, classes: int = 1000,
                classifier_activation: Any = "softmax", name: str = "nasnet_large") -> Model:
    """NASNet-A Large (6 @ 4032), Keras's layer for layer, for 331x331 images; arguments as ``NASNetMobile``.

    Example:
        >>> NASNetLarge(input_shape=(32, 32, 3), include_top=False, weights=None).output.shape  # doctest: +SKIP
        (None, 1, 1, 4032)
    """
    return _nasnet(input_shape, 4032, 6, 96, True, 2, include_top, weights, input_tensor, pooling, classes, 331,
                   classifier_activation, name)


def _nasnet(input_shape: Any, penultimate_filters: int, num_blocks: int, stem_block_filters: int,
            skip_reduction: bool, filter_multiplier: int, include_top: bool, weights: Any, input_tensor: Any,
            pooling: str | None, classes: int, default_size: int, classifier_activation: Any, name: str) -> Model:
    if backend_config.image_data_format() == "channels_first":
        raise ValueError("NASNet does not support the `channels_first` image data format. Received: "
                         "image_data_format='channels_first'")
    imagenet_utils.check_weights_argument(weights, include_top, classes)
    if isinstance(input_shape, tuple) and None in input_shape and weights == "imagenet":
        raise ValueError("When specifying the input shape of a NASNet and loading `ImageNet` weights, the "
                         f"input_shape argument must be static (no None entries). Received: input_shape={input_shape}")
    input_shape = imagenet_utils.obtain_input_shape(input_shape, default_size, 32, "channels_last", include_top,
                                                    weights)
    img_input = imagenet_utils.input_layer(input_tensor, input_shape)
    if penultimate_filters % (24 * filter_multiplier ** 2) != 0:
        raise ValueError("For NASNet-A models, the `penultimate_filters` must be a multiple of 24 * "
                         f"(`filter_multiplier` ** 2). Received: penultimate_filters={penultimate_filters}")
    filters = penultimate_filters // 24

    x = layers.Conv2D(stem_block_filters, (3, 3), strides=(2, 2), padding="valid", use_bias=False,
                      name="stem_conv1", kernel_initializer="he_normal")(img_input)
    x = layers.BatchNormalization(**_BN, name="stem_bn1")(x)
    p = None
    x, p = _reduction_a_cell(x, p, filters // filter_multiplier ** 2, block_id="stem_1")
    x, p = _reduction_a_cell(x, p, filters // filter_multiplier, block_id="stem_2")
    for stage in range(3):   # normal cells at filters * m**stage, a reduction cell between stages
        width = filters * filter_multiplier ** stage
        if stage:
            x, p0 = _reduction_a_cell(x, p, width, block_id=f"reduce_{stage * num_blocks}")
            p = p if skip_reduction else p0
        for i in range(num_blocks):
            x, p = _normal_a_cell(x, p, width, block_id=str(stage * num_blocks + i + (stage > 0)))
    x = layers.Activation("relu")(x)

    if include_top:
        x = layers.GlobalAveragePooling2D()(x)
        imagenet_utils.validate_activation(classifier_activation, weights)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    else:
        x = imagenet_utils.pooled_features(x, pooling)

    model = Model(imagenet_utils.model_inputs(input_tensor, img_input), x, name=name)
    if weights == "imagenet":
        file_name, remote, file_hash = _WEIGHTS[(default_size, bool(include_top))]
        imagenet_utils.load_application_weights(model, weights, file_name, BASE_WEIGHTS_PATH + remote, file_hash)
    else:
        imagenet_utils.load_application_weights(model, weights, "", "")
    return model


def _separable_conv_block(ip: Any, filters: int, kernel_size: tuple = (3, 3), strides: tuple = (1, 1),
                          block_id: str = "") -> Any:
    """ReLU, separable convolution, batch norm, twice (the first one strided)."""
    x = layers.Activation("relu")(ip)
    if strides == (2, 2):
        x = layers.ZeroPadding2D(padding=imagenet_utils.correct_pad(x, kernel_size),
                                 name=f"separable_conv_1_pad_{block_id}")(x)
    x = layers.SeparableConv2D(filters, kernel_size, strides=strides, name=f"separable_conv_1_{block_id}",
                               padding="valid" if strides == (2, 2) else "same", use_bias=False)(x)
    x = layers.BatchNormalization(**_BN, name=f"separable_conv_1_bn_{block_id}")(x)
    x = layers.Activation("relu")(x)
    x = layers.SeparableConv2D(filters, kernel_size, name=f"separable_conv_2_{block_id}", padding="same",
                               use_bias=False)(x)
    return layers.BatchNormalization(**_BN, name=f"separable_conv_2_bn_{block_id}")(x)


def _adjust_block(p: Any, ip: Any, filters: int, block_id: str) -> Any:
    """The previous cell's output ``p`` brought to ``ip``'s size (a factorized reduction) or width."""
    if p is None:
        return ip
    if p.shape[-2] != ip.shape[-2]:
        p = layers.Activation("relu", name=f"adjust_relu_1_{block_id}")(p)
        p1 = layers.AveragePooling2D((1, 1), strides=(2, 2), padding="valid", name=f"adjust_avg_pool_1_{block_id}")(p)
        p1 = layers.Conv2D(filters // 2, (1, 1), padding="same", use_bias=False, name=f"adjust_conv_1_{block_id}",
                           kernel_initializer="he_normal")(p1)
        # The second path samples the odd pixels: shift by one (pad bottom-right, crop top-left).
        p2 = layers.ZeroPadding2D(padding=((0, 1), (0, 1)))(p)
        p2 = layers.Cropping2D(cropping=((1, 0), (1, 0)))(p2)
        p2 = layers.AveragePooling2D((1, 1), strides=(2, 2), padding="valid",
                                     name=f"adjust_avg_pool_2_{block_id}")(p2)
        p2 = layers.Conv2D(filters // 2, (1, 1), padding="same", use_bias=False, name=f"adjust_conv_2_{block_id}",
                           kernel_initializer="he_normal")(p2)
        p = layers.concatenate([p1, p2], axis=-1)
        return layers.BatchNormalization(**_BN, name=f"adjust_bn_{block_id}")(p)
    if p.shape[-1] != filters:
        p = layers.Activation("relu")(p)
        p = layers.Conv2D(filters, (1, 1), strides=(1, 1), padding="same", name=f"adjust_conv_projection_{block_id}",
                          use_bias=False, kernel_initializer="he_normal")(p)
        p = layers.BatchNormalization(**_BN, name=f"adjust_bn_{block_id}")(p)
    return p


def _squeeze(ip: Any, filters: int, kind: str, block_id: str) -> Any:
    """The cell's 1x1 projection of its input: ReLU, convolution, batch norm."""
    h = layers.Activation("relu")(ip)
    h = layers.Conv2D(filters, (1, 1), strides=(1, 1), padding="same", name=f"{kind}_conv_1_{block_id}",
                      use_bias=False, kernel_initializer="he_normal")(h)
    return layers.BatchNormalization(**_BN, name=f"{kind}_bn_1_{block_id}")(h)


def _normal_a_cell(ip: Any, p: Any, filters: int, block_id: str) -> tuple[Any, Any]:
    """The normal cell: five branch pairs summed, concatenated with the adjusted previous output."""
    p = _adjust_block(p, ip, filters, block_id)
    h = _squeeze(ip, filters, "normal", block_id)
    x1 = layers.add([_separable_conv_block(h, filters, (5, 5), block_id=f"normal_left1_{block_id}"),
                     _separable_conv_block(p, filters, block_id=f"normal_right1_{block_id}")],
                    name=f"normal_add_1_{block_id}")
    x2 = layers.add([_separable_conv_block(p, filters, (5, 5), block_id=f"normal_left2_{block_id}"),
                     _separable_conv_block(p, filters, (3, 3), block_id=f"normal_right2_{block_id}")],
                    name=f"normal_add_2_{block_id}")
    x3 = layers.AveragePooling2D((3, 3), strides=(1, 1), padding="same", name=f"normal_left3_{block_id}")(h)
    x3 = layers.add([x3, p], name=f"normal_add_3_{block_id}")
    x4_1 = layers.AveragePooling2D((3, 3), strides=(1, 1), padding="same", name=f"normal_left4_{block_id}")(p)
    x4_2 = layers.AveragePooling2D((3, 3), strides=(1, 1), padding="same", name=f"normal_right4_{block_id}")(p)
    x4 = layers.add([x4_1, x4_2], name=f"normal_add_4_{block_id}")
    x5 = _separable_conv_block(h, filters, block_id=f"normal_left5_{block_id}")
    x5 = layers.add([x5, h], name=f"normal_add_5_{block_id}")
    x = layers.concatenate([p, x1, x2, x3, x4, x5], axis=-1, name=f"normal_concat_{block_id}")
    return x, ip


def _reduction_a_cell(ip: Any, p: Any, filters: int, block_id: str) -> tuple[Any, Any]:
    """The reduction cell: strided branch pairs summed, four of them concatenated (half the size)."""
    p = _adjust_block(p, ip, filters, block_id)
    h = _squeeze(ip, filters, "reduction", block_id)
    h3 = layers.ZeroPadding2D(padding=imagenet_utils.correct_pad(h, 3), name=f"reduction_pad_1_{block_id}")(h)
    x1 = layers.add([_separable_conv_block(h, filters, (5, 5), strides=(2, 2), block_id=f"reduction_left1_{block_id}"),
                     _separable_conv_block(p, filters, (7, 7), strides=(2, 2),
                                           block_id=f"reduction_right1_{block_id}")],
                    name=f"reduction_add_1_{block_id}")
    x2_1 = layers.MaxPooling2D((3, 3), strides=(2, 2), padding="valid", name=f"reduction_left2_{block_id}")(h3)
    x2_2 = _separable_conv_block(p, filters, (7, 7), strides=(2, 2), block_id=f"reduction_right2_{block_id}")
    x2 = layers.add([x2_1, x2_2], name=f"reduction_add_2_{block_id}")
    x3_1 = layers.AveragePooling2D((3, 3), strides=(2, 2), padding="valid", name=f"reduction_left3_{block_id}")(h3)
    x3_2 = _separable_conv_block(p, filters, (5, 5), strides=(2, 2), block_id=f"reduction_right3_{block_id}")
    x3 = layers.add([x3_1, x3_2], name=f"reduction_add3_{block_id}")
    x4 = layers.AveragePooling2D((3, 3), strides=(1, 1), padding="same", name=f"reduction_left4_{block_id}")(x1)
    x4 = layers.add([x2, x4])
    x5_1 = _separable_conv_block(x1, filters, (3, 3), block_id=f"reduction_left4_{block_id}")
    x5_2 = layers.MaxPooling2D((3, 3), strides=(2, 2), padding="valid", name=f"reduction_right5_{block_id}")(h3)
    x5 = layers.add([x5_1, x5_2], name=f"reduction_add4_{block_id}")
    x = layers.concatenate([x2, x3, x4, x5], axis=-1, name=f"reduction_concat_{block_id}")
    return x, ip


def preprocess_input(x: Any, data_format: str | None = None) -> Any:
    """Scale RGB pixels (0-255) to [-1, 1], as NASNet was trained.

    Example:
        >>> import numpy as np
        >>> preprocess_input(np.array([[0.0, 255.0]], np.float32)).tolist()
        [[-1.0, 1.0]]
    """
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")
