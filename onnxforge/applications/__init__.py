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

from . import imagenet_utils
from . import densenet, inception_resnet_v2, inception_v3, resnet, resnet50, resnet_v2, vgg16, vgg19, xception
from . import mobilenet, mobilenet_v2, mobilenet_v3, nasnet
from . import convnext, efficientnet, efficientnet_v2
from .convnext import ConvNeXtBase, ConvNeXtLarge, ConvNeXtSmall, ConvNeXtTiny, ConvNeXtXLarge
from .densenet import DenseNet121, DenseNet169, DenseNet201
from .efficientnet import (EfficientNetB0, EfficientNetB1, EfficientNetB2, EfficientNetB3, EfficientNetB4,
                           EfficientNetB5, EfficientNetB6, EfficientNetB7)
from .efficientnet_v2 import (EfficientNetV2B0, EfficientNetV2B1, EfficientNetV2B2, EfficientNetV2B3,
                              EfficientNetV2L, EfficientNetV2M, EfficientNetV2S)
from .inception_resnet_v2 import InceptionResNetV2
from .inception_v3 import InceptionV3
from .mobilenet import MobileNet
from .mobilenet_v2 import MobileNetV2
from .mobilenet_v3 import MobileNetV3Large, MobileNetV3Small
from .nasnet import NASNetLarge, NASNetMobile
from .resnet import ResNet50, ResNet101, ResNet152
from .resnet_v2 import ResNet50V2, ResNet101V2, ResNet152V2
from .vgg16 import VGG16
from .vgg19 import VGG19
from .xception import Xception

__all__ = ["imagenet_utils",
           "densenet", "inception_resnet_v2", "inception_v3", "resnet", "resnet50", "resnet_v2", "vgg16", "vgg19",
           "xception",
           "mobilenet", "mobilenet_v2", "mobilenet_v3", "nasnet", "convnext", "efficientnet", "efficientnet_v2",
           "DenseNet121", "DenseNet169", "DenseNet201", "ResNet50", "ResNet101", "ResNet152",
           "ResNet50V2", "ResNet101V2", "ResNet152V2", "VGG16", "VGG19",
           "InceptionV3", "InceptionResNetV2", "Xception", "MobileNet", "MobileNetV2", "MobileNetV3Small",
           "MobileNetV3Large",
           "NASNetMobile", "NASNetLarge",
           "ConvNeXtTiny", "ConvNeXtSmall", "ConvNeXtBase", "ConvNeXtLarge", "ConvNeXtXLarge",
           "EfficientNetB0", "EfficientNetB1", "EfficientNetB2", "EfficientNetB3", "EfficientNetB4",
           "EfficientNetB5", "EfficientNetB6", "EfficientNetB7",
           "EfficientNetV2B0", "EfficientNetV2B1", "EfficientNetV2B2", "EfficientNetV2B3", "EfficientNetV2S",
           "EfficientNetV2M", "EfficientNetV2L"]
