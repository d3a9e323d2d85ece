"""Keras metrics, split the way a compiled program needs them.

A metric's state is a few tensors of *sums* (``total`` and ``count`` for a mean, true/false
positive counts per threshold for AUC). ``batch_sums(y_true, y_pred, sample_weight)`` emits graph ops
that compute one batch's contribution to each sum; the host adds them up across batches (in float64)
and ``result_from(states)`` turns them into the number Keras would report. The Keras stateful API
(``update_state``, ``result``, ``reset_state``) works on arrays too, by running the same ops eagerly.

Example:
    >>> import numpy as np
    >>> m = SparseCategoricalAccuracy()
    >>> m.update_state(np.array([2, 1]), np.array([[0.1, 0.6, 0.3], [0.05, 0.95, 0.0]], np.float32))
    >>> float(m.result())
    0.5
"""
from __future__ import annotations

__all__ = [
    "Metric", "Mean", "MeanMetricWrapper", "Accuracy", "BinaryAccuracy", "CategoricalAccuracy",
    "SparseCategoricalAccuracy", "TopKCategoricalAccuracy", "SparseTopKCategoricalAccuracy",
    "MeanSquaredError", "MeanAbsoluteError", "AUC", "Precision", "Recall",
    "accuracy", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
    "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy", "get", "resolve_accuracy",
]

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx

from . import losses as losses_module
from .graph import Value, np_dtype
from .metric_tracing import trace_aware
from .losses import (
    EPSILON, _is_symbolic, _rank, _snake, batch_size, cast, elementwise, expand_dims, reduce, run_eagerly,
    squeeze, squeeze_or_expand_to_same_rank,
)

_FLOAT = onnx.TensorProto.FLOAT
_INT64 = onnx.TensorProto.INT64
_BOOL = onnx.TensorProto.BOOL


