"""Keras's legacy HDF5 model files (tf.keras ``model.save("x.h5")``, Keras 3's ``save_model(m, "x.h5")``).

The file's attributes hold the architecture (``model_config``, JSON), the compile arguments
(``training_config``) and versions; the group ``model_weights`` holds one group per layer, listed in the
attribute ``layer_names``, each with its weights named by its ``weight_names`` attribute, in the legacy
order (trainable weights, then non-trainable); ``optimizer_weights`` holds the optimizer's variables.
Weights are matched by position: the model's layers that have weights, in ``model.layers`` order, take
the file's layers that have weights, in ``layer_names`` order (Keras's ``load_weights_from_hdf5_group``).

Reading goes through the same checks as ``.keras`` files (no links out of the file, shapes checked before
reading, every weight created must match a tensor the file stores, no bytecode unless ``safe_mode=False``).

Example:
    >>> import os, tempfile, numpy as np
    >>> import onnxforge as of
    >>> model = of.Sequential([of.layers.Input((3,)), of.layers.Dense(2)])
    >>> path = os.path.join(tempfile.mkdtemp(), "model.h5")
    >>> _ = save_legacy_h5(model, path)
    >>> bool(np.array_equal(load_legacy_h5(path).get_weights()[0], model.get_weights()[0]))
    True
"""
from __future__ import annotations

__all__ = ["load_legacy_h5", "load_legacy_weights", "save_legacy_h5"]

import io
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...layers.serialization import deserialize, serialize
from ...graph.size_limits import size_limits
from ...layers.allocation import weight_budget
from ..atomic import atomic_write
from ...layers.safe_mode import safe_mode_override
from .archive import KERAS_FORMAT_VERSION, MAX_CONFIG_BYTES, check_json_values, refuse_lambdas
from .compile_config import from_keras_compile_config, to_keras_compile_config
from .config import keras_config_to_onnxforge, normalize_legacy_config, onnxforge_config_to_keras
from .errors import KerasFileError, Stage
from .h5io import H5Reader, require_h5py
from .layout import optimizer_refs

#: HDF5 object headers hold at most this many bytes; longer name lists are split as Keras does.
_HEADER_LIMIT = 64512


# ------------------------------------------------------------------------------------------ attributes
def _text_attr(reader: H5Reader, obj: Any, name: str) -> str | None:
    if name not in obj.attrs:
        return None
    value = obj.attrs[name]
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        raise KerasFileError(reader.path, f"the attribute is a {type(value).__name__}, not text", key=name)
    if len(value) > MAX_CONFIG_BYTES:
        raise KerasFileError(reader.path, f"the attribute holds {len(value)} characters, over the limit",
                             key=name)
    return value


def _json_attr(reader: H5Reader, obj: Any, name: str) -> Any:
    text = _text_attr(reader, obj, name)
    if text is None:
        return None
    check_json_values(text, reader.path, name)   # before json builds an object per value
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise KerasFileError(reader.path, f"the attribute is not valid JSON ({e})", key=name) from None


def _names_attr(reader: H5Reader, group: Any, name: str) -> list[str]:
    """A list-of-names attribute, possibly split into ``name0``, ``name1``, ... (Keras's chunking)."""
    def decode(values: Any) -> list[str]:
        out = []
        for v in np.asarray(values).reshape(-1):
            v = v.decode("utf-8", errors="replace") if isinstance(v, bytes) else v
            if not isinstance(v, str):
                raise KerasFileError(reader.path, f"the attribute holds a {type(v).__name__}, not a name", key=name)
            out.append(v)
        return out

    if name in group.attrs:
        return decode(group.attrs[name])
    out: list[str] = []
    chunk = 0
    while f"{name}{chunk}" in group.attrs:
        out += decode(group.attrs[f"{name}{chunk}"])
        chunk += 1
    return out


def _dataset_at(reader: H5Reader, group: Any, name: str, where: str) -> Any:
    parent, _, leaf = name.rpartition("/")
    if parent:
        sub = reader.group(f"{group.name.strip('/')}/{parent}".strip("/"))
        if sub is None:
            raise KerasFileError(reader.path, "a weight listed in weight_names is missing", key=where)
        group = sub
    if leaf not in group:
        raise KerasFileError(reader.path, "a weight listed in weight_names is missing", key=where)
    return reader.dataset(group, leaf, where)


# ------------------------------------------------------------------------------------------ weights
def _legacy_weights(layer: Any) -> list[Any]:
    return list(layer.trainable_weights) + list(layer.non_trainable_weights)


def _weighted_layers(model: Any) -> list[Any]:
    return [layer for layer in model.layers if _legacy_weights(layer)]


