"""Standalone ``.onnx`` files of a model's programs: what any onnxruntime, in any language, can run.

Three exports, each one self-contained file in standard ``ai.onnx`` ops that passes
``onnx.checker.check_model(full_check=True)``:

* :func:`export_inference` -- the ``infer`` program with every weight stored as an initializer named after
  its variable (``dense/kernel``): model inputs -> model outputs, Keras input / output names, a dynamic
  ``batch`` axis (and ``sequence`` axis where a single input has one).
* :func:`export_training` -- the compiled ``train_step`` program with its I/O contract (see
  ``onnxforge.compiler.names``): every state tensor (weights, optimizer slots, step counter, BatchNorm
  statistics, RNG state) is a true input (no initializer default) and, as ``<name>:new``, an output; the
  pairs are listed in ``metadata_props["onnxforge.state"]``. The state's value at export time goes to a
  companion model ``<name>.init.onnx`` with no inputs whose outputs, named after the inputs, are that
  state (format and reasons: ``onnxforge.saving.portable``).
* :func:`export_eval` -- the ``eval_step`` program (loss and metric batch sums), weights as true inputs,
  their current values in the companion model.
* ``export_inference(..., weights="inputs")`` -- the inference graph in the same form, to predict with
  weights trained elsewhere.

Every file carries ``doc_string`` and ``metadata_props``: producer, onnxforge version, the program kind,
the role of every input and output, the input layout (``NHWC``...), and class names when given. Files
whose tensors exceed protobuf's 2 GB limit keep their weights in an external-data file beside them.
Writes are atomic (see :func:`onnxforge.saving.atomic_write`).

Example:
    >>> import os, tempfile, onnx
    >>> import onnxforge as tf
    >>> model = tf.keras.Sequential([tf.keras.layers.Dense(2, input_shape=(3,), name="out")])
    >>> path = export_inference(model, os.path.join(tempfile.mkdtemp(), "model.onnx"))
    >>> m = onnx.load(path)
    >>> [i.name for i in m.graph.input], [o.name for o in m.graph.output]
    (['input_layer'], ['out'])
"""
from __future__ import annotations

__all__ = [
    "EXTERNAL_DATA_LIMIT", "export_inference", "export_training", "export_eval", "inference_proto",
    "inference_parts", "training_proto", "training_parts", "eval_proto", "eval_parts", "write_onnx", "write_step", "upgrade_training", "META_VERSION", "META_LAYOUT", "META_DATA_FORMAT",
    "META_CLASS_NAMES", "META_LEARNING_RATE", "META_LEARNING_RATES", "META_WEIGHTS",
]

import json
import os
import re
import secrets
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import onnx
from onnx import numpy_helper

from ..compiler import names
from ..compiler.programs import Program, build_infer
from ..graph.opset import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, check_opset, ir_version_for
from . import portable
from .atomic import atomic_write, remove_stale_temps
from .safe_load import OnnxLoadError

#: Protobuf cannot serialize a message over 2 GiB; past this many bytes of tensor data (leaving room
#: for the graph itself) weights go to an external-data file beside the ``.onnx`` file.
EXTERNAL_DATA_LIMIT = 2**31 - 2**27
#: Tensors smaller than this stay inside the ``.onnx`` file even when the rest goes external.
_EXTERNAL_MIN_BYTES = 1024
_ALIGN = 64

META_VERSION = "onnxforge.version"
#: JSON ``{input name: layout}``, e.g. ``{"image": "NHWC"}`` (Keras ``channels_last``).
META_LAYOUT = "onnxforge.input_layout"
#: ``"channels_last"`` or ``"channels_first"``.
META_DATA_FORMAT = "onnxforge.data_format"
#: JSON list of class names, one per entry of the first output's last axis.
META_CLASS_NAMES = "onnxforge.class_names"
#: The optimizer's learning rate at export time (training exports; a hint, the input is required).
META_LEARNING_RATE = "onnxforge.learning_rate"
#: Custom training steps: JSON ``{learning-rate input: its value at export time}``, one per optimizer.
META_LEARNING_RATES = "onnxforge.learning_rates"
#: JSON list of the initializer names holding ``model.weights``, in that order (``load_weights`` reads it).
META_WEIGHTS = "onnxforge.weights"

_FLOAT_KINDS = "fc"


# ------------------------------------------------------------------------------------------ helpers
def _model_name(model: Any) -> str:
    return getattr(model, "name", type(model).__name__)


