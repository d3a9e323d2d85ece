"""The portable step-file format: a step graph whose state is fed, plus a companion model holding its start.

Why a companion model. A training step reads its state (weights, optimizer slots, step counter, BatchNorm
statistics, RNG state) as graph inputs and writes the next state as outputs. Where those inputs come from
at the first step is the format's question, and the answer must work in every onnxruntime binding:

* Initializers doubling as input defaults (format 1, onnxforge <= 0.1 files): onnxruntime reports such
  inputs as *overridable initializers*, not inputs. Its JavaScript API (onnxruntime-node and -web) lists
  and accepts true inputs only, so it silently dropped the state a loop fed and never trained past the
  first step; Python's onnxruntime logged a warning per state tensor at every session start.
* ``ModelProto.training_info`` (ONNX's ``TrainingInfoProto``: an initialization graph and update
  bindings): its bindings assign to *initializers* of the main graph, the very construct above, and no
  onnxruntime binding executes it (onnxruntime ignores ``training_info``). Nothing could read it with a
  public API alone.
* A companion ONNX model with **no inputs whose outputs are the initial values**, each output named
  after the step input it feeds (format 2, this module). Every binding runs a model, so every binding
  reads the start state with the API it already uses: ``init.run({})`` gives a name -> tensor map to feed
  straight into the step. The step graph has no input defaults at all (each state tensor is a true
  input), large models keep their values in ONNX external data beside the companion, and a file pair is
  matched by an id both carry.

The pair on disk: ``train.onnx`` and ``train.init.onnx`` (:func:`companion_path`). The step graph's
``metadata_props``: ``onnxforge.format`` (``train_step/2``, ``eval_step/2``, ``infer/2``),
``onnxforge.init_model`` (the companion's file name, in the same folder), ``onnxforge.export_id`` (also in
the companion), plus the existing ``onnxforge.state`` pairs and ``onnxforge.io`` roles. The companion's:
``onnxforge.format`` = ``initial_state/1``, ``onnxforge.init_for`` (the step file's name) and the same
``onnxforge.export_id``. Constant-filled tensors (Adam's zero slots, BatchNorm's unit variances) are
written as ``ConstantOfShape`` nodes, so a companion costs about the size of the weights alone.

:func:`load_training` reads both formats (a format-1 file's defaults are its initial state).

Example:
    >>> import numpy as np
    >>> init = initial_state_model([("w", np.arange(3, dtype=np.float32)), ("m", np.zeros(4, np.float32))])
    >>> [o.name for o in init.graph.output], [i.name for i in init.graph.input]
    (['w', 'm'], [])
    >>> {k: v.tolist() for k, v in initial_values(init, "demo.init.onnx").items()}
    {'w': [0.0, 1.0, 2.0], 'm': [0.0, 0.0, 0.0, 0.0]}
"""
from __future__ import annotations

__all__ = ["INIT_FORMAT", "TrainingFile",
           "companion_path", "initial_state_model", "initial_values", "split_defaults", "load_training",
           "fed_inputs"]

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from ..graph import GraphBuilder, contract, protos
from ..graph.opset import DEFAULT_OPSET
from ..graph.value import np_dtype, onnx_dtype
from ..graph.safe_load import DEFAULT_MAX_BYTES, OnnxLoadError, load_onnx

#: The companion model's format.
INIT_FORMAT = "initial_state/1"
#: The step graphs' format version written by this module (format 1: state inputs with initializer defaults).
STEP_VERSION = 2

# Tensors at least this large that hold one repeated value are emitted as ConstantOfShape.
_FILL_MIN_ELEMENTS = 2


def companion_path(path: str | os.PathLike[str]) -> Path:
    """The companion (initial-state) model of a step file: ``train.onnx`` -> ``train.init.onnx``.

    Example:
        >>> companion_path("out/train.onnx").as_posix(), companion_path("step").as_posix()
        ('out/train.init.onnx', 'step.init.onnx')
    """
    path = Path(os.fspath(path))
    stem = path.name[:-len(".onnx")] if path.name.endswith(".onnx") else path.name
    return path.with_name(f"{stem}.init.onnx")


def _meta(proto: onnx.ModelProto) -> dict[str, str]:
    return {e.key: e.value for e in proto.metadata_props}


def _filled(array: np.ndarray) -> bool:
    """Every element has the same bytes as the first (so -0.0 and NaN payloads survive a fill)."""
    if array.size < _FILL_MIN_ELEMENTS or array.dtype.kind not in "biuf":
        return False
    rows = np.ascontiguousarray(array).reshape(-1).view(np.uint8).reshape(array.size, -1)
    return bool((rows == rows[0]).all())