def _assign_layer(reader: H5Reader, group: Any, layer: Any, k: int, file_name: str, skip_mismatch: bool) -> None:
    names = _names_attr(reader, group, "weight_names")
    variables = _legacy_weights(layer)
    if len(names) != len(variables):
        raise ValueError(f"Weight count mismatch for layer #{k} (named {layer.name} in the current model, "
                         f"{file_name} in the save file). Layer expects {len(variables)} weight(s). Received "
                         f"{len(names)} saved weight(s)")
    values = []
    for var, name in zip(variables, names):
        where = f"{group.name}/{name}"
        ds = _dataset_at(reader, group, name, where)
        if tuple(ds.shape) != tuple(var.shape):
            message = (f"Shape mismatch in layer #{k} (named {layer.name}) for weight {var.path}. Weight expects "
                       f"shape {tuple(var.shape)}. Received saved weight with shape {tuple(ds.shape)}")
            if skip_mismatch:
                warnings.warn(message, stacklevel=4)
                values.append(None)
                continue
            raise ValueError(message)
        values.append(reader.read(ds, tuple(var.shape), where))
    for var, value in zip(variables, values):
        if value is not None:
            var.assign(value)


def _load_weights_group(reader: H5Reader, group: Any, model: Any, skip_mismatch: bool, by_name: bool) -> None:
    layer_names = _names_attr(reader, group, "layer_names")
    if by_name:
        index: dict[str, list[Any]] = {}
        for layer in model.layers:
            index.setdefault(layer.name, []).append(layer)
        for k, name in enumerate(layer_names):
            sub = reader.group(f"{group.name.strip('/')}/{name}".strip("/"))
            for layer in index.get(name, []) if sub is not None else []:
                try:
                    _assign_layer(reader, sub, layer, k, name, skip_mismatch)
                except ValueError as e:
                    if isinstance(e, KerasFileError) or not skip_mismatch:
                        raise
                    warnings.warn(f"Skipping loading of weights for layer #{k} (named {layer.name}): {e}",
                                  stacklevel=3)
        return
    layers = _weighted_layers(model)
    saved = []
    for name in layer_names:
        sub = reader.group(f"{group.name.strip('/')}/{name}".strip("/"))
        if sub is None:
            raise KerasFileError(reader.path, "a layer listed in layer_names has no group",
                                 key=f"{group.name}/{name}")
        if _names_attr(reader, sub, "weight_names"):
            saved.append((name, sub))
    if len(saved) != len(layers):
        raise ValueError(f"Layer count mismatch when loading weights from file. Model expected {len(layers)} layers, "
                         f"found {len(saved)} saved layers.")
    for k, ((name, sub), layer) in enumerate(zip(saved, layers)):
        _assign_layer(reader, sub, layer, k, name, skip_mismatch)


def _load_optimizer(reader: H5Reader, model: Any) -> None:
    group = reader.group("optimizer_weights")
    optimizer = getattr(model, "optimizer", None)
    if group is None or optimizer is None:
        return
    optimizer.build(model.trainable_weights)
    names = _names_attr(reader, group, "weight_names")
    refs = optimizer_refs(optimizer, model)
    fresh = ("Error in loading the saved optimizer state. As a result, your model is starting with a freshly "
             f"initialized optimizer (file {reader.path!r}: {len(names)} saved variables, the optimizer has "
             f"{len(refs)}).")
    if len(names) != len(refs):
        warnings.warn(fresh, stacklevel=4)
        return
    values = []
    for ref, name in zip(refs, names):
        ds = _dataset_at(reader, group, name, f"optimizer_weights/{name}")
        if tuple(ds.shape) != ref.shape:
            warnings.warn(fresh, stacklevel=4)
            return
        values.append(reader.read(ds, ref.shape, f"optimizer_weights/{name}"))
    for ref, value in zip(refs, values):
        ref.write(value)


def load_legacy_weights(model: Any, filepath: str | os.PathLike[str], skip_mismatch: bool = False,
                        by_name: bool = False) -> None:
    """``model.load_weights("x.h5")``: weights from a legacy model file or a tf.keras ``save_weights`` file."""
    if not getattr(model, "built", False):
        raise ValueError("You are loading weights into a model that has not yet been built. Try building the "
                         "model first by calling it on some data or by using `build()`.")
    path = Path(os.fspath(filepath))
    if not path.exists():
        raise FileNotFoundError(f"load_weights(): no such file: {str(path)!r}")
    with H5Reader(path, path) as reader:
        group = reader.file
        if "layer_names" not in group.attrs and "model_weights" in group:
            group = reader.group("model_weights")
        if "layer_names" not in group.attrs:
            raise KerasFileError(path, "it has no 'layer_names' attribute: not a legacy Keras weights or model file")
        with Stage(path, group.name, "the weights cannot be loaded into the model"):
            _load_weights_group(reader, group, model, skip_mismatch, by_name)


