"""The graph builder: the one place that makes ONNX protos (nodes, initializers, value infos, models)."""
from __future__ import annotations

__all__ = ["GraphBuilder", "ValueLike", "NO_FLOAT64_KERNEL", "NO_FLOAT16_REDUCING_SCATTER", "SEQUENCE_OPS",
           "unique_name"]

import itertools
from collections.abc import Iterable, Sequence
from typing import Any, Union

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .._version import __version__
from . import protos, size_limits
from .scope import check_in_scope
from .opset import DEFAULT_OPSET, ir_version_for, opset_imports
from .shape_inference import fill_output_types, run_shape_inference, type_of
from .value import Shape, Value, np_dtype, onnx_dtype

#: What ``op`` accepts as an input: a value, a value's name, a Python/numpy constant, or ``None`` for an
#: omitted optional input.
ValueLike = Union[Value, str, float, int, np.ndarray, None]

#: Ops onnxruntime's CPU provider cannot compute in float64: no kernel (the session refuses the graph) or a
#: kernel that fails when run (LSTM, GRU). ``tests/graph/test_float64_fallback.py`` checks the list against
#: the installed onnxruntime. The builder computes them in float32 between Casts, so float64 models run
#: everywhere (when built with ``float32_fallback=True``); ``float32_fallbacks`` records each use (layers
#: warn, naming themselves).
NO_FLOAT64_KERNEL = frozenset({
    "Conv", "ConvTranspose", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LpPool", "LRN",
    "InstanceNormalization", "RNN", "LSTM", "GRU", "MaxUnpool", "OneHot", "Resize", "Hardmax", "Erf", "NonZero",
    "Mean", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh",
    "Elu", "Selu", "Celu", "LeakyRelu", "PRelu", "ThresholdedRelu", "HardSigmoid", "HardSwish", "Softplus",
    "Softsign", "Mish",
})
#: float16 ops whose CPU kernel refuses float16 at run time: scatters with a reduction (gradients of
#: Gather). onnxruntime runs other float16 nodes in float32 itself (its InsertCastTransformer).
NO_FLOAT16_REDUCING_SCATTER = frozenset({"ScatterND", "ScatterElements"})


def _float32_fallback(op_type: str, inputs: Sequence[Any], attrs: dict) -> int | None:
    """The element type ``op_type`` cannot run in on these inputs (computed in float32 instead), or None."""
    dtypes = {i.dtype for i in inputs if isinstance(i, Value)}
    if op_type in NO_FLOAT64_KERNEL and TensorProto.DOUBLE in dtypes:
        return TensorProto.DOUBLE
    if op_type in NO_FLOAT16_REDUCING_SCATTER and TensorProto.FLOAT16 in dtypes \
            and attrs.get("reduction", "none") not in ("none", b"none"):
        return TensorProto.FLOAT16
    return None


# Ops whose first output's element type is not their first input's.
_OUTPUT_DTYPE = {
    **{op: TensorProto.INT64 for op in ("Shape", "Size", "ArgMax", "ArgMin", "NonZero")},
    **{op: TensorProto.BOOL for op in ("Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "Not",
                                          "And", "Or", "Xor", "IsNaN", "IsInf")},
}


#: Ops whose first output is a sequence of tensors (``Value.is_sequence``), not a tensor.
SEQUENCE_OPS = frozenset({"SequenceConstruct", "SequenceEmpty", "SequenceInsert", "SequenceErase",
                          "SplitToSequence", "SequenceMap"})


#: Ops whose output element type is that of input k rather than of their first value input.
_DTYPE_SOURCE = {"Where": 1, "CastLike": 1, "OneHot": 2}


