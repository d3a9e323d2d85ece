"""Re-emitting an ONNX graph's nodes into the program being traced (``OnnxModel.call``): names mapped to the
trace's values, control-flow bodies copied with their outer names resolved, and ``BatchNormalization`` /
``Dropout`` rewritten for training programs when ``training_mode=True``.
"""
from __future__ import annotations

__all__: list[str] = []

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from ..graph import emit as _ops
from ..graph import protos
from ..graph.shape_inference import fill_shapes
from ..tracing import TraceContext

if TYPE_CHECKING:
    from .onnx_model import OnnxModel


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