def _require_built(model: Any, method: str) -> None:
    if not getattr(model, "built", False):
        raise ValueError(f"{method}(): model {_model_name(model)!r} is not built yet, so it has no inputs or weights "
                         "to export. Build it first: give the first layer an `input_shape`, start with an "
                         "`Input(...)`, call `model.build(input_shape)`, or run it on data once.")


def _compiled_program(model: Any, kind: str, method: str) -> Program:
    """The model's compiled ``kind`` program (built now if ``compile()`` came before the model was built)."""
    if not getattr(model, "compiled", False):
        raise RuntimeError(f"{method}(): model {_model_name(model)!r} is not compiled. Call "
                           "`model.compile(optimizer=..., loss=...)` first: the exported step is the compiled one.")
    if kind == "eval_step" and getattr(model, "_has_custom_train_step", lambda: False)() and \
            not getattr(model, "built", False):
        raise RuntimeError(f"{method}(): model {_model_name(model)!r} has a custom train_step and no call(), so it "
                           "has no compiled evaluation step to export (test_step overrides are not supported). "
                           "Use export_training() for its training step.")
    _require_built(model, method)
    programs = getattr(model, "_programs", None) or {}
    if "train_step" not in programs and "eval_step" not in programs:
        model._build_programs()
        programs = model._programs
    program = programs.get(kind)
    if program is None:
        raise RuntimeError(f"{method}(): model {_model_name(model)!r} was compiled without a loss, so it has no "
                           f"{kind} program. Provide a `loss` argument in `compile()`.")
    # A file runs anywhere: not the CPU-only fused kernels this process's CPU step may use.
    return program if program.portable else model._portable_program(kind)


def _copy(proto: onnx.ModelProto) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    return out


def _opset_of(proto: onnx.ModelProto) -> int:
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), DEFAULT_OPSET)


def _set_meta(proto: onnx.ModelProto, key: str, value: str) -> None:
    for entry in proto.metadata_props:
        if entry.key == key:
            entry.value = value
            return
    proto.metadata_props.add(key=key, value=value)


def _get_meta(proto: onnx.ModelProto, key: str) -> str | None:
    return next((e.value for e in proto.metadata_props if e.key == key), None)


def _walk_layers(model: Any) -> Iterable[Any]:
    seen: set[int] = set()
    stack = list(getattr(model, "layers", []) or [])
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        yield layer
        for attr in ("layers", "_flat_sublayers"):
            sub = getattr(layer, attr, None)
            sub = sub() if callable(sub) else sub
            stack.extend(sub or [])
        for attr in ("layer", "forward_layer", "backward_layer", "cell"):
            inner = getattr(layer, attr, None)
            if inner is not None and hasattr(inner, "get_config"):
                stack.append(inner)


def data_format(model: Any) -> str:
    """``"channels_first"`` if any layer of ``model`` uses it, else Keras's default ``"channels_last"``."""
    for layer in _walk_layers(model):
        if getattr(layer, "data_format", None) == "channels_first":
            return "channels_first"
    return "channels_last"


def _layout(rank: int, dtype_kind: str, fmt: str) -> str:
    """A layout string for an input of this rank: ``N`` batch, ``T`` steps, ``C`` channels / features."""
    if dtype_kind not in _FLOAT_KINDS:
        return {1: "N", 2: "NT"}.get(rank, "N" + "?" * (rank - 1))   # ids: tokens over steps
    spatial = {3: "T", 4: "HW", 5: "DHW"}.get(rank)
    if rank == 2:
        return "NC"
    if rank == 1 or spatial is None:
        return "N" + "?" * (rank - 1)
    return "N" + spatial + "C" if fmt == "channels_last" else "NC" + spatial


def _describe(proto: onnx.ModelProto, model: Any, kind: str) -> None:
    """doc_string and metadata_props common to every export."""
    from .. import __version__

    fmt = data_format(model)
    layouts = {}
    for vi in proto.graph.input:
        if vi.name not in names_of_data(proto):
            continue
        t = vi.type.tensor_type
        kind_char = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.elem_type)).kind
        layouts[vi.name] = _layout(len(t.shape.dim), kind_char, fmt)
    proto.producer_name = "onnxforge"
    proto.producer_version = __version__
    _set_meta(proto, META_VERSION, __version__)
    _set_meta(proto, META_DATA_FORMAT, fmt)
    _set_meta(proto, META_LAYOUT, json.dumps(layouts))
    what = {"infer": "inference graph (model inputs -> model outputs)",
            "train_step": "training step (forward, loss, gradients, optimizer update; state in -> state:new out)",
            "eval_step": "evaluation step (loss and metric batch sums)"}[kind]
    ins = ", ".join(f"{n} [{layouts.get(n, '?')}]" for n in layouts)
    proto.doc_string = (f"Model {_model_name(model)!r}: {what}, exported by onnxforge {__version__}. "
                        f"Inputs: {ins}. Data format: {fmt}. State pairs (training): metadata_props"
                        f"['{names.STATE_KEY}']; input/output roles: metadata_props['{names.IO_KEY}'].")
    proto.graph.doc_string = proto.doc_string


