"""``GradientTape``: reverse-mode gradients inside a traced custom ``train_step``, TensorFlow's way.

The tape records which nodes were emitted between entering and leaving its ``with`` block; ``gradient``
differentiates *only those nodes* with ``onnxforge.autodiff.backward``, so values computed before the tape
(or by another tape, or an optimizer update) are constants to it, exactly as in eager TensorFlow. That is
what lets one training graph hold a discriminator update followed by a generator step that reads the
updated discriminator without differentiating through its update.

Example:
    >>> import numpy as np, onnx
    >>> from onnxforge.graph import GraphBuilder
    >>> from onnxforge.tracing import TraceContext
    >>> from onnxforge import ops
    >>> b = GraphBuilder()
    >>> with TraceContext(b, training=True).active():
    ...     x = b.input("x", onnx.TensorProto.FLOAT, (3,))
    ...     with GradientTape() as tape:
    ...         loss = ops.sum(ops.square(x))
    ...     grad = tape.gradient(loss, x)
    >>> grad.shape
    (3,)
"""
from __future__ import annotations

__all__ = ["GradientTape"]

import contextlib
from collections.abc import Iterator
from typing import Any

import onnx

from .graph.shape_inference import fill_shapes
from .autodiff import backward
from .autodiff.engine import _backward_reach, _forward_reach
from .graph import FLOAT_TYPES, GraphBuilder, Value
from .tracing import TraceContext, current_trace
from .variables import Variable


def _flatten(x: Any) -> list[Any]:
    if isinstance(x, (list, tuple)):
        return [leaf for item in x for leaf in _flatten(item)]
    if isinstance(x, dict):
        return [leaf for key in x for leaf in _flatten(x[key])]
    return [x]


def _restructure(template: Any, flat: Iterator[Any]) -> Any:
    if isinstance(template, (list, tuple)):
        items = [_restructure(t, flat) for t in template]
        return items if isinstance(template, list) else tuple(items)
    if isinstance(template, dict):
        return {k: _restructure(template[k], flat) for k in template}
    return next(flat)