# ------------------------------------------------------------------------------------------ models
def _legacy_compile(model: Any, training_config: Mapping[str, Any], path: Path,
                    custom_objects: Mapping[str, Any] | None) -> None:
    config = dict(training_config)
    config["optimizer"] = config.pop("optimizer_config", None)
    for key in ("metrics", "weighted_metrics"):   # tf.keras 2: one list per output, also for a single output
        value = config.get(key)
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list) and len(model.outputs) == 1:
            config[key] = value[0]
    try:
        kwargs = from_keras_compile_config(_legacy_metrics(config), custom_objects)
    except ValueError as e:
        raise KerasFileError(path, f"its training config cannot be rebuilt: {e}. Load with compile=False and "
                             "compile the model yourself", key="training_config") from None
    model.compile(**kwargs)


def _legacy_metrics(config: dict) -> dict:
    """tf.keras 2 stores resolved metrics (``MeanMetricWrapper(fn="categorical_accuracy")``); use their names."""
    def simplify(value: Any) -> Any:
        if isinstance(value, list):
            return [simplify(v) for v in value]
        if isinstance(value, dict) and value.get("class_name") == "MeanMetricWrapper":
            return (value.get("config") or {}).get("name")
        if isinstance(value, dict) and "class_name" not in value:
            return {k: simplify(v) for k, v in value.items()}
        return value

    for key in ("metrics", "weighted_metrics"):
        if config.get(key) is not None:
            config[key] = simplify(config[key])
    return config


def load_legacy_h5(filepath: str | os.PathLike[str], custom_objects: Mapping[str, Any] | None = None,
                   compile: bool = True, safe_mode: bool = True) -> Any:
    """Rebuild a model from a legacy Keras ``.h5`` model file: architecture, weights, compile config and (when
    it fits) the optimizer's state.

    Raises:
        FileNotFoundError: no such file.
        KerasFileError: not an HDF5 model file, hostile, or weights that do not fit the architecture; any
            failure while rebuilding, compiling or filling the model ends as one, naming the attribute or group.
        UnsupportedKerasLayerError: (a KerasFileError) layers or arguments onnxforge does not have.
    """
    if not isinstance(safe_mode, bool):
        raise TypeError(f"load_model(): safe_mode must be a bool. Received: safe_mode={safe_mode!r}")
    forced = safe_mode_override()   # enable_unsafe_deserialization() / SafeModeScope win, as in Keras
    safe_mode = safe_mode if forced is None else forced
    path = Path(os.fspath(filepath))
    require_h5py("Loading a legacy .h5 Keras file")
    if not path.exists():
        raise FileNotFoundError(f"load_model(): no such file: {str(path)!r}")
    with H5Reader(path, path) as reader:
        model_config = _json_attr(reader, reader.file, "model_config")
        if model_config is None:
            hint = " (it holds weights only: build the model and call load_weights())" \
                if "layer_names" in reader.file.attrs else ""
            raise KerasFileError(path, f"No model config found in the file{hint}", key="model_config")
        if not isinstance(model_config, dict) or "class_name" not in model_config:
            raise KerasFileError(path, "model_config is not a serialized Keras model", key="model_config")
        refuse_lambdas(model_config, safe_mode, path, "model_config")
        custom = dict(custom_objects or {})
        # Each stage's failure, whatever the code underneath raised, ends as one KerasFileError naming the part.
        with Stage(path, "model_config", "model_config cannot be read as a Keras model config"), \
                size_limits(f"'{path}'"):   # converting constructs each layer once: bounded as the build is
            converted = keras_config_to_onnxforge(normalize_legacy_config(model_config), custom)
        with Stage(path, "model_weights", "the weights cannot be read"):
            stored = reader.stored_shapes("model_weights")
        with Stage(path, "model_config", "model_config does not describe a model onnxforge can build"), \
                weight_budget(stored, f"'{path}'"), size_limits(f"'{path}'") as limits:
            model = deserialize(converted, custom)
        model._size_limits = limits     # its later traces (the first predict) keep the bounds
        weights = reader.group("model_weights")
        if weights is None:
            raise KerasFileError(path, "the file has no 'model_weights' group", key="model_weights")
        with Stage(path, "model_weights", "the weights cannot be loaded into the model"):
            _load_weights_group(reader, weights, model, skip_mismatch=False, by_name=False)
        training_config = _json_attr(reader, reader.file, "training_config") if compile else None
        if isinstance(training_config, Mapping):
            with Stage(path, "training_config", "its training config cannot be applied (load with compile=False "
                       "and compile the model yourself)"):
                _legacy_compile(model, training_config, path, custom_objects)
            with Stage(path, "optimizer_weights", "the optimizer's state cannot be loaded"):
                _load_optimizer(reader, model)
    return model


