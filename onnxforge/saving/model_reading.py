"""Reading whole-model ``.onnx`` files back: ``load_model`` (architecture, weights, compile and optimizer
state) and ``load_weights`` (``.weights.onnx`` or ``.npz``), written by ``model_io``.

Nothing here runs code from a file or unpickles: files are read through ``graph.safe_load.load_onnx``
(external data, sizes and framing checked), the digest is verified before anything is used, the
architecture is rebuilt from JSON with classes the program already has, and tensors are plain arrays.
"""
from __future__ import annotations

__all__ = ["load_model", "load_weights", "restore_training_state"]

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from ..graph import contract, protos
from ..graph.safe_load import DEFAULT_MAX_BYTES, OnnxLoadError, load_onnx
from ..keras_objects import _REGISTERED, deserialize
from ..layers.allocation import WeightBudgetError, weight_budget
from ..layers.safe_mode import SafeModeScope
from . import custom_state, integrity, metadata
from .npz_weights import read_npz
from .model_files import (_HDF5, LEGACY_SAVED_MODEL_FORMAT, LEGACY_WEIGHTS_FORMAT, SAVED_MODEL_FORMAT,
                          WEIGHTS_FORMAT, _check_weights_path, _fspath, _set_numpy_rng_state)




# ------------------------------------------------------------------------------------------ load
def _tensor(tensors: Mapping[str, onnx.TensorProto], name: Any, path: Path, key: str = contract.SAVED_STATE_KEY,
            dtype: Any = None, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """The array of a tensor named in the metadata, optionally required to have ``dtype`` and ``shape``."""
    if not isinstance(name, str) or name not in tensors:
        raise OnnxLoadError(path, f"metadata_props[{key!r}] names the tensor {name!r}, which the file does not "
                            "hold", tensor=str(name), key=key)
    t = tensors[name]
    if t.data_type == onnx.TensorProto.STRING:
        raise OnnxLoadError(path, f"the tensor {name!r} named in metadata_props[{key!r}] holds strings, not "
                            "numbers", tensor=name, key=key)
    array = protos.array_from_tensor(t)
    if (dtype is not None and array.dtype != np.dtype(dtype)) or (shape is not None and array.shape != shape):
        raise OnnxLoadError(path, f"the tensor {name!r} named in metadata_props[{key!r}] has dtype {array.dtype} "
                            f"and shape {array.shape}; expected {np.dtype(dtype) if dtype is not None else 'any'} "
                            f"and {shape if shape is not None else 'any shape'}", tensor=name, key=key)
    return array


def _assign(variables: Sequence[Any], arrays: Sequence[np.ndarray], labels: Sequence[str], what: str,
            skip_mismatch: bool = False, error: Any = ValueError) -> None:
    """Check every array against its variable (count, shape; dtype kind), then assign them all."""
    if len(variables) != len(arrays):
        raise error(f"{what}: the file holds {len(arrays)} tensors but the model has {len(variables)} "
                    f"({[v.path for v in variables][:8]}...). Received weights for {list(labels)[:8]}...")
    pending = []
    for var, array, label in zip(variables, arrays, labels):
        if tuple(array.shape) != tuple(var.shape):
            if skip_mismatch:
                warnings.warn(f"{what}: skipping {var.path!r}: shape {tuple(var.shape)} in the model, "
                              f"{tuple(array.shape)} in the file ({label!r}).", stacklevel=3)
                continue
            raise error(f"{what}: variable {var.path!r} has shape {tuple(var.shape)}, but the file's tensor "
                        f"{label!r} has shape {tuple(array.shape)}.")
        if array.dtype.kind not in "biuf" or (array.dtype.kind == "f") != (np.dtype(var.dtype).kind == "f"):
            raise error(f"{what}: variable {var.path!r} has dtype {np.dtype(var.dtype).name}, but the file's tensor "
                        f"{label!r} holds {array.dtype.name} values.")
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
        name = value.get("class_name")
        if isinstance(name, str) and name in lookup:
            found = lookup[name]
            inner = value.get("config") or {}
            if not isinstance(inner, dict):
                raise TypeError(f"the config of {name!r} must be an object. Received: {inner!r:.80}")
            return found.from_config(inner) if isinstance(found, type) else found
        return {k: _resolve_custom(v, custom_objects) for k, v in value.items()}
    return value


class _Stage:
    """Turns any failure while acting on one metadata entry into an ``OnnxLoadError`` naming that key.

    The file has passed the format and digest checks by then, but its content is still untrusted (anyone
    can recompute a digest): a config that no class accepts, a compile config naming a missing function,
    state that does not fit the model must end as one clear error, not as whatever the code underneath
    raised.
    """

    def __init__(self, path: Path, key: str, what: str) -> None:
        self.path, self.key, self.what = path, key, what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, error: BaseException | None, tb: Any) -> bool:
        if error is None or not isinstance(error, Exception):
            return False
        if isinstance(error, OnnxLoadError):
            if error.path == str(self.path):
                return False
            reason = f"{error.path}: {error.reason}"   # an embedded graph: say where it sits
        else:
            reason = f"{type(error).__name__}: {error}" if not isinstance(error, WeightBudgetError) else str(error)
        raise OnnxLoadError(self.path, f"metadata_props[{self.key!r}] {self.what}: {reason}", key=self.key) from error