def initial_state_model(items: Sequence[tuple[str, np.ndarray]], opset: int = DEFAULT_OPSET,
                        doc_string: str = "") -> onnx.ModelProto:
    """A model with no inputs whose outputs are ``items``' arrays, each output named after its item.

    Values are initializers read through an ``Identity`` (stored under ``<name>:init``), or a
    ``ConstantOfShape`` where every element is the same.

    Args:
        items: ``(name, array)`` in the order the outputs should have.
        opset: the ``ai.onnx`` opset (the step graph's, so one runtime version reads both).
        doc_string: the model's description.
    """
    b = GraphBuilder(opset=opset, prefix="init:")   # its own constants' names cannot be a state's name
    wanted = [name for name, _ in items]
    if len(set(wanted)) != len(wanted):
        raise ValueError(f"initial_state_model(): duplicate names in {wanted}")
    stores: dict[str, str] = {}
    for name, _ in items:
        store = f"{name}:init"
        while store in wanted or store in stores.values():
            store += "_"
        stores[name] = store
    for name, array in items:
        array = np.asarray(array)
        if _filled(array):
            shape = b.const(np.asarray(array.shape, np.int64))
            fill = protos.tensor_from_array(array.reshape(-1)[:1].copy(), "value")
            value = b.op("ConstantOfShape", [shape], name=name, value=fill, shape=array.shape,
                         dtype=onnx_dtype(array.dtype))
        else:
            stored = b.initializer(stores[name], array)
            value = b.op("Identity", [stored], name=name, dtype=stored.dtype, shape=stored.shape)
        b.output(value)
    model = b.to_model(name="onnxforge_initial_state", doc_string=doc_string)
    model.doc_string = doc_string
    return model