# ------------------------------------------------------------------------------------------ save
def _strip_layer_entries(model_entry: dict) -> None:
    """Keras's legacy writer gives the entries of a model's ``layers`` list (nested models' too) as
    ``{"class_name", "config", ...}`` without module or build config; layers inside wrappers keep theirs.
    A registered class is named by its ``"package>name"`` there, so that loading finds the registration."""
    for entry in (model_entry.get("config") or {}).get("layers") or []:
        if isinstance(entry, dict):
            _registered_class_name(entry)
            for key in ("module", "registered_name", "build_config"):
                entry.pop(key, None)
            _strip_layer_entries(entry)


def _registered_class_name(entry: dict) -> None:
    registered = entry.get("registered_name")
    if isinstance(registered, str) and ">" in registered:
        entry["class_name"] = registered


def _save_names(group: Any, name: str, names: Sequence[str]) -> None:
    data = np.asarray([n.encode("utf-8") for n in names])
    chunks = 1
    parts = np.array_split(data, chunks)
    while any(p.nbytes > _HEADER_LIMIT for p in parts):
        chunks += 1
        parts = np.array_split(data, chunks)
    if chunks > 1:
        for k, part in enumerate(parts):
            group.attrs[f"{name}{k}"] = part
    else:
        group.attrs[name] = data


def _unique_names(variables: Sequence[Any]) -> list[str]:
    taken: set[str] = set()
    out = []
    for var in variables:
        base = name = str(var.path).replace(":", "_")
        k = 0
        while name in taken:
            k += 1
            name = f"{base}_{k}"
        taken.add(name)
        out.append(name)
    return out


def _write_group(group: Any, variables: Sequence[Any], names: Sequence[str]) -> None:
    _save_names(group, "weight_names", names)
    for name, var in zip(names, variables):
        group.create_dataset(name, data=np.asarray(var.numpy() if hasattr(var, "numpy") else var.read()))


def save_legacy_h5(model: Any, filepath: str | os.PathLike[str], include_optimizer: bool = True) -> Path:
    """Write ``model`` as Keras's legacy ``.h5`` model file (readable by ``keras.saving.load_model``)."""
    h5py = require_h5py("Saving a legacy .h5 Keras file")
    warnings.warn("You are saving your model as an HDF5 file via `model.save()`. This file format is considered "
                  "legacy. We recommend using instead the native Keras format, e.g. `model.save('my_model.keras')`, "
                  "or onnxforge's own `model.save('my_model.onnx')`.", stacklevel=3)
    entry = onnxforge_config_to_keras(serialize(model))
    _strip_layer_entries(entry)
    _registered_class_name(entry)
    model_config = {"class_name": entry["class_name"], "config": entry["config"]}
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        f.attrs["keras_version"] = KERAS_FORMAT_VERSION
        f.attrs["backend"] = "onnxforge"
        f.attrs["model_config"] = json.dumps(model_config)
        compile_config = model.get_compile_config() if getattr(model, "compiled", False) else None
        if include_optimizer and compile_config is not None:
            training = to_keras_compile_config(compile_config)
            optimizer = training.pop("optimizer")
            training["optimizer_config"] = {"class_name": optimizer["class_name"], "config": optimizer["config"]}
            f.attrs["training_config"] = json.dumps(training)
        weights = f.create_group("model_weights")
        _save_names(weights, "layer_names", [layer.name for layer in model.layers])
        weights.attrs["backend"] = "onnxforge"
        weights.attrs["keras_version"] = KERAS_FORMAT_VERSION
        for layer in sorted(model.layers, key=lambda l: l.name):
            variables = _legacy_weights(layer)
            _write_group(weights.create_group(layer.name), variables, _unique_names(variables))
        own = model._trainable_variables + model._non_trainable_variables
        _write_group(weights.create_group("top_level_model_weights"), own, _unique_names(own))
        optimizer = getattr(model, "optimizer", None)
        if include_optimizer and optimizer is not None and compile_config is not None:
            refs = optimizer_refs(optimizer, model)
            group = f.create_group("optimizer_weights")
            names = _unique_names([type("R", (), {"path": r.label})() for r in refs])
            _save_names(group, "weight_names", names)
            for name, ref in zip(names, refs):
                group.create_dataset(name, data=np.asarray(ref.read()))
    return atomic_write(Path(os.fspath(filepath)), buffer.getvalue())
