"""A traced ``tf.cond`` as one ONNX ``If`` and a traced ``tf.while_loop`` as one ONNX ``Loop``.

A branch (or loop body) is a Python function on tensors. It is traced into the enclosing graph like any
code, then the nodes it emitted are cut out of that graph and become the subgraph: what they read from
outside (the function's captures: arguments, weights) stays an outer-scope name the subgraph reads, which
ONNX allows and which the ``If`` / ``Loop`` gradient rules of ``autodiff/rules/control_flow.py``
differentiate. So only the branch taken runs (a ``sqrt`` of a negative number in the other branch makes
no NaN, in the values or in the gradients), and a loop runs as many times as its condition says.

A Variable assigned in a branch becomes one more ``If`` output (the other branch passes its value on), one
assigned in a loop body one more ``Loop`` state. A region whose tracing left marks outside its nodes that a
subgraph cannot carry (a ``stop_gradient``, a ``custom_gradient`` region, a layer loss or metric) is kept
inline instead: ``tf.cond`` then computes both branches and selects (``Region.movable``), a loop refuses
with the construct named.

Example:
    >>> import numpy as np, onnxforge as tf
    >>> f = tf.function(lambda x: tf.cond(x > 0, lambda: tf.sqrt(x), lambda: -x))
    >>> float(f(np.float32(-4.0))), float(f(np.float32(9.0)))
    (4.0, 3.0)
"""
from __future__ import annotations

__all__ = ["traced_cond", "traced_while", "Region"]

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx

from ..graph import GraphBuilder, Value, protos
from ..ops._util import as_value, cast_value
from ..ops.core import stopped_outputs
from ..trace_state import active_trace
from . import nest
from .tensor_array import TensorArray

_BOOL, _INT64 = onnx.TensorProto.BOOL, onnx.TensorProto.INT64


class Region:
    """The nodes one Python function emitted into ``b``, and the trace state it changed.

    ``snapshot`` is taken before the function runs; ``close`` takes the nodes emitted since. The Variable
    updates the function recorded are taken back out of the trace (``updates``), to be re-recorded on the
    If's outputs: inside a branch they are the branch's values, which the enclosing graph cannot read.
    """

    def __init__(self, b: GraphBuilder):
        self.b, self.ctx = b, active_trace()
        self.start = len(b.nodes)
        ctx = self.ctx
        self._assigned = dict(_assignments(ctx)) if ctx is not None else {}
        self._versions = {k: list(v) for k, v in ctx.versions.items()} if ctx is not None else {}
        self._marks = self._side_marks()
        self.nodes: list[onnx.NodeProto] = []
        self.updates: dict[int, tuple[Any, Value]] = {}
        self.movable = True

    def _side_marks(self) -> tuple:
        ctx, b = self.ctx, self.b
        counts = (len(ctx.losses), len(ctx.layer_metrics), len(ctx.replica_sums),
                  len(getattr(ctx, "trackers", ()))) if ctx is not None else ()
        return counts + (len(b.custom_gradients), len(stopped_outputs(b)))

    def close(self) -> Region:
        """Take the nodes emitted since the snapshot and the Variable updates recorded meanwhile."""
        self.nodes = list(self.b.nodes[self.start:])
        self.movable = self._side_marks() == self._marks
        ctx = self.ctx
        if ctx is not None:
            table = _assignments(ctx)
            self.updates = {uid: (_variable(ctx, uid), table[uid]) for uid in table
                            if self._assigned.get(uid) is not table[uid]}
            table.clear()
            table.update(self._assigned)
            ctx.versions.clear()
            ctx.versions.update({k: list(v) for k, v in self._versions.items()})
        self.start = len(self.b.nodes)   # the next region starts here
        return self

    def graph(self, name: str, inputs: Sequence[Value], outputs: Sequence[Value]) -> onnx.GraphProto:
        """The region's nodes as a subgraph computing ``outputs`` from ``inputs`` (and outer names)."""
        b = self.b
        produced = {o for n in self.nodes for o in n.output if o}
        nodes, outs, seen = list(self.nodes), [], set()
        for v in outputs:
            name_out = v.name
            if name_out not in produced or name_out in seen:
                # A subgraph output is computed in the subgraph, once: inputs, outer values and repeats pass
                # through an Identity.
                name_out = b.fresh(f"{v.name}_out")
                nodes.append(protos.node("Identity", [v.name], [name_out], name=b.fresh("n_Identity")))
            seen.add(name_out)
            outs.append(_info(name_out, v))
        return protos.graph(nodes, name, [_info(v.name, v) for v in inputs], outs)