# ------------------------------------------------------------------------------------------ base
class Metric:
    """A metric whose state is a list of sums, accumulated on the host.

    Subclasses define ``state_spec`` (names and shapes of the sums), ``batch_sums`` (graph ops) and
    ``result_from`` (host math).

    Args:
        name: the metric's name: its key in logs and ``History.history``.
        dtype: only ``None``/``"float32"``.
    """

    def __init_subclass__(cls, **kwargs: Any):
        # update_state / result inside a traced custom train_step record the tracker (metric_tracing).
        super().__init_subclass__(**kwargs)
        trace_aware(cls)

    def __init__(self, name: str | None = None, dtype: Any = None):
        self.name = name or _snake(type(self).__name__)
        if dtype not in (None, "float32", np.float32):
            raise ValueError(f"Only float32 metrics are supported. Received: dtype={dtype!r}")
        self._states: list[np.ndarray] | None = None

    # ---------------------------------------------------------------- graph side
    def state_spec(self) -> list[tuple[str, tuple[int, ...]]]:
        """``[(state name, shape), ...]`` of the sums this metric keeps."""
        raise NotImplementedError

    def batch_sums(self, y_true: Value, y_pred: Value, sample_weight: Value | None) -> list[Value]:
        """One batch's contribution to each state sum, as graph values (float32)."""
        raise NotImplementedError

    # ---------------------------------------------------------------- host side
    def result_from(self, states: Sequence[np.ndarray]) -> Any:
        """The metric value from accumulated state sums."""
        raise NotImplementedError

    def merge_state(self, states: Sequence[np.ndarray]) -> None:
        """Add a batch's (or several batches') sums to this metric's host state."""
        states = [np.asarray(s, np.float64) for s in states]
        self._states = states if self._states is None else [a + s for a, s in zip(self._states, states)]

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Keras's stateful update on arrays (runs this metric's ops once with onnxruntime)."""
        sums = run_eagerly(lambda t, p, w: self.batch_sums(t, p, w), y_true, y_pred, sample_weight)
        self.merge_state(sums)

    def result(self) -> Any:
        if self._states is None:
            return self.result_from([np.zeros(s, np.float64) for _, s in self.state_spec()])
        return self.result_from(self._states)

    def reset_state(self) -> None:
        self._states = None

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Metric:
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"


trace_aware(Metric)


def _divide_no_nan(x: Any, y: Any) -> Any:
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    out = np.divide(x, y, out=np.zeros(np.broadcast(x, y).shape), where=y != 0)
    return float(out) if out.shape == () else out


class MeanMetricWrapper(Metric):
    """The weighted mean of a per-sample function ``fn(y_true, y_pred, **kwargs)`` over all samples seen.

    States: ``total`` (sum of weighted values) and ``count`` (sum of weights, or number of samples).
    Values with more than one axis are first averaged over the non-batch axes, as Keras does.
    """

    def __init__(self, fn: Callable[..., Any], name: str | None = None, dtype: Any = None, **kwargs: Any):
        super().__init__(name=name or getattr(fn, "__name__", None), dtype=dtype)
        self._fn = fn
        self._fn_kwargs = kwargs

    def state_spec(self) -> list[tuple[str, tuple[int, ...]]]:
        return [("total", ()), ("count", ())]

    def batch_sums(self, y_true: Value, y_pred: Value, sample_weight: Value | None) -> list[Value]:
        values = cast(self._fn(y_true, y_pred, **self._fn_kwargs), _FLOAT)
        return mean_sums(values, sample_weight)

    def result_from(self, states: Sequence[np.ndarray]) -> float:
        return _divide_no_nan(states[0], states[1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self._fn_kwargs}


def mean_sums(values: Value, sample_weight: Value | None) -> list[Value]:
    """``[total, count]`` of Keras's weighted ``Mean`` over per-sample (or per-entry) ``values``."""
    b = values.builder
    if _rank(values) is None:
        # A user function's result of unknown rank: one row per sample, averaged per sample.
        rows = b.op("Reshape", [values, b.const(np.asarray([0, -1], np.int64))], shape=("batch", None))
        values = reduce("ReduceMean", rows, [1])
    if sample_weight is None:
        if _rank(values) and _rank(values) > 1:
            values = reduce("ReduceMean", values, list(range(1, _rank(values))))
        count = batch_size(values) if _rank(values) else b.const(np.asarray(1.0, np.float32))
        return [reduce("ReduceSum", values, None), count]
    w = cast(sample_weight, _FLOAT)
    values, w = squeeze_or_expand_to_same_rank(values, w)
    wn, vn = _rank(w), _rank(values)
    if vn > wn:
        values = reduce("ReduceMean", values, list(range(wn, vn)))
    w = b.op("Expand", [w, b.op("Shape", [values])], shape=values.shape)
    values = elementwise("Mul", values, w)
    if wn > 1:
        w = reduce("ReduceMean", w, list(range(1, wn)))
    if _rank(values) > 1:
        values = reduce("ReduceMean", values, list(range(1, _rank(values))))
    return [reduce("ReduceSum", values, None), reduce("ReduceSum", w, None)]


class Mean(Metric):
    """The weighted mean of values: Keras's ``Mean`` (the ``loss`` trackers are ``Mean`` metrics).

    Unlike the other metrics, ``batch_sums`` and ``update_state`` take ``(values, sample_weight)``.

    Example:
        >>> import numpy as np
        >>> m = Mean()
        >>> m.update_state(np.array([1.0, 3.0, 5.0, 7.0]), sample_weight=np.array([1.0, 1.0, 0.0, 0.0]))
        >>> m.result()
        2.0
    """

    def __init__(self, name: str = "mean", dtype: Any = None):
        super().__init__(name=name, dtype=dtype)

    def state_spec(self) -> list[tuple[str, tuple[int, ...]]]:
        return [("total", ()), ("count", ())]

    def batch_sums(self, values: Value, sample_weight: Value | None = None, _unused: Any = None) -> list[Value]:
        return mean_sums(cast(values, _FLOAT), sample_weight)

    def update_state(self, values: Any, sample_weight: Any = None) -> None:
        sums = run_eagerly(lambda v, w: self.batch_sums(v, w), values, sample_weight)
        self.merge_state(sums)

    def result_from(self, states: Sequence[np.ndarray]) -> float:
        return _divide_no_nan(states[0], states[1])


