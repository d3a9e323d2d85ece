"""The saving methods every ``Model`` has: ``export``, ``export_training``, ``export_eval``, ``save``,
``save_weights``, ``load_weights`` and ``to_json``.

The class needs the methods, but the work is done by ``onnxforge.saving``, which sits above the models (it
rebuilds models from files). So the methods call functions that ``onnxforge.saving`` registers here when it
is imported (``import onnxforge`` imports it), instead of importing up.
"""
from __future__ import annotations

__all__ = ["SavingMixin", "register_saving_functions"]

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

#: ``{name: function}`` registered by ``onnxforge.saving``: export_inference, export_training, export_eval,
#: save_model, save_weights, load_weights, serialize_keras_object.
_SAVING: dict[str, Callable[..., Any]] = {}


def register_saving_functions(**functions: Callable[..., Any]) -> None:
    """Called by ``onnxforge.saving`` when imported: the functions the saving methods delegate to."""
    _SAVING.update(functions)


def _saving(name: str) -> Callable[..., Any]:
    try:
        return _SAVING[name]
    except KeyError:
        raise RuntimeError(f"Model saving is not set up ({name!r} missing): import onnxforge (the package), which "
                           "imports onnxforge.saving.") from None


class SavingMixin:
    """Mixed into ``onnxforge.Model``.

    Example:
        >>> import os, tempfile
        >>> import onnxforge as tf
        >>> model = tf.keras.Sequential([tf.keras.layers.Dense(1, input_shape=(2,))])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> folder = tempfile.mkdtemp()
        >>> _ = model.export(os.path.join(folder, "model.onnx"))               # serve this
        >>> _ = model.export_training(os.path.join(folder, "train_step.onnx"))  # train anywhere
        >>> _ = model.save(os.path.join(folder, "checkpoint.onnx"))             # resume later
        >>> restored = tf.keras.models.load_model(os.path.join(folder, "checkpoint.onnx"))
    """

    def export(self, filepath: str | os.PathLike[str], format: str = "onnx", opset: int | None = None,
               class_names: Sequence[str] | None = None, external_data: bool | None = None,
               weights: str = "initializers") -> Path:
        """Write the inference graph as a standalone ``.onnx`` file any onnxruntime can run.

        Weights are initializers named after their variables; the batch axis is ``batch`` (and a single
        input's dynamic axis 1 is ``sequence``); inputs and outputs keep the Keras names
        (``model.input_names`` / ``model.output_names``). ``metadata_props`` hold the producer, the
        onnxforge version, the input layout (``{"image": "NHWC"}``) and ``class_names`` if given.

        Args:
            filepath: the file to write (atomically).
            format: ``"onnx"`` (the only format).
            opset: ``ai.onnx`` opset in ``[onnxforge.graph.MIN_OPSET, MAX_OPSET]``; default the pinned one.
            class_names: names of the first output's classes, stored in the metadata.
            external_data: keep tensors in a data file beside ``filepath``; default only past 2 GB.
            weights: ``"initializers"`` (the weights inside) or ``"inputs"`` (true inputs, their values in
                ``<name>.init.onnx`` beside it: predict with weights a runtime trained from
                ``export_training``'s files).

        Returns:
            The written path.
        """
        if format != "onnx":
            raise ValueError(f"export(): onnxforge exports ONNX only. Received: format={format!r}")
        return _saving("export_inference")(self, filepath, opset=opset, class_names=class_names,
                                           external_data=external_data, weights=weights)

    def export_training(self, filepath: str | os.PathLike[str], opset: int | None = None,
                        external_data: bool | None = None) -> Path:
        """Write the compiled training step and its initial state (``<name>.init.onnx`` beside it).

        Every state tensor is a true input ``<name>`` and an output ``<name>:new`` (pairs in
        ``metadata_props["onnxforge.state"]``); the companion model has no inputs and outputs the state's
        current values under the input names. Each step feeds the batch (``<input>``,
        ``target/<output>``, ``sample_weight/<output>``), ``learning_rate`` and the state. See
        ``onnxforge.saving.export_training`` and the README's "Train from any runtime".
        """
        return _saving("export_training")(self, filepath, opset=opset, external_data=external_data)

    def export_eval(self, filepath: str | os.PathLike[str], opset: int | None = None,
                    external_data: bool | None = None) -> Path:
        """Write the compiled evaluation step (loss and metric batch sums ``sums/<metric>/<state>``), weights as
        true inputs, their current values in ``<name>.init.onnx``."""
        return _saving("export_eval")(self, filepath, opset=opset, external_data=external_data)

    def save(self, filepath: str | os.PathLike[str], overwrite: bool = True, include_optimizer: bool = True,
             external_data: bool | None = None, **kwargs: Any) -> Path:
        """Save the whole model: ``.onnx`` (onnxforge's file: ``onnxforge.load_model`` resumes it exactly),
        ``.keras`` (Keras 3's archive, which ``keras.saving.load_model`` reads) or legacy ``.h5``.

        See ``onnxforge.saving.save_model``.
        """
        return _saving("save_model")(self, filepath, overwrite=overwrite, include_optimizer=include_optimizer,
                                  external_data=external_data, **kwargs)

    def to_json(self, **kwargs: Any) -> str:
        """The model's architecture as Keras 3's JSON (``serialize_keras_object(model)``), which
        ``keras.models.model_from_json`` (here or in Keras) rebuilds, unbuilt weights aside.

        Args:
            **kwargs: passed on to ``json.dumps`` (``indent=2``).
        """
        return json.dumps(_saving("serialize_keras_object")(self), **kwargs)

    def save_weights(self, filepath: str | os.PathLike[str], overwrite: bool = True, **kwargs: Any) -> Path:
        """Save the weights to ``*.weights.h5`` (Keras 3's file), ``*.weights.onnx`` or ``*.npz``."""
        return _saving("save_weights")(self, filepath, overwrite=overwrite, **kwargs)

    def load_weights(self, filepath: str | os.PathLike[str], skip_mismatch: bool = False, **kwargs: Any) -> None:
        """Load weights saved by ``save_weights``, ``save`` or ``export`` (onnxforge's files, an ``.npz`` of
        ``get_weights()``) or by Keras (``.weights.h5``, ``.keras``, legacy ``.h5``)."""
        _saving("load_weights")(self, filepath, skip_mismatch=skip_mismatch, **kwargs)

    def _restore_training_state(self, filepath: str | os.PathLike[str]) -> None:
        """Weights, optimizer and RNG state from a ``save()`` file, into this compiled model (BackupAndRestore)."""
        _saving("restore_training_state")(self, filepath)
