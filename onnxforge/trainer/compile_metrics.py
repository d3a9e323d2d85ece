"""``model.metrics`` of a compiled model with its own ``train_step``: Keras 3's loss tracker and
``compile_metrics``.

Keras's "customizing fit()" pattern compiles a loss and metrics, then writes the step itself::

    for metric in self.metrics:
        if metric.name == "loss":
            metric.update_state(loss)
        else:
            metric.update_state(y, y_pred)
    return {m.name: m.result() for m in self.metrics}

``model.metrics`` is then ``[Mean(name="loss"), compile_metrics]``, where ``compile_metrics`` updates every
metric given to ``compile()`` (resolved against the model's outputs on first use, as the compiled programs
resolve them) and returns their results as a dict, which the logs flatten (``loss``, ``mae``, ...).

tf.keras 2's guide wrote the same step with ``self.compiled_metrics.update_state(y, y_pred)``; Keras 3 keeps that
call, deprecated, on its TensorFlow backend (``keras/src/backend/tensorflow/trainer.py``): it updates every metric
of ``model.metrics``, a ``Mean`` with ``y_pred`` alone (so the ``loss`` tracker averages the predictions, not the
loss) and the others with ``(y, y_pred)``. ``CompiledMetrics`` does the same.

Example:
    >>> from onnxforge.metrics import MeanAbsoluteError
    >>> wrapper = CompileMetrics([[("mae", MeanAbsoluteError())]], ["out"])
    >>> wrapper.update_state([[1.0], [2.0]], [[1.5], [2.0]])
    >>> wrapper.result()
    {'mae': 0.25}
"""
from __future__ import annotations

__all__ = ["CompileMetrics", "CompiledMetrics", "compiled_trackers", "listed_trackers"]

import warnings
from typing import Any

import numpy as np

from ..compiler.custom_loss import _unpack
from ..metrics import BinaryAccuracy, CategoricalAccuracy, Mean, SparseCategoricalAccuracy, resolve_accuracy

_ACCURACIES = (BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy)


