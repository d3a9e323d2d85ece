"""``custom_gradient`` functions called on arrays while an eager ``GradientTape`` records.

``f`` runs eagerly, as any code does, with the open tapes paused (its inner runs are not what the tapes
differentiate) and a private recording that notes the trainable Variables it reads (TensorFlow's
``VariableWatcher``). When an open tape follows an argument or one of those Variables, the call is recorded as
one run: a program whose outputs are ``f``'s results, fed as fixed values (the forward pass is not computed
again), and whose ``custom_gradient_regions`` hook, called by ``tape._compile`` on the joined graph, registers
the region with ``onnxforge.autodiff.custom``: its gradients are ``grad`` traced on the joined graph's values
(arrays ``grad`` captured from ``f`` become constants). Each call is its own program, so a gradient through it
is compiled for that call.

Example:
    >>> import numpy as np
    >>> import onnxforge as tf
    >>> @tf.custom_gradient
    ... def clip_grad(x):
    ...     return x * 1.0, lambda dy: tf.clip_by_value(dy, -0.5, 0.5)
    >>> x = tf.Variable([1.0, 2.0])
    >>> with tf.GradientTape() as tape:
    ...     loss = tf.reduce_sum(clip_grad(x) * np.array([3.0, -0.25], np.float32))
    >>> np.round(tape.gradient(loss, x), 4).tolist()
    [0.5, -0.25]
"""
from __future__ import annotations

__all__ = ["run_custom_gradient", "StoredRegion", "store_regions", "register_stored"]

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import compose

from ..autodiff.custom import CustomGradient, register
from ..eager_tensor import as_eager
from ..graph import GraphBuilder, Value, onnx_dtype, protos
from ..graph.opset import DEFAULT_OPSET, ir_version_for
from ..graph.shape_inference import fill_shapes
from ..ops.custom_gradients import call_grad, check_variables, flatten, pack, split_result
from ..ops._util import as_value, cast_value
from ..graph import FLOAT_TYPES
from ..tracing import TraceContext
from ..variables import Variable
from . import tape


class _CustomRun:
    """The recorded program of one call: what the joined gradient graph needs to trace ``grad``."""

    def __init__(self, f: Any, grad: Callable[..., Any], args: list[Any], variables: list[Variable],
                 n_outputs: int):
        self.f, self.grad, self.args, self.variables, self.n_outputs = f, grad, args, variables, n_outputs

    def custom_gradient_regions(self, b: GraphBuilder, prefix: str) -> None:
        inputs = [f"{prefix}x{i}" for i in range(len(self.args))] + \
                 [f"{prefix}v{k}" for k in range(len(self.variables))]
        outputs = [f"{prefix}out{j}" for j in range(self.n_outputs)]

        known = {var.uid: b.values[f"{prefix}v{k}"] for k, var in enumerate(self.variables)}

        def backward(upstream: list[Value]) -> list[Value | None]:
            with _GradTrace(b, known).active():   # Variables ``grad`` reads: the run's, else their values now
                input_grads, variable_grads = call_grad(self.f, self.grad, upstream, self.args, self.variables)
            return [_as_grad(b, g, b.values[name]) for g, name in zip([*input_grads, *variable_grads], inputs)]

        register(b, CustomGradient(inputs, outputs, backward))


class _GradTrace(TraceContext):
    """The trace ``grad`` runs in on the joined graph: a Variable is the run's input for it when the call read
    it, else a constant of its current value (the program is compiled for this call only)."""

    def __init__(self, b: GraphBuilder, known: dict[int, Value]):
        super().__init__(b, training=True, weights="initializers")
        self.known = known

    def _declare(self, var: Variable) -> Value:
        hit = self.known.get(var.uid)
        return hit if hit is not None else self.b.const(np.asarray(var.numpy()))


def _as_grad(b: GraphBuilder, g: Any, like: Value) -> Value | None:
    if g is None:
        return None
    v = as_value(g.numpy() if isinstance(g, Variable) else g, b, like=like)
    if like.dtype in FLOAT_TYPES and v.dtype in FLOAT_TYPES and v.dtype != like.dtype:
        v = cast_value(v, like.dtype)
    return v