def _read_saved(path: Path, max_bytes: int) -> tuple[onnx.ModelProto, dict[str, str]]:
    proto = load_onnx(path, max_bytes=max_bytes)
    return proto, metadata.meta_dict(proto, path)


def _check_format(path: Path, meta: Mapping[str, str], proto: onnx.ModelProto) -> None:
    """The format key, then the digest: required from ``saved_model/2`` on, checked whenever present."""
    fmt = meta.get(contract.FORMAT_KEY)
    if fmt in (WEIGHTS_FORMAT, LEGACY_WEIGHTS_FORMAT):
        raise OnnxLoadError(path, "it holds weights only (save_weights); build the model and call "
                            "model.load_weights() instead", key=contract.FORMAT_KEY)
    if fmt not in (SAVED_MODEL_FORMAT, LEGACY_SAVED_MODEL_FORMAT) or contract.MODEL_CONFIG_KEY not in meta:
        raise OnnxLoadError(path, f"it is an ONNX model but not one saved by onnxforge's model.save() "
                            f"(metadata_props[{contract.FORMAT_KEY!r}] is {fmt!r:.80}, "
                            f"expected {SAVED_MODEL_FORMAT!r}); "
                            "run it with onnxruntime, or rebuild the model in Python and use load_weights()",
                            key=contract.FORMAT_KEY)
    integrity.verify(proto, path, required=fmt == SAVED_MODEL_FORMAT)


