"""``tf.gradients``: TensorFlow 1's symbolic gradients, inside a ``tf.function`` or a traced step.

``tf.gradients(ys, xs)`` differentiates the graph being traced: the derivatives of ``sum(ys)`` (each weighted
by its ``grad_ys`` entry) with respect to each of ``xs``. It is a ``GradientTape`` over every node traced so
far, so it takes the same autodiff path (``onnxforge.autodiff``) and gives the same graph values;
``stop_gradients`` makes the nodes that produce those tensors constants to it. As in TensorFlow 2, calling it
on concrete (eager) tensors raises ``RuntimeError``: there is no graph to differentiate, use
``tf.GradientTape``. ``tf.hessians`` differentiates each entry of such a gradient again (the gradient nodes
are traced nodes too), one ``gradients`` call per entry of ``x``.

Example:
    >>> import numpy as np
    >>> import onnxforge as tf
    >>> @tf.function
    ... def slope(x):
    ...     return tf.gradients(tf.reduce_sum(x * x), x)[0]
    >>> slope(np.array([1.0, -2.0], "float32")).tolist()
    [2.0, -4.0]
"""
from __future__ import annotations

__all__ = ["gradients", "hessians"]

from typing import Any

import numpy as np
import onnx

from ..gradient_tape import GradientTape, _flatten
from ..graph import GraphBuilder, Value
from ..trace_state import active_trace
from ..variables import Variable


class _WholeGraphTape(GradientTape):
    """A tape that recorded every node of the trace up to now, less those producing ``stops``."""

    def __init__(self, ctx: Any, stops: set[str]):
        super().__init__(persistent=True)
        self._ctx, self._start, self._end = ctx, 0, len(ctx.b.nodes)
        self._values_at_exit = dict(getattr(ctx, "current", {}))
        self._stops = stops

    def _recorded(self, b: GraphBuilder) -> list[onnx.NodeProto]:
        return [n for n in super()._recorded(b) if not self._stops.intersection(n.output)]


def gradients(ys: Any, xs: Any, grad_ys: Any = None, name: str = "gradients", gate_gradients: bool = False,
              aggregation_method: Any = None, stop_gradients: Any = None,
              unconnected_gradients: Any = "none") -> list[Any]:
    """``tf.gradients``: a list, one entry per ``xs``, of ``d(sum(ys))/dx`` in the traced graph.

    Args:
        ys: a tensor or a list of tensors to differentiate (summed).
        xs: a tensor / Variable or a list of them.
        grad_ys: the gradient flowing into each of ``ys`` (default: ones).
        stop_gradients: tensors held constant (no gradient flows through them).
        unconnected_gradients: ``"none"`` (``None`` for an ``x`` that ``ys`` do not depend on) or ``"zero"``.
        name, gate_gradients, aggregation_method: accepted for compatibility.
    """
    ctx = active_trace()
    if ctx is None and not any(isinstance(y, Value) for y in _flatten(ys)):
        raise RuntimeError("tf.gradients is not supported when eager execution is enabled. Use tf.GradientTape "
                           "instead (tf.gradients works inside a tf.function).")
    if ctx is None:
        raise RuntimeError("tf.gradients needs the trace that computed ys: call it inside the tf.function or "
                           "train step that computes them.")
    y_list = _flatten(ys)
    seeds = None if grad_ys is None else _flatten(grad_ys)
    if seeds is not None and len(seeds) != len(y_list):
        raise ValueError(f"tf.gradients: grad_ys must hold one tensor per ys entry ({len(y_list)}). Received "
                         f"{len(seeds)}.")
    if seeds is not None and any(s is None for s in seeds):   # TensorFlow's None entry: ones for that y
        from .. import ops

        seeds = [ops.ones_like(y) if s is None else s for y, s in zip(y_list, seeds)]
    stops = {s.name for s in _flatten(stop_gradients or []) if isinstance(s, Value)}
    x_list = _flatten(xs)
    tape = _WholeGraphTape(ctx, stops)
    mode = getattr(unconnected_gradients, "value", unconnected_gradients)
    graph_xs = [x for x in x_list if isinstance(x, (Value, Variable))]
    grads = iter(tape.gradient(y_list, graph_xs, output_gradients=seeds, unconnected_gradients=mode))
    # A concrete array (a tf.constant in the function) is computed by no traced node: unconnected to ys.
    return [next(grads) if isinstance(x, (Value, Variable)) else _unconnected(x, mode) for x in x_list]


def _unconnected(x: Any, mode: str) -> Any:
    from .. import ops

    return ops.zeros_like(x) if mode == "zero" else None


def hessians(ys: Any, xs: Any, gate_gradients: bool = False, aggregation_method: Any = None,
             name: str = "hessians") -> list[Any]:
    """``tf.hessians``: for each of ``xs``, the second derivatives of ``sum(ys)``, shaped ``x.shape + x.shape``
    (``None`` where ``ys`` do not depend on ``x``). The sizes of ``xs`` must be known while tracing."""
    from .. import ops

    out = []
    for x in _flatten(xs):
        first = gradients(ys, x)[0]
        if first is None:
            out.append(None)
            continue
        shape = tuple(ops.shape(x))
        if not all(isinstance(d, int) for d in shape):
            raise ValueError(f"tf.hessians needs the shape of each x known while tracing. Received {shape}")
        flat = ops.reshape(first, (-1,))
        rows = [gradients(flat[i], x, unconnected_gradients="zero")[0] for i in range(int(np.prod(shape)))]
        out.append(ops.reshape(ops.stack(rows), shape + shape))
    return out
