"""Saving and loading: crash-safe writes and a loader for untrusted ``.onnx`` files.

Model save / load / export build on these two pieces: every file onnxforge writes goes through
:func:`atomic_write`, and every ``.onnx`` file it reads goes through :func:`load_onnx`.
"""
from __future__ import annotations

from onnxforge.saving.atomic import atomic_write, temp_files_for
from onnxforge.saving.safe_load import DEFAULT_MAX_BYTES, OnnxLoadError, iter_tensors, load_onnx, tensor_nbytes

__all__ = [
    "DEFAULT_MAX_BYTES",
    "OnnxLoadError",
    "atomic_write",
    "iter_tensors",
    "load_onnx",
    "temp_files_for",
    "tensor_nbytes",
]
