"""``keras.saving.KerasFileEditor``: inspect, edit and resave the weights of a ``.keras`` or ``.weights.h5`` file.

The file's weights are read into ``weights_dict``, a nested dict mirroring the HDF5 groups (``{"layers":
{"dense": {"0": kernel, "1": bias}}}``; Keras's ``vars`` sub-groups are folded into their object, as in Keras).
Objects and weights can be renamed, deleted and added, then written to a ``.weights.h5`` file (Keras's
``save``) or, here too, to a whole ``.keras`` archive whose config and metadata are the opened file's. Every
write goes through ``saving.atomic``: a reader sees the old file or the new one, never a torn mix.

Example:
    >>> import os, tempfile
    >>> from onnxforge import keras
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, name="dense")])
    >>> path = os.path.join(tempfile.mkdtemp(), "m.keras")
    >>> _ = model.save(path)
    >>> editor = keras.saving.KerasFileEditor(path)      # doctest: +ELLIPSIS
    Keras model file '...m.keras'
    Saved with Keras ... - date: ...
    >>> sorted(editor.weights_dict["layers"]["dense"])
    ['0', '1']
    >>> editor.rename_object("dense", "head")
    >>> sorted(editor.weights_dict["layers"])
    ['head']
"""
from __future__ import annotations

__all__ = ["KerasFileEditor"]

import collections
import io
import json
import math
import os
import zipfile
from typing import Any

import numpy as np

from .atomic import atomic_write
from .keras_format.h5_heaps import check_global_heaps
from .keras_format.h5io import require_h5py

_CONFIG, _METADATA, _WEIGHTS = "config.json", "metadata.json", "model.weights.h5"
_MAX_BYTES = 1 << 32   # one dataset larger than 4 GiB is refused, as Keras does


