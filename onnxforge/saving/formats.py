"""``save_model`` / ``load_model`` / ``save_weights`` / ``load_weights``: one entry point, the format from the
file name, as in Keras 3.

=====================  ====================================================================================
file name              format
=====================  ====================================================================================
``*.onnx``             onnxforge's own: one ONNX file (architecture, weights, optimizer and RNG state)
``*.keras``            Keras 3's zip archive (config, weights and optimizer state), read and written by
                       ``keras.saving.load_model`` / ``model.save`` too
``*.h5``, ``*.hdf5``   Keras's legacy HDF5 model file (tf.keras ``model.save("x.h5")``)
``*.weights.h5``       Keras 3's weights file (``model.save_weights``), both ways
``*.weights.onnx``,    onnxforge's weights files
``*.npz``
=====================  ====================================================================================

The Keras formats need h5py (installed with keras); the error says so when it is missing.

Example:
    >>> import os, tempfile
    >>> import onnxforge as of
    >>> model = of.Sequential([of.layers.Input((3,)), of.layers.Dense(2)])
    >>> folder = tempfile.mkdtemp()
    >>> _ = save_model(model, os.path.join(folder, "m.keras"))
    >>> type(load_model(os.path.join(folder, "m.keras"))).__name__
    'Sequential'
"""
from __future__ import annotations

__all__ = ["save_model", "load_model", "save_weights", "load_weights"]

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import model_io
from ..graph.safe_load import DEFAULT_MAX_BYTES

_LEGACY = (".h5", ".hdf5")


def _name(filepath: Any, method: str) -> str:
    if not isinstance(filepath, (str, os.PathLike)):
        raise TypeError(f"{method}(): filepath must be a str or os.PathLike. Received: filepath={filepath!r}")
    return os.fspath(filepath)


def _check_overwrite(path: str, overwrite: bool, method: str) -> None:
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{method}(): {path!r} exists and overwrite=False.")


def _check_save_format(name: str, save_format: Any) -> None:
    """Keras 3 still takes tf.keras's ``save_format`` where the extension names a format it writes (keras.io's
    ``model.save("detector.h5", save_format="h5")``), with a deprecation warning; elsewhere it refuses it."""
    if not save_format:
        return
    if name.lower().endswith(_LEGACY + (".keras", ".onnx")):
        warnings.warn("The `save_format` argument is deprecated in Keras 3. We recommend removing this argument as "
                      f"it can be inferred from the file path. Received: save_format={save_format}", stacklevel=4)
        return
    raise ValueError("The `save_format` argument is deprecated in Keras 3. Please remove this argument and pass a "
                     f"file path with either `.keras` or `.h5` extension.Received: save_format={save_format}")


def save_model(model: Any, filepath: str | os.PathLike[str], overwrite: bool = True, include_optimizer: bool = True,
               external_data: bool | None = None, **kwargs: Any) -> Path:
    """Save the whole model; the format follows the extension (``.onnx``, ``.keras`` or legacy ``.h5``).

    Args:
        model: the model.
        filepath: ``*.onnx`` (onnxforge: resumes bit-exactly, RNG state included), ``*.keras`` (Keras 3's
            archive, readable by ``keras.saving.load_model``) or ``*.h5`` (Keras's legacy HDF5).
        overwrite: ``False`` refuses to replace an existing file.
        include_optimizer: store the optimizer's state.
        external_data: ``.onnx`` only: keep tensors in a data file beside it (default: past 2 GB).

    Returns:
        The written path.
    """
    name = _name(filepath, "save")
    kwargs.pop("zipped", None)
    _check_save_format(name, kwargs.pop("save_format", None))
    if kwargs:
        raise ValueError(f"The following argument(s) are not supported: {list(kwargs.keys())}")
    lower = name.lower()
    if lower.endswith(".keras"):
        from .keras_format.archive import save_keras

        _check_overwrite(name, overwrite, "save")
        return save_keras(model, name, include_optimizer=include_optimizer)
    if lower.endswith(_LEGACY):
        from .keras_format.legacy_h5 import save_legacy_h5

        _check_overwrite(name, overwrite, "save")
        return save_legacy_h5(model, name, include_optimizer=include_optimizer)
    if not lower.endswith(".onnx"):
        raise ValueError("Invalid filepath extension for saving. Please add either a `.keras` extension for the "
                         "native Keras format, a `.h5` extension (Keras's legacy format), or `.onnx` for "
                         "onnxforge's own file (the inference graph plus everything needed to resume training "
                         f"exactly). Received: filepath={name}.")
    return model_io.save_model(model, name, overwrite=overwrite, include_optimizer=include_optimizer,
                               external_data=external_data)


