"""``keras.applications.vgg19``: VGG19, VGG16's body with four convs in each of the last three blocks.

Layer names, order and weights follow Keras 3.15 (its ImageNet files ``vgg19_weights_tf_dim_ordering_tf_
kernels.h5``... load). Inputs are expected in "caffe" preprocessing (``preprocess_input``).

Example:
    >>> from onnxforge.applications import vgg19
    >>> [l.name for l in vgg19.VGG19(weights=None, include_top=False, input_shape=(32, 32, 3)).layers][-3:]
    ['block5_conv3', 'block5_conv4', 'block5_pool']
"""
from __future__ import annotations

__all__ = ["VGG19", "preprocess_input", "decode_predictions"]

from typing import Any

from ..models import Model
from .vgg16 import build_vgg, decode_predictions, preprocess_input


def VGG19(include_top: bool = True, weights: Any = "imagenet", input_tensor: Any = None, input_shape: Any = None,
          pooling: str | None = None, classes: int = 1000, classifier_activation: Any = "softmax",
          name: str = "vgg19") -> Model:
    """VGG19 (2, 2, 4, 4, 4 convs per block); arguments as in ``vgg16.VGG16``.

    Example:
        >>> VGG19(weights=None, include_top=False, input_shape=(32, 32, 3), pooling="avg").output_shape
        (None, 512)
    """
    return build_vgg((2, 2, 4, 4, 4), "vgg19", include_top, weights, input_tensor, input_shape, pooling, classes,
                     classifier_activation, name)
