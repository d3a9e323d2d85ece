"""``Model.from_onnx``: any ONNX inference graph as an onnxforge model that trains on stock onnxruntime.

An :class:`OnnxModel` is a (subclassed) ``Model`` whose ``call()`` re-emits the ONNX graph's nodes into the
program being traced. Its float initializers become ``Variable``s named after them (``fc1.weight``), so in a
training program they are graph inputs with gradients from onnxforge's autodiff and optimizer updates, and in
an exported inference graph they are initializers again under the same names. Everything else -- integer
tensors, ``Constant`` nodes, hyper-parameter inputs such as ``Resize`` scales or ``Clip`` bounds, scalars --
stays a constant of the graph.

Which initializers train:
    * ``trainable=None``: every float initializer that is a weight (rank >= 1 and not read as a
      hyper-parameter, see ``CONSTANT_INPUTS``); ``BatchNormalization`` running statistics are state
      (non-trainable, updated by training programs when ``training_mode=True``).
    * ``trainable=[names]``: exactly those; the other weights are non-trainable state (frozen).

Training-mode nodes follow ``training_mode``:
    * ``False`` (default): ``BatchNormalization`` always uses its running statistics and ``Dropout`` is the
      identity, in every program (fine-tuning a model as exported for inference).
    * ``True``: in training programs (``fit``), ``BatchNormalization`` normalizes with batch statistics
      and updates its running statistics (ONNX's ``momentum`` semantics) and ``Dropout`` draws its mask
      from the program's seeded counter RNG; inference programs (``predict``, ``export``) use the running
      statistics and no dropout, as Keras layers do.

``get_config()`` carries the graph without the weights' data (a base64 ``ModelProto`` plus the weights'
names, dtypes and shapes), so ``model.save`` / ``onnxforge.keras.models.load_model`` need no source file:
the config rebuilds the model and the saved weights fill it, as for any Keras model. Nodes inside
control-flow bodies (If / Loop / Scan) are re-emitted as they are (their BatchNormalization / Dropout are
not rewritten).

Example:
    >>> import numpy as np, onnx
    >>> from onnx import helper, numpy_helper, TensorProto as T
    >>> w = numpy_helper.from_array(np.ones((3, 2), np.float32), "fc.weight")
    >>> g = helper.make_graph([helper.make_node("MatMul", ["x", "fc.weight"], ["y"])], "g",
    ...     [helper.make_tensor_value_info("x", T.FLOAT, ["batch", 3])],
    ...     [helper.make_tensor_value_info("y", T.FLOAT, ["batch", 2])], [w])
    >>> model = from_onnx(helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)]))
    >>> model.input_names, model.output_names, [v.name for v in model.trainable_weights]
    (['x'], ['y'], ['fc.weight'])
    >>> model.predict(np.ones((4, 3), np.float32), verbose=0).tolist()[0]
    [3.0, 3.0]
"""
from __future__ import annotations

__all__ = ["OnnxModel", "from_onnx", "CONSTANT_INPUTS", "STATE_INPUTS"]

import base64
import binascii
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import inliner, version_converter
from onnx import utils as onnx_utils

from ..graph import Value, protos
from ..graph.safe_load import load_onnx
from ..graph.shape_inference import fill_shapes
from ..graph.untrusted import DEFAULT_MAX_BYTES, OnnxLoadError, check_tensors, load_onnx_bytes
from ..graph.opset import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET
from ..graph import emit as _ops
from ..layers import allocation
from ..layers.keras_tensor import KerasTensor, flatten
from ..tracing import TraceContext, current_trace
from ..variables import Variable
from .model import Model

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