def load_model(filepath: str | os.PathLike[str], custom_objects: Mapping[str, Any] | None = None,
               compile: bool = True, safe_mode: bool = True, restore_numpy_rng: bool = True,
               max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """Load a model saved by ``model.save()`` (onnxforge's ``.onnx``) or by Keras (``.keras``, legacy ``.h5``).

    Args:
        filepath: the file.
        custom_objects: ``{name: class or function}`` for custom layers, losses, metrics and optimizers.
        compile: compile the model with the saved compile config and restore the optimizer's state.
        safe_mode: ``False`` allows Python bytecode stored in a Keras config (``Lambda`` functions), as in
            Keras; onnxforge's ``.onnx`` files never hold code.
        restore_numpy_rng: ``.onnx`` only: reset numpy's global RNG to its state at save time.
        max_bytes: the most bytes the file may hold.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a model in the format its name says, is hostile, or does not fit its
            config (``OnnxLoadError`` / ``KerasFileError``, both ``ValueError``).

    Example:
        >>> model = load_model("model.keras")          # doctest: +SKIP
    """
    name = _name(filepath, "load_model")
    lower = name.lower()
    if lower.endswith(".keras"):
        from .keras_format.archive import load_keras

        return load_keras(name, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode,
                          max_bytes=max_bytes)
    if lower.endswith(_LEGACY):
        from .keras_format.legacy_h5 import load_legacy_h5

        return load_legacy_h5(name, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode)
    return model_io.load_model(name, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode,
                               restore_numpy_rng=restore_numpy_rng, max_bytes=max_bytes)


def save_weights(model: Any, filepath: str | os.PathLike[str], overwrite: bool = True, **kwargs: Any) -> Path:
    """Save the weights: ``*.weights.h5`` (Keras 3's file, readable by Keras), ``*.weights.onnx`` or ``*.npz``."""
    name = _name(filepath, "save_weights")
    kwargs.pop("max_shard_size", None)
    if kwargs:
        raise ValueError(f"Invalid keyword arguments: {kwargs}")
    lower = name.lower()
    if lower.endswith(".weights.h5"):
        from .keras_format.archive import save_keras_weights

        _check_overwrite(name, overwrite, "save_weights")
        return save_keras_weights(model, name)
    if lower.endswith((".weights.onnx", ".npz")):
        return model_io.save_weights(model, name, overwrite=overwrite)
    raise ValueError(f"The filename must end in `.weights.h5`. Received: filepath={name} (Keras's weights file; "
                     "onnxforge also writes `.weights.onnx` and `.npz`).")


def load_weights(model: Any, filepath: str | os.PathLike[str], skip_mismatch: bool = False, **kwargs: Any) -> None:
    """Load weights from ``*.weights.h5`` / ``*.keras`` / legacy ``*.h5`` (Keras) or onnxforge's files."""
    name = _name(filepath, "load_weights")
    by_name = kwargs.pop("by_name", None)
    max_bytes = kwargs.pop("max_bytes", DEFAULT_MAX_BYTES)
    if kwargs:
        raise ValueError(f"Invalid keyword arguments: {kwargs}")
    lower = name.lower()
    if by_name is not None and not (lower.endswith(_LEGACY) and not lower.endswith(".weights.h5")):
        raise ValueError(f"`by_name` only supports loading legacy '.h5' or '.hdf5' files. Received: {name}")
    if lower.endswith((".keras", ".weights.h5")):
        from .keras_format.archive import load_keras_weights

        return load_keras_weights(model, name, skip_mismatch=skip_mismatch, max_bytes=max_bytes)
    if lower.endswith(_LEGACY):
        from .keras_format.legacy_h5 import load_legacy_weights

        return load_legacy_weights(model, name, skip_mismatch=skip_mismatch, by_name=bool(by_name))
    if lower.endswith((".onnx", ".npz")):
        return model_io.load_weights(model, name, skip_mismatch=skip_mismatch, max_bytes=max_bytes)
    raise ValueError(f"File format not supported: filepath={name}. onnxforge reads `.keras` files, `.weights.h5` "
                     "files, legacy H5 format files (`.h5` extension), and its own `.onnx`, `.weights.onnx` and "
                     "`.npz` files.")
