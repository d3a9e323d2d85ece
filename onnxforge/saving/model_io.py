"""A whole model in one ``.onnx`` file, and back: architecture, weights, compile and optimizer state.
This module writes the files; ``model_reading`` reads them and ``model_files`` holds what both share.

``save_model(model, "model.onnx")`` writes a valid ONNX model -- the inference graph, weights stored as
initializers named after their variables, so onnxruntime can run it -- that also carries everything
needed to resume training exactly:

=====================================  ===============================================================
``metadata_props`` key                 content
=====================================  ===============================================================
``onnxforge.format``                   ``"saved_model/2"`` (``"weights/2"`` for ``save_weights``; the
                                       ``/1`` formats of earlier releases have no digest and still load)
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
``onnxforge.digest``                   ``"sha256:<hex>"`` over every other entry and every tensor
                                       (see ``integrity``); the last entry
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

__all__ = ["save_model", "load_model", "save_weights", "load_weights",
           "SAVED_MODEL_FORMAT", "WEIGHTS_FORMAT",
           "LEGACY_SAVED_MODEL_FORMAT", "LEGACY_WEIGHTS_FORMAT"]

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from ..keras_objects import serialize
from . import custom_state, integrity
from .atomic import atomic_write
from ..graph import contract, protos, unique_name
from .export_protos import inference_proto
from .onnx_file import _checked_write, _get_meta, _json_default, _set_meta
from .model_files import (LEGACY_SAVED_MODEL_FORMAT, LEGACY_WEIGHTS_FORMAT, SAVED_MODEL_FORMAT, WEIGHTS_FORMAT,
                          _NPZ_NAMES, _check_model_path, _check_overwrite, _check_weights_path, _fspath,
                          _numpy_rng_state)
# Reading lives in model_reading; its entry points stay importable from here, where both halves used to be.
from .model_reading import load_model, load_weights  # noqa: F401


# ------------------------------------------------------------------------------------------ tensors
def _taken_names(proto: onnx.ModelProto) -> set[str]:
    g = proto.graph
    taken = {t.name for t in g.initializer} | {i.name for i in g.input} | {o.name for o in g.output}
    for node in g.node:
        taken.update(node.input)
        taken.update(node.output)
    return taken


def _store(proto: onnx.ModelProto, taken: set[str], base: str, array: np.ndarray) -> str:
    name = unique_name(base, taken)
    proto.graph.initializer.append(protos.tensor_from_array(np.asarray(array, order="C"), name))
    return name


def _weights_proto(model: Any, method: str) -> tuple[onnx.ModelProto, set[str], list[str]]:
    """The inference graph with every weight stored (those the graph does not read as extra initializers)."""
    if _state_only(model):
        proto = _state_only_proto()
        listed: list[str | None] = [None] * len(model.weights)
    else:
        proto, _ = inference_proto(model, method=method)
        listed = json.loads(_get_meta(proto, contract.WEIGHTS_KEY) or "[]")
    taken = _taken_names(proto)
    weight_names = []
    for var, name in zip(model.weights, listed):
        weight_names.append(name if name is not None else _store(proto, taken, var.path, var.numpy()))
    _set_meta(proto, contract.WEIGHTS_KEY, json.dumps(weight_names))
    return proto, taken, weight_names


def _state_only(model: Any) -> bool:
    """A custom-step model without ``call`` (Keras's GAN pattern) has no inference graph to hold its weights."""
    has_custom = getattr(model, "_has_custom_train_step", lambda: False)()
    return has_custom and not getattr(model, "built", False)


def _state_only_proto() -> onnx.ModelProto:
    """A graph of no nodes: its initializers carry the state of a model that has no inference graph."""
    from ..graph import GraphBuilder

    return GraphBuilder().to_model(name="onnxforge_saved_state")


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
        _set_meta(proto, contract.COMPILE_CONFIG_KEY, json.dumps(compile_config, default=_json_default))
        if custom_compile is not None:
            state["custom_compile"] = custom_compile
        optimizer = getattr(model, "optimizer", None)
        if include_optimizer and optimizer is not None:
            state["optimizer"] = [[v.path, store(v.path, v.numpy())] for v in optimizer.variables]
            state["optimizer_built_for"] = custom_state.built_for(model, optimizer)
        if include_optimizer:
            state["optimizers"] = custom_state.optimizer_entries(model, store)
    rng = getattr(model, "_rng_state", None)
    if rng is not None:
        state["rng"] = store(rng.path, rng.numpy())
    state["seed_generators"] = [[v.path, store(v.path, v.numpy())]
                                for v in custom_state.seed_generator_variables(model)]
    numpy_rng = _numpy_rng_state()
    if numpy_rng is not None:
        state["numpy_rng"] = {k: _store(proto, taken, f"onnxforge/numpy_rng/{k}", v) for k, v in numpy_rng.items()}
    _set_meta(proto, contract.FORMAT_KEY, SAVED_MODEL_FORMAT)
    _set_meta(proto, contract.MODEL_CONFIG_KEY, json.dumps(config, default=_json_default))
    _set_meta(proto, contract.SAVED_STATE_KEY, json.dumps(state))
    integrity.seal(proto)   # last: it covers every other entry and every tensor
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
        names = [w.path for w in model.weights]
        arrays = {f"w{k:05d}": np.asarray(w.numpy()) for k, w in enumerate(model.weights)}
        arrays[_NPZ_NAMES] = np.asarray(names, dtype=np.str_)
        return atomic_write(path, lambda f: np.savez(f, **arrays))
    proto, _, _ = _weights_proto(model, "save_weights")
    _set_meta(proto, contract.FORMAT_KEY, WEIGHTS_FORMAT)
    integrity.seal(proto)
    return _checked_write(proto, path, None, "save_weights")
