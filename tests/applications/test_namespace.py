"""``keras.applications`` / ``tf.keras.applications`` name onnxforge's builders, and the family modules import
the way Keras's do."""
from __future__ import annotations

import importlib

import onnxforge as tf
from onnxforge import applications


def test_builders_and_family_modules_are_reachable_as_in_keras():
    assert tf.keras.applications.ResNet50 is applications.ResNet50
    for module in ("resnet50", "resnet", "resnet_v2", "vgg16", "vgg19", "densenet", "inception_v3", "xception",
                   "mobilenet", "mobilenet_v2", "mobilenet_v3", "nasnet", "efficientnet", "efficientnet_v2",
                   "convnext", "inception_resnet_v2", "imagenet_utils"):
        family = importlib.import_module(f"onnxforge.keras.applications.{module}")
        assert family is getattr(applications, module)
        assert callable(family.preprocess_input) and callable(family.decode_predictions)
    from onnxforge.keras.applications.mobilenet_v2 import MobileNetV2, preprocess_input
    assert MobileNetV2 is applications.MobileNetV2 and preprocess_input is applications.mobilenet_v2.preprocess_input
    names = [n for n in dir(tf.keras.applications) if n[0].isupper()]
    assert len(names) >= 40
    assert tf.keras.applications.InceptionResNetV2 is applications.InceptionResNetV2