def run_custom_gradient(f: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    """Call ``f`` on arrays; while a tape records, write the call down with ``grad`` as its gradient."""
    outer = [rec for rec in tape.active_recordings() if not rec.paused]
    if not outer:
        return split_result(f, f(*args, **kwargs))[0]
    watcher = tape.Recording(watch_accessed_variables=True)
    for rec in outer:
        rec.paused += 1
    tape.push(watcher)
    try:
        outputs, grad = split_result(f, f(*args, **kwargs))
    finally:
        tape.pop(watcher)
        for rec in outer:
            rec.paused -= 1
    leaves = flatten(args)
    given = {id(leaf) for leaf in leaves if isinstance(leaf, Variable)}
    variables: dict[int, Variable] = {}
    for run in watcher.runs:
        for var in run.params.values():
            if var.trainable and id(var) not in given:
                variables.setdefault(var.uid, var)
    var_list = sorted(variables.values(), key=lambda v: getattr(v, "path", v.name))
    check_variables(f, grad, var_list)
    recordings = tape.wants_record([leaf for leaf in leaves if not isinstance(leaf, Variable)],
                                   [leaf for leaf in leaves if isinstance(leaf, Variable)] + var_list)
    flat_out = [np.asarray(y) for y in flatten(outputs)]
    results = [as_eager(np.array(y, copy=True)) for y in flat_out]
    if not recordings or not results:
        return pack(outputs, iter(results))

    host: dict[str, tuple[Any, np.ndarray]] = {}
    params: dict[str, Variable] = {}
    inputs = []
    for i, leaf in enumerate(leaves):
        name = f"x{i}"
        if isinstance(leaf, Variable):
            params[name] = leaf
            array = leaf.numpy()
        else:
            array = np.asarray(leaf)
            host[name] = (leaf, array)
        inputs.append(protos.value_info(name, onnx_dtype(array.dtype), array.shape))
    for k, var in enumerate(var_list):
        params[f"v{k}"] = var
        inputs.append(protos.value_info(f"v{k}", onnx_dtype(var.dtype), tuple(var.shape)))
    fixed = {f"y{j}": y for j, y in enumerate(flat_out)}
    inputs += [protos.value_info(name, onnx_dtype(y.dtype), y.shape) for name, y in fixed.items()]
    nodes = [protos.node("Identity", [f"y{j}"], [f"out{j}"]) for j in range(len(flat_out))]
    outs = [protos.value_info(f"out{j}", onnx_dtype(y.dtype), y.shape) for j, y in enumerate(flat_out)]
    model = protos.model(protos.graph(nodes, "custom_gradient", inputs, outs), DEFAULT_OPSET,
                         ir_version=ir_version_for(DEFAULT_OPSET))
    program = _CustomRun(f, grad, [as_eager(np.asarray(leaf.numpy() if isinstance(leaf, Variable) else leaf))
                                   for leaf in leaves], var_list, len(flat_out))
    tape.record_run(recordings, program, model, host, params, fixed,
                    [(obj, f"out{j}") for j, obj in enumerate(results)])
    return pack(outputs, iter(results))


# ------------------------------------------------------------------------------------------ compiled calls
@dataclass(eq=False)
class StoredRegion:
    """A custom-gradient region of a compiled eager program, its backward already traced in that program's
    graph from placeholder upstream values: the nodes and constants to add, prefixed, to a joined graph."""

    inputs: list[str]
    outputs: list[str]
    upstream: list[str]
    grads: list[str | None]
    nodes: list[onnx.NodeProto]
    initializers: list[onnx.TensorProto]


def store_regions(b: GraphBuilder, ctx: Any) -> list[StoredRegion]:
    """Trace each region's backward now (the program's trace is still open) and take its nodes out of the
    forward program: a layer with a custom gradient called eagerly under a tape gets its gradient in the
    tape's joined graph, where ``grad``'s own closure (values of this graph) cannot be traced again."""
    from ..graph.builder import _all_inputs

    stored = []
    for record in {id(r): r for r in b.custom_gradients.values()}.values():
        ups = []
        for name in record.outputs:
            out = b.value(name)
            # A placeholder no node produces: the joined graph feeds it the output's gradient.
            ups.append(b._record(b.fresh("custom_upstream"), out.dtype, out.shape))
        start = len(b.nodes)
        with ctx.active():
            grads = record.backward(ups)
        nodes = b.nodes[start:]
        del b.nodes[start:]
        read = {name for node in nodes for name in _all_inputs(node)}
        stored.append(StoredRegion(list(record.inputs), list(record.outputs), [u.name for u in ups],
                                   [None if g is None else g.name for g in grads], nodes,
                                   [t for name, t in b.initializers.items() if name in read]))
    return stored


def register_stored(b: GraphBuilder, prefix: str, regions: list[StoredRegion]) -> None:
    """Register ``regions`` (of the run under ``prefix`` in the joined graph ``b``) with the autodiff engine."""
    from ..graph.builder import _all_inputs

    for region in regions:
        def backward(upstream: list[Value], region: StoredRegion = region) -> list[Value | None]:
            # The values the nodes read from the program are declared inputs, so they get the prefix too.
            made = {o for node in region.nodes for o in node.output} | {t.name for t in region.initializers}
            outside = [protos.value_info(n, 0, None) for n in dict.fromkeys(
                i for node in region.nodes for i in _all_inputs(node)) if n not in made]
            graph = compose.add_prefix_graph(protos.graph(region.nodes, "region", outside, [],
                                                          initializer=region.initializers), prefix)
            start = len(b.nodes)
            for up, name in zip(upstream, region.upstream):
                b.add_node(protos.node("Identity", [up.name], [prefix + name]))
                b.values[prefix + name].dtype, b.values[prefix + name].shape = up.dtype, up.shape
            for t in graph.initializer:
                if t.name not in b.initializers:
                    b.initializers[t.name] = t
                    b._record(t.name, t.data_type, tuple(t.dims))
            for node in graph.node:
                b.add_node(node)
            fill_shapes(b, start)
            return [None if g is None else b.values[prefix + g] for g in region.grads]

        register(b, CustomGradient([prefix + n for n in region.inputs], [prefix + n for n in region.outputs],
                                   backward))