def initial_values(init: onnx.ModelProto, path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The outputs of a companion model, read without running it (only the two forms it is written in).

    Raises:
        OnnxLoadError: the model has inputs, or an output is computed any other way.
    """
    if len(init.graph.input):
        raise OnnxLoadError(path, f"an initial-state model has no inputs; this one has "
                                  f"{[i.name for i in init.graph.input]}")
    tensors = {t.name: t for t in init.graph.initializer}
    made = {out: node for node in init.graph.node for out in node.output}
    values: dict[str, np.ndarray] = {}
    for out in init.graph.output:
        node = made.get(out.name)
        source = tensors.get(node.input[0]) if node is not None and len(node.input) == 1 else None
        if node is None or source is None or node.op_type not in ("Identity", "ConstantOfShape"):
            raise OnnxLoadError(path, f"output {out.name!r} of the initial-state model is not an Identity of an "
                                      "initializer or a ConstantOfShape (not written by onnxforge)")
        if node.op_type == "Identity":
            values[out.name] = protos.array_from_tensor(source)
            continue
        dims = protos.array_from_tensor(source).astype(np.int64).reshape(-1)
        fill = next((a.t for a in node.attribute if a.name == "value"), None)
        first = protos.array_from_tensor(fill).reshape(-1)[:1] if fill is not None else np.zeros(1, np.float32)
        if (dims < 0).any() or int(np.prod(dims)) * first.itemsize > DEFAULT_MAX_BYTES:
            raise OnnxLoadError(path, f"output {out.name!r} asks for a tensor of shape {dims.tolist()}")
        values[out.name] = np.full(tuple(int(d) for d in dims), first[0], first.dtype)
    return values


def split_defaults(proto: onnx.ModelProto) -> list[tuple[str, np.ndarray]]:
    """Remove the initializers that are also graph inputs (format-1 defaults); return them, in input order."""
    inputs = [i.name for i in proto.graph.input]
    by_name = {t.name: t for t in proto.graph.initializer}
    moved = [(n, protos.array_from_tensor(by_name[n])) for n in inputs if n in by_name]
    if moved:
        gone = {n for n, _ in moved}
        kept = [t for t in proto.graph.initializer if t.name not in gone]
        del proto.graph.initializer[:]
        proto.graph.initializer.extend(kept)
    return moved


def fed_inputs(proto: onnx.ModelProto) -> list[str]:
    """The inputs a step's caller feeds from its state: every input but the batch and the learning rates.

    Read from ``metadata_props["onnxforge.io"]`` (``params`` and ``state``); empty without it (a graph
    that does not say its roles: nothing is required of its initial state).
    """
    io = _meta(proto).get(contract.IO_KEY)
    if io is None:
        return []
    try:
        roles = json.loads(io)["inputs"]
        return [str(n) for n in list(roles.get("params", [])) + list(roles.get("state", []))]
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return []


@dataclass
class TrainingFile:
    """A step graph read by :func:`load_training`.

    Attributes:
        proto: the step graph, with no input defaults (a format-1 file's are moved to ``state``).
        state: the initial value of every input the caller keeps between steps (parameters, optimizer
            slots, counters, statistics, RNG state), by input name.
        version: 1 (defaults inside, written by onnxforge <= 0.1) or 2 (a companion model).
        init_path: the companion model, for format 2.
    """

    proto: onnx.ModelProto
    state: dict[str, np.ndarray] = field(default_factory=dict)
    version: int = STEP_VERSION
    init_path: Path | None = None

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """``[(state input, state output)]`` from ``metadata_props["onnxforge.state"]``."""
        return [tuple(p) for p in json.loads(_meta(self.proto).get(contract.STATE_KEY, "[]"))]

    @property
    def metadata(self) -> dict[str, str]:
        return _meta(self.proto)


def _version(meta: dict[str, str], path: str | os.PathLike[str]) -> int:
    fmt = meta.get(contract.FORMAT_KEY)
    if fmt is None:
        return 1
    kind, _, version = fmt.rpartition("/")
    if kind not in ("train_step", "eval_step", "infer") or not version.isdigit():
        raise OnnxLoadError(path, f"metadata_props[{contract.FORMAT_KEY!r}] is {fmt!r}, not an onnxforge step graph "
                                  "(train_step/N, eval_step/N or infer/N)")
    if int(version) > STEP_VERSION:
        raise OnnxLoadError(path, f"it is format {fmt!r}, newer than this onnxforge reads (up to "
                                  f"{kind}/{STEP_VERSION}); upgrade onnxforge")
    return int(version)


def load_training(path: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES) -> TrainingFile:
    """Read an exported step graph and its initial state, in either format, through ``load_onnx``.

    Args:
        path: a file from ``export_training`` / ``export_eval`` / ``export(weights="inputs")`` (format 2,
            its companion beside it) or from onnxforge <= 0.1 (format 1, defaults inside).
        max_bytes: the most bytes each file may take (see ``load_onnx``).

    Raises:
        OnnxLoadError: a file is missing, unsafe or not onnxforge's, the companion belongs to another
            export, or a state input has no initial value of its dtype and shape.

    Example:
        >>> import os, tempfile
        >>> import onnxforge as tf
        >>> model = tf.keras.Sequential([tf.keras.layers.Dense(1, input_shape=(2,))])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> path = model.export_training(os.path.join(tempfile.mkdtemp(), "train.onnx"))
        >>> f = load_training(path)
        >>> f.version, len(f.state), f.init_path.name   # kernel, bias, the optimizer's step counter
        (2, 3, 'train.init.onnx')
    """
    proto = load_onnx(path, max_bytes=max_bytes)
    meta = _meta(proto)
    version = _version(meta, path)
    wanted = fed_inputs(proto)
    if version == 1:
        defaults = dict(split_defaults(proto))
        _check_state(proto, defaults, wanted, path)
        return TrainingFile(proto, defaults, 1, None)
    name = meta.get(contract.INIT_MODEL_KEY)
    if not name or os.path.basename(name) != name or name in (".", ".."):
        raise OnnxLoadError(path, f"metadata_props[{contract.INIT_MODEL_KEY!r}] must name the initial-state model, "
                                  f"a file in the same folder. Received: {name!r}")
    init_path = Path(os.fspath(path)).parent / name
    if not init_path.exists():
        raise OnnxLoadError(path, f"its initial-state model '{name}' is missing (expected at {str(init_path)!r}); "
                                  "copy both files of an export together")
    init = load_onnx(init_path, max_bytes=max_bytes)
    init_meta = _meta(init)
    if init_meta.get(contract.FORMAT_KEY) != INIT_FORMAT:
        raise OnnxLoadError(init_path, f"metadata_props[{contract.FORMAT_KEY!r}] is "
                                       f"{init_meta.get(contract.FORMAT_KEY)!r}, "
                                       f"expected {INIT_FORMAT!r}")
    if init_meta.get(contract.EXPORT_ID_KEY) != meta.get(contract.EXPORT_ID_KEY):
        raise OnnxLoadError(init_path, f"it belongs to another export than '{os.fspath(path)}' (export id "
                                       f"{init_meta.get(contract.EXPORT_ID_KEY)!r}, the step graph has "
                                       f"{meta.get(contract.EXPORT_ID_KEY)!r}); export again")
    state = initial_values(init, init_path)
    _check_state(proto, state, wanted, path)
    return TrainingFile(proto, state, version, init_path)


def _check_state(proto: onnx.ModelProto, state: dict[str, np.ndarray], wanted: Sequence[str],
                 path: str | os.PathLike[str]) -> None:
    inputs = {i.name: i for i in proto.graph.input}
    missing = [n for n in wanted if n not in state]
    if missing:
        raise OnnxLoadError(path, f"its initial-state model has no value for the inputs {missing}")
    for name, value in state.items():
        vi = inputs.get(name)
        if vi is None:
            raise OnnxLoadError(path, f"its initial-state model outputs {name!r}, which is not an input")
        t = vi.type.tensor_type
        expected = np_dtype(t.elem_type)
        dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        if value.dtype != expected or len(dims) != value.ndim or \
                any(d is not None and d != s for d, s in zip(dims, value.shape)):
            raise OnnxLoadError(path, f"initial value of {name!r} is {value.dtype}{list(value.shape)}; the input "
                                      f"wants {np.dtype(expected)}{['?' if d is None else d for d in dims]}")
