"""Which graphs may be batched: a static proof that every output row depends on its own input row only.

Dynamic batching concatenates the requests of several clients along axis 0 and runs them once. That is
only correct when row ``i`` of every output is a function of row ``i`` of the inputs alone: a graph that
normalizes over the batch, takes a mean of all rows, reshapes the batch into another axis or reads the
batch size as a number gives each client an answer that depends on the other clients' data.

:func:`analyze` walks the graph once, tracking for each value one of:

* ``CONST``: the same whatever the batch (initializers, constants, shapes of non-batch axes);
* ``Rows(axis)``: carries the batch on ``axis``, row ``i`` depending only on input row ``i``;
* ``Shape(elems)``: a small integer vector (a shape or shape fragment) whose entries are known ints,
  ``"B"`` (the batch size itself) or ``"D"`` (a size that is the same for every row);
* tainted: anything else. A tainted value reaching an output makes the graph not batchable.

Each op has a rule; an op without one taints its outputs, so the answer is conservative: ``True`` is a
proof (for the ops covered), ``False`` may be overcautious. Covered: elementwise ops with broadcasting,
MatMul / Gemm (batch not contracted), Conv / pooling / normalizations not over the batch axis, Softmax,
reductions, ArgMax, TopK, Transpose, Reshape / Flatten / Squeeze / Unsqueeze keeping the batch axis,
Concat / Split / Slice / Gather / Pad / Tile / Expand off the batch axis, Shape arithmetic feeding them,
ConstantOfShape, Dropout and BatchNormalization in inference mode, fused LSTM / GRU / RNN, and Scan
bodies (analyzed recursively: what onnxforge exports for masked recurrent layers).

Example:
    >>> import numpy as np
    >>> from onnx import helper, numpy_helper, TensorProto as T
    >>> x = helper.make_tensor_value_info("x", T.FLOAT, ["N", 3])
    >>> y = helper.make_tensor_value_info("y", T.FLOAT, ["N", 3])
    >>> axes = numpy_helper.from_array(np.array([0], np.int64), "axes")
    >>> g = helper.make_graph([helper.make_node("ReduceMean", ["x", "axes"], ["m"]),
    ...                        helper.make_node("Sub", ["x", "m"], ["y"])], "g", [x], [y], [axes])
    >>> analyze(helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)]))
    (False, "node 'ReduceMean' (ReduceMean) reduces over the batch axis 0")

The per-op rules are in ``row_rules``, the tracked values and shared tables in ``row_values``.
"""
from __future__ import annotations

__all__ = ["analyze", "analyze_values", "CONST", "Rows", "Shape"]

from collections.abc import Sequence
from typing import Any

import onnx

from . import protos
from .row_rules import _RULES, _SHAPE_AWARE, _batch_first, _broadcast, _reduce, _unary
from .row_values import (CONST, Rows, Shape, _BATCH_FIRST, _BROADCAST, _REDUCE, _Taint, _UNARY, _const_state,
                         _is_const, _label)


class _Analyzer:
    def __init__(self, opset: int, ranks: dict[str, int], dims: dict[str, tuple],
                 parent: _Analyzer | None = None) -> None:
        self.opset, self.ranks, self.dims, self.parent = opset, ranks, dims, parent
        self.state: dict[str, Any] = {}
        self.noise: dict[str, str] = {}

    # ------------------------------------------------------------ lookups
    def get(self, name: str) -> Any:
        if not name:
            return None
        if name in self.state:
            return self.state[name]
        if self.parent is not None:
            return self.parent.get(name)
        raise _Taint(f"value '{name}' is not defined before use")

    def rank(self, name: str) -> int:
        s = self.get(name)
        if isinstance(s, Shape):
            return 0 if s.scalar else 1
        r = self.ranks.get(name)
        if r is None:
            raise _Taint(f"the rank of '{name}' is unknown")
        return r

    def ints(self, name: str) -> list[int] | None:
        """The known integer values of a constant input (axes, pads, shapes), else None."""
        s = self.get(name) if name else None
        if isinstance(s, Shape) and all(isinstance(e, int) for e in s.elems):
            return list(s.elems)
        return None

    def fail(self, node: onnx.NodeProto, why: str) -> None:
        raise _Taint(f"{_label(node)} {why}")

    # ------------------------------------------------------------ driver
    def run(self, graph: onnx.GraphProto) -> None:
        for t in graph.initializer:
            self.state[t.name] = _const_state(t)
        for node in graph.node:
            try:
                outs = self.visit(node)
            except _Taint as e:   # kept per value: only a taint that reaches an output matters
                outs = [e] * len(node.output)
            for name, s in zip(node.output, outs):
                if name:
                    self.state[name] = s
                if name in self.noise:   # counter-based noise: shaped like its template, blind to row data
                    try:
                        self.state[name] = self.get(self.noise[name])
                    except _Taint as e:
                        self.state[name] = e

    def visit(self, node: onnx.NodeProto) -> list[Any]:
        ins = [self.get(i) for i in node.input]
        for s in ins:
            if isinstance(s, _Taint):
                raise s
        op = node.op_type
        if node.domain not in ("", "ai.onnx"):
            self.fail(node, f"is in domain {node.domain!r}, which this analysis does not know")
        if all(s is None or _is_const(s) for s in ins) and not (
                op in ("Shape", "Size") or (op in _SHAPE_AWARE and isinstance(ins[0], Shape))):
            return [CONST] * len(node.output)   # nothing here depends on the batch
        rule = _RULES.get(op)
        if rule is None:
            if op in _UNARY:
                rule = _unary
            elif op in _BROADCAST:
                rule = _broadcast
            elif op in _BATCH_FIRST:
                rule = _batch_first
            elif op in _REDUCE:
                rule = _reduce
            else:
                self.fail(node, "is not known to keep rows independent")
        return rule(self, node, ins)