def names_of_data(proto: onnx.ModelProto) -> list[str]:
    """The data inputs (model inputs) of a program, from its ``onnxforge.io`` metadata."""
    io = _get_meta(proto, names.IO_KEY)
    if io is None:
        return [i.name for i in proto.graph.input]
    return list(json.loads(io)["inputs"]["data"])


def _name_sequence_axis(proto: onnx.ModelProto, model: Any) -> None:
    """A single input's dynamic axis 1 is the sequence axis: call it ``sequence`` everywhere in the graph."""
    data = names_of_data(proto)
    if len(data) != 1:
        return
    old = f"{data[0]}_dim1"
    vi = next(i for i in proto.graph.input if i.name == data[0])
    dims = vi.type.tensor_type.shape.dim
    if len(dims) < 2 or dims[1].dim_param != old:
        return

    def rename(graph: onnx.GraphProto) -> None:
        for v in list(graph.input) + list(graph.output) + list(graph.value_info):
            if v.type.HasField("tensor_type"):
                for d in v.type.tensor_type.shape.dim:
                    if d.dim_param == old:
                        d.dim_param = "sequence"
        for node in graph.node:
            for a in node.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    rename(a.g)
                for g in a.graphs:
                    rename(g)

    rename(proto.graph)
    checks = _get_meta(proto, names.DIM_CHECKS_KEY)
    if checks is not None:  # the run-time checks name the axis too (a recurrent layer's length >= 1)
        renamed = [{**c, "dims": ["sequence" if d == old else d for d in c["dims"]]} for c in json.loads(checks)]
        _set_meta(proto, names.DIM_CHECKS_KEY, json.dumps(renamed))


def _array(var: Any) -> np.ndarray:
    return np.asarray(var.numpy(), order="C")   # not ascontiguousarray: it makes scalars 1-D


def _add_initializers(proto: onnx.ModelProto, items: Sequence[tuple[Any, str]], first: bool = True) -> None:
    """Store each variable's current value as an initializer called ``name`` (weights first, for readers)."""
    tensors = [numpy_helper.from_array(_array(var), name) for var, name in items]
    if first:
        rest = list(proto.graph.initializer)
        del proto.graph.initializer[:]
        proto.graph.initializer.extend(tensors + rest)
    else:
        proto.graph.initializer.extend(tensors)


# ------------------------------------------------------------------------------------------ opsets
def _random_feeds(proto: onnx.ModelProto, rng: np.random.Generator) -> dict[str, np.ndarray]:
    init = {t.name for t in proto.graph.initializer}
    feeds = {}
    for vi in proto.graph.input:
        if vi.name in init:
            continue
        t = vi.type.tensor_type
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.elem_type))
        shape = tuple(d.dim_value if d.HasField("dim_value") else 3 for d in t.shape.dim)
        feeds[vi.name] = (rng.normal(size=shape).astype(dtype) if dtype.kind in _FLOAT_KINDS
                          else np.zeros(shape, dtype))
    return feeds


