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

from . import imagenet_utils, mobilenet, mobilenet_v2, mobilenet_v3, nasnet
from .mobilenet import MobileNet
from .mobilenet_v2 import MobileNetV2
from .mobilenet_v3 import MobileNetV3Large, MobileNetV3Small
from .nasnet import NASNetLarge, NASNetMobile

__all__ = ["imagenet_utils", "mobilenet", "mobilenet_v2", "mobilenet_v3", "nasnet", "MobileNet", "MobileNetV2",
           "MobileNetV3Small", "MobileNetV3Large", "NASNetMobile", "NASNetLarge"]
