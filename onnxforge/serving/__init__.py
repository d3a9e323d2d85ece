"""Serve an ONNX model over HTTP/JSON, using only onnxruntime, numpy and the stdlib.

Concurrent requests are batched only for graphs proven row-independent (``row_independence``); the
server bounds connections, request memory and time per client (``limits``) and answers strict JSON.

Example:
    >>> from onnxforge.serving import InferenceServer
    >>> # InferenceServer("model.onnx", port=8000).serve_forever()
"""
from __future__ import annotations

from onnxforge.serving.batcher import Batcher
from onnxforge.serving.request_runner import ModelRunner, RequestError, TensorSpec
from onnxforge.serving.server import InferenceServer

__all__ = ["Batcher", "InferenceServer", "ModelRunner", "RequestError", "TensorSpec"]