def _verify_same(before: onnx.ModelProto, after: onnx.ModelProto, opset: int) -> None:
    """The converted graph computes what the original did, on random inputs (onnxruntime, CPU)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    feeds = _random_feeds(before, np.random.default_rng(0))
    try:
        results = []
        for proto in (before, after):
            sess = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
            results.append(sess.run(None, feeds))
    except Exception as e:
        raise ValueError(f"The graph converted to opset={opset} does not run in onnxruntime {ort.__version__}: "
                         f"{e}") from e
    names_out = [o.name for o in before.graph.output]
    for name, a, b in zip(names_out, *results):
        if a.dtype.kind in _FLOAT_KINDS:
            ok = np.allclose(a, b, rtol=1e-5, atol=1e-6, equal_nan=True)
        else:
            ok = np.array_equal(a, b)
        if not ok:
            raise ValueError(f"Converting to opset={opset} changed output {name!r} (max difference "
                             f"{np.nanmax(np.abs(a.astype(np.float64) - b.astype(np.float64)))}); refusing to "
                             "write a graph that computes something else.")


def _at_opset(proto: onnx.ModelProto, opset: int | None, verify: bool = True) -> onnx.ModelProto:
    """``proto`` re-expressed at ``opset`` with ``onnx.version_converter``, checked and verified."""
    if opset is None:
        return proto
    check_opset(opset)
    current = _opset_of(proto)
    if opset == current:
        return proto
    from onnx import version_converter

    try:
        converted = version_converter.convert_version(proto, opset)
    except Exception as e:
        ops = sorted({n.op_type for n in proto.graph.node})
        raise ValueError(f"Cannot express this graph at opset={opset} (it is built at opset {current}); "
                         f"onnx.version_converter failed: {e}. Ops used: {ops}. Supported range: "
                         f"[{MIN_OPSET}, {MAX_OPSET}]; the default {DEFAULT_OPSET} always works.") from e
    converted.ir_version = ir_version_for(opset)   # 10 (what onnxruntime >= 1.20 reads) unless opset needs more
    del converted.metadata_props[:]
    converted.metadata_props.extend(proto.metadata_props)
    try:
        onnx.checker.check_model(converted, full_check=True)
    except Exception as e:
        raise ValueError(f"The graph converted to opset={opset} fails the ONNX checker: {e}") from e
    if verify:
        _verify_same(proto, converted, opset)
    return converted


# ------------------------------------------------------------------------------------------ protos
def inference_proto(model: Any, opset: int | None = None, class_names: Sequence[str] | None = None,
                    method: str = "export") -> tuple[onnx.ModelProto, list[tuple[Any, str]]]:
    """The standalone inference graph of ``model`` and ``(variable, initializer name)`` of its weights.

    The ``infer`` program is traced with the weights as inputs (each keeps its own, Keras-named tensor:
    no two weights are merged however equal their values), converted to ``opset`` if asked, then every
    weight becomes an initializer holding its current value.
    """
    if opset is not None:
        check_opset(opset)
    _require_built(model, method)
    stream = getattr(model, "_rng_stream", None)
    program = build_infer(model, rng_state=stream() if stream is not None else None)
    proto = _at_opset(program.model, opset)
    # Random streams (a sampling layer's draws) are baked in at their current state, like the weights: the
    # exported graph draws the same numbers every run and has only the model's inputs and outputs.
    streams = [(var, name) for var, name, _ in program.state]
    state_outputs = {out for _, _, out in program.state}
    if state_outputs:
        outs = [o for o in proto.graph.output if o.name not in state_outputs]
        del proto.graph.output[:]
        proto.graph.output.extend(outs)
    baked = {name for _, name in program.params + streams}
    kept = [i for i in proto.graph.input if i.name not in baked]
    del proto.graph.input[:]
    proto.graph.input.extend(kept)
    _add_initializers(proto, program.params + streams)
    io = json.loads(_get_meta(proto, names.IO_KEY) or "{}")
    if io:
        io["inputs"]["params"] = []          # the weights are initializers now, not inputs
        io["inputs"]["state"], io["outputs"]["state"] = [], []
        _set_meta(proto, names.IO_KEY, json.dumps(io))
    if streams:
        _set_meta(proto, names.STATE_KEY, "[]")
    _set_meta(proto, META_WEIGHTS, json.dumps(_weight_names(model, program.params)))
    if class_names is not None:
        _set_meta(proto, META_CLASS_NAMES, json.dumps(_check_class_names(class_names, model)))
    _name_sequence_axis(proto, model)
    _describe(proto, model, "infer")
    return proto, list(program.params)


def inference_parts(model: Any, opset: int | None = None, class_names: Sequence[str] | None = None,
                    method: str = "export") -> tuple[onnx.ModelProto, list[tuple[str, np.ndarray]]]:
    """The inference graph with the weights as true inputs, and ``(input, value now)`` of each weight.

    What a runtime that trains the model (from ``export_training``'s files) runs to predict with the weights
    it trained: feed them by name. A random stream drawn in ``call()`` is state here, as in ``eval_step``.
    """
    if opset is not None:
        check_opset(opset)
    _require_built(model, method)
    stream = getattr(model, "_rng_stream", None)
    program = build_infer(model, rng_state=stream() if stream is not None else None)
    proto = _at_opset(_copy(program.model), opset)
    if class_names is not None:
        _set_meta(proto, META_CLASS_NAMES, json.dumps(_check_class_names(class_names, model)))
    _name_sequence_axis(proto, model)
    _describe(proto, model, "infer")
    return proto, _state_items(program)


def _weight_names(model: Any, params: Sequence[tuple[Any, str]]) -> list[str | None]:
    by_uid = {var.uid: name for var, name in params}
    return [by_uid.get(w.uid) for w in model.weights]


def _check_class_names(class_names: Any, model: Any) -> list[str]:
    if isinstance(class_names, str) or not isinstance(class_names, Sequence) or \
            not all(isinstance(c, str) for c in class_names):
        raise ValueError(f"export(): class_names must be a list of strings. Received: class_names={class_names!r}")
    last = model.outputs[0].shape[-1] if model.outputs and model.outputs[0].shape else None
    if isinstance(last, int) and last != len(class_names) and not (last == 1 and len(class_names) == 2):
        raise ValueError(f"export(): class_names has {len(class_names)} names but output "
                         f"{model.output_names[0]!r} has {last} entries on its last axis. "
                         f"Received: class_names={list(class_names)!r}")
    return list(class_names)


def _state_items(program: Program) -> list[tuple[str, np.ndarray]]:
    """``(input name, value now)`` of every input a step's caller keeps: read-only parameters, then state."""
    return [(name, _array(var)) for var, name in list(program.params) + [(v, n) for v, n, _ in program.state]]


def _step_parts(model: Any, kind: str, opset: int | None, method: str) -> tuple[onnx.ModelProto, list]:
    if opset is not None:
        check_opset(opset)
    program = _compiled_program(model, kind, method)
    proto = _at_opset(_copy(program.model), opset)
    compile_config = model.get_compile_config() if hasattr(model, "get_compile_config") else None
    if compile_config is not None:
        _set_meta(proto, "onnxforge.compile_config", json.dumps(compile_config, default=_json_default))
    _describe(proto, model, kind)
    return proto, _state_items(program)


def _custom_step(model: Any, method: str) -> tuple[Program, Any] | None:
    """The traced program of a ``train_step`` override and its ``CustomStep``, or ``None`` without one."""
    if not getattr(model, "_has_custom_train_step", lambda: False)():
        return None
    if not getattr(model, "compiled", False):
        raise RuntimeError(f"{method}(): model {_model_name(model)!r} is not compiled. Call `model.compile(...)` "
                           "first: the exported step is the compiled one.")
    program = getattr(model, "_custom_program", None)
    if program is None:
        raise RuntimeError(f"{method}(): model {_model_name(model)!r} has a custom train_step that has not been "
                           "traced yet: its data inputs take their shapes from a batch. Run `model.fit(...)` or "
                           "`model.train_on_batch(batch)` once, then export.")
    step = next((s for s in (getattr(model, "_custom_steps", None) or {}).values() if s.program is program), None)
    return program, step


def _custom_training_parts(model: Any, program: Program, step: Any,
                           opset: int | None) -> tuple[onnx.ModelProto, list]:
    """The traced custom step and its state's values now; learning rates by attribute."""
    proto = _at_opset(_copy(program.model), opset)
    compile_config = model.get_compile_config() if hasattr(model, "get_compile_config") else None
    if compile_config is not None:
        _set_meta(proto, "onnxforge.compile_config", json.dumps(compile_config, default=_json_default))
    lrs = list(step.learning_rates) if step is not None else []
    _set_meta(proto, META_LEARNING_RATES, json.dumps({name: float(opt.learning_rate) for opt, name in lrs}))
    io = json.loads(_get_meta(proto, names.IO_KEY) or "{}")
    if io:   # keyed by the input's own label (optimizer names collide: two "adam"s)
        io["inputs"]["learning_rates"] = {name.split("/", 1)[-1]: name for _, name in lrs}
        _set_meta(proto, names.IO_KEY, json.dumps(io))
    _describe(proto, model, "train_step")
    return proto, _state_items(program)


def training_parts(model: Any, opset: int | None = None) -> tuple[onnx.ModelProto, list[tuple[str, np.ndarray]]]:
    """The compiled training step (no input defaults) and ``(input, value now)`` of every state input.

    For a model with its own ``train_step`` this is the traced custom step: data inputs ``x`` / ``y`` /
    ``sample_weight``, one learning-rate input per optimizer (``learning_rate/d_optimizer``, values at
    export time in ``metadata_props["onnxforge.learning_rates"]``), logs ``logs/<key>``, and the state
    pairs in ``metadata_props["onnxforge.state"]`` as for the compiled step.
    """
    if opset is not None:
        check_opset(opset)
    custom = _custom_step(model, "export_training")
    if custom is not None:
        return _custom_training_parts(model, *custom, opset)
    proto, items = _step_parts(model, "train_step", opset, "export_training")
    _set_meta(proto, META_LEARNING_RATE, repr(float(model.optimizer.learning_rate)))
    return proto, items


def training_proto(model: Any, opset: int | None = None) -> onnx.ModelProto:
    """The compiled training step graph alone: every state tensor a true input, with no default."""
    return training_parts(model, opset)[0]


def eval_parts(model: Any, opset: int | None = None) -> tuple[onnx.ModelProto, list[tuple[str, np.ndarray]]]:
    """The compiled evaluation step (weights as true inputs) and the weights' values now."""
    return _step_parts(model, "eval_step", opset, "export_eval")


def eval_proto(model: Any, opset: int | None = None) -> onnx.ModelProto:
    """The compiled evaluation step graph alone, weights as true inputs."""
    return eval_parts(model, opset)[0]


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return repr(value)


# ------------------------------------------------------------------------------------------ writing
def _tensor_bytes(proto: onnx.ModelProto) -> int:
    return sum(len(t.raw_data) for t in proto.graph.initializer)


def _data_name(path: Path) -> re.Pattern[str]:
    """The names of the external-data files that writes to ``path`` create: ``<name>.<8 hex>.data``."""
    return re.compile(re.escape(path.name) + r"\.[0-9a-f]{8}\.data\Z")


def _data_files(path: Path) -> list[Path]:
    pattern = _data_name(path)
    try:
        return [path.parent / n for n in os.listdir(path.parent) if pattern.match(n)]
    except FileNotFoundError:
        return []


def _remove_stale_data_temps(path: Path) -> None:
    """Half-written data files of earlier writes to ``path`` whose writer was killed: each has its own
    random name, so ``atomic_write``'s clean-up of the same target never meets them."""
    pattern = _data_name(path)
    remove_stale_temps(path.parent, lambda name: pattern.match(name) is not None)


def write_onnx(proto: onnx.ModelProto, path: str | os.PathLike[str], external_data: bool | None = None) -> Path:
    """Write ``proto`` to ``path`` atomically; big tensors go to an external-data file beside it.

    Args:
        proto: the model.
        path: the ``.onnx`` file; its folder must exist.
        external_data: ``True`` stores every initializer of 1 KiB or more in ``<file name>.<token>.data``
            beside ``path`` (ONNX external data, a location relative to the model's folder); ``None``
            (default) does so only when the tensors would exceed protobuf's 2 GB limit.

    The data file is written first under a fresh name, then the ``.onnx`` file is replaced, then data
    files of earlier writes to ``path`` are removed: a crash at any point leaves a consistent pair.

    Returns:
        The written path.
    """
    path = Path(os.fspath(path))
    if not path.parent.is_dir():
        raise FileNotFoundError(f"Cannot write {str(path)!r}: the folder {str(path.parent)!r} does not exist.")
    _remove_stale_data_temps(path)
    if external_data is None:
        external_data = _tensor_bytes(proto) > EXTERNAL_DATA_LIMIT
    if external_data and not any(len(t.raw_data) >= _EXTERNAL_MIN_BYTES for t in proto.graph.initializer):
        external_data = False   # nothing big enough to move: one file
    if not external_data:
        atomic_write(path, proto.SerializeToString())
        for old in _data_files(path):
            old.unlink(missing_ok=True)
        return path

    location = f"{path.name}.{secrets.token_hex(4)}.data"
    moved: list[tuple[onnx.TensorProto, bytes]] = []
    offset = 0
    plan: list[tuple[int, bytes]] = []
    for t in proto.graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL or len(t.raw_data) < _EXTERNAL_MIN_BYTES:
            continue
        offset = (offset + _ALIGN - 1) // _ALIGN * _ALIGN
        blob = t.raw_data
        plan.append((offset, blob))
        moved.append((t, blob))
        t.ClearField("raw_data")
        t.data_location = onnx.TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", str(offset)), ("length", str(len(blob)))):
            t.external_data.add(key=key, value=value)
        offset += len(blob)

    def write_data(f: BinaryIO) -> None:
        pos = 0
        for start, blob in plan:
            f.write(b"\0" * (start - pos))
            f.write(blob)
            pos = start + len(blob)

    try:
        atomic_write(path.parent / location, write_data)
        atomic_write(path, proto.SerializeToString())
    except BaseException:
        (path.parent / location).unlink(missing_ok=True)
        raise
    finally:
        for t, blob in moved:   # hand the caller's proto back as it came
            del t.external_data[:]
            t.ClearField("data_location")
            t.raw_data = blob
    for old in _data_files(path):
        if old.name != location:
            old.unlink(missing_ok=True)
    return path


def _checked_write(proto: onnx.ModelProto, path: str | os.PathLike[str], external_data: bool | None,
                   what: str) -> Path:
    """Run the full checker, then write. A model with external data is checked from its written files
    (the checker reads the data through the path; in memory it would be over protobuf's limit)."""
    domains = {n.domain for n in proto.graph.node} - {"", "ai.onnx"}
    if domains:
        raise AssertionError(f"{what}: non-standard op domains {sorted(domains)}")
    if external_data is None:
        external_data = _tensor_bytes(proto) > EXTERNAL_DATA_LIMIT
    if not external_data:
        onnx.checker.check_model(proto, full_check=True)
        return write_onnx(proto, path, external_data=False)
    written = write_onnx(proto, path, external_data=True)
    onnx.checker.check_model(str(written), full_check=True)
    return written


def write_step(proto: onnx.ModelProto, state: Sequence[tuple[str, np.ndarray]], path: str | os.PathLike[str],
               external_data: bool | None = None, what: str = "export") -> Path:
    """Write a step graph and its initial-state companion (see ``onnxforge.saving.portable``).

    The companion (``<name>.init.onnx``) is written first, then the step graph that names it, each
    atomically and each checked by the full checker; both carry one fresh ``onnxforge.export_id``.
    ``external_data`` applies to each file (the companion holds the weights). ``proto`` gets the format
    metadata; the state inputs must have no initializer defaults (``portable.split_defaults`` removes them).

    Returns:
        The step graph's path.
    """
    path = Path(os.fspath(path))
    if not path.parent.is_dir():
        raise FileNotFoundError(f"Cannot write {str(path)!r}: the folder {str(path.parent)!r} does not exist.")
    inputs = {i.name for i in proto.graph.input}
    defaults = sorted(inputs & {t.name for t in proto.graph.initializer})
    if defaults:
        raise ValueError(f"{what}: inputs {defaults[:5]} have initializer defaults, which onnxruntime's JavaScript "
                         "API does not list; move them to the initial state (portable.split_defaults).")
    unknown = [n for n, _ in state if n not in inputs]
    if unknown:
        raise ValueError(f"{what}: initial values for {unknown[:5]}, which are not inputs of the graph")
    init_path = portable.companion_path(path)
    kind = _get_meta(proto, names.PROGRAM_KEY) or "train_step"
    export_id = secrets.token_hex(8)
    for key, value in ((portable.FORMAT_KEY, f"{kind}/{portable.STEP_VERSION}"),
                       (portable.INIT_MODEL_KEY, init_path.name), (portable.EXPORT_ID_KEY, export_id)):
        _set_meta(proto, key, value)
    proto.doc_string = (proto.doc_string + " " if proto.doc_string else "") + _loop_doc(proto, init_path.name)
    init = portable.initial_state_model(state, opset=_opset_of(proto), doc_string=(
        f"Initial state of '{path.name}' (onnxforge {kind}): no inputs; run it once and feed each output to "
        f"the input of the same name of '{path.name}'."))
    init.producer_version = proto.producer_version
    for key, value in ((portable.FORMAT_KEY, portable.INIT_FORMAT), (portable.INIT_FOR_KEY, path.name),
                       (portable.EXPORT_ID_KEY, export_id), (names.PROGRAM_KEY, "initial_state")):
        _set_meta(init, key, value)
    _checked_write(init, init_path, external_data, what)
    return _checked_write(proto, path, external_data, what)


def upgrade_training(source: str | os.PathLike[str], target: str | os.PathLike[str] | None = None,
                     external_data: bool | None = None) -> Path:
    """Rewrite a step file of the first format (state inputs with initializer defaults) as a portable pair.

    Args:
        source: a file from ``export_training`` / ``export_eval`` of onnxforge <= 0.1.
        target: where to write the step graph (default: ``source`` itself); its companion goes beside it.
        external_data: see :func:`write_onnx`.

    Returns:
        The written step graph's path.

    Raises:
        OnnxLoadError: ``source`` is unreadable, not an onnxforge step file, or already portable.
    """
    loaded = portable.load_training(source)
    if loaded.version != 1:
        raise OnnxLoadError(source, f"it is already format {loaded.metadata.get(portable.FORMAT_KEY)!r} "
                                    f"(its initial state is '{loaded.init_path.name}'); nothing to upgrade")
    items = [(i.name, loaded.state[i.name]) for i in loaded.proto.graph.input if i.name in loaded.state]
    return write_step(loaded.proto, items, target if target is not None else source, external_data,
                      "upgrade_training")


def _loop_doc(proto: onnx.ModelProto, init_name: str) -> str:
    """How to drive the step, from the graph's own roles (the doc_string any ONNX viewer shows)."""
    io = json.loads(_get_meta(proto, names.IO_KEY) or "{}").get("inputs", {})
    batch = [n for key in ("data", "targets", "sample_weights") for n in io.get(key, [])]
    rates = ([io["learning_rate"]] if io.get("learning_rate") else []) + list(io.get("learning_rates", {}).values())
    text = (f"How to run it: (1) run '{init_name}' (same folder, no inputs) once: its outputs, by name, are the "
            f"initial value of every other input here (weights, optimizer slots, counters, statistics, RNG state); "
            f"keep them as the state. (2) Each step feed the batch ({', '.join(batch) or 'see onnxforge.io'})")
    if rates:
        text += f", the learning rate ({', '.join(rates)}: float32 scalar)"
    text += " and the state."
    if json.loads(_get_meta(proto, names.STATE_KEY) or "[]"):
        text += (f" (3) For each [input, output] pair in metadata_props['{names.STATE_KEY}'] the output is the "
                 "input's next value.")
    if any(o.name == names.sum_output(names.LOSS, "total") for o in proto.graph.output):
        text += " Batch loss = sums/loss/total / sums/loss/count."
    return text + f" Input roles: metadata_props['{names.IO_KEY}']."


# ------------------------------------------------------------------------------------------ public
def export_inference(model: Any, path: str | os.PathLike[str], opset: int | None = None,
                     class_names: Sequence[str] | None = None, external_data: bool | None = None,
                     weights: str = "initializers") -> Path:
    """Write ``model``'s inference graph to ``path`` (what ``model.export(path)`` does).

    Args:
        model: a built model (compiled or not).
        path: the ``.onnx`` file to write (atomically).
        opset: the ``ai.onnx`` opset to emit, in ``[MIN_OPSET, MAX_OPSET]`` (default: onnxforge's pinned
            opset). Other opsets are reached with ``onnx.version_converter`` and verified against the
            original on random inputs.
        class_names: optional names of the classes (the first output's last axis), stored in
            ``metadata_props["onnxforge.class_names"]``.
        external_data: see :func:`write_onnx` (default: only past 2 GB).
        weights: ``"initializers"`` (default): the weights are inside, the graph has the model's inputs only.
            ``"inputs"``: every weight is a true input and ``<name>.init.onnx`` beside ``path`` holds their
            values (as :func:`export_training` writes), for runtimes that train the weights themselves.

    Returns:
        The written path.
    """
    if weights == "inputs":
        return write_step(*inference_parts(model, opset, class_names), path, external_data, "export")
    if weights != "initializers":
        raise ValueError(f"export(): weights must be 'initializers' or 'inputs'. Received: weights={weights!r}")
    proto, _ = inference_proto(model, opset, class_names)
    return _checked_write(proto, path, external_data, "export")


def export_training(model: Any, path: str | os.PathLike[str], opset: int | None = None,
                    external_data: bool | None = None) -> Path:
    """Write the compiled training step to ``path`` and its initial state to ``<name>.init.onnx`` beside it.

    Every state tensor is a true graph input (no initializer defaults, so every onnxruntime binding lists
    and accepts it) and, as ``<name>:new``, an output; ``metadata_props["onnxforge.state"]`` pairs them.
    The companion model has no inputs; its outputs, named after the inputs they feed, are the state now.
    With onnxruntime alone (JavaScript: ``await init.run({})`` and the same loop)::

        sess = ort.InferenceSession(path)
        meta = sess.get_modelmeta().custom_metadata_map
        init = ort.InferenceSession(os.path.join(os.path.dirname(path), meta["onnxforge.init_model"]))
        state = dict(zip([o.name for o in init.get_outputs()], init.run(None, {})))
        pairs = json.loads(meta["onnxforge.state"])      # [[input, output], ...]
        for x, y in batches:
            feeds = {"input_layer": x, "target/dense": y, "sample_weight/dense": np.ones(len(x), "f"),
                     "learning_rate": np.asarray(0.01, np.float32), **state}
            out = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
            state.update({i: out[o] for i, o in pairs})
            loss = out["sums/loss/total"] / out["sums/loss/count"]

    ``onnxforge.saving.load_training`` reads the pair (and files of the earlier one-file format).
    """
    proto, state = training_parts(model, opset)
    return write_step(proto, state, path, external_data, "export_training")


def export_eval(model: Any, path: str | os.PathLike[str], opset: int | None = None,
                external_data: bool | None = None) -> Path:
    """Write the compiled evaluation step (loss and metric sums) to ``path``, weights as true inputs, and
    their current values to ``<name>.init.onnx`` (feed a training loop's state instead to evaluate it)."""
    proto, state = eval_parts(model, opset)
    return write_step(proto, state, path, external_data, "export_eval")
