"""A whole model in one ``.onnx`` file, and back: architecture, weights, compile and optimizer state.

``save_model(model, "model.onnx")`` writes a valid ONNX model -- the inference graph, weights stored as
initializers named after their variables, so onnxruntime can run it -- that also carries everything
needed to resume training exactly:

=====================================  ===============================================================
``metadata_props`` key                 content
=====================================  ===============================================================
``onnxforge.format``                   ``"saved_model/1"`` (``"weights/1"`` for ``save_weights``)
``onnxforge.model_config``             the architecture, Keras 3's serialized-layer JSON
``onnxforge.compile_config``           ``model.get_compile_config()``: optimizer config, losses, metrics,
                                       seed (absent for an uncompiled model)
``onnxforge.weights``                  initializer names of ``model.weights``, in that order
``onnxforge.saved_state``              JSON naming the initializers of the optimizer's variables
                                       (``iterations`` then slots), the in-graph RNG state
                                       (Dropout masks) and numpy's global RNG (``fit``'s shuffling);
                                       for custom-step models also every optimizer attribute
                                       (``d_optimizer``...), each ``SeedGenerator`` state and the
                                       arguments of a ``compile`` override (see ``custom_state``)
=====================================  ===============================================================

A custom-step model without ``call`` (Keras's GAN pattern) has no inference graph: its file is a graph of
no nodes whose initializers hold the weights and state.

State the inference graph does not read (optimizer slots, step counter, RNG states) is stored as extra
initializers of the same graph; onnxruntime ignores them (and says so once per tensor when it loads a
saved model: serve an ``export()`` instead).

``load_model`` never runs code from the file and never unpickles: the file is read through
:func:`onnxforge.saving.load_onnx` (external-data paths, sizes and framing checked), the architecture is
rebuilt from JSON with classes the loading program already has (onnxforge's own, those registered with
``register_keras_serializable``, or passed in ``custom_objects``), and tensors are read as plain arrays.

Example:
    >>> import os, tempfile, numpy as np
    >>> import onnxforge as tf
    >>> model = tf.keras.Sequential([tf.keras.layers.Dense(2, input_shape=(3,))])
    >>> model.compile(optimizer="adam", loss="mse")
    >>> path = os.path.join(tempfile.mkdtemp(), "model.onnx")
    >>> _ = save_model(model, path)
    >>> again = load_model(path)
    >>> bool(np.array_equal(again.get_weights()[0], model.get_weights()[0]))
    True
"""
from __future__ import annotations

__all__ = ["save_model", "load_model", "save_weights", "load_weights", "META_FORMAT", "META_MODEL_CONFIG",
           "META_COMPILE_CONFIG", "META_SAVED_STATE", "SAVED_MODEL_FORMAT", "WEIGHTS_FORMAT"]

import json
import os
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from ..layers.safe_mode import SafeModeScope
from ..layers.serialization import _REGISTERED, deserialize, serialize
from . import custom_state
from .atomic import atomic_write
from .export import META_WEIGHTS, _checked_write, _get_meta, _json_default, _set_meta, inference_proto
from .safe_load import DEFAULT_MAX_BYTES, OnnxLoadError, load_onnx

META_FORMAT = "onnxforge.format"
META_MODEL_CONFIG = "onnxforge.model_config"
META_COMPILE_CONFIG = "onnxforge.compile_config"
META_SAVED_STATE = "onnxforge.saved_state"
SAVED_MODEL_FORMAT = "saved_model/1"
WEIGHTS_FORMAT = "weights/1"

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


# ------------------------------------------------------------------------------------------ tensors
def _unique(base: str, taken: set[str]) -> str:
    name, k = base, 0
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    taken.add(name)
    return name


def _taken_names(proto: onnx.ModelProto) -> set[str]:
    g = proto.graph
    taken = {t.name for t in g.initializer} | {i.name for i in g.input} | {o.name for o in g.output}
    for node in g.node:
        taken.update(node.input)
        taken.update(node.output)
    return taken


def _store(proto: onnx.ModelProto, taken: set[str], base: str, array: np.ndarray) -> str:
    name = _unique(base, taken)
    proto.graph.initializer.append(numpy_helper.from_array(np.asarray(array, order="C"), name))
    return name