def _assignments(ctx: Any) -> dict[int, Any]:
    """The trace's table of Variables assigned so far: a custom step's (``tf.function``) maps each uid to the
    value, a model trace's to ``(variable, value)``."""
    return ctx.current if hasattr(ctx, "current") else ctx.updates


def _variable(ctx: Any, uid: int) -> Any:
    return ctx.reads[uid][0] if hasattr(ctx, "current") else ctx.updates[uid][0]


def _assigned_value(entry: Any) -> Value:
    return entry[1] if isinstance(entry, tuple) else entry


def _info(name: str, v: Value) -> onnx.ValueInfoProto:
    return protos.value_info(name, v.dtype if v.dtype is not None else onnx.TensorProto.UNDEFINED, v.shape)


def _leaf_value(x: Any, b: GraphBuilder, like: Value | None) -> Value:
    """A branch or loop result as a graph value: Python ints are int32 and floats float32 (TensorFlow's
    conversions) unless the other side gives a type."""
    if isinstance(x, Value) or hasattr(x, "__onnx_value__"):
        return as_value(x, b)
    if like is not None:
        return as_value(x, b, like=like)
    if isinstance(x, bool) or (isinstance(x, np.ndarray) and x.dtype == np.bool_):
        return as_value(np.asarray(x), b)
    if isinstance(x, int):
        return as_value(x, b, dtype="int32")
    return as_value(x, b)


def _merged_shape(a: Any, c: Any) -> Any:
    if a is None or c is None or len(a) != len(c):
        return None
    return tuple(x if x == y else None for x, y in zip(a, c))


def _scalar_pred(pred: Value, op: str) -> Value:
    if pred.shape is not None and all(isinstance(d, int) for d in pred.shape) and int(np.prod(pred.shape)) != 1:
        raise ValueError(f"{op}: the condition must be a scalar boolean tensor. Received a condition of shape "
                         f"{tuple(pred.shape)}; use tf.where(cond, x, y) to select elementwise.")
    return cast_value(pred, _BOOL)


def traced_cond(pred: Value, true_fn: Callable[[], Any], false_fn: Callable[[], Any]) -> Any:
    """``tf.cond`` on a traced condition: one ``If`` node running only the branch taken (see module doc)."""
    b = pred.builder
    cond = _scalar_pred(pred, "tf.cond")
    regions, results = [], []
    for fn in (true_fn, false_fn):
        region = Region(b)
        results.append(fn())
        regions.append(region.close())
    flat = [nest.flatten(r) for r in results]
    if len(flat[0]) != len(flat[1]):
        raise ValueError(f"tf.cond: true_fn and false_fn must return the same structure. Received: "
                         f"{results[0]!r} and {results[1]!r}")
    if not all(r.movable for r in regions):
        return _selected(cond, results, flat, regions)
    pairs = []
    kept = [not (t is None and f is None) for t, f in zip(*flat)]   # None in both branches stays None
    for t, f in (p for p, k in zip(zip(*flat), kept) if k):
        tv = _leaf_value(t, b, f if isinstance(f, Value) else None)
        fv = _leaf_value(f, b, tv)
        if tv.dtype != fv.dtype:
            raise TypeError(f"tf.cond: true_fn and false_fn must return tensors of the same dtype. Received "
                            f"{_dtype_name(tv)} and {_dtype_name(fv)}")
        pairs.append((tv, fv))
    ctx = regions[0].ctx
    changed = {**regions[0].updates, **regions[1].updates}
    for uid, (var, _) in changed.items():
        # A Variable assigned in one branch keeps its value in the other: both become If outputs.
        pairs.append(tuple(_assigned_value(r.updates[uid][1]) if uid in r.updates else ctx.read(var)
                           for r in regions))
    del b.nodes[len(b.nodes) - len(regions[0].nodes) - len(regions[1].nodes):]
    if not pairs:   # branches without results or assignments (only Python side effects)
        return results[0]
    graphs = {key: r.graph(b.fresh(key), [], [p[i] for p in pairs])
              for i, (key, r) in enumerate(zip(("then_branch", "else_branch"), regions))}
    outs = b.op("If", [cond], outputs=len(pairs), **graphs)
    outs = outs if isinstance(outs, list) else [outs]
    for o, (tv, fv) in zip(outs, pairs):
        o.dtype, o.shape = tv.dtype, _merged_shape(tv.shape, fv.shape)
    n = sum(kept)
    for (uid, (var, _)), o in zip(changed.items(), outs[n:]):
        ctx.update(var, o, in_inference=True)
    results_out = iter(outs[:n])
    return nest.pack_sequence_as(results[0], [next(results_out) if k else None for k in kept])


