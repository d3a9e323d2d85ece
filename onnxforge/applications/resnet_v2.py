"""``keras.applications.resnet_v2``: ResNet50V2, ResNet101V2 and ResNet152V2 (He et al., 2016: identity
mappings, pre-activation blocks).

Layer names, order and weights follow Keras 3.15 (its ImageNet files ``resnet50v2_weights_tf_dim_ordering_
tf_kernels.h5``... load). Inputs are expected scaled to [-1, 1] (``preprocess_input``, "tf" mode).

Example:
    >>> from onnxforge.applications import resnet_v2
    >>> model = resnet_v2.ResNet50V2(weights=None, include_top=False, input_shape=(32, 32, 3), pooling="max")
    >>> model.output_shape
    (None, 2048)
"""
from __future__ import annotations

__all__ = ["ResNet50V2", "ResNet101V2", "ResNet152V2", "preprocess_input", "decode_predictions"]

from typing import Any, Callable

from ..models import Model
from . import imagenet_utils
from .imagenet_utils import decode_predictions  # one for every family, as in Keras
from .resnet import ResNet, stack_residual_blocks_v2


def _v2_stages(blocks: tuple[int, int, int, int]) -> Callable[[Any], Any]:
    # V2 strides at the end of a stage (its last block), so the last stage keeps its resolution
    def stack_fn(x: Any) -> Any:
        x = stack_residual_blocks_v2(x, 64, blocks[0], name="conv2")
        x = stack_residual_blocks_v2(x, 128, blocks[1], name="conv3")
        x = stack_residual_blocks_v2(x, 256, blocks[2], name="conv4")
        return stack_residual_blocks_v2(x, 512, blocks[3], stride1=1, name="conv5")
    return stack_fn


def ResNet50V2(include_top: bool = True, weights: Any = "imagenet", input_tensor: Any = None,
               input_shape: Any = None, pooling: str | None = None, classes: int = 1000,
               classifier_activation: Any = "softmax", name: str = "resnet50v2") -> Model:
    """ResNet50V2 (3, 4, 6, 3 pre-activation blocks); arguments as in ``resnet.ResNet50``.

    Example:
        >>> ResNet50V2(weights=None, include_top=False, input_shape=(32, 32, 3)).output_shape
        (None, 1, 1, 2048)
    """
    return ResNet(_v2_stages((3, 4, 6, 3)), True, True, include_top, weights, input_tensor, input_shape,
                  pooling, classes, classifier_activation, name=name, weights_name="resnet50v2")


def ResNet101V2(include_top: bool = True, weights: Any = "imagenet", input_tensor: Any = None,
                input_shape: Any = None, pooling: str | None = None, classes: int = 1000,
                classifier_activation: Any = "softmax", name: str = "resnet101v2") -> Model:
    """ResNet101V2 (3, 4, 23, 3 pre-activation blocks); arguments as in ``resnet.ResNet50``.

    Example:
        >>> ResNet101V2(weights=None, include_top=False, input_shape=(32, 32, 3)).output_shape  # doctest: +SKIP
        (None, 1, 1, 2048)
    """
    return ResNet(_v2_stages((3, 4, 23, 3)), True, True, include_top, weights, input_tensor, input_shape,
                  pooling, classes, classifier_activation, name=name, weights_name="resnet101v2")


def ResNet152V2(include_top: bool = True, weights: Any = "imagenet", input_tensor: Any = None,
                input_shape: Any = None, pooling: str | None = None, classes: int = 1000,
                classifier_activation: Any = "softmax", name: str = "resnet152v2") -> Model:
    """ResNet152V2 (3, 8, 36, 3 pre-activation blocks); arguments as in ``resnet.ResNet50``.

    Example:
        >>> ResNet152V2(weights=None, include_top=False, input_shape=(32, 32, 3)).output_shape  # doctest: +SKIP
        (None, 1, 1, 2048)
    """
    return ResNet(_v2_stages((3, 8, 36, 3)), True, True, include_top, weights, input_tensor, input_shape,
                  pooling, classes, classifier_activation, name=name, weights_name="resnet152v2")


def preprocess_input(x: Any, data_format: str | None = None) -> Any:
    """ResNetV2's "tf" preprocessing: pixels (0-255) scaled to [-1, 1].

    Example:
        >>> import numpy as np
        >>> preprocess_input(np.array([[[[0.0, 127.5, 255.0]]]], np.float32))[0, 0, 0].tolist()
        [-1.0, 0.0, 1.0]
    """
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")