def _weights_proto(model: Any, method: str) -> tuple[onnx.ModelProto, set[str], list[str]]:
    """The inference graph with every weight stored (those the graph does not read as extra initializers)."""
    if _state_only(model):
        proto = _state_only_proto()
        listed: list[str | None] = [None] * len(model.weights)
    else:
        proto, _ = inference_proto(model, method=method)
        listed = json.loads(_get_meta(proto, META_WEIGHTS) or "[]")
    taken = _taken_names(proto)
    weight_names = []
    for var, name in zip(model.weights, listed):
        weight_names.append(name if name is not None else _store(proto, taken, var.name, var.numpy()))
    _set_meta(proto, META_WEIGHTS, json.dumps(weight_names))
    return proto, taken, weight_names


def _state_only(model: Any) -> bool:
    """A custom-step model without ``call`` (Keras's GAN pattern) has no inference graph to hold its weights."""
    has_custom = getattr(model, "_has_custom_train_step", lambda: False)()
    return has_custom and not getattr(model, "built", False)


def _state_only_proto() -> onnx.ModelProto:
    """A graph of no nodes: its initializers carry the state of a model that has no inference graph."""
    from ..graph import GraphBuilder

    return GraphBuilder().to_model(name="onnxforge_saved_state")


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


# ------------------------------------------------------------------------------------------ save
def save_model(model: Any, filepath: str | os.PathLike[str], overwrite: bool = True, include_optimizer: bool = True,
               external_data: bool | None = None) -> Path:
    """Save ``model`` to one ``.onnx`` file: architecture, weights, compile config, optimizer state, RNGs.

    Args:
        model: a built model whose architecture serializes (``Sequential``, functional ``Model``, or a
            subclass with ``get_config``; custom classes need ``register_keras_serializable``).
        filepath: a path ending in ``.onnx``; written atomically (a crash leaves the previous file intact).
        overwrite: ``False`` refuses to replace an existing file.
        include_optimizer: store the optimizer's slots and step counter (needed to resume exactly).
        external_data: see :func:`onnxforge.saving.write_onnx`; by default only models over 2 GB keep
            their tensors in a data file beside the ``.onnx`` file.

    Returns:
        The written path.
    """
    path = _fspath(filepath, "save")
    _check_model_path(path, "save")
    _check_overwrite(path, overwrite, "save")
    try:
        config = serialize(model)
    except NotImplementedError as e:
        raise NotImplementedError(
            f"save(): model {getattr(model, 'name', '?')!r} cannot describe its architecture: {e} Implement "
            "get_config() (and from_config() if needed), decorate the class with "
            "@onnxforge.saving.register_keras_serializable(), or use save_weights().") from None
    compile_config = model.get_compile_config() if hasattr(model, "get_compile_config") else None
    # Checked before anything is built: a compile() override whose arguments cannot be stored fails here.
    custom_compile = custom_state.custom_compile_config(model) if compile_config is not None else None
    proto, taken, _ = _weights_proto(model, "save")
    inputs = [] if _state_only(model) else list(model.inputs)
    state: dict[str, Any] = {"input_shapes": [list(t.shape) for t in inputs],
                             "input_dtypes": [str(t.dtype) for t in inputs],
                             "optimizer": None, "rng": None, "numpy_rng": None}

    def store(base: str, array: np.ndarray) -> str:
        return _store(proto, taken, base, array)

    if compile_config is not None:
        _set_meta(proto, META_COMPILE_CONFIG, json.dumps(compile_config, default=_json_default))
        if custom_compile is not None:
            state["custom_compile"] = custom_compile
        optimizer = getattr(model, "optimizer", None)
        if include_optimizer and optimizer is not None:
            state["optimizer"] = [[v.name, store(v.name, v.numpy())] for v in optimizer.variables]
            state["optimizer_built_for"] = custom_state.built_for(model, optimizer)
        if include_optimizer:
            state["optimizers"] = custom_state.optimizer_entries(model, store)
    rng = getattr(model, "_rng_state", None)
    if rng is not None:
        state["rng"] = store(rng.name, rng.numpy())
    state["seed_generators"] = [[v.name, store(v.name, v.numpy())]
                                for v in custom_state.seed_generator_variables(model)]
    numpy_rng = _numpy_rng_state()
    if numpy_rng is not None:
        state["numpy_rng"] = {k: _store(proto, taken, f"onnxforge/numpy_rng/{k}", v) for k, v in numpy_rng.items()}
    _set_meta(proto, META_FORMAT, SAVED_MODEL_FORMAT)
    _set_meta(proto, META_MODEL_CONFIG, json.dumps(config, default=_json_default))
    _set_meta(proto, META_SAVED_STATE, json.dumps(state))
    return _checked_write(proto, path, external_data, "save")