def _selected(cond: Value, results: list[Any], flat: list[list[Any]], regions: list[Region]) -> Any:
    """Both branches kept inline, each output selected by ``where``: a branch with a ``stop_gradient`` or a
    ``custom_gradient`` region, which only the enclosing graph knows how to differentiate."""
    from .. import ops as _ops

    ctx = regions[0].ctx
    for r in regions:   # both branches ran inline, so both branches' assignments apply, in order
        for var, value in r.updates.values():
            ctx.update(var, _assigned_value(value), in_inference=True)
    return nest.pack_sequence_as(results[0], [_ops.where(cond, t, f) for t, f in zip(*flat)])


def _dtype_name(v: Value) -> str:
    from ..graph import np_dtype

    return np.dtype(np_dtype(v.dtype)).name if v.dtype is not None else "an unknown dtype"


def traced_while(cond: Callable[..., Any], body: Callable[[list[Any]], list[Any]], state: list[Any],
                 keep: Value, maximum_iterations: Any, shape_invariants: Any) -> list[Any]:
    """``tf.while_loop`` from ``state`` on, its condition ``keep`` traced: one ``Loop`` node whose body is
    ``body`` followed by ``cond`` (see module doc). ``state`` is the list of loop variables (nested
    structures allowed); ``body`` maps such a list to the next one."""
    b = keep.builder
    leaves = nest.flatten(state)
    # A TensorArray travels as its one-tensor form, whose length may change between iterations.
    arrays = [x if isinstance(x, TensorArray) else None for x in leaves]
    # An array not written yet and without element_shape gets its initial tensor once the body's writes
    # have shown the element shape (``None`` until then).
    init = [None if a is not None and not a.can_flow() else
            _leaf_value(a.flow(b) if a is not None else x, b, None) for x, a in zip(leaves, arrays)]
    invariants = _invariants(shape_invariants, state, init)
    invariants = [s if a is None or s is None else (None, *s[1:]) for s, a in zip(invariants, arrays)]
    dtypes = [v.dtype if v is not None else _enum(a.dtype) for v, a in zip(init, arrays)]
    it = b._record(b.fresh("loop_iteration"), _INT64, ())
    going = b._record(b.fresh("loop_cond"), _BOOL, ())
    inner = [b._record(b.fresh("loop_var"), dtype, shape) for dtype, shape in zip(dtypes, invariants)]
    region = Region(b)
    new_state = body(nest.pack_sequence_as(state, _as_arrays(inner, arrays)))
    new_leaves = nest.flatten(new_state)
    if len(new_leaves) != len(inner):
        raise ValueError(f"tf.while_loop: body must return the loop variables' structure. Received: {new_state!r} "
                         f"for loop variables {state!r}")
    new = [_leaf_value(x.flow(b) if isinstance(x, TensorArray) else x, b, v) for x, v in zip(new_leaves, inner)]
    for k, (n, v) in enumerate(zip(new, inner)):
        _check_carried(k, n, v, init[k] if init[k] is not None else v)
    again = cond(*new_state)
    again = _leaf_value(again, b, None) if not isinstance(again, Value) else again
    again = _scalar_pred(again, "tf.while_loop")
    region.close()
    if not region.movable:
        raise NotImplementedError("tf.while_loop: a loop body on a traced condition that adds a loss or metric, "
                                  "or uses stop_gradient / custom_gradient, is not supported (the body becomes an "
                                  "ONNX Loop). Compute it after the loop from values the loop returns.")
    del b.nodes[len(b.nodes) - len(region.nodes):]
    for k, a in enumerate(arrays):
        if init[k] is None:
            init[k] = a.shaped_like(new_leaves[k]).flow(b)
    # A Variable the body assigns is one more loop variable: the body read its value before the loop (the
    # trace's table held it), which in the loop is the value the previous iteration left.
    assigned = list(region.updates.values())
    for var, entry in assigned:
        before = region.ctx.read(var)
        carried = b._record(b.fresh("loop_var"), before.dtype, before.shape)
        _rename(region.nodes, before.name, carried.name)
        new = [carried if v.name == before.name else v for v in new]
        again = carried if again.name == before.name else again
        init.append(before)
        inner.append(carried)
        value = _assigned_value(entry)
        new.append(carried if value.name == before.name else value)
    graph = region.graph(b.fresh("while_body"), [it, going] + inner, [again] + new)
    limit = None
    if maximum_iterations is not None:
        limit = cast_value(as_value(maximum_iterations, b), _INT64) if isinstance(maximum_iterations, Value) \
            else b.const(np.int64(int(maximum_iterations)))
    outs = b.op("Loop", [limit, _scalar_pred(keep, "tf.while_loop")] + init, outputs=len(init), body=graph)
    outs = outs if isinstance(outs, list) else [outs]
    for o, v in zip(outs, inner):
        o.dtype, o.shape = v.dtype, v.shape
    for (var, _), o in zip(assigned, outs[len(leaves):]):
        region.ctx.update(var, o, in_inference=True)
    return nest.pack_sequence_as(state, _as_arrays(outs[:len(leaves)], arrays))


