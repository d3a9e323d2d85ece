"""Reading an ONNX model for ``from_onnx``: load it safely, bring it to a supported opset with functions
inlined, cut the requested sub-graph, and classify its float initializers as weights, state or constants.
"""
from __future__ import annotations

__all__ = ["CONSTANT_INPUTS", "STATE_INPUTS"]

import base64
import binascii
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import inliner, version_converter
from onnx import utils as onnx_utils

from ..graph import protos
from ..graph.safe_load import load_onnx
from ..graph.untrusted import DEFAULT_MAX_BYTES, OnnxLoadError, check_tensors, load_onnx_bytes
from ..graph.opset import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET


_T = onnx.TensorProto
_FLOATS = {_T.FLOAT, _T.DOUBLE, _T.FLOAT16, _T.BFLOAT16}

#: Op inputs that hold hyper-parameters or shape information, never weights: float initializers read
#: there stay constants (a Resize whose scales were a graph input would lose its static output shape).
CONSTANT_INPUTS: dict[str, tuple[int, ...]] = {
    "Resize": (1, 2), "Upsample": (1,), "Pad": (1, 2, 3), "Clip": (1, 2), "Range": (0, 1, 2),
    "Dropout": (1, 2), "Pow": (1,), "ConstantOfShape": (0,), "Reshape": (1,), "Expand": (1,), "Tile": (1,),
    "Slice": (1, 2, 3, 4), "Split": (1,), "Squeeze": (1,), "Unsqueeze": (1,), "TopK": (1,),
    "ReduceSum": (1,), "ReduceMean": (1,), "ReduceMax": (1,), "ReduceMin": (1,), "ReduceProd": (1,),
    "ReduceL2": (1,), "ReduceSumSquare": (1,), "ReduceLogSumExp": (1,), "CumSum": (1,),
}
#: Op inputs that are state: running statistics a training program updates, never trained.
STATE_INPUTS: dict[str, tuple[int, ...]] = {"BatchNormalization": (3, 4)}


# ------------------------------------------------------------------------------------------ loading
def _load(source: Any) -> onnx.ModelProto:
    """A ``ModelProto`` from a proto, serialized bytes or a path (read by the untrusted-file loader)."""
    if isinstance(source, onnx.ModelProto):
        model = onnx.ModelProto()
        model.CopyFrom(source)
        # A proto in memory has no folder to resolve external data against: numpy_helper would read
        # whatever file the location names, relative to the current directory.
        check_tensors("from_onnx() ModelProto", model, max_tensor_bytes=DEFAULT_MAX_BYTES,
                      external_refusal=" in a ModelProto: pass the .onnx file's path instead, so the data is "
                      "read from the model's own folder and validated")
        return model
    if isinstance(source, (bytes, bytearray, memoryview)):
        return load_onnx_bytes(bytes(source), "from_onnx() bytes")
    if isinstance(source, (str, os.PathLike)):
        return load_onnx(source)  # validates the file and any external data before reading it
    raise TypeError("from_onnx() expects an onnx.ModelProto, its serialized bytes or a path to an .onnx file. "
                    f"Received: {type(source).__name__}")


def _opset_of(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), DEFAULT_OPSET)


def _normalize(model: onnx.ModelProto) -> onnx.ModelProto:
    """Inline local functions, refuse foreign domains, bring the graph to the builder's opset."""
    if model.functions:
        model = inliner.inline_local_functions(model)
    foreign = sorted({f"{n.op_type} ({n.domain})" for n in _all_nodes(model.graph)
                      if n.domain not in ("", "ai.onnx")})
    if foreign:
        raise ValueError(f"from_onnx(): only standard ai.onnx ops can be re-emitted; the model uses {foreign}. "
                         "Export it without contrib / custom ops.")
    opset = _opset_of(model)
    if opset != DEFAULT_OPSET:
        try:
            model = version_converter.convert_version(model, DEFAULT_OPSET)
        except Exception as e:
            # Opsets inside onnxforge's range have the signatures the gradient rules assume.
            if not MIN_OPSET <= opset <= MAX_OPSET:
                raise ValueError(f"from_onnx(): the model's opset {opset} could not be converted to opset "
                                 f"{DEFAULT_OPSET} ({e}). Export it at an opset in [{MIN_OPSET}, {MAX_OPSET}]."
                                 ) from None
    return model


def _all_nodes(graph: onnx.GraphProto):
    for node in graph.node:
        yield node
        for attr in node.attribute:
            for g in ([attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)):
                yield from _all_nodes(g)


def _select(model: onnx.ModelProto, inputs: Sequence[str] | None, outputs: Sequence[str] | None) -> onnx.ModelProto:
    """The sub-graph from ``inputs`` to ``outputs`` (value names), if they differ from the graph's own."""
    inits = {t.name for t in model.graph.initializer}
    graph_inputs = [i.name for i in model.graph.input if i.name not in inits]
    graph_outputs = [o.name for o in model.graph.output]
    for arg, value in (("inputs", inputs), ("outputs", outputs)):
        if value is not None and (isinstance(value, str) or not all(isinstance(v, str) for v in value)):
            raise TypeError(f"from_onnx(): `{arg}` must be a list of value names. Received: {arg}={value!r}")
    ins = list(inputs) if inputs is not None else graph_inputs
    outs = list(outputs) if outputs is not None else graph_outputs
    if ins == graph_inputs and outs == graph_outputs:
        return model
    known = set(graph_inputs) | {o for n in model.graph.node for o in n.output if o}
    bad = [n for n in ins + outs if n not in known]
    if bad:
        raise ValueError(f"from_onnx(): no value of the graph is named {bad}. Received: inputs={inputs!r}, "
                         f"outputs={outputs!r}; graph inputs {graph_inputs}, outputs {graph_outputs}.")
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    return onnx_utils.Extractor(inferred).extract_model(ins, outs)