def load_model(filepath: str | os.PathLike[str], custom_objects: Mapping[str, Any] | None = None,
               compile: bool = True, safe_mode: bool = True, restore_numpy_rng: bool = True,
               max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """Rebuild a model saved by ``model.save()``: architecture, weights, compile and optimizer state.

    After ``load_model``, ``fit`` continues exactly where the saved model stopped: the same losses as a
    run that never stopped (same seed, CPU), because the weights, optimizer slots, step counter, the
    in-graph RNG state (Dropout masks) and numpy's global RNG (``fit``'s shuffling) are all restored.

    The file is untrusted input. In order, before anything acts on it: ``load_onnx``'s checks (framing,
    sizes, external data confined to the file's folder); the format key and the SHA-256 digest over the
    tensors and metadata (``onnxforge.saving.integrity``; files of the older ``saved_model/1`` format have
    none and load without); every metadata value parsed with bounded nesting and type-checked; classes
    resolved only from onnxforge's own, registered ones and ``custom_objects``; every weight the
    architecture creates matched against a tensor the file stores before it is allocated; embedded ONNX
    graphs (``OnnxModel``) checked like files, without external data.

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
        OnnxLoadError: (a ``ValueError``) for every problem with the file, naming the metadata key
            concerned: missing, not ONNX, truncated, corrupt, damaged (digest), not an onnxforge save,
            malformed metadata, an unknown class, tensors that do not fit the architecture.

    Example:
        >>> model = load_model("model.onnx")           # doctest: +SKIP
        >>> model.fit(x, y, epochs=2)                  # doctest: +SKIP
    """
    if not isinstance(safe_mode, bool):
        raise TypeError(f"load_model(): safe_mode must be a bool. Received: safe_mode={safe_mode!r}")
    if custom_objects is not None and not isinstance(custom_objects, Mapping):
        raise TypeError(f"load_model(): custom_objects must be a dict of names to classes or functions. "
                        f"Received: custom_objects={custom_objects!r}")
    path = _fspath(filepath, "load_model")
    if path.name.lower().endswith(_HDF5):
        raise ValueError(f"load_model(): {str(path)!r} is a Keras .keras/.h5 file; onnxforge reads the .onnx files "
                         "that model.save() writes.")
    proto, meta = _read_saved(path, max_bytes)
    _check_format(path, meta, proto)
    config = metadata.parse_json(meta, contract.MODEL_CONFIG_KEY, path, dict)
    state = metadata.saved_state(meta, path)
    weight_names = metadata.weight_names(meta, contract.WEIGHTS_KEY, path)
    compile_config = metadata.parse_json(meta, contract.COMPILE_CONFIG_KEY, path, dict) \
        if contract.COMPILE_CONFIG_KEY in meta else None
    tensors = {t.name: t for t in proto.graph.initializer}
    stored = []
    for name in weight_names:
        if name not in tensors:
            raise OnnxLoadError(path, f"metadata_props[{contract.WEIGHTS_KEY!r}] names the tensor {name!r}, "
                                "which the file does not hold", tensor=name, key=contract.WEIGHTS_KEY)
        stored.append(tuple(tensors[name].dims))
    custom_objects = dict(custom_objects or {})

    # A Lambda's stored bytecode loads only with safe_mode=False, as in Keras.
    with _Stage(path, contract.MODEL_CONFIG_KEY, "does not describe a model this program can build"), \
            weight_budget(stored, f"'{path}'"), SafeModeScope(safe_mode):
        model = deserialize(config, custom_objects)
        if not getattr(model, "built", False) and state["input_shapes"]:
            shapes = [tuple(s) for s in state["input_shapes"]]
            model.build(shapes[0] if len(shapes) == 1 else shapes)
    arrays = [_tensor(tensors, n, path, contract.WEIGHTS_KEY) for n in weight_names]
    with _Stage(path, contract.WEIGHTS_KEY, "does not fit the architecture"):
        _assign(model.weights, arrays, weight_names, f"load_model('{path}')")

    if compile and compile_config is not None:
        with _Stage(path, contract.COMPILE_CONFIG_KEY, "cannot be compiled"):
            if state["custom_compile"] is not None:
                custom_state.compile_custom(model, _resolve_custom(compile_config, custom_objects),
                                            state["custom_compile"], custom_objects)
            else:
                model.compile_from_config(_resolve_custom(compile_config, custom_objects))
        _restore_optimizers(model, state, tensors, path)
    _restore_rng(model, state, tensors, path, restore_numpy_rng)
    return model


def restore_training_state(model: Any, filepath: str | os.PathLike[str],
                           max_bytes: int = DEFAULT_MAX_BYTES) -> None:
    """Put a ``model.save()`` file's training state back into ``model`` itself, already compiled.

    What ``load_model`` restores, minus rebuilding and compiling: the weights, the optimizers' state (step
    counter and slots) and every RNG state (numpy's global one included), so that training goes on exactly
    as the saved run would have. ``BackupAndRestore`` resumes through it, and must restore into the model
    that ``fit`` is running, which holds the user's callbacks, data and compile arguments.

    Args:
        model: a built, compiled model with the saved model's architecture.
        filepath: a file written by ``model.save()``.
        max_bytes: the most the file may hold.

    Example:
        >>> import os, tempfile, numpy as np
        >>> import onnxforge as tf
        >>> model = tf.keras.Sequential([tf.keras.layers.Dense(1, input_shape=(2,))])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> path = os.path.join(tempfile.mkdtemp(), "state.onnx")
        >>> _ = model.save(path)
        >>> before = model.get_weights()[0].copy()
        >>> _ = model.fit(np.ones((4, 2)), np.ones((4, 1)), verbose=0)
        >>> restore_training_state(model, path)
        >>> bool(np.array_equal(model.get_weights()[0], before))
        True
    """
    path = _fspath(filepath, "restore_training_state")
    proto, meta = _read_saved(path, max_bytes)
    _check_format(path, meta, proto)
    state = metadata.saved_state(meta, path)
    weight_names = metadata.weight_names(meta, contract.WEIGHTS_KEY, path)
    tensors = {t.name: t for t in proto.graph.initializer}
    arrays = [_tensor(tensors, n, path, contract.WEIGHTS_KEY) for n in weight_names]
    with _Stage(path, contract.WEIGHTS_KEY, "does not fit the architecture"):
        _assign(model.weights, arrays, weight_names, f"restore_training_state('{path}')")
    _restore_optimizers(model, state, tensors, path)
    _restore_rng(model, state, tensors, path, restore_numpy_rng=True)


def _restore_optimizers(model: Any, state: Mapping[str, Any], tensors: Mapping[str, onnx.TensorProto],
                        path: Path) -> None:
    with _Stage(path, contract.SAVED_STATE_KEY, "does not fit the compiled model"):
        _restore_optimizer(model, state["optimizer"], tensors, path, state["optimizer_built_for"])
        _restore_attribute_optimizers(model, state["optimizers"], tensors, path)


def _restore_rng(model: Any, state: Mapping[str, Any], tensors: Mapping[str, onnx.TensorProto], path: Path,
                 restore_numpy_rng: bool) -> None:
    with _Stage(path, contract.SAVED_STATE_KEY, "does not fit the model"):
        if state["rng"] is not None:
            rng_value = _tensor(tensors, state["rng"], path, dtype=np.int64, shape=(2,))
            var = getattr(model, "_rng_state", None)
            if var is not None:
                var.assign(rng_value)
            else:   # not compiled (yet): a later compile() keeps this state unless it is given a seed
                from ..variables import Variable

                model._rng_state = Variable(rng_value, name="seed_generator/state", trainable=False, dtype=np.int64)
        _restore_seed_generators(model, state["seed_generators"], tensors, path)
        if restore_numpy_rng and state["numpy_rng"]:
            _set_numpy_rng_state(_numpy_rng_arrays(tensors, state["numpy_rng"], path))


def _numpy_rng_arrays(tensors: Mapping[str, onnx.TensorProto], names: Mapping[str, str],
                      path: Path) -> dict[str, np.ndarray]:
    """numpy's MT19937 state as saved: 624 uint32 keys, [pos, has_gauss], the cached Gaussian."""
    parts = {"keys": _tensor(tensors, names["keys"], path, dtype=np.uint32, shape=(624,)),
             "pos_has_gauss": _tensor(tensors, names["pos_has_gauss"], path, dtype=np.int64, shape=(2,)),
             "cached_gaussian": _tensor(tensors, names["cached_gaussian"], path, dtype=np.float64, shape=())}
    pos, has_gauss = (int(v) for v in parts["pos_has_gauss"])
    if not (0 <= pos <= 624 and has_gauss in (0, 1)):
        raise OnnxLoadError(path, f"metadata_props[{contract.SAVED_STATE_KEY!r}]: numpy_rng position {pos} / has_gauss "
                            f"{has_gauss} are out of range", key=contract.SAVED_STATE_KEY)
    return parts


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
        attr = entry["attribute"]
        opt = vars(model).get(attr)
        if not isinstance(opt, Optimizer):
            warnings.warn(f"load_model('{path}'): the file holds the state of optimizer attribute {attr!r}, but the "
                          "rebuilt model has no such optimizer after compile(); that state is not restored.",
                          stacklevel=3)
            continue
        arrays = [_tensor(tensors, name, path) for _, name in entry["variables"]]
        custom_state.restore_optimizer(model, opt, entry["built_for"], arrays, f"load_model('{path}')")


def _restore_seed_generators(model: Any, saved: Sequence[Any], tensors: Mapping[str, onnx.TensorProto],
                             path: Path) -> None:
    """Every ``SeedGenerator`` state, in ``model.rng_variables()`` order."""
    if not saved:
        return
    variables = custom_state.seed_generator_variables(model)
    arrays = [_tensor(tensors, name, path, dtype=np.int64, shape=(2,)) for _, name in saved]
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
        # No array may declare more than the model's weights hold together (plus the names array).
        limit = sum(int(np.prod(w.shape)) * 8 for w in model.weights) + 64 * (len(model.weights) + 1) + 4096
        # Room past the model's weights, so a file with a few too many still gets the count mismatch's message.
        arrays, labels = read_npz(path, limit, max_members=2 * (len(model.weights) + 1) + 16)
    elif name.endswith(".onnx"):
        proto = load_onnx(path, max_bytes=max_bytes)
        meta = metadata.meta_dict(proto, path)
        fmt = meta.get(contract.FORMAT_KEY)
        if fmt is not None and fmt not in (SAVED_MODEL_FORMAT, LEGACY_SAVED_MODEL_FORMAT, WEIGHTS_FORMAT,
                                           LEGACY_WEIGHTS_FORMAT):
            raise OnnxLoadError(path, f"metadata_props[{contract.FORMAT_KEY!r}] is {fmt!r:.80}, not a format this "
                                "onnxforge writes", key=contract.FORMAT_KEY)
        # export() files carry no format and no digest; save() / save_weights() files always do now.
        integrity.verify(proto, path, required=fmt in (SAVED_MODEL_FORMAT, WEIGHTS_FORMAT))
        if contract.WEIGHTS_KEY not in meta:
            raise OnnxLoadError(path, f"it has no metadata_props[{contract.WEIGHTS_KEY!r}] listing the weights; "
                                "only files written by onnxforge's save(), save_weights() or export() can be loaded",
                                key=contract.WEIGHTS_KEY)
        labels = metadata.weight_names(meta, contract.WEIGHTS_KEY, path, allow_null=True)
        missing = [model.weights[k].path for k, n in enumerate(labels) if n is None and k < len(model.weights)]
        if any(n is None for n in labels):
            raise OnnxLoadError(path, f"it does not store the weights {missing} (its inference graph does not read "
                                "them); use a file from save_weights()", key=contract.WEIGHTS_KEY)
        tensors = {t.name: t for t in proto.graph.initializer}
        arrays = [_tensor(tensors, n, path, contract.WEIGHTS_KEY) for n in labels]
    else:
        _check_weights_path(path, "load_weights")
        raise AssertionError("unreachable")
    _assign(model.weights, arrays, labels, f"load_weights('{path}')", skip_mismatch)
