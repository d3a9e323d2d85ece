"""Metric trackers inside traced steps: ``update_state`` / ``result`` on symbolic tensors.

Keras's VAE and GAN examples keep ``keras.metrics.Mean`` trackers and, in a custom ``train_step``, call
``tracker.update_state(loss)`` and return ``{m.name: m.result() for m in self.metrics}``. A metric keeps its
state as sums on the host, so inside a trace ``update_state`` emits the batch's sums (``batch_sums``) and
hands them to the active trace (``TraceContext.track_metric``); a custom step outputs them and adds them
to the tracker after each run. ``result()`` inside a trace gives a ``MetricResult`` reference that the
step's logs may return. A metric updated inside a layer's ``call()`` (Keras's endpoint layer) is recorded
by the trace too: compiled ``train_step`` / ``eval_step`` programs output its sums and ``fit`` reports it
after the compiled metrics; an eager call adds them to the metric. A metric with no state of its own whose
``update_state`` feeds another metric (keras.io DDIM's ``KID`` averages its per-batch value in a ``Mean``
tracker) runs its own code in the trace, so the inner tracker records the sums and ``result()`` is read on
the host. Outside any trace both methods run as
they always did, on arrays.

``trace_aware(cls)`` wraps a metric class's own ``update_state`` / ``result`` this way; ``Metric`` applies
it to itself and to every subclass.
"""
from __future__ import annotations

__all__ = ["trace_aware"]

import functools
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from .graph.shape_inference import fill_shapes
from .graph import Value
from .tracing import active_trace


_RECORDED = [0]   # traced updates that recorded sums, so far (a delegating metric must cause one)


def _leaves(x: Any) -> list[Any]:
    if isinstance(x, (list, tuple)):
        return [leaf for item in x for leaf in _leaves(item)]
    if isinstance(x, dict):
        return [leaf for item in x.values() for leaf in _leaves(item)]
    return [x]


def _symbolic(args: tuple, kwargs: dict) -> bool:
    return any(isinstance(leaf, Value) or hasattr(leaf, "__onnx_value__") for leaf in _leaves((args, kwargs)))


def _graph_arg(b: Any, x: Any) -> Any:
    if x is None or isinstance(x, Value):
        return x
    if hasattr(x, "__onnx_value__"):
        return x.__onnx_value__()
    a = np.asarray(x)
    return b.const(a.astype(np.float32) if a.dtype.kind == "f" else a)


def _batch_sums(metric: Any, b: Any, args: tuple, kwargs: dict) -> list[Value]:
    args = tuple(_graph_arg(b, a) for a in args)
    kwargs = {k: _graph_arg(b, v) for k, v in kwargs.items()}
    try:   # update_state(y_true, y_pred) reaches batch_sums(y_true, y_pred, sample_weight) without a weight
        bound = inspect.signature(metric.batch_sums).bind_partial(*args, **kwargs)
        for name, p in inspect.signature(metric.batch_sums).parameters.items():
            if name not in bound.arguments and p.default is inspect.Parameter.empty and \
                    p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                bound.arguments[name] = None
        args, kwargs = bound.args, bound.kwargs
    except (TypeError, ValueError):
        pass
    return list(metric.batch_sums(*args, **kwargs))


def _wrap_update(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def update_state(self: Any, *args: Any, **kwargs: Any) -> Any:
        ctx = active_trace()
        if ctx is None:
            if _symbolic(args, kwargs):
                raise TypeError(f"Metric {self.name!r} ({type(self).__name__}).update_state() received symbolic "
                                "tensors outside the trace that made them; update trackers inside train_step.")
            return fn(self, *args, **kwargs)
        if getattr(self, "_delegating", lambda: False)():
            # Its update_state updates other metrics, which record their sums. One that records nothing keeps
            # its state some other way (Python attributes), which a compiled step cannot carry: refuse it.
            before = _RECORDED[0]
            fn(self, *args, **kwargs)
            if _RECORDED[0] == before:
                raise NotImplementedError(
                    f"Metric {self.name!r} ({type(self).__name__}) has no graph form: its update_state, run in a "
                    "compiled step, updated no metric variable or inner metric. Keep its state with add_variable "
                    "(and assign_add in update_state), or update another metric (a keras.metrics.Mean tracker).")
            return None
        if any(isinstance(v, Value) and v.shape is None for v in _leaves((args, kwargs))):
            fill_shapes(ctx.b, 0)   # values made by Python arithmetic in train_step: the sums need ranks
        start = len(ctx.b.nodes)
        sums = _batch_sums(self, ctx.b, args, kwargs)
        fill_shapes(ctx.b, start)
        ctx.track_metric(self, sums)
        _RECORDED[0] += 1
        return None

    update_state._trace_aware = True  # type: ignore[attr-defined]
    return update_state


def _wrap_result(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def result(self: Any, *args: Any, **kwargs: Any) -> Any:
        ctx = active_trace()
        if ctx is None:
            return fn(self, *args, **kwargs)
        return ctx.metric_result(self)

    result._trace_aware = True  # type: ignore[attr-defined]
    return result


def trace_aware(cls: type) -> type:
    """Wrap ``cls``'s own ``update_state`` and ``result`` (see the module docstring); returns ``cls``."""
    for name, wrap in (("update_state", _wrap_update), ("result", _wrap_result)):
        fn = cls.__dict__.get(name)
        if fn is not None and not getattr(fn, "_trace_aware", False):
            setattr(cls, name, wrap(fn))
    return cls