# ------------------------------------------------------------------------------------------ the model
class OnnxModel(Model):
    """An ONNX graph as a Keras model: its float initializers are Variables, its nodes the forward pass.

    Build one with :func:`from_onnx` / ``onnxforge.Model.from_onnx``; the constructor takes an already
    loaded, normalized ``ModelProto``.

    Args:
        onnx_model: the graph (inputs and outputs as they should appear on the model).
        trainable_initializers: ``None`` (every float weight trains) or the initializer names to train.
        training_mode: how BatchNormalization / Dropout nodes behave in training programs (see the module
            docstring).
        name: the model's name; defaults to ``onnx_model``, ``onnx_model_1``, ...
        trainable: Keras's layer flag: ``False`` freezes every weight.
    """

    def __init__(self, onnx_model: onnx.ModelProto, trainable_initializers: Sequence[str] | None = None,
                 training_mode: bool = False, name: str | None = None, trainable: bool = True,
                 dtype: Any = None):
        if not isinstance(training_mode, (bool, np.bool_)):
            raise ValueError("from_onnx(): `training_mode` must be a boolean. "
                             f"Received: training_mode={training_mode!r}")
        super().__init__(name=name, trainable=trainable, dtype=dtype)
        self.training_mode = bool(training_mode)
        self._proto = onnx_model
        graph = onnx_model.graph
        init_arrays = {t.name: protos.array_from_tensor(t) for t in graph.initializer}
        train_names, frozen_names = _classify(graph, trainable_initializers)
        self._variables: dict[str, Variable] = {}
        for names, flag, bucket in ((train_names, True, self._trainable_variables),
                                    (frozen_names, False, self._non_trainable_variables)):
            for n in names:
                array = init_arrays[n]
                var = Variable(array, name=n, trainable=flag and self.trainable, dtype=array.dtype)
                self._variables[n] = var
                bucket.append(var)
        self._constants = {n: a for n, a in init_arrays.items() if n not in self._variables}
        self._known = _constant_values(graph, self._constants)
        try:
            inferred = onnx.shape_inference.infer_shapes(onnx_model, data_prop=True)
        except Exception:  # inference is a help: the trace fills what it can node by node
            inferred = onnx_model
        self._types = {vi.name: _type_of(vi) for vi in list(inferred.graph.value_info) + list(inferred.graph.output)}
        inits = set(init_arrays)
        specs = []
        for vi in graph.input:
            if vi.name in inits:
                continue
            elem, dims = _type_of(vi)
            if elem is None or dims is None:
                raise ValueError(f"from_onnx(): graph input {vi.name!r} needs a tensor type with a known rank. "
                                 f"Received: {vi.type}")
            specs.append(KerasTensor(_keras_shape(dims), elem, name=vi.name))
            self._types[vi.name] = (elem, dims)
        self._input_specs = specs
        self._onnx_output_names = [o.name for o in graph.output]
        outs = [self._types.get(o.name, _type_of(o)) for o in graph.output]
        if all(e is not None and d is not None for e, d in outs):
            self._output_specs = [KerasTensor(_keras_shape(d), e, name=o.name) for (e, d), o in zip(outs, graph.output)]
        self.built = True

    # ------------------------------------------------------------ Keras model surface
    def build(self, input_shape: Any = None) -> None:
        self.built = True  # the graph fixes the input shapes

    @property
    def output_names(self) -> list[str]:
        """The ONNX graph's output names (predictions come back under them)."""
        return list(self._onnx_output_names)

    @property
    def onnx_model(self) -> onnx.ModelProto:
        """The source graph (initializers at their import-time values)."""
        return self._proto

    def get_config(self) -> dict:
        """The graph without its weights' data, plus their names, dtypes and shapes (weights are saved apart)."""
        stripped = onnx.ModelProto()
        stripped.CopyFrom(self._proto)
        keep = [t for t in stripped.graph.initializer if t.name not in self._variables]
        del stripped.graph.initializer[:]
        stripped.graph.initializer.extend(keep)
        weights = [[v.name, np.dtype(v.dtype).name, list(v.shape)] for v in self._variables.values()]
        return {"name": self.name, "trainable": self.trainable,
                "onnx": base64.b64encode(stripped.SerializeToString()).decode("ascii"),
                "weights": weights, "trainable_initializers": [v.name for v in self._trainable_variables],
                "training_mode": self.training_mode}

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> OnnxModel:
        """The model of ``get_config`` with zero weights (``set_weights`` / ``load_weights`` fill them).

        The config may come from a file, so everything in it is checked before use: the embedded graph
        goes through the same checks as ``onnxforge.saving.load_onnx`` (external data refused: it could
        read any file next to the program), and the declared weights must be float tensors whose sizes
        the file being loaded really stores (see ``onnxforge.layers.allocation``), or, outside a load, at
        most ``DEFAULT_MAX_BYTES`` together. Errors are ``OnnxLoadError`` naming the config entry.
        """
        name = config.get("name")
        source = f"config of OnnxModel {name!r}" if isinstance(name, str) else "config of an OnnxModel"
        proto, weights = _checked_config(config, source)
        total = 0
        for wname, dtype, shape in weights:
            allocation.claim(name if isinstance(name, str) else "onnx_model", wname, shape)
            total += math.prod(shape) * np.dtype(dtype).itemsize
            if total > DEFAULT_MAX_BYTES:
                raise OnnxLoadError(source, f"the declared weights take more than {DEFAULT_MAX_BYTES} bytes "
                                    f"(at {wname!r}, shape {list(shape)})", key="weights")
        for wname, dtype, shape in weights:
            proto.graph.initializer.append(protos.tensor_from_array(np.zeros(shape, dtype), wname))
        return cls(proto, trainable_initializers=config.get("trainable_initializers"),
                   training_mode=config.get("training_mode", False), name=name,
                   trainable=config.get("trainable", True))

    # ------------------------------------------------------------ tracing
    def call(self, inputs: Any, training: bool | None = None) -> Any:
        ctx = current_trace()
        b = ctx.b
        xs = [inputs] if isinstance(inputs, Value) else [v for v in flatten(inputs) if isinstance(v, Value)]
        specs = self._input_specs
        if len(xs) != len(specs):
            raise ValueError(f"Model {self.name!r} expects {len(specs)} input(s) {[s.name for s in specs]}. "
                             f"Received {len(xs)}.")
        env: dict[str, str] = {}
        for spec, x in zip(specs, xs):
            elem = self._types[spec.name][0]
            if x.dtype is not None and x.dtype != elem:  # e.g. int32 token ids into an int64 Gather
                x = b.op("Cast", [x], to=elem, shape=x.shape)
            env[spec.name] = x.name
        symbols = self._symbol_map(xs)
        emitter = _Emitter(self, ctx, env, symbols, bool(training) and self.training_mode)
        for node in self._proto.graph.node:
            emitter.emit(node)
        outs = [b.value(emitter.resolve(n)) for n in self._onnx_output_names]
        return outs[0] if len(outs) == 1 else outs

    def _symbol_map(self, xs: list[Value]) -> dict[str, Any]:
        """The source graph's symbolic dims as the trace's (``batch_size`` -> ``batch``); others unknown."""
        out: dict[str, Any] = {}
        for spec, x in zip(self._input_specs, xs):
            dims = self._types[spec.name][1] or ()
            if x.shape is None or len(x.shape) != len(dims):
                continue
            for d, t in zip(dims, x.shape):
                if isinstance(d, str):
                    out.setdefault(d, t)
        return out