def _collect(graph: onnx.GraphProto, ranks: dict[str, int], dims: dict[str, tuple]) -> None:
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        t = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
        if t is None or not t.HasField("shape"):
            continue
        ranks[vi.name] = len(t.shape.dim)
        dims[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim)
    for t in graph.initializer:
        ranks[t.name] = len(t.dims)
        dims[t.name] = tuple(t.dims)
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].HasField("t"):
            t = node.attribute[0].t
            ranks[node.output[0]] = len(t.dims)
            dims[node.output[0]] = tuple(t.dims)
        for a in node.attribute:
            for g in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                _collect(g, ranks, dims)


def analyze(model: onnx.ModelProto, batch_inputs: Sequence[str] | None = None) -> tuple[bool, str]:
    """Whether every output row of ``model`` provably depends only on the same row of its inputs.

    Args:
        model: the graph (external data need not be loaded: only dims and small constants are read).
        batch_inputs: the inputs whose axis 0 is the batch (default: every graph input that is not an
            initializer). Any other input is fed once for the whole batch, so it is the same for every row.

    Returns:
        ``(True, "")`` or ``(False, reason)``, the reason naming the first node that mixes rows (or the
        output that does not carry the batch on axis 0).
    """
    return analyze_values(model, [o.name for o in model.graph.output], (), batch_inputs)


def analyze_values(model: onnx.ModelProto, rows: Sequence[str], const: Sequence[str] = (),
                   batch_inputs: Sequence[str] | None = None, noise: dict[str, str] | None = None
                   ) -> tuple[bool, str]:
    """Like :func:`analyze` for chosen values of the graph instead of its outputs: each of ``rows`` must
    carry the batch on axis 0, row by row, and each of ``const`` must not depend on the batch at all.

    ``noise`` maps a value to the value it was drawn "like" (``uniform(like)`` of a counter-based random
    stream): such noise depends on the positions and the random state, never on another row's data, so it
    takes the state of its template. This is what lets a training step with Dropout be cut into shards.

    Example:
        >>> from onnx import helper, TensorProto as T
        >>> x = helper.make_tensor_value_info("x", T.FLOAT, ["N", 3])
        >>> w = helper.make_tensor_value_info("w", T.FLOAT, [3, 3])
        >>> g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"]),
        ...                        helper.make_node("ReduceSumSquare", ["w"], ["r"], keepdims=0)], "g", [x, w],
        ...                       [helper.make_tensor_value_info("y", T.FLOAT, ["N", 3])])
        >>> analyze_values(helper.make_model(g), rows=["y"], const=["r"], batch_inputs=["x"])
        (True, '')
    """
    an = _walk(model, batch_inputs, dict(noise or {}))
    for name in [*rows, *const]:
        s = an.state.get(name)
        if isinstance(s, _Taint):
            return False, str(s)
        if name in rows and s != Rows(0):
            return False, f"output '{name}' does not carry the batch on axis 0"
        if name not in rows and not _is_const(s):
            return False, f"value '{name}' depends on the batch"
    return True, ""


def _walk(model: onnx.ModelProto, batch_inputs: Sequence[str] | None, noise: dict[str, str]) -> _Analyzer:
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 21)
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:  # noqa: BLE001 - without inferred shapes the rules that need ranks say "unknown"
        inferred = model
    ranks: dict[str, int] = {}
    dims: dict[str, tuple] = {}
    _collect(inferred.graph, ranks, dims)
    an = _Analyzer(opset, ranks, dims)
    an.noise = noise
    inits = {t.name for t in model.graph.initializer}
    names = list(batch_inputs) if batch_inputs is not None else [i.name for i in model.graph.input
                                                                  if i.name not in inits]
    for name in names:
        an.state[name] = Rows(0)
    for i in model.graph.input:  # fed once for the whole batch: the same for every row
        if i.name not in inits and i.name not in an.state:
            an.state[i.name] = CONST
    graph = onnx.GraphProto()
    graph.CopyFrom(inferred.graph) if inferred is not model else graph.CopyFrom(model.graph)
    # Constant nodes become initializer-like states (their small integer values are known).
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute:
            a = node.attribute[0]
            if a.HasField("t"):
                an.state[node.output[0]] = _const_state(a.t)
            elif a.name in ("value_int", "value_ints"):
                v = protos.attribute_value(a)
                an.state[node.output[0]] = Shape(tuple(v) if isinstance(v, list) else (v,),
                                                 scalar=not isinstance(v, list))
            else:
                an.state[node.output[0]] = CONST
    kept = [n for n in graph.node if n.op_type != "Constant"]
    del graph.node[:]
    graph.node.extend(kept)
    an.run(graph)
    return an