class GraphBuilder:
    """Records nodes, initializers, inputs and outputs, and turns them into an ``onnx.ModelProto``.

    Names are unique within a builder. Constants are deduplicated and stored as initializers.

    Example:
        >>> import onnx
        >>> b = GraphBuilder()
        >>> x = b.input("x", onnx.TensorProto.FLOAT, ("batch", 4))
        >>> b.output(b.op("Relu", [x]), "y")
        >>> model = b.to_model()
        >>> onnx.checker.check_model(model, full_check=True)
    """

    def __init__(self, opset: int = DEFAULT_OPSET, prefix: str = "", float32_fallback: bool = False):
        self.opset = opset
        self.prefix = prefix
        #: Compute ops onnxruntime's CPU provider cannot run in float64 (or float16 reducing scatters) in
        #: float32 between Casts. On for programs onnxforge runs; off for graphs made for other runtimes
        #: and for float64 gradient checks, which must stay exact.
        self.float32_fallback = float32_fallback
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: dict[str, TensorProto] = {}
        self.inputs: list[Value] = []
        self.outputs: list[Value] = []
        self.values: dict[str, Value] = {}
        self._taken: set[str] = set()
        self._counter = itertools.count()
        self._consts: dict[tuple, Value] = {}
        self._const_bytes = 0   # bounded by size_limits while a loaded file's model is built
        #: ``(op type, element type)`` of ops emitted in float32 between Casts (``NO_FLOAT64_KERNEL``).
        self.float32_fallbacks: list[tuple[str, int]] = []
        # Constant nodes by output name: rules ask constant_value per node, and a scan made autodiff quadratic.
        self._constant_nodes: dict[str, onnx.NodeProto] = {}
        #: Boundary output name -> custom-gradient region (``autodiff/custom.py``), read by the autodiff engine.
        self.custom_gradients: dict[str, Any] = {}

    # ----------------------------------------------------------------- naming
    def fresh(self, hint: str = "v") -> str:
        """A name not used yet in this builder, derived from ``hint``."""
        name = base = f"{self.prefix}{hint}"
        while name in self._taken:
            name = f"{base}_{next(self._counter)}"
        self._taken.add(name)
        return name

    def reserve(self, name: str) -> str:
        """Claim an exact name (a graph input, an initializer, a node output read from a model)."""
        if name in self._taken:
            raise ValueError(f"Name {name!r} is already used in this graph.")
        self._taken.add(name)
        return name

    def value(self, name: str) -> Value:
        """The value called ``name`` (metadata may be partial for values read from a model)."""
        try:
            return self.values[name]
        except KeyError:
            raise KeyError(f"No value named {name!r} in this graph.") from None

    def is_fixed(self, name: str) -> bool:
        """Whether ``name`` is a constant no run can change: an initializer that is not also a graph input
        (an input's initializer is only its default), or a ``Constant`` node's output."""
        if name in self.initializers:
            return all(v.name != name for v in self.inputs)
        return name in self._constant_nodes

    def constant_value(self, name: str) -> np.ndarray | None:
        """The value of ``name`` if it is an initializer or a ``Constant`` node's output, else ``None``."""
        if name in self.initializers:
            return numpy_helper.to_array(self.initializers[name])
        node = self._constant_nodes.get(name)
        if node is None or not node.attribute:
            return None
        attr = node.attribute[0]
        if attr.name == "value":
            return numpy_helper.to_array(attr.t)
        if attr.name == "sparse_value":
            return None
        return np.asarray(helper.get_attribute_value(attr))

    def _record(self, name: str, dtype: int | None, shape: Shape, sequence: bool = False) -> Value:
        size_limits.check_value(shape, dtype, name)     # a no-op unless a loaded file's model is built
        value = Value(name, dtype, shape, self, sequence=sequence)
        self.values[name] = value
        return value

    def _index(self, node: onnx.NodeProto) -> None:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and node.output:
            self._constant_nodes[node.output[0]] = node

    # --------------------------------------------------------- graph interface
    def input(self, name: str, dtype: int, shape: Shape) -> Value:
        """Declare a graph input."""
        value = self._record(self.reserve(name), dtype, shape)
        self.inputs.append(value)
        return value

    def body_builder(self) -> GraphBuilder:
        """A builder for a subgraph of this graph (a ``Loop`` / ``Scan`` / ``If`` body): same opset, and one name
        registry shared with this builder (not a copy), so names stay unique across both scopes; the body's
        nodes may read this graph's values by name."""
        sb = GraphBuilder(opset=self.opset, float32_fallback=self.float32_fallback)
        sb._taken, sb._counter = self._taken, self._counter
        return sb

    def body_input(self, hint: str, dtype: int | None, shape: Shape) -> Value:
        """A graph input named after ``hint`` (a fresh name): a body's iteration number, condition or state."""
        name = self.fresh(hint)
        self._taken.discard(name)  # fresh() claimed it; input() claims it again
        return self.input(name, dtype, shape)

    def output(self, value: Value, name: str | None = None) -> None:
        """Declare ``value`` a graph output, under ``name`` (through an Identity) if given."""
        if name is not None and name != value.name:
            # The Identity carries the value's known type, so an output stays typed where ONNX shape
            # inference cannot follow (e.g. a rank decided by a run-time axes input).
            value = self.op("Identity", [value], name=name, dtype=value.dtype, shape=value.shape)
        self.outputs.append(value)

    def initializer(self, name: str, array: np.ndarray) -> Value:
        """Add a named initializer holding ``array``."""
        return self._store(self.reserve(name), np.asarray(array))

    def _store(self, name: str, array: np.ndarray) -> Value:
        self.initializers[name] = numpy_helper.from_array(array, name)
        return self._record(name, onnx_dtype(array.dtype), array.shape)

    def const(self, value: Any, dtype: int | np.dtype | type | None = None) -> Value:
        """A constant tensor, stored once per (dtype, shape, bytes) as an initializer."""
        if dtype is not None and not isinstance(dtype, (np.dtype, type)):
            dtype = np_dtype(dtype)
        array = np.asarray(value, dtype=dtype)
        if array.dtype == np.float64 and dtype is None and not isinstance(value, np.ndarray):
            array = array.astype(np.float32)  # Python floats default to float32, like Keras
        size_limits.check_constant(array.shape, array.itemsize, f"a graph constant of {array.dtype}")  # pre-copy
        key = (array.dtype.str, array.shape, array.tobytes())
        cached = self._consts.get(key)
        if cached is None:
            self._const_bytes = size_limits.charge_graph(self._const_bytes + array.nbytes, len(self.nodes),
                                                         "a constant")
            cached = self._store(self.fresh("const"), array)
            self._consts[key] = cached
        return cached

    def _as_input(self, item: ValueLike, like: Value | None) -> str:
        if item is None:
            return ""
        if isinstance(item, Value):
            check_in_scope(self, item)   # a tensor leaked from a finished tf.function
            return item.name
        if isinstance(item, str):
            return item
        if hasattr(item, "__onnx_value__"):  # a Variable read inside a trace
            return item.__onnx_value__().name
        dtype = like.dtype if like is not None and like.dtype is not None else None
        return self.const(item, dtype).name

    def op(
        self,
        op_type: str,
        inputs: Sequence[ValueLike],
        *,
        outputs: int | Sequence[str] = 1,
        name: str | None = None,
        dtype: int | None = None,
        shape: Shape = None,
        **attrs: Any,
    ) -> Any:
        """Emit one node; return its output value, or a list of them when ``outputs`` is not 1.

        Constants among ``inputs`` take the element type of the first ``Value`` input. ``outputs`` is a
        count or explicit names; ``name`` names the (single) output.
        """
        inputs = [i.__onnx_value__() if hasattr(i, "__onnx_value__") else i for i in inputs]
        wide = _float32_fallback(op_type, inputs, attrs) if self.float32_fallback else None
        if wide is not None:
            return self._op_in_float32(op_type, inputs, outputs, name, dtype, shape, attrs, wide)
        # The output (and any Python constants among the inputs) take the element type of the first input
        # that is a value -- for Where its branches', for CastLike its target's, for OneHot its values'.
        _check_one_type(op_type, inputs)
        source = _DTYPE_SOURCE.get(op_type, 0)
        ordered = inputs[source:] + inputs[:source]
        like = next((v for v in (i if isinstance(i, Value) else self.values.get(i) if isinstance(i, str) else None
                                 for i in ordered) if v is not None), None)
        input_names = [self._as_input(i, like) for i in inputs]
        if isinstance(outputs, int):
            hint = name or op_type.lower()
            out_names = [self.reserve(name) if name and k == 0 else self.fresh(hint) for k in range(outputs)]
        else:
            out_names = [self.reserve(n) if n else "" for n in outputs]
        node = helper.make_node(op_type, input_names, out_names, name=self.fresh(f"n_{op_type}"), **attrs)
        self.nodes.append(node)
        size_limits.charge_node(node, len(self.nodes), self._const_bytes, self.values, self.constant_value)  # bounds
        self._index(node)
        out_dtype = dtype if dtype is not None else _infer_dtype(op_type, attrs, like)
        sequence = op_type in SEQUENCE_OPS or (op_type == "Identity" and like is not None and like.is_sequence)
        values = [self._record(n, out_dtype if k == 0 else None, shape if k == 0 else None,
                               sequence=sequence and k == 0)
                  for k, n in enumerate(out_names) if n]
        if isinstance(outputs, int) and outputs == 1:
            return values[0]
        return values

    def _op_in_float32(self, op_type: str, inputs: list, outputs: int | Sequence[str], name: str | None,
                       dtype: int | None, shape: Shape, attrs: dict, elem: int) -> Any:
        """``op_type`` on ``elem`` (float64 / float16) inputs, computed in float32: Cast in, the op, Cast its
        float outputs back to ``elem``."""
        self.float32_fallbacks.append((op_type, elem))
        down = [self.op("Cast", [i], to=TensorProto.FLOAT, shape=i.shape)
                if isinstance(i, Value) and i.dtype == elem else i for i in inputs]
        count = outputs if isinstance(outputs, int) else len(outputs)
        names = [None] * count if isinstance(outputs, int) else list(outputs)
        like = next(i for i in inputs if isinstance(i, Value) and i.dtype == elem)
        out_dtype = dtype if dtype is not None else _infer_dtype(op_type, attrs, like)
        inner_dtype = TensorProto.FLOAT if out_dtype == elem else out_dtype
        inner = self.op(op_type, down, outputs=count, dtype=inner_dtype, shape=shape, **attrs)
        inner = [inner] if count == 1 else inner
        results = []
        for k, v in enumerate(inner):
            target = names[k] if names[k] else (name if k == 0 else None)
            # Later outputs are untyped here; the recurrent ops' (Y_h, Y_c) are data like Y.
            data = v.dtype == TensorProto.FLOAT or (k > 0 and op_type in ("RNN", "LSTM", "GRU"))
            if data and (k > 0 or out_dtype == elem):
                v = self.op("Cast", [v], to=elem, name=target, shape=v.shape)
            elif target:
                v = self.op("Identity", [v], name=target, dtype=v.dtype, shape=v.shape)
            results.append(v)
        if isinstance(outputs, int) and outputs == 1:
            return results[0]
        return results

    def fill(self, dims: Value, like: Value, value: float) -> Value:
        """A tensor of shape ``dims`` (an int64 shape tensor) holding ``value`` in ``like``'s element type.

        A scalar constant expanded in the graph, never a stored array, so a large zero costs nothing in the
        file. Where
        ``like``'s type is not known while building, it is taken from ``like`` at run time (``CastLike``),
        never assumed to be float32.
        """
        if like.is_sequence:
            raise TypeError(f"fill() needs a tensor to take the element type from. Received: {like!r}")
        if like.dtype is not None:
            scalar = self.const(np.asarray(value, np_dtype(like.dtype)))
        else:
            scalar = self.op("CastLike", [self.const(np.array(value, np.float32)), like])
        if self.constant_value(dims.name) is not None and not np.asarray(self.constant_value(dims.name)).size:
            return scalar  # a scalar: the constant itself
        # Expand of a scalar rather than ConstantOfShape: as cheap, and onnx's version converter has no
        # ConstantOfShape adapter below opset 20 (exports at opset 18 convert down).
        out = self.op("Expand", [scalar, dims], dtype=like.dtype)
        return out

    def fill_like(self, like: Value, value: float) -> Value:
        """``value`` in ``like``'s element type and shape (see ``fill``)."""
        static = like.static_shape()
        dims = self.const(np.asarray(static, np.int64)) if static is not None else self.op("Shape", [like])
        out = self.fill(dims, like, value)
        out.shape = like.shape
        return out

    def zeros_like(self, like: Value) -> Value:
        """Zeros in ``like``'s element type and shape, never stored as an array."""
        return self.fill_like(like, 0.0)

    def ones_like(self, like: Value) -> Value:
        """Ones in ``like``'s element type and shape, never stored as an array."""
        return self.fill_like(like, 1.0)

    def add_node(self, node: onnx.NodeProto) -> onnx.NodeProto:
        """Append an existing node (copied), claiming its output names."""
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        if not copy.name:
            copy.name = self.fresh(f"n_{copy.op_type}")
        else:
            self._taken.add(copy.name)
        for out in copy.output:
            if out and out not in self.values:
                self._taken.add(out)
                self._record(out, None, None, sequence=copy.op_type in SEQUENCE_OPS)
        # What its subgraphs define stays taken too: a node added later must not redefine it (ONNX's SSA).
        self._taken.update(protos.subgraph_names(copy))
        self.nodes.append(copy)
        self._index(copy)
        return copy

    # --------------------------------------------------------------- building
    def to_graph(self, name: str = "onnxforge", prune: bool = True, doc_string: str = "") -> onnx.GraphProto:
        """The recorded graph. ``prune`` drops nodes and initializers no output depends on."""
        nodes = _live_nodes(self.nodes, [o.name for o in self.outputs]) if prune else list(self.nodes)
        used = {i for n in nodes for i in _all_inputs(n)} | {o.name for o in self.outputs} | \
            {v.name for v in self.inputs}  # an input's initializer is its default: it stays
        inits = [t for k, t in self.initializers.items() if not prune or k in used]
        return helper.make_graph(
            nodes,
            name,
            [_value_info(v) for v in self.inputs],
            [_value_info(v) for v in self.outputs],
            initializer=inits,
            doc_string=doc_string,
        )

    def to_model(self, name: str = "onnxforge", prune: bool = True, doc_string: str = "") -> onnx.ModelProto:
        """The recorded graph as a model at this builder's opset, with onnxforge as producer."""
        graph = self.to_graph(name, prune=prune, doc_string=doc_string)
        model = helper.make_model(graph, opset_imports=opset_imports(self.opset),
                                  producer_name="onnxforge", producer_version=__version__)
        model.ir_version = ir_version_for(self.opset)
        if any(o.dtype is None or o.shape is None for o in self.outputs):
            fill_output_types(model)
        return model

    @classmethod
    def from_model(cls, model: onnx.ModelProto, infer_shapes: bool = True) -> GraphBuilder:
        """A builder holding ``model``'s main graph, with dtypes and shapes from ONNX shape inference."""
        opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), DEFAULT_OPSET)
        if infer_shapes:
            model = run_shape_inference(model, "reading the model")
        b = cls(opset=opset)
        graph = model.graph
        init_names = {t.name for t in graph.initializer}
        for vi in graph.input:
            if vi.name not in init_names:
                b.input(vi.name, *type_of(vi)).is_sequence = vi.type.HasField("sequence_type")
        for t in graph.initializer:
            b.reserve(t.name)
            b.initializers[t.name] = t
            b._record(t.name, t.data_type, tuple(t.dims))
        # An input with an initializer is a default a caller may override (state, as a training-mode
        # BatchNorm's statistics): it stays an input, so the model keeps its interface and onnxruntime
        # never folds it as a constant.
        overridable = [vi.name for vi in graph.input if vi.name in init_names]
        b.inputs.extend(b.values[n] for n in overridable)
        for node in graph.node:
            b.add_node(node)
        for vi in list(graph.value_info) + list(graph.output):
            if vi.name in b.values:
                dtype, shape = type_of(vi)
                v = b.values[vi.name]
                v.dtype = v.dtype or dtype
                v.shape = v.shape if v.shape is not None else shape
                v.is_sequence = v.is_sequence or vi.type.HasField("sequence_type")
        b.outputs = [b.values[o.name] if o.name in b.values else b._record(o.name, *type_of(o))
                     for o in graph.output]
        return b