def _rename(nodes: Sequence[onnx.NodeProto], old: str, new: str) -> None:
    """Every read of ``old`` in ``nodes`` (and in their subgraphs, which capture it) reads ``new``."""
    for node in nodes:
        for k, name in enumerate(node.input):
            if name == old:
                node.input[k] = new
        for attr in node.attribute:
            for g in ([attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)):
                _rename(g.node, old, new)
                for out in g.output:
                    if out.name == old:
                        out.name = new


def _enum(dtype: str) -> int:
    from ..graph import onnx_dtype

    return onnx_dtype(np.dtype(dtype))


def _as_arrays(values: list[Value], arrays: list[Any]) -> list[Any]:
    """``values`` with each TensorArray's one-tensor form wrapped back into an array like it."""
    return [a.with_flow(v) if a is not None else v for v, a in zip(values, arrays)]


def _invariants(shape_invariants: Any, state: list[Any], init: list[Value]) -> list[Any]:
    """Each loop variable's shape inside the loop: its initial shape, or the one ``shape_invariants`` gives
    (in the loop variables' structure; ``None`` dims vary between iterations)."""
    if shape_invariants is None:
        return [None if v is None else v.shape for v in init]
    given: list[Any] = []

    def match(part: Any, shape: Any) -> None:
        if nest.is_nested(part):
            children = [part[k] for k in sorted(part)] if isinstance(part, dict) else list(part)
            shapes = ([shape[k] for k in sorted(shape)] if isinstance(shape, dict) else list(shape)
                      if isinstance(shape, (list, tuple)) else None)
            if shapes is None or len(shapes) != len(children):
                raise ValueError(f"tf.while_loop: shape_invariants must have the loop variables' structure. "
                                 f"Received: shape_invariants={shape_invariants!r} for loop variables {state!r}")
            for c, s in zip(children, shapes):
                match(c, s)
            return
        dims = (None if shape.rank is None else shape.as_list()) if hasattr(shape, "as_list") else shape
        given.append(None if dims is None else tuple(None if d is None else int(d) for d in dims))

    match(list(state), shape_invariants)
    return given


def _check_carried(k: int, new: Value, inner: Value, init: Value) -> None:
    if new.dtype != inner.dtype:
        raise TypeError(f"tf.while_loop: loop variable {k} enters the loop as {_dtype_name(inner)} but the body "
                        f"returns {_dtype_name(new)}; a loop variable keeps its dtype.")
    if inner.shape is None or new.shape is None:
        return
    fixed = [d for d in inner.shape]
    bad = len(fixed) != len(new.shape) or any(
        isinstance(d, int) and isinstance(e, int) and d != e for d, e in zip(fixed, new.shape))
    if bad:
        raise ValueError(f"tf.while_loop: loop variable {k} enters the loop with shape {tuple(init.shape)}, but "
                         f"has shape {tuple(new.shape)} after one iteration. To allow the shape to vary across "
                         "iterations, use the `shape_invariants` argument of tf.while_loop to specify a "
                         "less-specific shape.")
