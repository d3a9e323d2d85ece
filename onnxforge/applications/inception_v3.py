"""``keras.applications.inception_v3``: InceptionV3 (Szegedy et al., 2015).

Layer names, order and weights follow Keras 3.15: its convolutions, BatchNorms (without scale) and ReLUs
are unnamed there, so they get the automatic names (``conv2d_12``...) in the same order, and Keras's ImageNet
files (``inception_v3_weights_tf_dim_ordering_tf_kernels.h5``, read by layer order) and Keras-saved weights
load. Inputs are expected scaled to [-1, 1] (``preprocess_input``, "tf" mode).

Example:
    >>> from onnxforge.applications import inception_v3
    >>> model = inception_v3.InceptionV3(weights=None, include_top=False, input_shape=(75, 75, 3), pooling="avg")
    >>> model.output_shape
    (None, 2048)
"""
from __future__ import annotations

__all__ = ["InceptionV3", "preprocess_input", "decode_predictions"]

from typing import Any

from .. import backend_config, layers
from ..models import Model
from . import imagenet_utils
from .imagenet_utils import decode_predictions  # one for every family, as in Keras

_BASE = "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
WEIGHTS = (("inception_v3_weights_tf_dim_ordering_tf_kernels.h5", "9a0d58056eeedaa3f26cb7ebd46da564"),
           ("inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5", "bcbd6486424b2319ff4ef7d526e38f63"))


def _axis() -> int:
    return 1 if backend_config.image_data_format() == "channels_first" else 3


def conv2d_bn(x: Any, filters: int, num_row: int, num_col: int, padding: str = "same", strides: Any = (1, 1),
              name: str | None = None) -> Any:
    """Conv (no bias) + BatchNorm (no scale: the ReLU after it makes a scale redundant) + ReLU; ``name``
    names them ``{name}_conv``, ``{name}_bn`` and ``{name}``, else all three are named automatically."""
    x = layers.Conv2D(filters, (num_row, num_col), strides=strides, padding=padding, use_bias=False,
                      name=f"{name}_conv" if name else None)(x)
    x = layers.BatchNormalization(axis=_axis(), scale=False, name=f"{name}_bn" if name else None)(x)
    return layers.Activation("relu", name=name)(x)


def _avg_pool_branch(x: Any, filters: int) -> Any:
    return conv2d_bn(layers.AveragePooling2D((3, 3), strides=(1, 1), padding="same")(x), filters, 1, 1)


def _block35(x: Any, pool_filters: int, name: str) -> Any:
    # the branches are built in Keras's order: the automatic layer names depend on it
    b1 = conv2d_bn(x, 64, 1, 1)
    b5 = conv2d_bn(conv2d_bn(x, 48, 1, 1), 64, 5, 5)
    b3 = conv2d_bn(conv2d_bn(conv2d_bn(x, 64, 1, 1), 96, 3, 3), 96, 3, 3)
    bp = _avg_pool_branch(x, pool_filters)
    return layers.concatenate([b1, b5, b3, bp], axis=_axis(), name=name)


def _block17(x: Any, c7: int, name: str) -> Any:
    b1 = conv2d_bn(x, 192, 1, 1)
    b7 = conv2d_bn(conv2d_bn(conv2d_bn(x, c7, 1, 1), c7, 1, 7), 192, 7, 1)
    b77 = conv2d_bn(x, c7, 1, 1)
    for filters, (rows, cols) in ((c7, (7, 1)), (c7, (1, 7)), (c7, (7, 1)), (192, (1, 7))):
        b77 = conv2d_bn(b77, filters, rows, cols)
    bp = _avg_pool_branch(x, 192)
    return layers.concatenate([b1, b7, b77, bp], axis=_axis(), name=name)