def save_weights(model: Any, filepath: str | os.PathLike[str], overwrite: bool = True) -> Path:
    """Save ``model.weights`` to ``*.weights.onnx`` (the inference graph holding them) or ``*.npz``."""
    path = _fspath(filepath, "save_weights")
    kind = _check_weights_path(path, "save_weights")
    _check_overwrite(path, overwrite, "save_weights")
    if not getattr(model, "built", False):
        raise ValueError(f"save_weights(): model {getattr(model, 'name', '?')!r} is not built, so it has no weights "
                         "yet. Build it (or run it on data) first.")
    if kind == "npz":
        names = [w.name for w in model.weights]
        arrays = {f"w{k:05d}": np.asarray(w.numpy()) for k, w in enumerate(model.weights)}
        arrays[_NPZ_NAMES] = np.asarray(names, dtype=np.str_)
        return atomic_write(path, lambda f: np.savez(f, **arrays))
    proto, _, _ = _weights_proto(model, "save_weights")
    _set_meta(proto, META_FORMAT, WEIGHTS_FORMAT)
    return _checked_write(proto, path, None, "save_weights")


# ------------------------------------------------------------------------------------------ load
def _meta(proto: onnx.ModelProto) -> dict[str, str]:
    return {e.key: e.value for e in proto.metadata_props}


def _json(meta: Mapping[str, str], key: str, path: Path) -> Any:
    try:
        return json.loads(meta[key])
    except (json.JSONDecodeError, TypeError) as e:
        raise OnnxLoadError(path, f"metadata_props[{key!r}] is not valid JSON ({e})") from None


def _tensor(tensors: Mapping[str, onnx.TensorProto], name: Any, path: Path) -> np.ndarray:
    if not isinstance(name, str) or name not in tensors:
        raise OnnxLoadError(path, f"the tensor {name!r} named in the file's metadata is missing", tensor=str(name))
    return numpy_helper.to_array(tensors[name])


def _assign(variables: Sequence[Any], arrays: Sequence[np.ndarray], labels: Sequence[str], what: str,
            skip_mismatch: bool = False) -> None:
    if len(variables) != len(arrays):
        raise ValueError(f"{what}: the file holds {len(arrays)} tensors but the model has {len(variables)} "
                         f"({[v.name for v in variables][:8]}...). Received weights for {list(labels)[:8]}...")
    pending = []
    for var, array, label in zip(variables, arrays, labels):
        if tuple(array.shape) != tuple(var.shape):
            if skip_mismatch:
                warnings.warn(f"{what}: skipping {var.name!r}: shape {tuple(var.shape)} in the model, "
                              f"{tuple(array.shape)} in the file ({label!r}).", stacklevel=3)
                continue
            raise ValueError(f"{what}: variable {var.name!r} has shape {tuple(var.shape)}, but the file's tensor "
                             f"{label!r} has shape {tuple(array.shape)}.")
        pending.append((var, array))
    for var, array in pending:
        var.assign(array)


def _resolve_custom(value: Any, custom_objects: Mapping[str, Any] | None) -> Any:
    """Compile-config entries naming a custom loss / metric / optimizer become that object again."""
    lookup = dict(custom_objects or {})
    for key, cls in _REGISTERED.items():
        lookup.setdefault(key, cls)
        lookup.setdefault(key.split(">", 1)[1], cls)
    if isinstance(value, str):
        return lookup.get(value, value)
    if isinstance(value, list):
        return [_resolve_custom(v, custom_objects) for v in value]
    if isinstance(value, dict):
        if "class_name" in value and value["class_name"] in lookup:
            found = lookup[value["class_name"]]
            return found.from_config(value.get("config") or {}) if isinstance(found, type) else found
        return {k: _resolve_custom(v, custom_objects) for k, v in value.items()}
    return value


def _read_saved(path: Path, max_bytes: int) -> tuple[onnx.ModelProto, dict[str, str]]:
    proto = load_onnx(path, max_bytes=max_bytes)
    return proto, _meta(proto)


