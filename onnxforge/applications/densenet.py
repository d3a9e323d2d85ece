"""``keras.applications.densenet``: DenseNet121, DenseNet169 and DenseNet201 (Huang et al., 2017).

Layer names, order and weights follow Keras 3.15, so Keras's ImageNet files
(``densenet121_weights_tf_dim_ordering_tf_kernels.h5``...) and Keras-saved weights load. Inputs are expected
in "torch" preprocessing: scaled to [0, 1], then normalized by ImageNet's channel means and deviations
(``preprocess_input``). Like Keras's, these models are ``channels_last`` only.

Example:
    >>> from onnxforge.applications import densenet
    >>> model = densenet.DenseNet121(weights=None, include_top=False, input_shape=(32, 32, 3), pooling="avg")
    >>> model.output_shape
    (None, 1024)
"""
from __future__ import annotations

__all__ = ["DenseNet121", "DenseNet169", "DenseNet201", "preprocess_input", "decode_predictions"]

from typing import Any

from .. import backend_config, layers
from ..models import Model
from . import imagenet_utils
from .imagenet_utils import decode_predictions  # one for every family, as in Keras

BASE_WEIGHTS_PATH = "https://storage.googleapis.com/tensorflow/keras-applications/densenet/"
# Keras's md5 of each (with top, without top) file, by the blocks per dense stage.
WEIGHTS_HASHES = {
    (6, 12, 24, 16): ("densenet121", "9d60b8095a5708f2dcce2bca79d332c7", "30ee3e1110167f948a6b9946edeeb738"),
    (6, 12, 32, 32): ("densenet169", "d699b8f76981ab1b30698df4c175e90b", "b8c4d4c20dd625c148057b9ff1c1176b"),
    (6, 12, 48, 32): ("densenet201", "1ceb130c1ea1b78c3bf6114dbdfd8807", "c13680b51ded0fb44dff2d8f86ac8bb1"),
}
_EPS = 1.001e-5
_AXIS = 3   # channels_last only (checked in DenseNet)