class KerasFileEditor:
    """Opens ``filepath`` (``.keras`` or ``.weights.h5``) for editing; prints where it came from.

    Attributes:
        weights_dict: the weights as nested dicts of NumPy arrays.
        object_metadata: ``{group path: attributes}`` of the HDF5 groups that carry attributes.
        config, metadata: the ``.keras`` file's ``config.json`` / ``metadata.json`` (``None`` for ``.weights.h5``).
    """

    def __init__(self, filepath: str | os.PathLike):
        self.filepath = os.fspath(filepath)
        self.metadata: dict | None = None
        self.config: dict | None = None
        self.model = None
        h5py = require_h5py("KerasFileEditor")
        if self.filepath.endswith(".keras"):
            with zipfile.ZipFile(self.filepath, "r") as zf:
                self.config = json.loads(zf.read(_CONFIG))
                self.metadata = json.loads(zf.read(_METADATA))
                self._entries = {name: zf.read(name) for name in zf.namelist()
                                 if name not in (_CONFIG, _METADATA, _WEIGHTS)}
                raw = zf.read(_WEIGHTS) if _WEIGHTS in zf.namelist() else None
            source: Any = io.BytesIO(raw) if raw is not None else None
        elif self.filepath.endswith(".weights.h5"):
            source, raw = self.filepath, None
            self._entries = {}
        else:
            raise ValueError(f"Invalid filename: expected a `.keras` `.weights.h5` extension. Received: "
                             f"filepath={self.filepath}")
        if source is None:
            self.weights_dict, self.object_metadata = collections.OrderedDict(), {}
        else:
            # A corrupt global heap made h5py's read of a string attribute never return (see h5_heaps).
            check_global_heaps(raw if raw is not None else self.filepath, self.filepath)
            with h5py.File(source, "r") as f:
                self.weights_dict, self.object_metadata = self._extract(f, h5py, {}, "")
        print(f"Keras model file '{self.filepath}'")
        if self.metadata is not None:
            print(f"Saved with Keras {self.metadata.get('keras_version')} - date: {self.metadata.get('date_saved')}")

    # -- reading --------------------------------------------------------------------------------------------
    def _extract(self, group: Any, h5py: Any, metadata: dict, inner_path: str) -> tuple[dict, dict]:
        attributes = dict(group.attrs.items())
        if attributes:
            metadata[inner_path] = attributes
        result: dict = collections.OrderedDict()
        for key in group.keys():
            path = f"{inner_path}/{key}"
            link = group.get(key, default=None, getclass=True, getlink=True)
            if link in (h5py.ExternalLink, h5py.SoftLink):
                raise ValueError(f"Not allowed: H5 file with {link.__name__} (at {path!r})")
            value = group[key]
            if isinstance(value, h5py.Group):
                if len(value) == 0:
                    continue
                if "vars" in value.keys():
                    if len(value["vars"]) == 0:
                        continue
                    value = value["vars"]
                result[key], metadata = self._extract(value, h5py, metadata, path)
                continue
            if not isinstance(value, h5py.Dataset):
                continue
            if value.external or value.is_virtual:
                raise ValueError(f"Not allowed: H5 file Dataset with external or virtual storage at {path!r}")
            if any(d < 0 for d in value.shape) or len(value.shape) > 64:
                raise ValueError(f"Malformed HDF5 dataset shape {value.shape} at {path!r}.")
            size = math.prod(value.shape) * value.dtype.itemsize
            if size > _MAX_BYTES:
                raise ValueError(f"HDF5 dataset too large to load safely ({size} bytes; limit is {_MAX_BYTES}) "
                                 f"at {path!r}.")
            result[key] = value[()]
        return result, metadata

    # -- inspecting -----------------------------------------------------------------------------------------
    def summary(self) -> None:
        """Prints the weights' structure: objects as a tree, each weight with its shape and dtype."""
        print("Weights structure")
        self._print(self.weights_dict, prefix="  ", inner_path="", first=True)

    def _print(self, weights: dict, prefix: str, inner_path: str, first: bool) -> None:
        for index, (key, value) in enumerate(weights.items()):
            path = f"{inner_path}/{key}"
            last = index == len(weights) - 1
            connector = "> " if first else ("└─ " if last else "├─ ")
            first = False
            if isinstance(value, dict):
                name = self.object_metadata.get(path, {}).get("name")
                print(f"{prefix}{connector}{key}" + (f" ('{name}')" if name is not None else ""))
                self._print(value, prefix + ("    " if last else "│   "), path, first)
            else:
                print(f"{prefix}{connector}{key}: shape={np.shape(value)}, dtype={np.asarray(value).dtype}")

    def compare(self, reference_model: Any) -> dict:
        """Lists every difference between the file's weights and ``reference_model``'s (missing objects or
        weights either side, shape mismatches).

        Returns:
            ``{"status": "success" | "error", "error_count": int, "match_count": int}`` (Keras's keys).
        """
        import tempfile

        print("Running comparison")
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "reference.weights.h5")
            reference_model.save_weights(path)
            h5py = require_h5py("KerasFileEditor.compare")
            with h5py.File(path, "r") as f:
                reference, _ = self._extract(f, h5py, {}, "")
        checked: set[str] = set()
        errors, matches = self._compare(self.weights_dict, reference, "", "saved file", "reference model", checked)
        more, _ = self._compare(reference, self.weights_dict, "", "reference model", "saved file", checked)
        errors += more
        print("─────────────────────")
        if errors == 0:
            print("Comparison successful: saved file is compatible with the reference model")
            print(f"    Found {matches} matching weight{'' if matches == 1 else 's'}")
        else:
            print(f"Found {errors} error{'' if errors == 1 else 's'}: saved file is not compatible with the "
                  "reference model")
        return {"status": "success" if errors == 0 else "error", "error_count": errors, "match_count": matches}

    def _compare(self, target: dict, reference: dict, inner_path: str, target_name: str, ref_name: str,
                 checked: set[str]) -> tuple[int, int]:
        errors = matches = 0
        for key, ref in reference.items():
            path = f"{inner_path}/{key}"
            if path in checked:
                continue
            if key not in target:
                errors += 1
                checked.add(path)
                kind = "Object" if isinstance(ref, dict) else "Weight"
                print(f"...{kind} {path} present in {ref_name}, missing from {target_name}")
                if isinstance(ref, dict):
                    print(f"    In {ref_name}, {path} contains the following keys: {list(ref)}")
            elif isinstance(ref, dict):
                e, m = self._compare(target[key], ref, path, target_name, ref_name, checked)
                errors, matches = errors + e, matches + m
            elif np.shape(target[key]) != np.shape(ref):
                errors += 1
                checked.add(path)
                print(f"...Weight shape mismatch for {path}\n    In {ref_name}: shape={np.shape(ref)}\n"
                      f"    In {target_name}: shape={np.shape(target[key])}")
            else:
                matches += 1
        return errors, matches

    # -- editing --------------------------------------------------------------------------------------------
    def _edit_object(self, edit: Any, source_name: str, target_name: str | None = None) -> None:
        if target_name is not None and "/" in target_name:
            raise ValueError(f"Argument `target_name` should be a leaf name, not a full path name. Received: "
                             f"target_name='{target_name}'")
        if "/" in source_name:
            elements = source_name.split("/")
            weights = self.weights_dict
            for e in elements[:-1]:
                if e not in weights:
                    raise ValueError(f"Path '{source_name}' not found in model.")
                weights = weights[e]
            if elements[-1] not in weights:
                raise ValueError(f"Path '{source_name}' not found in model.")
            edit(weights, source_name=elements[-1], target_name=target_name)
            return
        holders: list[dict] = []

        def find(d: dict) -> None:
            for value in d.values():
                if isinstance(value, dict):
                    find(value)
            if source_name in d:
                holders.append(d)

        find(self.weights_dict)
        if len(holders) > 1:
            raise ValueError(f"Name '{source_name}' occurs more than once in the model; try passing a complete "
                             "path")
        if not holders:
            raise ValueError(f"Source name '{source_name}' does not appear in the model. Use `editor.summary()` "
                             "to list all objects.")
        edit(holders[0], source_name=source_name, target_name=target_name)

    def rename_object(self, object_name: str, new_name: str) -> None:
        """Renames an object (``"dense_2"`` or the path ``"layers/dense_2"``) to the leaf name ``new_name``."""
        def rename(d: dict, source_name: str, target_name: str) -> None:
            d[target_name] = d.pop(source_name)

        self._edit_object(rename, object_name, new_name)

    def delete_object(self, object_name: str) -> None:
        """Removes an object (``"dense_2"`` or ``"layers/dense_2"``) and all its weights."""
        def delete(d: dict, source_name: str, target_name: Any = None) -> None:
            d.pop(source_name)

        self._edit_object(delete, object_name)

    def add_object(self, object_path: str, weights: dict) -> None:
        """Adds an object at ``object_path`` (``"layers/einsum_dense"``) with ``weights`` (``{"0": array, ...}``)."""
        _check_weights(weights)
        elements = object_path.split("/")
        d = self.weights_dict
        for e in elements[:-1]:
            if e not in d:
                raise ValueError(f"Path '{'/'.join(elements[:-1])}' not found in model.")
            d = d[e]
        d[elements[-1]] = {k: np.asarray(v) for k, v in weights.items()}

    def delete_weight(self, object_name: str, weight_name: str) -> None:
        """Removes the weight ``weight_name`` (``"0"``) from an object."""
        def delete(d: dict, source_name: str, target_name: Any = None) -> None:
            if weight_name not in d[source_name]:
                raise ValueError(f"Weight {weight_name} not found in object {object_name}. Weights found: "
                                 f"{list(d[source_name].keys())}")
            d[source_name].pop(weight_name)

        self._edit_object(delete, object_name)

    def add_weights(self, object_name: str, weights: dict) -> None:
        """Adds ``weights`` (``{"2": array}``) to an existing object."""
        _check_weights(weights)

        def add(d: dict, source_name: str, target_name: Any = None) -> None:
            d[source_name].update({k: np.asarray(v) for k, v in weights.items()})

        self._edit_object(add, object_name)

    # -- writing --------------------------------------------------------------------------------------------
    def _weights_bytes(self) -> bytes:
        h5py = require_h5py("KerasFileEditor.save")
        buffer = io.BytesIO()
        with h5py.File(buffer, "w") as f:
            self._write(f, self.weights_dict, "")
        return buffer.getvalue()

    def _write(self, f: Any, weights: dict, inner_path: str) -> None:
        leaves = {k: v for k, v in weights.items() if not isinstance(v, dict)}
        for key, value in weights.items():
            if isinstance(value, dict) and value:
                self._write(f, value, f"{inner_path}/{key}" if inner_path else key)
        if leaves:
            group = f.require_group(f"{inner_path}/vars" if inner_path else "vars")
            for key, value in leaves.items():
                group.create_dataset(key, data=np.asarray(value))

    def save(self, filepath: str | os.PathLike) -> None:
        """Writes the edited weights to ``filepath``: a ``.weights.h5`` file (as Keras), or a ``.keras`` archive
        with the opened ``.keras`` file's config, metadata and assets. Written atomically.
        """
        filepath = os.fspath(filepath)
        if filepath.endswith(".weights.h5"):
            atomic_write(filepath, self._weights_bytes())
            return
        if filepath.endswith(".keras"):
            if self.config is None:
                raise ValueError(f"Cannot save {filepath!r} as a .keras archive: the opened file "
                                 f"{self.filepath!r} is a .weights.h5 file, with no model config. Save to a "
                                 "`.weights.h5` path instead.")
            weights = self._weights_bytes()

            def write(out: Any) -> None:
                with zipfile.ZipFile(out, "w") as zf:
                    zf.writestr(_METADATA, json.dumps(self.metadata))
                    zf.writestr(_CONFIG, json.dumps(self.config))
                    zf.writestr(_WEIGHTS, weights)
                    for name, data in self._entries.items():
                        zf.writestr(name, data)

            atomic_write(filepath, write)
            return
        raise ValueError(f"Invalid `filepath` argument: expected a `.weights.h5` (or `.keras`) extension. "
                         f"Received: filepath={filepath}")

    def resave_weights(self, filepath: str | os.PathLike) -> None:
        """``save(filepath)``."""
        self.save(filepath)


def _check_weights(weights: Any) -> None:
    if not isinstance(weights, dict):
        raise ValueError("Argument `weights` should be a dict where keys are weight names (usually '0', '1', etc.) "
                         f"and values are NumPy arrays. Received: type(weights)={type(weights)}")