# ------------------------------------------------------------------------------------------ accuracy fns
def _eager(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(y_true: Any, y_pred: Any, **kwargs: Any) -> Any:
        if not _is_symbolic(y_true, y_pred):
            return run_eagerly(fn, y_true, y_pred, **kwargs)
        return fn(y_true, y_pred, **kwargs)

    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    return wrapper


def _as_float(b_value: Value) -> Value:
    return cast(b_value, _FLOAT)


@_eager
def accuracy(y_true: Value, y_pred: Value) -> Value:
    """1.0 where ``y_true == y_pred`` exactly (Keras ``Accuracy``)."""
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    y_true = cast(y_true, y_pred.dtype)
    return _as_float(y_pred.builder.op("Equal", [y_true, y_pred], shape=y_pred.shape))


@_eager
def binary_accuracy(y_true: Value, y_pred: Value, threshold: float = 0.5) -> Value:
    """1.0 where ``(y_pred > threshold) == y_true``."""
    b = y_pred.builder
    y_true = cast(y_true, y_pred.dtype)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    positive = cast(b.op("Greater", [y_pred, np.asarray(threshold, np_dtype(y_pred.dtype))]), y_pred.dtype)
    return _as_float(b.op("Equal", [y_true, positive], shape=y_pred.shape))


@_eager
def categorical_accuracy(y_true: Value, y_pred: Value) -> Value:
    """1.0 where ``argmax(y_true) == argmax(y_pred)`` (one-hot labels)."""
    b = y_pred.builder
    t = b.op("ArgMax", [y_true], axis=-1, keepdims=0)
    p = b.op("ArgMax", [y_pred], axis=-1, keepdims=0)
    return _as_float(b.op("Equal", [t, p], shape=None if y_pred.shape is None else y_pred.shape[:-1]))


@_eager
def sparse_categorical_accuracy(y_true: Value, y_pred: Value) -> Value:
    """1.0 where ``y_true == argmax(y_pred)`` (integer labels, shape (N,) or (N, 1))."""
    b = y_pred.builder
    if _rank(y_true) is not None and _rank(y_true) == _rank(y_pred) and y_true.shape[-1] == 1:
        y_true = squeeze(y_true, -1)
    p = b.op("ArgMax", [y_pred], axis=-1, keepdims=0)
    labels = y_true if y_true.dtype == _INT64 else cast(y_true, _INT64)
    return _as_float(b.op("Equal", [labels, p], shape=labels.shape))


@_eager
def sparse_top_k_categorical_accuracy(y_true: Value, y_pred: Value, k: int = 5) -> Value:
    """1.0 where the label's score is among the ``k`` largest (ties count in, like ``in_top_k``)."""
    b = y_pred.builder
    if _rank(y_true) is not None and _rank(y_true) == _rank(y_pred) and y_true.shape[-1] == 1:
        y_true = squeeze(y_true, -1)
    labels = expand_dims(cast(y_true, _INT64), -1)
    target = b.op("GatherElements", [y_pred, labels], axis=-1)
    above = cast(b.op("Greater", [y_pred, target]), _FLOAT)
    n_above = reduce("ReduceSum", above, -1)
    return _as_float(b.op("Less", [n_above, np.asarray(float(k), np.float32)], shape=y_true.shape))


@_eager
def top_k_categorical_accuracy(y_true: Value, y_pred: Value, k: int = 5) -> Value:
    """``sparse_top_k_categorical_accuracy`` with one-hot labels."""
    labels = y_pred.builder.op("ArgMax", [y_true], axis=-1, keepdims=0,
                               shape=None if y_true.shape is None else y_true.shape[:-1])
    return sparse_top_k_categorical_accuracy(labels, y_pred, k=k)


# ------------------------------------------------------------------------------------------ mean metrics
class Accuracy(MeanMetricWrapper):
    """How often predictions equal labels exactly."""

    def __init__(self, name: str = "accuracy", dtype: Any = None):
        super().__init__(accuracy, name=name, dtype=dtype)


class BinaryAccuracy(MeanMetricWrapper):
    """How often ``y_pred > threshold`` matches binary labels."""

    def __init__(self, name: str = "binary_accuracy", dtype: Any = None, threshold: float = 0.5):
        super().__init__(binary_accuracy, name=name, dtype=dtype, threshold=threshold)
        self.threshold = threshold


class CategoricalAccuracy(MeanMetricWrapper):
    """How often the arg-max of the prediction matches the one-hot label."""

    def __init__(self, name: str = "categorical_accuracy", dtype: Any = None):
        super().__init__(categorical_accuracy, name=name, dtype=dtype)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """How often the arg-max of the prediction matches the integer label."""

    def __init__(self, name: str = "sparse_categorical_accuracy", dtype: Any = None):
        super().__init__(sparse_categorical_accuracy, name=name, dtype=dtype)


class TopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the one-hot label is among the ``k`` top predictions."""

    def __init__(self, k: int = 5, name: str = "top_k_categorical_accuracy", dtype: Any = None):
        super().__init__(top_k_categorical_accuracy, name=name, dtype=dtype, k=k)
        self.k = k


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the integer label is among the ``k`` top predictions."""

    def __init__(self, k: int = 5, name: str = "sparse_top_k_categorical_accuracy", dtype: Any = None):
        super().__init__(sparse_top_k_categorical_accuracy, name=name, dtype=dtype, k=k)
        self.k = k


class MeanSquaredError(MeanMetricWrapper):
    """Weighted mean of ``mean(square(y_true - y_pred), axis=-1)``."""

    def __init__(self, name: str = "mean_squared_error", dtype: Any = None):
        super().__init__(losses_module.mean_squared_error, name=name, dtype=dtype)


class MeanAbsoluteError(MeanMetricWrapper):
    """Weighted mean of ``mean(abs(y_true - y_pred), axis=-1)``."""

    def __init__(self, name: str = "mean_absolute_error", dtype: Any = None):
        super().__init__(losses_module.mean_absolute_error, name=name, dtype=dtype)


# ------------------------------------------------------------------------------------------ confusion
def confusion_sums(y_true: Value, y_pred: Value, sample_weight: Value | None, thresholds: np.ndarray,
                   class_id: int | None = None, clip: bool = False) -> dict[str, Value]:
    """Weighted true/false positive/negative counts at each threshold (``y_pred > threshold`` is positive).

    Every entry of ``y_pred`` is one data point (Keras's non-multi-label behaviour); ``y_true`` counts
    as positive where it is non-zero. ``clip`` first clips the predictions to [0, 1], as Keras's bucketed
    path for evenly spaced thresholds does (a logit of 3 then misses AUC's last threshold, ``1 + 1e-7``,
    and a logit of -3 passes its first, ``-1e-7``). Returns ``{"tp", "fp", "tn", "fn"}``, each of shape (T,).
    """
    b = y_pred.builder
    y_true = cast(y_true, _FLOAT)
    y_pred = cast(y_pred, _FLOAT)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    if _rank(y_true) is not None and _rank(y_pred) is not None and _rank(y_true) != _rank(y_pred):
        raise ValueError("Confusion metrics (AUC, Precision, Recall) need labels shaped like the predictions "
                         f"(one 0/1 label per predicted probability). Received: y_true.shape={y_true.shape}, "
                         f"y_pred.shape={y_pred.shape}. For integer class labels, one-hot encode them or use "
                         "class_id with one-hot labels.")
    if class_id is not None:
        idx = b.const(np.asarray(class_id, np.int64))
        y_true = b.op("Gather", [y_true, idx], axis=-1)
        y_pred = b.op("Gather", [y_pred, idx], axis=-1)
    if clip:
        zero, one = b.const(np.asarray(0.0, np.float32)), b.const(np.asarray(1.0, np.float32))
        y_pred = b.op("Clip", [y_pred, zero, one])
    flat = b.const(np.asarray([1, -1], np.int64))
    preds = b.op("Reshape", [y_pred, flat])                                   # (1, M)
    labels = cast(cast(b.op("Reshape", [y_true, flat]), _BOOL), _FLOAT)       # (1, M)
    if sample_weight is not None:
        w = cast(sample_weight, _FLOAT)
        while _rank(w) is not None and _rank(y_pred) is not None and _rank(w) < _rank(y_pred):
            w = expand_dims(w, -1)
        w = b.op("Reshape", [b.op("Expand", [w, b.op("Shape", [y_pred])]), flat])
    else:
        w = b.op("ConstantOfShape", [b.op("Shape", [preds])],
                 value=onnx.helper.make_tensor("one", _FLOAT, [1], [1.0]))
    pos_w = b.op("Mul", [labels, w])
    neg_w = b.op("Mul", [b.op("Sub", [b.const(np.asarray(1.0, np.float32)), labels]), w])
    t = b.const(np.asarray(thresholds, np.float32).reshape(1, -1))
    above = cast(b.op("Greater", [b.op("Transpose", [preds], perm=[1, 0]), t]), _FLOAT)    # (M, T)
    row = b.const(np.asarray([-1], np.int64))
    # (1, M) @ (M, T): the weighted count of positives (negatives) predicted above each threshold.
    tp = b.op("Reshape", [b.op("MatMul", [pos_w, above]), row])
    fp = b.op("Reshape", [b.op("MatMul", [neg_w, above]), row])
    fn = b.op("Sub", [b.op("ReduceSum", [pos_w], keepdims=0), tp])
    tn = b.op("Sub", [b.op("ReduceSum", [neg_w], keepdims=0), fp])
    return {"tp": tp, "fp": fp, "tn": tn, "fn": fn}


def _thresholds(thresholds: Any, default: float = 0.5) -> tuple[np.ndarray, bool]:
    if thresholds is None:
        return np.asarray([default]), True
    listed = [thresholds] if isinstance(thresholds, (int, float)) else list(thresholds)
    invalid = [t for t in listed if t is None or t < 0 or t > 1]
    if invalid:   # Keras's message, listing the offending values
        raise ValueError(f"Threshold values must be in [0, 1]. Received: {invalid}")
    if isinstance(thresholds, (int, float)):
        return np.asarray([float(thresholds)]), True
    return np.asarray(list(thresholds), np.float64), False


def _evenly_spaced(thresholds: Sequence[float]) -> bool:
    """Keras's ``is_evenly_distributed_thresholds``: such thresholds take its bucketed (clipping) path."""
    t = np.asarray(thresholds, np.float64)
    if t.size < 3:
        return False
    return bool(np.allclose(t, np.arange(t.size, dtype=np.float32) / (t.size - 1), atol=EPSILON))


def _check_top_k(cls: str, top_k: Any) -> None:
    if top_k is not None:
        raise ValueError(f"{cls}(top_k=...) is not supported by onnxforge yet. Received: top_k={top_k!r}")


class Precision(Metric):
    """``tp / (tp + fp)`` at one threshold (default 0.5) or several.

    Args:
        thresholds: a float or a list of floats in [0, 1] (default 0.5). With a list the result is a list.
        top_k: not supported (must be ``None``).
        class_id: compute the metric for one class of a multi-class prediction.
        name, dtype: as in ``Metric``.
    """

    _kind = ("tp", "fp")

    def __init__(self, thresholds: Any = None, top_k: int | None = None, class_id: int | None = None,
                 name: str | None = None, dtype: Any = None):
        super().__init__(name=name, dtype=dtype)
        _check_top_k(type(self).__name__, top_k)
        self.init_thresholds = thresholds
        self.thresholds, self._scalar = _thresholds(thresholds)
        self.class_id = class_id

    def state_spec(self) -> list[tuple[str, tuple[int, ...]]]:
        names = {"tp": "true_positives", "fp": "false_positives", "fn": "false_negatives"}
        return [(names[k], (len(self.thresholds),)) for k in self._kind]

    def batch_sums(self, y_true: Value, y_pred: Value, sample_weight: Value | None) -> list[Value]:
        sums = confusion_sums(y_true, y_pred, sample_weight, self.thresholds, self.class_id,
                              clip=_evenly_spaced(self.thresholds))
        return [sums[k] for k in self._kind]

    def result_from(self, states: Sequence[np.ndarray]) -> Any:
        tp, other = states
        out = _divide_no_nan(tp, np.asarray(tp) + np.asarray(other))
        return float(np.asarray(out).reshape(-1)[0]) if self._scalar else np.asarray(out)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "thresholds": self.init_thresholds, "top_k": None, "class_id": self.class_id}


