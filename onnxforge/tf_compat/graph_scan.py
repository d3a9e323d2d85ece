"""A traced ``keras.ops.scan`` / ``map`` over a first axis known only at run time, as one ONNX ``Scan``.

``ops.scan`` unrolls a loop over a static first axis. Over a dynamic one (the batch of a functional model:
``ops.map(per_sample_fn, x)`` in a layer's ``call()``) it cannot, so the step function is traced once on
one slice, its nodes cut out of the enclosing graph by ``graph_flow.Region`` (captures stay outer-scope
names), and the carry and stacked results come from a ``Scan`` node, which
``autodiff/rules/control_flow.py`` differentiates (the weights the step reads included).

Example:
    >>> import numpy as np, onnxforge as tf
    >>> f = tf.function(lambda x: tf.keras.ops.map(lambda row: tf.reduce_sum(row * row), x))
    >>> f(np.float32([[1, 2], [3, 4]])).numpy().tolist()
    [5.0, 25.0]
"""
from __future__ import annotations

__all__ = ["traced_scan"]

from collections.abc import Callable
from typing import Any

from ..ops._util import as_value, builder_of
from . import nest
from .graph_flow import Region, _check_carried, _leaf_value


def traced_scan(fn: Callable[[Any, Any], Any], init: Any, xs: Any, reverse: bool = False) -> tuple[Any, Any]:
    """``carry, y = fn(carry, x)`` over the first axis of ``xs`` (traced, any length): the final carry and
    the stacked ``y``s (``None`` where ``fn`` returns ``None``), JAX's ``lax.scan`` semantics."""
    x_leaves = nest.flatten(xs)
    b = builder_of(*x_leaves)
    xs_in = [as_value(x, b) for x in x_leaves]
    carry_leaves = nest.flatten(init)
    carry_in = [_leaf_value(c, b, None) for c in carry_leaves]
    inner_carry = [b._record(b.fresh("scan_carry"), v.dtype, v.shape) for v in carry_in]
    inner_x = [b._record(b.fresh("scan_x"), v.dtype, None if v.shape is None else tuple(v.shape[1:]))
               for v in xs_in]
    region = Region(b)
    new_carry, ys = fn(nest.pack_sequence_as(init, inner_carry), nest.pack_sequence_as(xs, inner_x))
    new_leaves = nest.flatten(new_carry)
    if len(new_leaves) != len(inner_carry):
        raise ValueError(f"ops.scan: f must return a carry with init's structure. Received: {new_carry!r} for "
                         f"init={init!r}")
    new = [_leaf_value(c, b, v) for c, v in zip(new_leaves, inner_carry)]
    for k, (n, v) in enumerate(zip(new, inner_carry)):
        _check_carried(k, n, v, carry_in[k])
    y_leaves = nest.flatten(ys)
    kept = [y is not None for y in y_leaves]
    y_values = [_leaf_value(y, b, None) for y in y_leaves if y is not None]
    region.close()
    if not region.movable or region.updates:
        raise NotImplementedError("ops.scan / ops.map over a first axis of run-time size: a step function that "
                                  "assigns a Variable, adds a loss or metric, or uses stop_gradient / "
                                  "custom_gradient is not supported (it becomes an ONNX Scan body). Compute it "
                                  "before or after the loop, or give the first axis a static size.")
    del b.nodes[len(b.nodes) - len(region.nodes):]
    graph = region.graph(b.fresh("scan_body"), inner_carry + inner_x, new + y_values)
    directions = [1 if reverse else 0]
    outs = b.op("Scan", carry_in + xs_in, outputs=len(new) + len(y_values), body=graph,
                num_scan_inputs=len(xs_in), scan_input_directions=directions * len(xs_in),
                scan_output_directions=directions * len(y_values))
    outs = outs if isinstance(outs, list) else [outs]
    length = xs_in[0].shape[0] if xs_in and xs_in[0].shape else None
    for o, v in zip(outs, inner_carry):
        o.dtype, o.shape = v.dtype, v.shape
    for o, v in zip(outs[len(new):], y_values):
        o.dtype, o.shape = v.dtype, None if v.shape is None else (length, *v.shape)
    stacked = iter(outs[len(new):])
    carry_out = nest.pack_sequence_as(init, outs[:len(new)]) if carry_leaves else init
    y_out = nest.pack_sequence_as(ys, [next(stacked) if k else None for k in kept]) if y_leaves else ys
    return carry_out, y_out
