"""``keras.applications.vgg16``: VGG16 (Simonyan & Zisserman, 2014), and the VGG body VGG19 shares.

Layer names, order and weights follow Keras 3.15, so Keras's ImageNet files
(``vgg16_weights_tf_dim_ordering_tf_kernels.h5``...) and Keras-saved weights load. Inputs are expected in
"caffe" preprocessing (``preprocess_input``).

Example:
    >>> from onnxforge.applications import vgg16
    >>> vgg16.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3)).output_shape
    (None, 1, 1, 512)
"""
from __future__ import annotations

__all__ = ["VGG16", "preprocess_input", "decode_predictions"]

from typing import Any

from .. import backend_config, layers
from ..models import Model
from . import imagenet_utils
from .imagenet_utils import decode_predictions  # one for every family, as in Keras

_BASE = "https://storage.googleapis.com/tensorflow/keras-applications/"
# (file name, Keras's md5) with the top, then without
WEIGHTS = {
    "vgg16": (("vgg16_weights_tf_dim_ordering_tf_kernels.h5", "64373286793e3c8b2b4e3219cbf3544b"),
              ("vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", "6d6bbae143d832006294945121d1f1fc")),
    "vgg19": (("vgg19_weights_tf_dim_ordering_tf_kernels.h5", "cbe5617147190e668d6c5d5026f83318"),
              ("vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5", "253f8cb515780f3b799900260a226db6")),
}


def build_vgg(convs_per_block: tuple[int, ...], family: str, include_top: bool, weights: Any, input_tensor: Any,
              input_shape: Any, pooling: str | None, classes: int, classifier_activation: Any, name: str) -> Model:
    """Five blocks of 3x3 ReLU convs (64, 128, 256, 512, 512 filters; ``convs_per_block`` of each), each
    ending in a 2x2 max pool; then Flatten and two 4096-wide ReLU layers before the classifier, or pooling.
    ``family`` (``"vgg16"`` / ``"vgg19"``) picks the ImageNet file.

    Example:
        >>> build_vgg((1, 1, 1, 1, 1), "vgg16", False, None, None, (32, 32, 3), "avg", 0, None, "tiny").output_shape
        (None, 512)
    """
    imagenet_utils.check_weights_argument(weights, include_top, classes)
    input_shape = imagenet_utils.obtain_input_shape(input_shape, default_size=224, min_size=32,
                                                    data_format=backend_config.image_data_format(),
                                                    require_flatten=include_top, weights=weights)
    img_input = imagenet_utils.input_layer(input_tensor, input_shape)
    x = img_input
    for block, (convs, filters) in enumerate(zip(convs_per_block, (64, 128, 256, 512, 512)), start=1):
        for i in range(1, convs + 1):
            x = layers.Conv2D(filters, (3, 3), activation="relu", padding="same", name=f"block{block}_conv{i}")(x)
        x = layers.MaxPooling2D((2, 2), strides=(2, 2), name=f"block{block}_pool")(x)

    if include_top:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(4096, activation="relu", name="fc1")(x)
        x = layers.Dense(4096, activation="relu", name="fc2")(x)
        imagenet_utils.validate_activation(classifier_activation, weights)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    else:
        x = imagenet_utils.pooled_features(x, pooling)

    model = Model(imagenet_utils.model_inputs(input_tensor, img_input), x, name=name)
    file_name, file_hash = WEIGHTS[family][0 if include_top else 1]
    imagenet_utils.load_application_weights(model, weights, file_name, f"{_BASE}{family}/{file_name}", file_hash)
    return model


def VGG16(include_top: bool = True, weights: Any = "imagenet", input_tensor: Any = None, input_shape: Any = None,
          pooling: str | None = None, classes: int = 1000, classifier_activation: Any = "softmax",
          name: str = "vgg16") -> Model:
    """VGG16 (2, 2, 3, 3, 3 convs per block), ImageNet weights from Keras's cache by default.

    Args:
        include_top: end with the three dense layers (the last ``classes`` wide); else the feature map, or
            pooled by ``pooling`` (``None``, ``"avg"``, ``"max"``).
        weights: ``"imagenet"``, ``None`` (random) or the path of a weights file.
        input_tensor: a tensor to build the model on, instead of a new ``Input``.
        input_shape: ``(height, width, 3)``, at least 32x32; only free when ``include_top=False``
            (the ImageNet top needs 224x224).
        classes, classifier_activation: the classifier's size and activation (``None`` for logits).
        name: the model's name.

    Example:
        >>> VGG16(weights=None, include_top=False, input_shape=(64, 32, 3), pooling="max").output_shape
        (None, 512)
    """
    return build_vgg((2, 2, 3, 3, 3), "vgg16", include_top, weights, input_tensor, input_shape, pooling, classes,
                     classifier_activation, name)


def preprocess_input(x: Any, data_format: str | None = None) -> Any:
    """VGG's "caffe" preprocessing: RGB to BGR, minus ImageNet's channel means, no scaling.

    Example:
        >>> import numpy as np
        >>> [round(float(v), 3) for v in preprocess_input(np.zeros((1, 1, 1, 3), np.float32))[0, 0, 0]]
        [-103.939, -116.779, -123.68]
    """
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="caffe")