def _type_of(vi: onnx.ValueInfoProto) -> tuple[int | None, tuple | None]:
    if not vi.type.HasField("tensor_type"):
        return None, None
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return t.elem_type or None, None
    dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim)
    return t.elem_type or None, dims


def _keras_shape(dims: tuple) -> tuple:
    return tuple(d if isinstance(d, int) else None for d in dims)


def _constant_values(graph: onnx.GraphProto, init_arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Values known before running: constant initializers and ``Constant`` node outputs."""
    out = dict(init_arrays)
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute:
            attr = node.attribute[0]
            try:
                out[node.output[0]] = protos.array_from_tensor(attr.t) if attr.name == "value" \
                    else np.asarray(protos.attribute_value(attr))
            except Exception:  # sparse constants and the like: not needed as known values
                pass
    return out


def _classify(graph: onnx.GraphProto, trainable: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """``(trainable, frozen)`` initializer names; every other initializer is a graph constant."""
    roles: dict[str, set[str]] = {}
    for node in _all_nodes(graph):
        for k, name in enumerate(node.input):
            if not name:
                continue
            if k in STATE_INPUTS.get(node.op_type, ()):
                role = "state"
            elif k in CONSTANT_INPUTS.get(node.op_type, ()):
                role = "constant"
            else:
                role = "weight"
            roles.setdefault(name, set()).add(role)
    floats = [t for t in graph.initializer if t.data_type in _FLOATS]
    # Unused initializers are left out: a weight nothing reads would only clutter the weight lists.
    weights = [t.name for t in floats if t.name in roles and "constant" not in roles[t.name] and len(t.dims) >= 1]
    state = [t.name for t in floats if roles.get(t.name) == {"state"}]
    if trainable is None:
        return [n for n in weights if n not in state], [n for n in weights if n in state]
    if isinstance(trainable, str) or not all(isinstance(n, str) for n in trainable):
        raise TypeError(f"from_onnx(): `trainable` must be None or a list of initializer names. "
                        f"Received: trainable={trainable!r}")
    float_names = [t.name for t in floats]
    unknown = [n for n in trainable if n not in float_names]
    if unknown:
        raise ValueError(f"from_onnx(): `trainable` names {unknown}, which are not float initializers of the "
                         f"graph. Received: trainable={list(trainable)!r}; float initializers: {float_names[:30]}"
                         + (" ..." if len(float_names) > 30 else ""))
    chosen = set(trainable)
    return ([n for n in float_names if n in chosen],
            [n for n in float_names if n not in chosen and (n in weights or n in state)])


_DECLARED_DTYPES = ("float16", "float32", "float64")


def _checked_config(config: Any, source: str) -> tuple[onnx.ModelProto, list[tuple[str, str, tuple[int, ...]]]]:
    """The embedded graph (validated) and the declared weights ``(name, dtype, shape)`` of a config."""
    def fail(key: str, why: str) -> OnnxLoadError:
        return OnnxLoadError(source, f"entry {key!r} {why}", key=key)

    if not isinstance(config, dict):
        raise OnnxLoadError(source, f"expected a dict. Received: {type(config).__name__}")
    for key, kinds, what in (("name", (str, type(None)), "a string"), ("trainable", (bool,), "a boolean"),
                             ("training_mode", (bool,), "a boolean")):
        if key in config and not isinstance(config[key], kinds):
            raise fail(key, f"must be {what}. Received: {config[key]!r:.80}")
    chosen = config.get("trainable_initializers")
    if chosen is not None and (not isinstance(chosen, list) or not all(isinstance(n, str) for n in chosen)):
        raise fail("trainable_initializers", "must be a list of initializer names or null")
    encoded = config.get("onnx")
    if not isinstance(encoded, str):
        raise fail("onnx", f"must be a base64 string of an ONNX model. Received: {type(encoded).__name__}")
    if len(encoded) > (DEFAULT_MAX_BYTES + 2) // 3 * 4:
        raise fail("onnx", f"holds {len(encoded)} characters, over the limit for {DEFAULT_MAX_BYTES} bytes")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as e:
        raise fail("onnx", f"is not valid base64 ({e})") from None
    proto = load_onnx_bytes(data, f"{source}, entry 'onnx'")
    taken = {t.name for t in proto.graph.initializer}
    declared = config.get("weights", [])
    if not isinstance(declared, list):
        raise fail("weights", f"must be a list of [name, dtype, shape]. Received: {declared!r:.80}")
    weights = []
    for k, entry in enumerate(declared):
        ok = isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str) and \
            entry[1] in _DECLARED_DTYPES and isinstance(entry[2], list) and len(entry[2]) <= 64 and \
            all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in entry[2])
        if not ok:
            raise fail("weights", f"[{k}] must be [name, one of {list(_DECLARED_DTYPES)}, a list of non-negative "
                       f"ints]. Received: {entry!r:.120}")
        if entry[0] in taken:
            raise fail("weights", f"[{k}] names {entry[0]!r} twice (or a constant of the graph)")
        taken.add(entry[0])
        weights.append((entry[0], entry[1], tuple(entry[2])))
    return proto, weights


