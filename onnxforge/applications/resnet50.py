"""``keras.applications.resnet50``: ResNet50 with its "caffe" ``preprocess_input`` and
``decode_predictions`` (the same objects as ``resnet``'s, as Keras exposes them).

Example:
    >>> from onnxforge.applications import resnet50, resnet
    >>> resnet50.preprocess_input is resnet.preprocess_input
    True
"""
from __future__ import annotations

__all__ = ["ResNet50", "preprocess_input", "decode_predictions"]

from .resnet import ResNet50, decode_predictions, preprocess_input
