"""The ``ModelProto`` of each exported program (inference, training step, evaluation step): weights as
initializers or true inputs, the I/O description, layouts and class names in ``metadata_props``, and the
conversion to the requested opset (checked to compute the same numbers)."""
from __future__ import annotations

__all__ = ["inference_proto", "inference_parts", "training_proto", "training_parts", "eval_proto", "eval_parts"]

import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import onnx

from ..graph.value import np_dtype
from .._version import __version__
from ..compiler.programs import Program, build_infer
from ..graph import contract, protos
from ..graph.opset import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, check_opset, ir_version_for
from .onnx_file import _copy, _get_meta, _json_default, _opset_of, _set_meta


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
    fmt = data_format(model)
    layouts = {}
    for vi in proto.graph.input:
        if vi.name not in names_of_data(proto):
            continue
        t = vi.type.tensor_type
        kind_char = np_dtype(t.elem_type).kind
        layouts[vi.name] = _layout(len(t.shape.dim), kind_char, fmt)
    proto.producer_name = "onnxforge"
    proto.producer_version = __version__
    _set_meta(proto, contract.VERSION_KEY, __version__)
    _set_meta(proto, contract.DATA_FORMAT_KEY, fmt)
    _set_meta(proto, contract.INPUT_LAYOUT_KEY, json.dumps(layouts))
    what = {"infer": "inference graph (model inputs -> model outputs)",
            "train_step": "training step (forward, loss, gradients, optimizer update; state in -> state:new out)",
            "eval_step": "evaluation step (loss and metric batch sums)"}[kind]
    ins = ", ".join(f"{n} [{layouts.get(n, '?')}]" for n in layouts)
    proto.doc_string = (f"Model {_model_name(model)!r}: {what}, exported by onnxforge {__version__}. "
                        f"Inputs: {ins}. Data format: {fmt}. State pairs (training): metadata_props"
                        f"['{contract.STATE_KEY}']; input/output roles: metadata_props['{contract.IO_KEY}'].")
    proto.graph.doc_string = proto.doc_string


def names_of_data(proto: onnx.ModelProto) -> list[str]:
    """The data inputs (model inputs) of a program, from its ``onnxforge.io`` metadata."""
    io = _get_meta(proto, contract.IO_KEY)
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
    checks = _get_meta(proto, contract.DIM_CHECKS_KEY)
    if checks is not None:  # the run-time checks name the axis too (a recurrent layer's length >= 1)
        renamed = [{**c, "dims": ["sequence" if d == old else d for d in c["dims"]]} for c in json.loads(checks)]
        _set_meta(proto, contract.DIM_CHECKS_KEY, json.dumps(renamed))


def _array(var: Any) -> np.ndarray:
    return np.asarray(var.numpy(), order="C")   # not ascontiguousarray: it makes scalars 1-D


def _add_initializers(proto: onnx.ModelProto, items: Sequence[tuple[Any, str]], first: bool = True) -> None:
    """Store each variable's current value as an initializer called ``name`` (weights first, for readers)."""
    tensors = [protos.tensor_from_array(_array(var), name) for var, name in items]
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
        dtype = np_dtype(t.elem_type)
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
    io = json.loads(_get_meta(proto, contract.IO_KEY) or "{}")
    if io:
        io["inputs"]["params"] = []          # the weights are initializers now, not inputs
        io["inputs"]["state"], io["outputs"]["state"] = [], []
        _set_meta(proto, contract.IO_KEY, json.dumps(io))
    if streams:
        _set_meta(proto, contract.STATE_KEY, "[]")
    _set_meta(proto, contract.WEIGHTS_KEY, json.dumps(_weight_names(model, program.params)))
    if class_names is not None:
        _set_meta(proto, contract.CLASS_NAMES_KEY, json.dumps(_check_class_names(class_names, model)))
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
        _set_meta(proto, contract.CLASS_NAMES_KEY, json.dumps(_check_class_names(class_names, model)))
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
        _set_meta(proto, contract.COMPILE_CONFIG_KEY, json.dumps(compile_config, default=_json_default))
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
        _set_meta(proto, contract.COMPILE_CONFIG_KEY, json.dumps(compile_config, default=_json_default))
    lrs = list(step.learning_rates) if step is not None else []
    _set_meta(proto, contract.LEARNING_RATES_KEY, json.dumps({name: float(opt.learning_rate) for opt, name in lrs}))
    io = json.loads(_get_meta(proto, contract.IO_KEY) or "{}")
    if io:   # keyed by the input's own label (optimizer names collide: two "adam"s)
        io["inputs"]["learning_rates"] = {name.split("/", 1)[-1]: name for _, name in lrs}
        _set_meta(proto, contract.IO_KEY, json.dumps(io))
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
    _set_meta(proto, contract.LEARNING_RATE_KEY, repr(float(model.optimizer.learning_rate)))
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
