"""``keras.export``: Keras's ``ExportArchive`` writes a TensorFlow SavedModel, which onnxforge does not produce.

onnxforge's exported artifact is an ONNX file: ``model.export(path, format="onnx")`` (or
``onnxforge.saving.export_inference``) writes the inference graph any ONNX runtime serves.

Example:
    >>> from onnxforge import keras
    >>> keras.export.ExportArchive()
    Traceback (most recent call last):
    ...
    NotImplementedError: keras.export.ExportArchive builds a TensorFlow SavedModel ...
"""
from __future__ import annotations

__all__ = ["ExportArchive"]

from typing import Any


class ExportArchive:
    """Refuses: a TensorFlow SavedModel archive has no onnxforge counterpart; export ONNX instead."""

    def __init__(self, *args: Any, **kwargs: Any):
        raise NotImplementedError(
            "keras.export.ExportArchive builds a TensorFlow SavedModel (tracked endpoints and variables for TF "
            "Serving), which onnxforge does not produce. Export the model to ONNX instead: "
            "`model.export(\"model.onnx\", format=\"onnx\")` writes the inference graph (serve it with "
            "onnxruntime, or load it back with onnxforge.saving.load_onnx).")