def load_model(filepath: str | os.PathLike[str], custom_objects: Mapping[str, Any] | None = None,
               compile: bool = True, safe_mode: bool = True, restore_numpy_rng: bool = True,
               max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """Rebuild a model saved by ``model.save()``: architecture, weights, compile and optimizer state.

    After ``load_model``, ``fit`` continues exactly where the saved model stopped: the same losses as a
    run that never stopped (same seed, CPU), because the weights, optimizer slots, step counter, the
    in-graph RNG state (Dropout masks) and numpy's global RNG (``fit``'s shuffling) are all restored.

    Args:
        filepath: a file written by ``model.save()``.
        custom_objects: ``{name: class or function}`` for custom layers, losses, metrics and optimizers
            that are not registered with ``register_keras_serializable``.
        compile: compile the model with the saved compile config and restore the optimizer state.
        safe_mode: as in Keras, ``True`` refuses the Python bytecode a ``Lambda`` layer of a Python
            ``lambda`` stores; ``False`` loads it (only for files you trust). Nothing else in a file is
            ever executed, and nothing is unpickled.
        restore_numpy_rng: set numpy's global RNG (what ``fit(shuffle=True)`` draws from) to its state at
            save time, so the next epochs shuffle as the uninterrupted run would have. ``False`` leaves the
            global RNG alone.
        max_bytes: the most bytes the file (and its external data) may hold.

    Returns:
        The model, compiled if ``compile`` and the saved model was.

    Raises:
        OnnxLoadError: the file is missing, not ONNX, truncated, corrupt, or not an onnxforge save.
        ValueError: the architecture names an unknown class, or the tensors do not fit it.

    Example:
        >>> model = load_model("model.onnx")           # doctest: +SKIP
        >>> model.fit(x, y, epochs=2)                  # doctest: +SKIP
    """
    if not isinstance(safe_mode, bool):
        raise TypeError(f"load_model(): safe_mode must be a bool. Received: safe_mode={safe_mode!r}")
    path = _fspath(filepath, "load_model")
    if path.name.lower().endswith(_HDF5):
        raise ValueError(f"load_model(): {str(path)!r} is a Keras .keras/.h5 file; onnxforge reads the .onnx files "
                         "that model.save() writes.")
    proto, meta = _read_saved(path, max_bytes)
    fmt = meta.get(META_FORMAT)
    if fmt == WEIGHTS_FORMAT:
        raise OnnxLoadError(path, "it holds weights only (save_weights); build the model and call "
                            "model.load_weights() instead")
    if fmt != SAVED_MODEL_FORMAT or META_MODEL_CONFIG not in meta:
        raise OnnxLoadError(path, f"it is an ONNX model but not one saved by onnxforge's model.save() "
                            f"(metadata_props[{META_FORMAT!r}] is {fmt!r}, expected {SAVED_MODEL_FORMAT!r}); "
                            "run it with onnxruntime, or rebuild the model in Python and use load_weights()")
    config = _json(meta, META_MODEL_CONFIG, path)
    state = _json(meta, META_SAVED_STATE, path) if META_SAVED_STATE in meta else {}
    weight_names = _json(meta, META_WEIGHTS, path)
    tensors = {t.name: t for t in proto.graph.initializer}

    with SafeModeScope(safe_mode):  # a Lambda's stored bytecode loads only with safe_mode=False (Keras)
        model = deserialize(config, dict(custom_objects or {}))
    if not getattr(model, "built", False) and state.get("input_shapes"):
        shapes = [tuple(s) for s in state["input_shapes"]]
        model.build(shapes[0] if len(shapes) == 1 else shapes)
    arrays = [_tensor(tensors, n, path) for n in weight_names]
    _assign(model.weights, arrays, weight_names, f"load_model('{path}')")

    compile_config = _json(meta, META_COMPILE_CONFIG, path) if META_COMPILE_CONFIG in meta else None
    if compile and compile_config is not None:
        if state.get("custom_compile") is not None:
            custom_state.compile_custom(model, _resolve_custom(compile_config, custom_objects),
                                        state["custom_compile"], custom_objects)
        else:
            model.compile_from_config(_resolve_custom(compile_config, custom_objects))
        _restore_optimizer(model, state.get("optimizer"), tensors, path, state.get("optimizer_built_for"))
        _restore_attribute_optimizers(model, state.get("optimizers") or [], tensors, path)
    if state.get("rng") is not None:
        rng_value = _tensor(tensors, state["rng"], path)
        var = getattr(model, "_rng_state", None)
        if var is not None:
            var.assign(rng_value)
        else:   # not compiled (yet): a later compile() keeps this state unless it is given a seed
            from ..variables import Variable

            model._rng_state = Variable(rng_value, name="seed_generator/state", trainable=False, dtype=np.int64)
    _restore_seed_generators(model, state.get("seed_generators") or [], tensors, path)
    if restore_numpy_rng and state.get("numpy_rng"):
        _set_numpy_rng_state({k: _tensor(tensors, n, path) for k, n in state["numpy_rng"].items()})
    return model


def _restore_optimizer(model: Any, saved: Any, tensors: Mapping[str, onnx.TensorProto], path: Path,
                       built_for: Sequence[int] | None = None) -> None:
    optimizer = getattr(model, "optimizer", None)
    if not saved or optimizer is None:
        return
    arrays = [_tensor(tensors, name, path) for _, name in saved]
    custom_state.restore_optimizer(model, optimizer, built_for, arrays, f"load_model('{path}')")


def _restore_attribute_optimizers(model: Any, entries: Sequence[Any], tensors: Mapping[str, onnx.TensorProto],
                                  path: Path) -> None:
    """The optimizers a custom ``compile`` keeps as attributes (``d_optimizer``, ``g_optimizer``)."""
    from ..optimizers import Optimizer

    for entry in entries:
        attr = entry.get("attribute") if isinstance(entry, dict) else None
        opt = vars(model).get(attr) if isinstance(attr, str) else None
        if not isinstance(opt, Optimizer):
            warnings.warn(f"load_model('{path}'): the file holds the state of optimizer attribute {attr!r}, but the "
                          "rebuilt model has no such optimizer after compile(); that state is not restored.",
                          stacklevel=3)
            continue
        arrays = [_tensor(tensors, name, path) for _, name in entry.get("variables", [])]
        custom_state.restore_optimizer(model, opt, entry.get("built_for"), arrays, f"load_model('{path}')")


def _restore_seed_generators(model: Any, saved: Sequence[Any], tensors: Mapping[str, onnx.TensorProto],
                             path: Path) -> None:
    """Every ``SeedGenerator`` state, in ``model.rng_variables()`` order."""
    if not saved:
        return
    variables = custom_state.seed_generator_variables(model)
    arrays = [_tensor(tensors, name, path) for _, name in saved]
    _assign(variables, arrays, [name for _, name in saved], f"load_model('{path}'): SeedGenerator states")


def load_weights(model: Any, filepath: str | os.PathLike[str], skip_mismatch: bool = False,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> None:
    """Load weights into a built ``model``, in ``model.weights`` order.

    Reads ``*.weights.onnx`` and ``*.npz`` files from ``save_weights``, ``.npz`` files of
    ``get_weights()`` arrays (``ModelCheckpoint``), and ``.onnx`` files from ``save()`` or ``export()``.
    ``.npz`` files are read with ``allow_pickle=False``; ``.onnx`` files through ``load_onnx``.

    Args:
        model: a built model with the saved model's architecture.
        filepath: the file.
        skip_mismatch: skip (with a warning) weights whose shape differs instead of raising.
    """
    path = _fspath(filepath, "load_weights")
    name = path.name.lower()
    if not getattr(model, "built", False):
        raise ValueError(f"load_weights(): model {getattr(model, 'name', '?')!r} is not built, so it has no weights "
                         "to load into. Build it (or run it on data) first.")
    if name.endswith(".npz"):
        arrays, labels = _read_npz(path)
    elif name.endswith(".onnx"):
        proto = load_onnx(path, max_bytes=max_bytes)
        meta = _meta(proto)
        if META_WEIGHTS not in meta:
            raise OnnxLoadError(path, f"it has no metadata_props[{META_WEIGHTS!r}] listing the weights; only files "
                                "written by onnxforge's save(), save_weights() or export() can be loaded")
        labels = _json(meta, META_WEIGHTS, path)
        missing = [model.weights[k].name for k, n in enumerate(labels) if n is None and k < len(model.weights)]
        if any(n is None for n in labels):
            raise OnnxLoadError(path, f"it does not store the weights {missing} (its inference graph does not read "
                                "them); use a file from save_weights()")
        tensors = {t.name: t for t in proto.graph.initializer}
        arrays = [_tensor(tensors, n, path) for n in labels]
    else:
        _check_weights_path(path, "load_weights")
        raise AssertionError("unreachable")
    _assign(model.weights, arrays, labels, f"load_weights('{path}')", skip_mismatch)


def _read_npz(path: Path) -> tuple[list[np.ndarray], list[str]]:
    try:
        with np.load(path, allow_pickle=False) as data:
            keys = list(data.keys())
            if _NPZ_NAMES in keys:
                labels = [str(n) for n in data[_NPZ_NAMES]]
                arrays = [data[f"w{k:05d}"] for k in range(len(labels))]
            else:   # np.savez(*arrays): arr_0, arr_1, ...
                count = len(keys)
                labels = [f"arr_{k}" for k in range(count)]
                arrays = [data[k] for k in labels]
    except FileNotFoundError:
        raise FileNotFoundError(f"load_weights(): no such file: {str(path)!r}") from None
    except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"load_weights(): {str(path)!r} is not a readable weights .npz file ({e}).") from None
    return arrays, labels