# --------------------------------------------------------------------- helpers
#: Ops whose tensor inputs (from the k-th on) share one type parameter T: an operand of another type makes a
#: graph onnxruntime refuses only at load time, far from the op that built it, so it is an error here.
_ONE_TYPE = {**{op: 0 for op in ("Add", "Sub", "Mul", "Div", "Mod", "Max", "Min", "Sum", "Mean", "MatMul", "Concat",
                                 "Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "And", "Or", "Xor")},
             "Where": 1}


def _check_one_type(op_type: str, inputs: list) -> None:
    first = _ONE_TYPE.get(op_type)
    if first is None:
        return
    dtypes = {i.dtype for i in inputs[first:] if isinstance(i, Value) and i.dtype is not None}
    if len(dtypes) > 1:
        names = sorted(helper.tensor_dtype_to_np_dtype(d).name if d != TensorProto.BFLOAT16 else "bfloat16"
                       for d in dtypes)
        raise TypeError(f"{op_type} needs operands of one dtype; cast them to a common dtype first (onnxforge.ops "
                        f"promote as Keras does). Received: dtypes={names}")


def _infer_dtype(op_type: str, attrs: dict, like: Value | None) -> int | None:
    if op_type == "Cast":
        return attrs["to"]
    if op_type == "ConstantOfShape":
        value = attrs.get("value")
        return value.data_type if value is not None else TensorProto.FLOAT
    if op_type in _OUTPUT_DTYPE:
        return _OUTPUT_DTYPE[op_type]
    return like.dtype if like is not None else None


def _value_info(v: Value) -> onnx.ValueInfoProto:
    if v.is_sequence:
        return helper.make_tensor_sequence_value_info(v.name, v.dtype or TensorProto.UNDEFINED, None)
    return helper.make_tensor_value_info(v.name, v.dtype or TensorProto.UNDEFINED, v.shape)


def _all_inputs(node: onnx.NodeProto) -> Iterable[str]:
    """A node's inputs including names its subgraphs capture from the enclosing scope."""
    yield from (i for i in node.input if i)
    for attr in node.attribute:
        for g in ([attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)):
            yield from subgraph_captures(g)


def unique_name(base: str, taken: set[str]) -> str:
    """``base``, or ``base_1``, ``base_2``, ...: the first not in ``taken``, which now holds it (weight,
    initializer and output names).

    Example:
        >>> taken = {"kernel"}
        >>> unique_name("kernel", taken), unique_name("kernel", taken), sorted(taken)
        ('kernel_1', 'kernel_2', ['kernel', 'kernel_1', 'kernel_2'])
    """
    name, k = base, 0
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    taken.add(name)
    return name


def subgraph_captures(graph: onnx.GraphProto) -> set[str]:
    """Names a subgraph reads from enclosing scopes (not defined inside it)."""
    defined = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    for n in graph.node:
        defined.update(o for o in n.output if o)
    used: set[str] = {o.name for o in graph.output}
    for n in graph.node:
        used.update(_all_inputs(n))
    return {u for u in used if u and u not in defined}


def _live_nodes(nodes: list[onnx.NodeProto], outputs: list[str]) -> list[onnx.NodeProto]:
    needed = set(outputs)
    keep = []
    for node in reversed(nodes):
        if any(o in needed for o in node.output if o):
            keep.append(node)
            needed.update(_all_inputs(node))
    keep.reverse()
    return keep