def _bn_relu(x: Any, name: str) -> Any:
    x = layers.BatchNormalization(axis=_AXIS, epsilon=_EPS, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def conv_block(x: Any, growth_rate: int, name: str) -> Any:
    """One dense layer: BN-ReLU-1x1 conv (``4 * growth_rate``), BN-ReLU-3x3 conv (``growth_rate``), its
    output concatenated to ``x``."""
    y = _bn_relu(x, f"{name}_0")
    y = layers.Conv2D(4 * growth_rate, 1, use_bias=False, name=f"{name}_1_conv")(y)
    y = _bn_relu(y, f"{name}_1")
    y = layers.Conv2D(growth_rate, 3, padding="same", use_bias=False, name=f"{name}_2_conv")(y)
    return layers.Concatenate(axis=_AXIS, name=f"{name}_concat")([x, y])


def dense_block(x: Any, blocks: int, name: str) -> Any:
    """``blocks`` dense layers, each adding 32 channels."""
    for i in range(1, blocks + 1):
        x = conv_block(x, 32, name=f"{name}_block{i}")
    return x


def transition_block(x: Any, reduction: float, name: str) -> Any:
    """Between dense stages: BN-ReLU-1x1 conv to ``reduction`` of the channels, then a 2x2 average pool."""
    x = _bn_relu(x, name)
    x = layers.Conv2D(int(x.shape[_AXIS] * reduction), 1, use_bias=False, name=f"{name}_conv")(x)
    return layers.AveragePooling2D(2, strides=2, name=f"{name}_pool")(x)


def DenseNet(blocks: Any, include_top: bool = True, weights: Any = "imagenet", input_tensor: Any = None,
             input_shape: Any = None, pooling: str | None = None, classes: int = 1000,
             classifier_activation: Any = "softmax", name: str = "densenet") -> Model:
    """A DenseNet of four dense stages of ``blocks`` layers each, joined by transition blocks.

    Example:
        >>> DenseNet([1, 1, 1, 1], weights=None, include_top=False, input_shape=(32, 32, 3)).output_shape
        (None, 1, 1, 68)
    """
    if backend_config.image_data_format() == "channels_first":
        raise ValueError("DenseNet does not support the `channels_first` image data format. Received: "
                         "image_data_format='channels_first'; expected 'channels_last'.")
    imagenet_utils.check_weights_argument(weights, include_top, classes)
    input_shape = imagenet_utils.obtain_input_shape(input_shape, default_size=224, min_size=32,
                                                    data_format=backend_config.image_data_format(),
                                                    require_flatten=include_top, weights=weights)
    img_input = imagenet_utils.input_layer(input_tensor, input_shape)

    # Keras leaves both paddings unnamed: they get the automatic zero_padding2d names
    x = layers.ZeroPadding2D(padding=((3, 3), (3, 3)))(img_input)
    x = layers.Conv2D(64, 7, strides=2, use_bias=False, name="conv1_conv")(x)
    x = _bn_relu(x, "conv1")
    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)))(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    for stage, count in enumerate(blocks[:3], start=2):
        x = dense_block(x, count, name=f"conv{stage}")
        x = transition_block(x, 0.5, name=f"pool{stage}")
    x = dense_block(x, blocks[3], name="conv5")
    x = layers.BatchNormalization(axis=_AXIS, epsilon=_EPS, name="bn")(x)
    x = layers.Activation("relu", name="relu")(x)

    x = imagenet_utils.top_or_pooled(x, include_top, classes, classifier_activation, weights, pooling, named=True)

    model = Model(imagenet_utils.model_inputs(input_tensor, img_input), x, name=name)
    if weights == "imagenet" and tuple(blocks) not in WEIGHTS_HASHES:
        raise ValueError(f"No ImageNet weights for a DenseNet of blocks={list(blocks)}; expected one of "
                         f"{[list(b) for b in WEIGHTS_HASHES]}, or weights=None.")
    family, top_hash, notop_hash = WEIGHTS_HASHES.get(tuple(blocks), ("densenet", None, None))
    file_name = f"{family}_weights_tf_dim_ordering_tf_kernels{'' if include_top else '_notop'}.h5"
    imagenet_utils.load_application_weights(model, weights, file_name, BASE_WEIGHTS_PATH + file_name,
                                            top_hash if include_top else notop_hash)
    return model


def DenseNet121(include_top: bool = True, weights: Any = "imagenet", input_tensor: Any = None,
                input_shape: Any = None, pooling: str | None = None, classes: int = 1000,
                classifier_activation: Any = "softmax", name: str = "densenet121") -> Model:
    """DenseNet121 (6, 12, 24, 16 dense layers), ImageNet weights from Keras's cache by default.

    Args:
        include_top: end with the ``classes``-way classifier; else the feature map, or pooled by ``pooling``
            (``None``, ``"avg"``, ``"max"``).
        weights: ``"imagenet"``, ``None`` (random) or the path of a weights file.
        input_tensor: a tensor to build the model on, instead of a new ``Input``.
        input_shape: ``(height, width, 3)``, at least 32x32; only free when ``include_top=False``
            (the ImageNet top needs 224x224).
        classes, classifier_activation: the classifier's size and activation (``None`` for logits).
        name: the model's name.

    Example:
        >>> DenseNet121(weights=None, include_top=False, input_shape=(32, 32, 3)).output_shape
        (None, 1, 1, 1024)
    """
    return DenseNet([6, 12, 24, 16], include_top, weights, input_tensor, input_shape, pooling, classes,
                    classifier_activation, name=name)


def DenseNet169(include_top: bool = True, weights: Any = "imagenet", input_tensor: Any = None,
                input_shape: Any = None, pooling: str | None = None, classes: int = 1000,
                classifier_activation: Any = "softmax", name: str = "densenet169") -> Model:
    """DenseNet169 (6, 12, 32, 32 dense layers); arguments as in ``DenseNet121``.

    Example:
        >>> DenseNet169(weights=None, include_top=False, input_shape=(32, 32, 3)).output_shape  # doctest: +SKIP
        (None, 1, 1, 1664)
    """
    return DenseNet([6, 12, 32, 32], include_top, weights, input_tensor, input_shape, pooling, classes,
                    classifier_activation, name=name)


def DenseNet201(include_top: bool = True, weights: Any = "imagenet", input_tensor: Any = None,
                input_shape: Any = None, pooling: str | None = None, classes: int = 1000,
                classifier_activation: Any = "softmax", name: str = "densenet201") -> Model:
    """DenseNet201 (6, 12, 48, 32 dense layers); arguments as in ``DenseNet121``.

    Example:
        >>> DenseNet201(weights=None, include_top=False, input_shape=(32, 32, 3)).output_shape  # doctest: +SKIP
        (None, 1, 1, 1920)
    """
    return DenseNet([6, 12, 48, 32], include_top, weights, input_tensor, input_shape, pooling, classes,
                    classifier_activation, name=name)


def preprocess_input(x: Any, data_format: str | None = None) -> Any:
    """DenseNet's "torch" preprocessing: scaled to [0, 1], minus ImageNet's channel means, over their
    standard deviations.

    Example:
        >>> import numpy as np
        >>> [round(float(v), 3) for v in preprocess_input(np.zeros((1, 1, 1, 3), np.float32))[0, 0, 0]]
        [-2.118, -2.036, -1.804]
    """
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="torch")