class Recall(Precision):
    """``tp / (tp + fn)`` at one threshold (default 0.5) or several (arguments as ``Precision``)."""

    _kind = ("tp", "fn")


class AUC(Metric):
    """Area under the ROC (default) or PR curve, from counts bucketed at ``num_thresholds`` thresholds.

    Thresholds, state (true/false positives/negatives per threshold) and the Riemann sums follow Keras:
    ``[-1e-7, 1/(n-1), ..., (n-2)/(n-1), 1 + 1e-7]``; ``"interpolation"`` uses mid-point heights for ROC
    and Davis & Goadrich interpolation for PR; ``"minoring"``/``"majoring"`` use lower/upper heights.

    Args:
        num_thresholds: number of thresholds (> 1), default 200.
        curve: ``"ROC"`` or ``"PR"``.
        summation_method: ``"interpolation"``, ``"minoring"`` or ``"majoring"``.
        name, dtype: as in ``Metric``.
        thresholds: explicit thresholds in [0, 1] (the end points are added).
        multi_label, num_labels, label_weights: only the defaults are supported.
        from_logits: apply a sigmoid to the predictions first.

    Example:
        >>> import numpy as np
        >>> m = AUC(num_thresholds=3)
        >>> m.update_state(np.array([0, 0, 1, 1]), np.array([0, 0.5, 0.3, 0.9], np.float32))
        >>> float(m.result())
        0.75
    """

    def __init__(self, num_thresholds: int = 200, curve: str = "ROC", summation_method: str = "interpolation",
                 name: str | None = None, dtype: Any = None, thresholds: Sequence[float] | None = None,
                 multi_label: bool = False, num_labels: int | None = None, label_weights: Any = None,
                 from_logits: bool = False):
        super().__init__(name=name, dtype=dtype)
        if str(curve).upper() not in ("ROC", "PR"):
            raise ValueError(f'Invalid `curve` argument value "{curve}". Expected one of: [\'ROC\', \'PR\']. '
                             f"Received: curve={curve!r}")
        if str(summation_method).lower() not in ("interpolation", "minoring", "majoring"):
            raise ValueError(f'Invalid `summation_method` argument value "{summation_method}". Expected one of: '
                             f"['interpolation', 'minoring', 'majoring']. Received: summation_method="
                             f"{summation_method!r}")
        if multi_label or num_labels is not None or label_weights is not None:
            raise ValueError("AUC(multi_label=True / num_labels / label_weights) is not supported by onnxforge "
                             f"yet. Received: multi_label={multi_label!r}, num_labels={num_labels!r}, "
                             f"label_weights={label_weights!r}")
        if thresholds is not None:
            inner = sorted(float(t) for t in thresholds)
            self.num_thresholds = len(inner) + 2
        else:
            if num_thresholds <= 1:
                raise ValueError("Argument `num_thresholds` must be an integer > 1. "
                                 f"Received: num_thresholds={num_thresholds}")
            self.num_thresholds = num_thresholds
            inner = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
        self._init_thresholds = thresholds
        self.thresholds = np.asarray([0.0 - EPSILON] + inner + [1.0 + EPSILON])
        self.curve = str(curve).upper()
        self.summation_method = str(summation_method).lower()
        self.from_logits = from_logits

    def state_spec(self) -> list[tuple[str, tuple[int, ...]]]:
        n = (self.num_thresholds,)
        return [("true_positives", n), ("false_positives", n), ("true_negatives", n), ("false_negatives", n)]

    def batch_sums(self, y_true: Value, y_pred: Value, sample_weight: Value | None) -> list[Value]:
        if self.from_logits:
            y_pred = elementwise("Sigmoid", y_pred)
        inner = list(self.thresholds[1:-1])
        sums = confusion_sums(y_true, y_pred, sample_weight, self.thresholds, clip=_evenly_spaced([0.0, *inner, 1.0]))
        return [sums["tp"], sums["fp"], sums["tn"], sums["fn"]]

    def result_from(self, states: Sequence[np.ndarray]) -> float:
        tp, fp, tn, fn = (np.asarray(s, np.float64) for s in states)
        if self.curve == "PR" and self.summation_method == "interpolation":
            return _interpolate_pr_auc(tp, fp, fn)
        recall = _divide_no_nan(tp, tp + fn)
        if self.curve == "ROC":
            x, y = _divide_no_nan(fp, fp + tn), recall
        else:
            x, y = recall, _divide_no_nan(tp, tp + fp)
        if self.summation_method == "interpolation":
            heights = (y[:-1] + y[1:]) / 2.0
        elif self.summation_method == "minoring":
            heights = np.minimum(y[:-1], y[1:])
        else:
            heights = np.maximum(y[:-1], y[1:])
        return float(np.sum((x[:-1] - x[1:]) * heights))

    def get_config(self) -> dict[str, Any]:
        config = {"name": self.name, "num_thresholds": self.num_thresholds, "curve": self.curve,
                  "summation_method": self.summation_method, "from_logits": self.from_logits}
        if self._init_thresholds is not None:
            config["thresholds"] = list(self.thresholds[1:-1])
        return config