class _Emitter:
    """Re-emits one source graph's nodes into a trace, with fresh names."""

    def __init__(self, model: OnnxModel, ctx: TraceContext, env: dict[str, str], symbols: dict[str, Any],
                 training: bool):
        self.model, self.ctx, self.b = model, ctx, ctx.b
        self.env, self.symbols, self.training = env, symbols, training

    def resolve(self, name: str) -> str:
        """The trace's name for a source value (initializers enter on first use)."""
        if not name:
            return ""
        hit = self.env.get(name)
        if hit is not None:
            return hit
        var = self.model._variables.get(name)
        if var is not None:
            value = self.ctx.read(var)
        elif name in self.model._constants:
            value = self.b.const(self.model._constants[name])
        else:
            raise ValueError(f"Model {self.model.name!r}: the ONNX graph reads {name!r}, which no node, input "
                             "or initializer defines.")
        self.env[name] = value.name
        return value.name

    def _fresh(self, name: str) -> str:
        new = self.b.fresh(name or "v")
        self.env[name] = new
        return new

    def emit(self, node: onnx.NodeProto) -> None:
        if node.op_type == "BatchNormalization":
            self._batch_norm(node)
        elif node.op_type == "Dropout":
            self._dropout(node)
        else:
            self._copy(node, [self.resolve(i) for i in node.input], [self._fresh(o) if o else "" for o in node.output])

    def _copy(self, node: onnx.NodeProto, inputs: list[str], outputs: list[str],
              attrs: dict[str, Any] | None = None) -> None:
        new = onnx.NodeProto()
        new.CopyFrom(node)
        new.name = self.b.fresh(node.name) if node.name else ""  # errors then name the source's node
        del new.input[:]
        new.input.extend(inputs)
        del new.output[:]
        new.output.extend(outputs)
        for attr in new.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                attr.g.CopyFrom(self._subgraph(attr.g, self.resolve))
            elif attr.type == onnx.AttributeProto.GRAPHS:
                graphs = [self._subgraph(g, self.resolve) for g in attr.graphs]
                del attr.graphs[:]
                attr.graphs.extend(graphs)
        if attrs:
            keep = [a for a in new.attribute if a.name not in attrs]
            del new.attribute[:]
            new.attribute.extend(keep)
            new.attribute.extend(protos.attribute(k, v) for k, v in attrs.items())
        start = len(self.b.nodes)
        self.b.add_node(new)
        self._fill_types(start, node, outputs)

    def _fill_types(self, start: int, source: onnx.NodeProto | None, outputs: list[str]) -> None:
        fill_shapes(self.b, start)
        if source is None:
            return
        for src, new in zip(source.output, outputs):
            v = self.b.values.get(new) if new else None
            if v is None or (v.dtype is not None and v.shape is not None):
                continue
            elem, dims = self.model._types.get(src, (None, None))
            v.dtype = v.dtype or elem
            if v.shape is None and dims is not None:
                v.shape = tuple(self.symbols.get(d) if isinstance(d, str) else d for d in dims)

    def _subgraph(self, g: onnx.GraphProto, outer: Callable[[str], str]) -> onnx.GraphProto:
        """A control-flow body with every name it defines made fresh and its captures resolved outside."""
        local: dict[str, str] = {}

        def name_of(n: str) -> str:
            if not n:
                return n
            return local[n] if n in local else outer(n)

        def define(n: str) -> str:
            local[n] = self.b.fresh(n or "v")
            return local[n]

        new = onnx.GraphProto()
        new.CopyFrom(g)
        for vi in new.input:
            vi.name = define(vi.name)
        for t in new.initializer:
            t.name = define(t.name)
        for node in new.node:
            ins = [name_of(i) for i in node.input]
            del node.input[:]
            node.input.extend(ins)
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    attr.g.CopyFrom(self._subgraph(attr.g, name_of))
                elif attr.type == onnx.AttributeProto.GRAPHS:
                    graphs = [self._subgraph(sub, name_of) for sub in attr.graphs]
                    del attr.graphs[:]
                    attr.graphs.extend(graphs)
            outs = [define(o) if o else "" for o in node.output]
            del node.output[:]
            node.output.extend(outs)
            node.name = ""
        for vi in new.output:
            vi.name = name_of(vi.name)
        infos = [vi for vi in new.value_info if vi.name in local]
        for vi in infos:
            vi.name = local[vi.name]
        del new.value_info[:]
        new.value_info.extend(infos)
        return new

    # ------------------------------------------------------------ training-mode nodes
    def _batch_norm(self, node: onnx.NodeProto) -> None:
        inputs = [self.resolve(i) for i in node.input]
        if not self.training:
            # Inference semantics: one output; the statistics outputs (if a training export had them)
            # read as the unchanged running statistics.
            for k in (1, 2):
                if len(node.output) > k and node.output[k]:
                    self.env[node.output[k]] = inputs[k + 2]
            self._copy(node, inputs, [self._fresh(node.output[0])], {"training_mode": 0})
            return
        # Training mode, spelled out in primitive ops rather than BatchNormalization(training_mode=1):
        # onnxruntime's CUDA provider refuses training-mode BatchNormalization from opset 14 on, and other
        # runtimes (web, mobile) lack it too. ONNX semantics: biased batch variance over every axis but 1,
        # running = running * momentum + batch * (1 - momentum).
        b = self.b
        x, scale, bias, mean_in, var_in = (b.values[n] for n in inputs[:5])
        eps = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
        momentum = next((a.f for a in node.attribute if a.name == "momentum"), 0.9)
        if x.shape is None:
            raise ValueError(f"from_onnx: the input of BatchNormalization node {node.name!r} has an unknown rank; "
                             "training mode needs it. Give the graph's inputs shapes (or run onnx shape inference).")
        rank = len(x.shape)
        axes = [0, *range(2, rank)]
        per_channel = _ops.ints(b, [-1] + [1] * (rank - 2))
        start = len(b.nodes)
        mean = _ops.reduce("ReduceMean", x, axes, keepdims=True)
        centered = x - mean
        var = _ops.reduce("ReduceMean", centered * centered, axes, keepdims=True)
        inv = b.op("Reshape", [scale, per_channel]) / b.op("Sqrt", [var + eps])
        y = centered * inv + b.op("Reshape", [bias, per_channel])
        y.shape = x.shape
        self.env[node.output[0]] = y.name
        flat = _ops.ints(b, [-1])
        for k, (stat, batch) in ((1, (mean_in, mean)), (2, (var_in, var))):
            new = stat * momentum + b.op("Reshape", [batch, flat]) * (1.0 - momentum)
            src = node.output[k] if len(node.output) > k else ""
            _ops.set_shape(new, stat.shape)
            if src:
                self.env[src] = new.name
            new.dtype = new.dtype or stat.dtype
            var_state = self.model._variables.get(node.input[k + 2])
            if var_state is not None:
                self.ctx.update(var_state, new)
        self._fill_types(start, node, [self.env[node.output[0]]])

    def _dropout(self, node: onnx.NodeProto) -> None:
        b = self.b
        start = len(b.nodes)
        x = b.value(self.resolve(node.input[0]))
        ratio = 0.5
        if len(node.input) > 1 and node.input[1]:
            known = self.model._known.get(node.input[1])
            if known is None:
                raise ValueError(f"Model {self.model.name!r}: Dropout node {node.name!r} takes its ratio from "
                                 f"{node.input[1]!r}, which is not a constant; onnxforge needs a constant ratio.")
            ratio = float(np.asarray(known).reshape(()))
        wants_mask = len(node.output) > 1 and node.output[1]
        if self.training and ratio > 0.0:
            u = self.ctx.random_uniform(x)
            keep = b.op("GreaterOrEqual", [u, ratio])
            y = x * (b.op("Cast", [keep], to=x.dtype) * (1.0 / (1.0 - ratio))) if ratio < 1.0 else x * 0.0
            mask = keep
        else:
            y = b.op("Identity", [x], dtype=x.dtype, shape=x.shape)
            mask = b.op("Expand", [b.const(np.array(True)), b.op("Shape", [x])]) if wants_mask else None
        self.env[node.output[0]] = y.name
        if wants_mask:
            self.env[node.output[1]] = mask.name
        fill_shapes(b, start)


