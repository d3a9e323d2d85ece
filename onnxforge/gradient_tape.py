"""``GradientTape``: reverse-mode gradients, TensorFlow's way, in a traced step or eagerly.

Outside a trace (a script, a notebook, an eager training loop) the tape records the calls on concrete
arrays that touch trainable Variables or watched arrays, and ``gradient`` joins and differentiates them as
one cached ONNX program (``onnxforge.eager.tape``). Inside a trace (a custom ``train_step``, a
``tf.function``) it works on the graph being built, as follows.

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

import numpy as np
import onnx

from .graph.shape_inference import fill_shapes
from .autodiff import backward
from .autodiff.custom import opaque
from .autodiff.engine import _backward_reach, _forward_reach
from .graph import FLOAT_TYPES, GraphBuilder, Value
from .tracing import TraceContext, current_trace
from .variables import Variable
from .eager import tape as eager_tape
from .eager.tape_sources import reroot
from .eager_tensor import as_eager


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
        self.watch_accessed_variables = bool(watch_accessed_variables)
        self._recording: eager_tape.Recording | None = None   # set while and after recording eagerly
        self._ctx: TraceContext | None = None
        self._start = 0
        self._end: int | None = None
        self._paused: list[list[int]] = []
        self._used = False
        self._watched_uids: set[int] = set()   # Variables watch-ed in a traced step
        self._values_at_exit: dict[int, Value] = {}

    # ------------------------------------------------------------------------------------ recording
    def __enter__(self) -> GradientTape:
        try:
            ctx = current_trace()
        except RuntimeError:   # eager: record the calls on concrete arrays
            self._recording = eager_tape.Recording(self.watch_accessed_variables)
            self._used = False
            eager_tape.push(self._recording)
            return self
        self._ctx = ctx
        self._start = len(ctx.b.nodes)
        self._end = None
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._ctx is None and self._recording is not None:
            eager_tape.pop(self._recording)
            return
        assert self._ctx is not None
        self._end = len(self._ctx.b.nodes)
        # The values Variables had inside the block (a later optimizer update must not change them).
        self._values_at_exit = dict(getattr(self._ctx, "current", {}))

    def watch(self, tensor: Any) -> None:
        """Accepted for compatibility: any value the recorded nodes use can be a ``gradient`` source."""
        for leaf in _flatten(tensor):
            if self._recording is not None and self._ctx is None:
                if not isinstance(leaf, (np.ndarray, Variable)):
                    raise TypeError(f"GradientTape.watch expects tensors (arrays) or Variables. Received: "
                                    f"{leaf!r} of type {type(leaf).__name__}")
                self._recording.watch(leaf)
            elif not isinstance(leaf, (Value, Variable)):
                raise TypeError(f"GradientTape.watch expects graph tensors or Variables. Received: {leaf!r}")
            elif isinstance(leaf, Variable):
                self._watched_uids.add(leaf.uid)

    def watched_variables(self) -> tuple[Variable, ...]:
        """The Variables this tape watches: those ``watch``-ed and, unless ``watch_accessed_variables=False``,
        the trainable ones read while it recorded (TensorFlow's ``tape.watched_variables()``).

        Example:
            >>> import onnxforge as tf
            >>> w, frozen = tf.Variable(2.0, name="w"), tf.Variable(1.0, name="frozen", trainable=False)
            >>> with tf.GradientTape() as tape:
            ...     y = w * frozen
            >>> [v.name for v in tape.watched_variables()]
            ['w']
        """
        if self._eager("watched_variables"):
            assert self._recording is not None
            return self._recording.watched_variables()
        assert self._ctx is not None and self._start is not None
        nodes = self._ctx.b.nodes[self._start:self._end]
        used = {name for node in nodes for name in node.input}
        # A read may reach the block through its autocast Cast, emitted before the block began.
        casts = {node.input[0]: node.output[0] for node in self._ctx.b.nodes if node.op_type == "Cast"}
        return tuple(var for var, value in self._ctx.reads.values()
                     if (value.name in used or casts.get(value.name) in used)
                     and (var.uid in self._watched_uids or (self.watch_accessed_variables and var.trainable)))

    @contextlib.contextmanager
    def stop_recording(self) -> Iterator[None]:
        """Nodes emitted inside this block are not recorded (they are constants to ``gradient``)."""
        if self._eager("stop_recording"):
            assert self._recording is not None
            self._recording.paused += 1
            try:
                yield
            finally:
                self._recording.paused -= 1
            return
        b = self._builder("stop_recording")
        span = [len(b.nodes), -1]
        self._paused.append(span)
        try:
            yield
        finally:
            span[1] = len(b.nodes)

    def reset(self) -> None:
        """Forget what was recorded so far and record from here."""
        if self._eager("reset"):
            assert self._recording is not None
            self._recording.reset()
            return
        b = self._builder("reset")
        self._start, self._paused = len(b.nodes), []

    def _eager(self, method: str) -> bool:
        """Whether this tape recorded eagerly (a tape never entered has nothing to answer ``method``)."""
        if self._recording is not None and self._ctx is None:
            return True
        self._builder(method)
        return False

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
        eager = self._eager("gradient")
        if self._used and not self.persistent:
            raise RuntimeError("A non-persistent GradientTape can only be used to compute one set of gradients. "
                               "Use GradientTape(persistent=True) to call gradient() several times.")
        self._used = True
        if eager:
            return self._eager_gradient(target, sources, output_gradients, unconnected_gradients)
        b = self._builder("gradient")
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
        graph_sources = [v.name for s, v in zip(flat_sources, values) if isinstance(s, Value) and v is not None]
        if graph_sources:
            nodes = _reroot_recorded(b, nodes, graph_sources)
        wrt = [v.name for v in values if v is not None and (v.dtype is None or v.dtype in FLOAT_TYPES)]
        walked = opaque(b, nodes)   # a custom_gradient region connects its inputs to its outputs as one node
        reached, _ = _forward_reach(b, walked, wrt)
        needed: set[str] = set()
        for t in targets:
            needed |= _backward_reach(walked, reached, t.name)
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

    def _eager_gradient(self, target: Any, sources: Any, output_gradients: Any, unconnected_gradients: str) -> Any:
        rec = self._recording
        assert rec is not None
        flat_sources = _flatten(sources)
        for s in flat_sources:
            if not isinstance(s, (np.ndarray, Variable)):
                raise TypeError(f"GradientTape.gradient: sources must be Variables or tensors. Received: {s!r} of "
                                f"type {type(s).__name__}")
        targets = _flatten(target)
        for t in targets:
            # A number or array no recorded run produced is a constant: its gradients are None (TensorFlow's).
            if not isinstance(t, (Variable, np.ndarray, np.generic, int, float)):
                raise TypeError(f"GradientTape.gradient: the target must be a tensor computed while the tape "
                                f"recorded. Received: {t!r} of type {type(t).__name__}")
        seeds = None if output_gradients is None else _flatten(output_gradients)
        if seeds is not None and len(seeds) != len(targets):
            raise ValueError(f"GradientTape.gradient: output_gradients must hold one array per target "
                             f"({len(targets)}). Received {len(seeds)}.")
        out = _with_variable_targets(rec, targets, flat_sources, seeds, unconnected_gradients)
        if not self.persistent:
            rec.reset()   # a used non-persistent tape keeps nothing alive (TensorFlow frees its tape too)
        if isinstance(sources, (list, tuple, dict)):
            return _restructure(sources, iter(out))
        return out[0]


    def jacobian(self, target: Any, sources: Any, unconnected_gradients: str = "none",
                 parallel_iterations: Any = None, experimental_use_pfor: bool = True) -> Any:
        """The Jacobian of ``target`` w.r.t. each source, shaped ``target.shape + source.shape`` (eager tapes).

        One gradient per element of ``target``, each with a one-hot ``output_gradients``: the joined
        program is compiled once and run ``target.size`` times. ``parallel_iterations`` and
        ``experimental_use_pfor`` are accepted for compatibility.
        """
        if not self._eager("jacobian"):
            raise NotImplementedError("GradientTape.jacobian works on eager tapes; inside a traced step or "
                                      "tf.function, take gradients of the target's entries with "
                                      "tape.gradient(target, sources, output_gradients=...).")
        if self._used and not self.persistent:
            raise RuntimeError("A non-persistent GradientTape can only be used to compute one set of gradients. "
                               "Use GradientTape(persistent=True) to call jacobian() after gradient().")
        self._used = True
        rec = self._recording
        assert rec is not None
        flat_sources = _flatten(sources)
        value = np.asarray(target)
        rows = []
        for i in range(value.size):
            seed = np.zeros(value.size, value.dtype)
            seed[i] = 1
            rows.append(rec.gradient([target], flat_sources, [seed.reshape(value.shape)], unconnected_gradients))
        out = []
        for k, source in enumerate(flat_sources):
            shape = tuple(np.shape(source.numpy() if isinstance(source, Variable) else source))
            column = [row[k] for row in rows]
            if all(g is None for g in column) and rows:
                out.append(None)
                continue
            zero = np.zeros(shape, value.dtype)
            stacked = np.stack([zero if g is None else np.asarray(g) for g in column]) if rows else \
                np.zeros((0, *shape), value.dtype)
            out.append(as_eager(stacked.reshape(value.shape + shape)))
        if not self.persistent:
            rec.reset()
        if isinstance(sources, (list, tuple, dict)):
            return _restructure(sources, iter(out))
        return out[0]

    def batch_jacobian(self, target: Any, source: Any, unconnected_gradients: str = "none",
                       parallel_iterations: Any = None, experimental_use_pfor: bool = True) -> Any:
        """Per-example Jacobians: ``target`` ``[B, ...]`` w.r.t. ``source`` ``[B, ...]`` whose rows are
        independent, shaped ``[B] + target.shape[1:] + source.shape[1:]`` (eager tapes)."""
        full = self.jacobian(target, source, unconnected_gradients)
        if full is None:
            return None
        t_shape, s_shape = np.shape(target), np.shape(full)[np.ndim(target):]
        if not t_shape or not s_shape or t_shape[0] != s_shape[0]:
            raise ValueError(f"GradientTape.batch_jacobian needs target and source with the same first (batch) "
                             f"dimension. Received target shape {t_shape} and source shape {s_shape}.")
        batch = t_shape[0]
        full = np.asarray(full).reshape(batch, -1, batch, int(np.prod(s_shape[1:], dtype=np.int64)))
        diagonal = np.stack([full[b, :, b, :] for b in range(batch)])
        return as_eager(diagonal.reshape((batch, *t_shape[1:], *s_shape[1:])))


def _reroot_recorded(b: GraphBuilder, nodes: list[onnx.NodeProto], sources: list[str]) -> list[onnx.NodeProto]:
    """The recorded ``nodes`` as the tape differentiates them when a source is a model's intermediate output.

    Grad-CAM's ``Model(inputs, [last_conv.output, model.output])`` returns the conv output through a layout
    ``Transpose`` (or an ``Identity``) that nothing downstream reads, so the gradient through it would be
    ``None`` where TensorFlow's is the gradient of everything after the layer (``eager/tape_sources.py``
    explains it). The forward graph stays as traced: copies of the recorded nodes read the value recomputed
    from the source, and the few nodes recomputing it are appended to ``b`` for the gradient nodes to read.
    """
    copies = []
    for node in nodes:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        copies.append(copy)
    ordered = reroot(copies, sources)
    if len(ordered) == len(copies):
        return nodes
    kept = {id(c) for c in copies}
    renamed: dict[str, str] = {}
    start = len(b.nodes)
    for node in ordered:
        if id(node) in kept:
            continue
        attrs = {a.name: list(a.ints) for a in node.attribute}   # reroot makes Identity or Transpose(perm)
        made = b.op(node.op_type, [b.value(renamed.get(node.input[0], node.input[0]))], **attrs)
        renamed[node.output[0]] = made.name
    fill_shapes(b, start)
    emitted = iter(b.nodes[start:])
    out = []
    for node in ordered:
        node = node if id(node) in kept else next(emitted)
        for i, name in enumerate(node.input):
            node.input[i] = renamed.get(name, name)
        out.append(node)
    return out


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


def _with_variable_targets(rec: Any, targets: list, sources: list, seeds: list | None, unconnected: str) -> list:
    """The recording's gradients, where a target may be a Variable itself (TensorFlow's autodiff guide's
    ``result = v0``): d v / d v is the target's seed (ones), and a Variable target reaches no other source."""
    computed = [i for i, t in enumerate(targets) if not isinstance(t, Variable)]
    if len(computed) == len(targets):
        return rec.gradient(targets, sources, seeds, unconnected)
    out = ([None] * len(sources) if not computed else
           rec.gradient([targets[i] for i in computed], sources,
                        None if seeds is None else [seeds[i] for i in computed], "none"))
    for i, t in enumerate(targets):
        if not isinstance(t, Variable):
            continue
        seed = (np.ones(t.shape, t.dtype) if seeds is None else
                np.asarray(seeds[i].numpy() if hasattr(seeds[i], "numpy") else seeds[i], t.dtype))
        for j, s in enumerate(sources):
            if s is t:
                out[j] = as_eager(seed if out[j] is None else np.asarray(out[j]) + seed)
    if unconnected == "zero":
        out = [as_eager(np.zeros(np.shape(s), np.asarray(s).dtype)) if g is None else g for g, s in zip(out, sources)]
    return out