class CompileMetrics:
    """The metrics of ``compile(metrics=..., weighted_metrics=...)`` as one tracker named ``compile_metrics``.

    Args:
        per_output: for each output, its ``(log name, metric)`` pairs; ``None`` to resolve them from
            ``model``'s compile arguments on first use.
        output_names: the outputs' names, in order (``y`` / ``y_pred`` dicts are read by these keys).
        weighted: for each output, the log names of its weighted metrics (only they receive the sample
            weight); ``None``: all of them.
        model: the compiled model to resolve against.
    """

    name = "compile_metrics"

    def __init__(self, per_output: list[list[tuple[str, Any]]] | None, output_names: list[str] | None,
                 weighted: list[set[str]] | None = None, model: Any = None):
        self._per_output = per_output
        self._output_names = output_names
        self._weighted = weighted
        self._model = model
        self._shapes_seen = False

    @classmethod
    def from_model(cls, model: Any) -> CompileMetrics:
        """Resolved lazily: a subclassed model knows its outputs once its step has called it."""
        return cls(None, None, None, model)

    def _resolve(self, y_pred: Any = None) -> None:
        if self._per_output is not None:
            return
        from ..compiler import resolve_config
        from ..compiler.config import outputs_of

        args = self._model._compile_args
        config = resolve_config(outputs_of(self._model, y_pred), None, args["loss"], args["loss_weights"],
                                args["metrics"], args["weighted_metrics"])
        self._output_names = [o.name for o in config.outputs]
        self._per_output = [list(o.metrics) + list(o.weighted_metrics) for o in config.outputs]
        self._weighted = [{name for name, _ in o.weighted_metrics} for o in config.outputs]

    def _accuracy_by_shapes(self, y_true: Any, y_pred: Any) -> None:
        """Keras picks the metric behind ``"accuracy"`` from the first update's target and prediction shapes
        (``compile_utils.is_binary_or_sparse_categorical``); ``resolve_config`` guessed it from the loss, and a
        custom step may have compiled none (keras.io's consistency training: ``compile(optimizer, metrics=
        ["accuracy"])``, integer labels of shape (batch, 1), softmax of shape (batch, 10))."""
        keys = self._output_names
        for k, (y, p) in enumerate(zip(_unpack(y_true, keys, "y"), _unpack(y_pred, keys, "y_pred"))):
            if y is None or p is None:
                continue
            true_shape, pred_shape = _shape(y), _shape(p)
            if not true_shape or not pred_shape:
                continue
            sparse = len(true_shape) < len(pred_shape) or (true_shape[-1] == 1 and pred_shape[-1] != 1)
            for i, (name, metric) in enumerate(self._per_output[k]):
                if type(metric) in _ACCURACIES and metric.name in ("accuracy", "acc") \
                        and "_variable_prefix" in metric.__dict__:   # made from the string, not given as an object
                    chosen = resolve_accuracy(metric.name, pred_shape[-1], sparse)
                    chosen.__dict__["_variable_prefix"] = metric.__dict__["_variable_prefix"]
                    self._per_output[k][i] = (name, chosen)

    @property
    def metrics(self) -> list[Any]:
        """The wrapped metric objects (empty until resolved)."""
        return [m for items in (self._per_output or []) for _, m in items]

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Update every compiled metric of every output with its target and prediction."""
        self._resolve(y_pred)
        if not self._shapes_seen:
            self._accuracy_by_shapes(y_true, y_pred)
            self._shapes_seen = True
        keys = self._output_names
        ys, preds, weights = _unpack(y_true, keys, "y"), _unpack(y_pred, keys, "y_pred"), \
            _unpack(sample_weight, keys, "sample_weight")
        for k, items in enumerate(self._per_output):
            for name, metric in items:
                weighted = self._weighted is None or name in self._weighted[k]
                if weighted and weights[k] is not None:
                    metric.update_state(ys[k], preds[k], sample_weight=weights[k])
                else:
                    metric.update_state(ys[k], preds[k])

    def result(self) -> dict[str, Any]:
        """``{log name: result}`` of every compiled metric (the logs flatten this dict); their names are known
        before any update, as in Keras once the model is built (``fit`` compares them with a custom step's keys)."""
        if self._per_output is None and getattr(self._model, "built", False):
            self._resolve()
        return {name: metric.result() for items in (self._per_output or []) for name, metric in items}

    def reset_state(self) -> None:
        for metric in self.metrics:
            metric.reset_state()

    def __repr__(self) -> str:
        return f"<CompileMetrics {[name for items in (self._per_output or []) for name, _ in items]}>"


def _shape(x: Any) -> tuple:
    """A traced tensor's (possibly partly unknown) shape, or an array-like's."""
    shape = getattr(x, "shape", None)
    return tuple(shape) if shape is not None else np.shape(x)


def compiled_trackers(model: Any) -> list[Any]:
    """Keras's ``[loss tracker, compile_metrics]`` for a compiled model whose step is its own, made once per
    ``compile()`` (the same objects every time ``model.metrics`` is read)."""
    args = getattr(model, "_compile_args", None)
    if not getattr(model, "compiled", False) or args is None:
        return []
    cached = model.__dict__.get("_compile_trackers")
    if cached is not None and cached[0] is args:
        return list(cached[1])
    # Keras 3's compile() makes the loss tracker whether or not it is given a loss (keras.io's DeiT compiles
    # metrics alone, and its step's ``compiled_metrics.update_state`` feeds the tracker the predictions).
    trackers: list[Any] = [Mean(name="loss")]
    if args.get("metrics") or args.get("weighted_metrics"):
        trackers.append(CompileMetrics.from_model(model))
    model.__dict__["_compile_trackers"] = (args, trackers)
    return list(trackers)


class CompiledMetrics(list):
    """``model.compiled_metrics``: the ``(name, metric)`` pair of every reported quantity (a list, as onnxforge
    has always returned) with tf.keras 2's ``update_state(y, y_pred, sample_weight=None)``, kept as Keras 3 keeps
    it: deprecated, and updating ``model.metrics`` in Keras 3's way (see the module docstring).

    Example:
        >>> from onnxforge.metrics import Mean
        >>> class Holder:
        ...     metrics = [Mean(name="loss")]
        >>> shim = CompiledMetrics([], Holder())
        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     shim.update_state([[0.0]], [[2.0], [4.0]])
        >>> Holder.metrics[0].result()
        3.0
    """

    def __init__(self, pairs: list[tuple[str, Any]], model: Any):
        super().__init__(pairs)
        self._model = model

    def update_state(self, y: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Keras 3's deprecated shim: each ``Mean`` of ``model.metrics`` gets ``y_pred``, every other metric
        ``(y, y_pred)``; all of them ``sample_weight``."""
        warnings.warn("`model.compiled_metrics()` is deprecated. Instead, use e.g.:\n```\nfor metric in "
                      "self.metrics:\n    metric.update_state(y, y_pred)\n```\n", stacklevel=2)
        for metric in self._model.metrics:
            if isinstance(metric, Mean):
                metric.update_state(y_pred, sample_weight=sample_weight)
            else:
                metric.update_state(y, y_pred, sample_weight=sample_weight)


def listed_trackers(model: Any, trackers: list[tuple[str, Any]]) -> list[tuple[str, str, Any]] | None:
    """``(tracker, log name, metric)`` of what the compiled steps log for a model whose class lists its own
    ``metrics`` (keras.io's masked language model: ``[loss_tracker]``, a ``Mean`` named "loss" that its
    ``compute_loss`` updates): Keras's default ``compute_metrics`` returns ``{m.name: m.result()}`` for the
    metrics that property lists, so its compiled loss tracker is not logged and the listed one is, under its own
    name. ``None`` for a model that does not override ``metrics`` (everything tracked is logged)."""
    getter = getattr(getattr(type(model), "metrics", None), "fget", None)
    if getter is None or (getattr(getter, "__module__", None) or "").startswith("onnxforge."):
        return None
    try:
        listed = list(model.metrics)
    except Exception:   # noqa: BLE001 (a property of the user's that cannot answer yet: log everything)
        return None
    kept = [(name, listed_metric.name, metric) for name, metric in trackers for listed_metric in listed
            if listed_metric is metric]
    return kept or None


def keras_metrics_names(model: Any, metrics_overridden: bool = False) -> list[str]:
    """Keras 3's ``metrics_names`` (the names of its ``model.metrics``) for a compiled model: ``"loss"``, then
    ``"compile_metrics"`` (the one metric that holds everything ``compile(metrics=...)`` asked for) when there is
    any, then the per-output loss trackers, which Keras builds with its loss at the first step (so not before a
    step after ``compile()``), then what layers update. A model with its own ``train_step`` lists its trackers
    (``metrics_overridden``: its class defines its own ``metrics`` property, which Keras lists as it is)."""
    trackers = list(getattr(model, "_trackers", []))
    config = getattr(model, "_compiled_config", None)
    if model._has_custom_train_step():
        names = [metric.name for metric in model.metrics]
        if getattr(model, "compiled", False) and not metrics_overridden and "loss" not in names:
            names.insert(0, "loss")   # Keras's loss tracker exists with no compiled loss too
        return names
    if config is None:
        return [name for name, _ in trackers]
    from_config = {name for name, _ in config.trackers()}
    args = getattr(model, "_compile_args", None) or {}
    names = ["loss"]
    if args.get("metrics") or args.get("weighted_metrics"):
        names.append("compile_metrics")
    if config.per_output_losses and model.__dict__.get("_reported_for", False) is args:
        with_loss = {o.name for o in config.outputs if o.loss is not None}
        names += [f"{name}_loss" for name in config.loss_order if name in with_loss]
    return names + [name for name, _ in trackers if name not in from_config]