# ------------------------------------------------------------------------------------------ entry point
def from_onnx(source: Any, trainable: Sequence[str] | None = None, inputs: Sequence[str] | None = None,
              outputs: Sequence[str] | None = None, training_mode: bool = False, name: str | None = None) -> OnnxModel:
    """Wrap an ONNX inference graph as an onnxforge model that compiles, fits, evaluates, predicts, exports.

    Args:
        source: an ``onnx.ModelProto``, its serialized bytes, or a path (loaded with
            ``onnxforge.saving.load_onnx``, which refuses unsafe files).
        trainable: ``None`` to train every float weight initializer, or the initializer names to train (the
            others become frozen, non-trainable state).
        inputs: value names to use as the model's inputs (default: the graph's inputs); intermediate values
            cut the graph there.
        outputs: value names to use as the model's outputs (default: the graph's outputs).
        training_mode: whether BatchNormalization / Dropout nodes behave as in training inside ``fit``
            (see the module docstring).
        name: the model's name.

    Returns:
        An :class:`OnnxModel`. Ops on the path to the loss without a gradient rule fail at ``compile`` with
        the autodiff engine's error naming the op and node.

    Example:
        >>> model = from_onnx("model.onnx", trainable=["fc.weight", "fc.bias"])       # doctest: +SKIP
        >>> model.compile(optimizer="sgd", loss="mse"); model.fit(x, y, epochs=1)      # doctest: +SKIP
    """
    proto = _select(_normalize(_load(source)), inputs, outputs)
    return OnnxModel(proto, trainable_initializers=trainable, training_mode=training_mode, name=name)