def _interpolate_pr_auc(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> float:
    """Davis & Goadrich (2006) interpolation of the PR curve, as in Keras's ``AUC.interpolate_pr_auc``."""
    dtp = tp[:-1] - tp[1:]
    p = tp + fp
    dp = p[:-1] - p[1:]
    prec_slope = _divide_no_nan(dtp, np.maximum(dp, 0))
    intercept = tp[1:] - prec_slope * p[1:]
    both = (p[:-1] > 0) & (p[1:] > 0)
    safe_p_ratio = np.where(both, _divide_no_nan(p[:-1], np.maximum(p[1:], 0)), 1.0)
    with np.errstate(divide="ignore"):
        log_ratio = np.log(np.where(safe_p_ratio > 0, safe_p_ratio, 1.0))
    increment = _divide_no_nan(prec_slope * (dtp + intercept * log_ratio), np.maximum(tp[1:] + fn[1:], 0))
    return float(np.sum(increment))


# ------------------------------------------------------------------------------------------ lookup
_CLASSES: dict[str, type[Metric]] = {
    c.__name__: c for c in (Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
                            TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy, MeanSquaredError,
                            MeanAbsoluteError, AUC, Precision, Recall)
}
#: String identifiers accepted by ``get`` (``"accuracy"``/``"acc"`` are resolved by ``resolve_accuracy``
#: at compile time, as Keras does).
ALIASES: dict[str, Callable[[], Metric]] = {
    "binary_accuracy": BinaryAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError, "MSE": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError, "MAE": MeanAbsoluteError,
    "auc": AUC, "precision": Precision, "recall": Recall,
    **_CLASSES,
}
_LOSS_METRICS = ("sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy",
                 "huber")
_FUNCTIONS: dict[Callable[..., Any], Callable[[], Metric]] = {
    binary_accuracy: BinaryAccuracy, categorical_accuracy: CategoricalAccuracy,
    sparse_categorical_accuracy: SparseCategoricalAccuracy, top_k_categorical_accuracy: TopKCategoricalAccuracy,
    sparse_top_k_categorical_accuracy: SparseTopKCategoricalAccuracy, accuracy: Accuracy,
    losses_module.mean_squared_error: MeanSquaredError, losses_module.mean_absolute_error: MeanAbsoluteError,
}


def get(identifier: Any, argument: str = "metrics") -> Metric:
    """A ``Metric`` from a name, a class, a config dict, a per-sample function, or a ``Metric`` (as is).

    Loss names (``"binary_crossentropy"``, ...) give the weighted mean of that loss, as in Keras.

    Example:
        >>> get("mae").name
        'mean_absolute_error'
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        if identifier in ALIASES:
            return ALIASES[identifier]()
        if identifier in _LOSS_METRICS:
            fn = getattr(losses_module, identifier)
            return MeanMetricWrapper(fn, name=identifier)
        if identifier.lower() in ("accuracy", "acc"):
            return Accuracy(name=identifier)
        valid = sorted(set(ALIASES) | set(_LOSS_METRICS) | {"accuracy", "acc"})
        raise ValueError(f"Unknown metric for argument `{argument}`: {identifier!r}. Valid choices are: {valid} "
                         f"(or a Metric object or a function fn(y_true, y_pred)). Received: {argument}="
                         f"{identifier!r}")
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if isinstance(identifier, dict) and "class_name" in identifier:
        cls = _CLASSES.get(identifier["class_name"])
        if cls is None:
            raise ValueError(f"Unknown metric class {identifier['class_name']!r} for argument `{argument}`. "
                             f"Valid choices are: {sorted(_CLASSES)}.")
        return cls.from_config(identifier.get("config", {}))
    if identifier in _FUNCTIONS:
        return _FUNCTIONS[identifier]()
    if isinstance(identifier, losses_module.Loss):
        loss = identifier

        def per_sample(y_true: Value, y_pred: Value) -> Value:
            out = loss.call(y_true, y_pred)
            return out[0] if isinstance(out, tuple) else out

        return MeanMetricWrapper(per_sample, name=loss.name)
    if callable(identifier):
        return MeanMetricWrapper(identifier)
    raise ValueError(f"Could not interpret metric identifier for argument `{argument}`. "
                     f"Received: {argument}={identifier!r}")


def resolve_accuracy(identifier: str, output_last_dim: Any, sparse_labels: bool) -> Metric:
    """Keras's convenience: ``"accuracy"``/``"acc"`` become binary, sparse categorical or categorical
    accuracy. Binary when the output has one unit; sparse when the labels are class indices (the loss is
    a sparse crossentropy); categorical otherwise. The metric keeps the name it was asked by.

    Example:
        >>> type(resolve_accuracy("accuracy", 10, sparse_labels=True)).__name__
        'SparseCategoricalAccuracy'
    """
    if output_last_dim == 1:
        return BinaryAccuracy(name=identifier)
    if sparse_labels:
        return SparseCategoricalAccuracy(name=identifier)
    return CategoricalAccuracy(name=identifier)