def _block8(x: Any, i: int) -> Any:
    b1 = conv2d_bn(x, 320, 1, 1)
    b3 = conv2d_bn(x, 384, 1, 1)
    b3 = layers.concatenate([conv2d_bn(b3, 384, 1, 3), conv2d_bn(b3, 384, 3, 1)], axis=_axis(), name=f"mixed9_{i}")
    b33 = conv2d_bn(conv2d_bn(x, 448, 1, 1), 384, 3, 3)
    b33 = layers.concatenate([conv2d_bn(b33, 384, 1, 3), conv2d_bn(b33, 384, 3, 1)], axis=_axis())
    bp = _avg_pool_branch(x, 192)
    return layers.concatenate([b1, b3, b33, bp], axis=_axis(), name=f"mixed{9 + i}")


def InceptionV3(include_top: bool = True, weights: Any = "imagenet", input_tensor: Any = None,
                input_shape: Any = None, pooling: str | None = None, classes: int = 1000,
                classifier_activation: Any = "softmax", name: str = "inception_v3") -> Model:
    """InceptionV3, ImageNet weights from Keras's cache by default.

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
        >>> InceptionV3(weights=None, include_top=False, input_shape=(75, 75, 3)).output_shape
        (None, 1, 1, 2048)
    """
    imagenet_utils.check_weights_argument(weights, include_top, classes)
    input_shape = imagenet_utils.obtain_input_shape(input_shape, default_size=299, min_size=75,
                                                    data_format=backend_config.image_data_format(),
                                                    require_flatten=include_top, weights=weights)
    img_input = imagenet_utils.input_layer(input_tensor, input_shape)

    x = conv2d_bn(img_input, 32, 3, 3, strides=(2, 2), padding="valid")
    x = conv2d_bn(x, 32, 3, 3, padding="valid")
    x = conv2d_bn(x, 64, 3, 3)
    x = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)
    x = conv2d_bn(x, 80, 1, 1, padding="valid")
    x = conv2d_bn(x, 192, 3, 3, padding="valid")
    x = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)
    for i, pool_filters in enumerate((32, 64, 64)):
        x = _block35(x, pool_filters, f"mixed{i}")
    # mixed3: to 17x17
    b3 = conv2d_bn(x, 384, 3, 3, strides=(2, 2), padding="valid")
    b33 = conv2d_bn(conv2d_bn(conv2d_bn(x, 64, 1, 1), 96, 3, 3), 96, 3, 3, strides=(2, 2), padding="valid")
    x = layers.concatenate([b3, b33, layers.MaxPooling2D((3, 3), strides=(2, 2))(x)], axis=_axis(), name="mixed3")
    for i, c7 in enumerate((128, 160, 160, 192), start=4):
        x = _block17(x, c7, f"mixed{i}")
    # mixed8: to 8x8
    b3 = conv2d_bn(conv2d_bn(x, 192, 1, 1), 320, 3, 3, strides=(2, 2), padding="valid")
    b7 = conv2d_bn(conv2d_bn(conv2d_bn(x, 192, 1, 1), 192, 1, 7), 192, 7, 1)
    b7 = conv2d_bn(b7, 192, 3, 3, strides=(2, 2), padding="valid")
    x = layers.concatenate([b3, b7, layers.MaxPooling2D((3, 3), strides=(2, 2))(x)], axis=_axis(), name="mixed8")
    for i in range(2):
        x = _block8(x, i)

    x = imagenet_utils.top_or_pooled(x, include_top, classes, classifier_activation, weights, pooling)

    model = Model(imagenet_utils.model_inputs(input_tensor, img_input), x, name=name)
    file_name, file_hash = WEIGHTS[0 if include_top else 1]
    imagenet_utils.load_application_weights(model, weights, file_name, _BASE + file_name, file_hash)
    return model


def preprocess_input(x: Any, data_format: str | None = None) -> Any:
    """InceptionV3's "tf" preprocessing: pixels (0-255) scaled to [-1, 1].

    Example:
        >>> import numpy as np
        >>> preprocess_input(np.array([[[[0.0, 127.5, 255.0]]]], np.float32))[0, 0, 0].tolist()
        [-1.0, 0.0, 1.0]
    """
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")
