"""Serve an ONNX model over HTTP/JSON with dynamic batching, using only onnxruntime, numpy and the stdlib.

Example:
    >>> from onnxforge.serving import InferenceServer
    >>> # InferenceServer("model.onnx", port=8000).serve_forever()
"""
from __future__ import annotations

from onnxforge.serving.batcher import Batcher
from onnxforge.serving.runner import ModelRunner, RequestError, TensorSpec
from onnxforge.serving.server import InferenceServer

__all__ = ["Batcher", "InferenceServer", "ModelRunner", "RequestError", "TensorSpec"]
