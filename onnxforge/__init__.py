"""onnxforge: a Keras-style model compiler that targets ONNX.

Models written as tf.keras code compile into an inference graph and a training-step graph (forward,
loss, gradients derived by onnxforge's own reverse-mode autodiff, optimizer update), all in standard
``ai.onnx`` ops, executed by stock onnxruntime.
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