class GradientTape:
    """Records graph nodes for differentiation (``tf.GradientTape``), inside a traced ``train_step``.

    Args:
        persistent: allow several ``gradient`` calls on this tape (a non-persistent tape allows one).
        watch_accessed_variables: accepted for compatibility; every Variable and value the recorded nodes
            use can be differentiated against.

    Use it in a ``Model`` subclass's ``train_step``::

        with onnxforge.GradientTape() as tape:
            predictions = self.discriminator(images)
            d_loss = self.loss_fn(labels, predictions)
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))
    """

    def __init__(self, persistent: bool = False, watch_accessed_variables: bool = True):
        self.persistent = bool(persistent)
        self._ctx: TraceContext | None = None
        self._start = 0
        self._end: int | None = None
        self._paused: list[list[int]] = []
        self._used = False
        self._values_at_exit: dict[int, Value] = {}

    # ------------------------------------------------------------------------------------ recording
    def __enter__(self) -> GradientTape:
        try:
            ctx = current_trace()
        except RuntimeError:
            raise RuntimeError(
                "GradientTape records graph ops, so it works while onnxforge traces a program: inside a Model "
                "subclass's train_step(self, data), which fit() and train_on_batch() compile into one ONNX "
                "training graph. Outside a trace there is nothing to record.") from None
        self._ctx = ctx
        self._start = len(ctx.b.nodes)
        self._end = None
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._ctx is not None
        self._end = len(self._ctx.b.nodes)
        # The values Variables had inside the block (a later optimizer update must not change them).
        self._values_at_exit = dict(getattr(self._ctx, "current", {}))

    def watch(self, tensor: Any) -> None:
        """Accepted for compatibility: any value the recorded nodes use can be a ``gradient`` source."""
        for leaf in _flatten(tensor):
            if not isinstance(leaf, (Value, Variable)):
                raise TypeError(f"GradientTape.watch expects graph tensors or Variables. Received: {leaf!r}")

    @contextlib.contextmanager
    def stop_recording(self) -> Iterator[None]:
        """Nodes emitted inside this block are not recorded (they are constants to ``gradient``)."""
        b = self._builder("stop_recording")
        span = [len(b.nodes), -1]
        self._paused.append(span)
        try:
            yield
        finally:
            span[1] = len(b.nodes)

    def reset(self) -> None:
        """Forget what was recorded so far and record from here."""
        b = self._builder("reset")
        self._start, self._paused = len(b.nodes), []

    def _builder(self, method: str) -> GraphBuilder:
        if self._ctx is None:
            raise RuntimeError(f"GradientTape.{method}() needs a tape that has been entered (`with GradientTape() "
                               "as tape:`).")
        return self._ctx.b

    # ------------------------------------------------------------------------------------ gradients
    def _recorded(self, b: GraphBuilder) -> list[onnx.NodeProto]:
        from .ops.core import stopped_outputs

        end = self._end if self._end is not None else len(b.nodes)
        stopped = stopped_outputs(b)
        nodes = []
        for i in range(self._start, end):
            if any(lo <= i < (hi if hi >= 0 else end) for lo, hi in self._paused):
                continue
            node = b.nodes[i]
            if node.output and node.output[0] in stopped:
                continue   # stop_gradient: its output is a constant to this tape
            nodes.append(node)
        return nodes

    def _source_value(self, source: Any) -> Value | None:
        if isinstance(source, Value):
            return source
        if isinstance(source, Variable):
            ctx = self._ctx
            assert ctx is not None
            if source.uid in self._values_at_exit:
                return self._values_at_exit[source.uid]
            hit = ctx.reads.get(source.uid)
            if hit is not None:
                return ctx.read(source) if self._end is None else hit[1]
            return None   # never read: nothing recorded depends on it
        raise TypeError(f"GradientTape.gradient: sources must be Variables or graph tensors. Received: {source!r}")

    def gradient(self, target: Any, sources: Any, output_gradients: Any = None,
                 unconnected_gradients: str = "none") -> Any:
        """Gradients of ``target`` (a value, or a list of them, summed) w.r.t. ``sources``.

        Args:
            target: the loss (a graph value; a non-scalar target is summed, a list of targets too).
            sources: Variables or graph values, alone or in a list / tuple / dict.
            output_gradients: the gradient flowing into each target (default: ones).
            unconnected_gradients: ``"none"`` (TensorFlow's default: ``None`` for a source the recorded
                nodes do not connect to the target) or ``"zero"``.

        Returns:
            Graph values in the structure of ``sources``.
        """
        if unconnected_gradients not in ("none", "zero"):
            raise ValueError("unconnected_gradients must be 'none' or 'zero'. Received: "
                             f"unconnected_gradients={unconnected_gradients!r}")
        b = self._builder("gradient")
        if self._used and not self.persistent:
            raise RuntimeError("A non-persistent GradientTape can only be used to compute one set of gradients. "
                               "Use GradientTape(persistent=True) to call gradient() several times.")
        self._used = True
        targets = [t.__onnx_value__() if isinstance(t, Variable) else t for t in _flatten(target)]
        for t in targets:
            if not isinstance(t, Value):
                raise TypeError(f"GradientTape.gradient: the target must be a graph tensor (the loss computed in "
                                f"the tape). Received: {t!r}")
            if t.dtype is not None and t.dtype not in FLOAT_TYPES:
                raise TypeError(f"GradientTape.gradient: the target {t.name!r} is not a float tensor.")
        seeds = None if output_gradients is None else list(_flatten(output_gradients))
        flat_sources = _flatten(sources)
        values = [self._source_value(s) for s in flat_sources]

        nodes = self._recorded(b)
        wrt = [v.name for v in values if v is not None and (v.dtype is None or v.dtype in FLOAT_TYPES)]
        reached, _ = _forward_reach(b, nodes, wrt)
        needed: set[str] = set()
        for t in targets:
            needed |= _backward_reach(nodes, reached, t.name)
        wanted = [name for name in dict.fromkeys(wrt) if name in needed]
        grads = _differentiate(b, nodes, targets, wanted, seeds) if wanted else {}

        out = []
        for v in values:
            g = grads.get(v.name) if v is not None else None
            if g is None and unconnected_gradients == "zero" and v is not None:
                from .ops import zeros_like

                g = zeros_like(v)
            if g is not None:
                g.dtype = g.dtype or v.dtype
                g.shape = g.shape if g.shape is not None else v.shape
            out.append(g)
        if isinstance(sources, (list, tuple, dict)):
            return _restructure(sources, iter(out))
        return out[0]


def _differentiate(b: GraphBuilder, nodes: list[onnx.NodeProto], targets: list[Value], wrt: list[str],
                   seeds: list[Any] | None) -> dict[str, Value]:
    """``backward`` over the recorded ``nodes`` only; the gradient nodes are appended to ``b``."""
    saved = b.nodes
    b.nodes = list(nodes)   # the engine differentiates the builder's nodes: show it just the recorded ones
    try:
        if len(targets) == 1 and seeds is None:
            grads = backward(b, targets[0], wrt)
        else:
            grads = backward(b, targets, wrt, seed=seeds)
        new_nodes = b.nodes[len(nodes):]
    finally:
        b.nodes = saved
    start = len(saved)
    saved.extend(new_nodes)
    fill_shapes(b, start)
    return grads
