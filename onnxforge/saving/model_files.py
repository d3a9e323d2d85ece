"""What both halves of the whole-model ``.onnx`` files share: the format tags and the filepath checks.

``model_io`` writes the files (``save_model``, ``save_weights``), ``model_reading`` reads them back
(``load_model``, ``load_weights``); numpy's global RNG state travels in them too (``fit``'s shuffling).
"""
from __future__ import annotations

__all__ = ["SAVED_MODEL_FORMAT", "WEIGHTS_FORMAT", "LEGACY_SAVED_MODEL_FORMAT", "LEGACY_WEIGHTS_FORMAT"]

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

#: The current formats carry a SHA-256 digest (``onnxforge.digest``) that loaders require. The "/1"
#: formats (no digest) still load. "2" is one bit-flip away from neither "1" nor any other digit the
#: loaders accept ("2" = 0x32; "1" = 0x31 is two flips away), so a single flipped bit cannot turn a
#: digest-carrying file into an old-format one that is loaded unchecked.
SAVED_MODEL_FORMAT = "saved_model/2"
WEIGHTS_FORMAT = "weights/2"
LEGACY_SAVED_MODEL_FORMAT = "saved_model/1"
LEGACY_WEIGHTS_FORMAT = "weights/1"

_NPZ_NAMES = "__names__"
_HDF5 = (".h5", ".hdf5", ".keras")


# ------------------------------------------------------------------------------------------ paths
def _fspath(filepath: Any, method: str) -> Path:
    if not isinstance(filepath, (str, os.PathLike)):
        raise TypeError(f"{method}(): filepath must be a str or os.PathLike. Received: filepath={filepath!r}")
    return Path(os.fspath(filepath))


def _check_model_path(path: Path, method: str) -> None:
    name = path.name.lower()
    if name.endswith(_HDF5) or not name.endswith(".onnx"):
        raise ValueError(f"{method}(): onnxforge saves a model as one ONNX file; the filepath must end in '.onnx' "
                         "(Keras's .keras and .h5 formats are not written: no zip of pickled objects, no h5py). "
                         f"Received: filepath={str(path)!r}")


def _check_weights_path(path: Path, method: str) -> str:
    name = path.name.lower()
    if name.endswith(".weights.onnx"):
        return "onnx"
    if name.endswith(".npz"):
        return "npz"
    if name.endswith(_HDF5):
        hint = "HDF5 (.h5) needs h5py, which onnxforge does not depend on"
    else:
        hint = "unknown extension"
    raise ValueError(f"{method}(): {hint}. Use a filepath ending in '.weights.onnx' (an ONNX file: the inference "
                     f"graph holding the weights) or '.npz' (numpy arrays, read with allow_pickle=False). "
                     f"Received: filepath={str(path)!r}")


def _check_overwrite(path: Path, overwrite: bool, method: str) -> None:
    if not overwrite and path.exists():
        raise FileExistsError(f"{method}(): {str(path)!r} exists and overwrite=False.")


# ------------------------------------------------------------------------------------------ numpy's RNG
def _numpy_rng_state() -> dict[str, np.ndarray] | None:
    state = np.random.get_state()
    if not isinstance(state, tuple) or state[0] != "MT19937":
        return None
    _, keys, pos, has_gauss, cached = state
    return {"keys": np.asarray(keys, np.uint32), "pos_has_gauss": np.asarray([pos, has_gauss], np.int64),
            "cached_gaussian": np.asarray(cached, np.float64)}


def _set_numpy_rng_state(parts: Mapping[str, np.ndarray]) -> None:
    pos, has_gauss = (int(v) for v in parts["pos_has_gauss"])
    np.random.set_state(("MT19937", np.asarray(parts["keys"], np.uint32), pos, has_gauss,
                         float(parts["cached_gaussian"])))
