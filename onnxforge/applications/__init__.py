"""``keras.applications``: the reference image-classification architectures, built from onnxforge's layers
with Keras's layer names, so their ImageNet weight files (from Keras's cache) and Keras-saved weights load.

Each builder takes Keras's arguments (``include_top``, ``weights``, ``input_tensor``, ``input_shape``,
``pooling``, ``classes``, ``classifier_activation``, ``name``) and returns a functional ``Model`` that
compiles, trains and exports like any other. Each family's module also holds its ``preprocess_input`` and
``decode_predictions`` (``keras.applications.resnet50.preprocess_input``...).

Example:
    >>> from onnxforge.applications import imagenet_utils
    >>> imagenet_utils.obtain_input_shape((64, 64, 3), 224, 32, "channels_last", require_flatten=False)
    (64, 64, 3)
"""
from __future__ import annotations

from . import convnext, efficientnet, efficientnet_v2, imagenet_utils
from .convnext import ConvNeXtBase, ConvNeXtLarge, ConvNeXtSmall, ConvNeXtTiny, ConvNeXtXLarge
from .efficientnet import (EfficientNetB0, EfficientNetB1, EfficientNetB2, EfficientNetB3, EfficientNetB4,
                           EfficientNetB5, EfficientNetB6, EfficientNetB7)
from .efficientnet_v2 import (EfficientNetV2B0, EfficientNetV2B1, EfficientNetV2B2, EfficientNetV2B3,
                              EfficientNetV2L, EfficientNetV2M, EfficientNetV2S)

__all__ = ["imagenet_utils", "convnext", "efficientnet", "efficientnet_v2",
           "ConvNeXtTiny", "ConvNeXtSmall", "ConvNeXtBase", "ConvNeXtLarge", "ConvNeXtXLarge",
           "EfficientNetB0", "EfficientNetB1", "EfficientNetB2", "EfficientNetB3", "EfficientNetB4",
           "EfficientNetB5", "EfficientNetB6", "EfficientNetB7",
           "EfficientNetV2B0", "EfficientNetV2B1", "EfficientNetV2B2", "EfficientNetV2B3", "EfficientNetV2S",
           "EfficientNetV2M", "EfficientNetV2L"]
