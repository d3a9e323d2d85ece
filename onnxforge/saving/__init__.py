"""Saving and loading: crash-safe writes and a loader for untrusted ``.onnx`` files.

Model save / load / export build on these two pieces: every file onnxforge writes goes through
:func:`atomic_write`, and every ``.onnx`` file it reads goes through :func:`load_onnx`.

* ``export_inference`` / ``export_training`` / ``export_eval`` (``model.export*``): standalone ``.onnx``
  files of the compiled programs, for onnxruntime anywhere; a step graph's initial state is a companion
  model ``<name>.init.onnx`` (``portable``), and ``load_training`` reads both files.
* ``save_model`` / ``load_model`` (``model.save``): one ``.onnx`` file holding the architecture, weights,
  compile config and optimizer state; training resumes exactly. Also Keras 3's ``.keras`` archives and
  legacy ``.h5`` files, both ways (``keras_format``; needs h5py).
* ``save_weights`` / ``load_weights``: ``*.weights.onnx``, ``*.npz``, or Keras's ``*.weights.h5``.
* ``register_keras_serializable``: lets ``load_model`` rebuild custom layers.
"""
from __future__ import annotations

from onnxforge.saving.atomic import atomic_write, temp_files_for
from onnxforge.graph.safe_load import (DEFAULT_MAX_BYTES, OnnxLoadError, iter_tensors, load_onnx, load_onnx_bytes,
                                        tensor_nbytes)
from onnxforge.custom_objects import CustomObjectScope, custom_object_scope, get_custom_objects
from onnxforge.layers.serialization import get_registered_name, get_registered_object, register_keras_serializable
from onnxforge.saving.export import export_eval, export_inference, export_training, write_onnx
from onnxforge.saving.formats import load_model, load_weights, save_model, save_weights
from onnxforge.saving.model_reading import restore_training_state
from onnxforge.saving.object_serialization import deserialize_keras_object, model_from_json, serialize_keras_object
from onnxforge.saving.keras_format.errors import KerasFileError
from onnxforge.saving.file_editor import KerasFileEditor
from onnxforge.saving.portable import TrainingFile, companion_path, load_training
from onnxforge import models as _models
from onnxforge.models.saving_methods import register_saving_functions as _register

# Model.save / save_weights / load_weights / export* call these (the models sit below saving and cannot
# import it), and ``keras.models.load_model`` / ``save_model`` are these functions, as in tf.keras.
_register(export_inference=export_inference, export_training=export_training, export_eval=export_eval,
          save_model=save_model, save_weights=save_weights, load_weights=load_weights,
          serialize_keras_object=serialize_keras_object, restore_training_state=restore_training_state)
_models.load_model, _models.save_model, _models.model_from_json = load_model, save_model, model_from_json

__all__ = [
    "DEFAULT_MAX_BYTES",
    "OnnxLoadError",
    "KerasFileError",
    "KerasFileEditor",
    "atomic_write",
    "iter_tensors",
    "load_onnx",
    "load_onnx_bytes",
    "temp_files_for",
    "tensor_nbytes",
    "export_inference",
    "export_training",
    "export_eval",
    "write_onnx",
    "save_model",
    "load_model",
    "save_weights",
    "load_weights",
    "restore_training_state",
    "register_keras_serializable",
    "get_registered_name",
    "get_registered_object",
    "custom_object_scope",
    "CustomObjectScope",
    "get_custom_objects",
    "serialize_keras_object",
    "deserialize_keras_object",
    "model_from_json",
    "TrainingFile",
    "companion_path",
    "load_training",
]
