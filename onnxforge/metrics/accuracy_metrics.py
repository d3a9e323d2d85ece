"""Accuracy metrics: per-sample hit functions (graph ops, or eager on arrays) and their mean metrics.

Example:
    >>> import numpy as np
    >>> m = SparseCategoricalAccuracy()
    >>> m.update_state(np.array([2, 1]), np.array([[0.1, 0.6, 0.3], [0.05, 0.95, 0.0]], np.float32))
    >>> m.result()
    0.5
"""
from __future__ import annotations

__all__ = [
    "Accuracy", "BinaryAccuracy", "CategoricalAccuracy", "SparseCategoricalAccuracy", "TopKCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy", "accuracy", "binary_accuracy", "categorical_accuracy",
    "sparse_categorical_accuracy", "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy", "eager",
]

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx

from ..graph import Value, np_dtype
from ..losses import (
    _is_symbolic, _rank, cast, reduce, run_eagerly, squeeze, squeeze_or_expand_to_same_rank,
)
from .base import MeanMetricWrapper

_FLOAT = onnx.TensorProto.FLOAT
_INT64 = onnx.TensorProto.INT64


def eager(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Let a graph function of ``(y_true, y_pred)`` also take arrays (run once with onnxruntime)."""
    def wrapper(y_true: Any, y_pred: Any, **kwargs: Any) -> Any:
        if not _is_symbolic(y_true, y_pred):
            return run_eagerly(fn, y_true, y_pred, **kwargs)
        if not isinstance(y_true, Value):
            y_true = y_pred.builder.const(np.asarray(y_true))
        return fn(y_true, y_pred, **kwargs)

    wrapper.__name__, wrapper.__qualname__, wrapper.__doc__ = fn.__name__, fn.__qualname__, fn.__doc__
    wrapper.__wrapped__ = fn
    return wrapper


def _hits(b_value: Value) -> Value:
    return cast(b_value, _FLOAT)


def _flat_rows(y_pred: Value) -> Value:
    """``y_pred`` as (samples, classes) rows (Keras flattens sequence outputs for the top-k metrics)."""
    if _rank(y_pred) is not None and _rank(y_pred) > 2:
        return y_pred.builder.op("Flatten", [y_pred], axis=_rank(y_pred) - 1, shape=(None, y_pred.shape[-1]))
    return y_pred


@eager
def accuracy(y_true: Value, y_pred: Value) -> Value:
    """1.0 where ``y_true == y_pred`` exactly (Keras ``Accuracy``)."""
    y_true, y_pred = squeeze_or_expand_to_same_rank(cast(y_true, y_pred.dtype), y_pred)
    return _hits(y_pred.builder.op("Equal", [y_true, y_pred], shape=y_pred.shape))


@eager
def binary_accuracy(y_true: Value, y_pred: Value, threshold: float = 0.5) -> Value:
    """1.0 where ``(y_pred > threshold) == y_true``."""
    b = y_pred.builder
    y_true = cast(y_true, y_pred.dtype)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    positive = cast(b.op("Greater", [y_pred, np.asarray(threshold, np_dtype(y_pred.dtype))]), y_pred.dtype)
    return _hits(b.op("Equal", [y_true, positive], shape=y_pred.shape))


@eager
def categorical_accuracy(y_true: Value, y_pred: Value) -> Value:
    """1.0 where ``argmax(y_true) == argmax(y_pred)`` (one-hot labels)."""
    b = y_pred.builder
    t = b.op("ArgMax", [y_true], axis=-1, keepdims=0)
    p = b.op("ArgMax", [y_pred], axis=-1, keepdims=0)
    return _hits(b.op("Equal", [t, p], shape=None if y_pred.shape is None else y_pred.shape[:-1]))


@eager
def sparse_categorical_accuracy(y_true: Value, y_pred: Value) -> Value:
    """1.0 where ``y_true == argmax(y_pred)`` (integer labels, shape (N,) or (N, 1); compared as floats,
    as Keras does)."""
    b = y_pred.builder
    if _rank(y_true) is not None and _rank(y_true) == _rank(y_pred) and y_true.shape[-1] == 1:
        y_true = squeeze(y_true, -1)
    p = cast(b.op("ArgMax", [y_pred], axis=-1, keepdims=0), _FLOAT)
    hits = _hits(b.op("Equal", [cast(y_true, _FLOAT), p], shape=y_true.shape))
    if _rank(hits) is not None and _rank(hits) > 1 and hits.shape[-1] == 1:
        hits = squeeze(hits, -1)
    return hits


@eager
def sparse_top_k_categorical_accuracy(y_true: Value, y_pred: Value, k: int = 5, from_sorted_ids: bool = False
                                      ) -> Value:
    """1.0 where the label's score is among the ``k`` largest (ties count in, like ``in_top_k``).

    With ``from_sorted_ids=True``, ``y_pred`` holds class ids sorted by score and a hit is a label among
    its first ``k`` entries.
    """
    b = y_pred.builder
    shape = y_true.shape
    if _rank(y_true) is not None and _rank(y_true) == _rank(y_pred) and y_true.shape[-1] == 1:
        y_true = squeeze(y_true, -1)
        shape = y_true.shape
    rows = _flat_rows(y_pred)
    labels = b.op("Reshape", [cast(y_true, _INT64), b.const(np.asarray([-1, 1], np.int64))], shape=(None, 1))
    if from_sorted_ids:
        top = b.op("Slice", [rows, b.const(np.asarray([0], np.int64)), b.const(np.asarray([k], np.int64)),
                             b.const(np.asarray([1], np.int64))])
        match = cast(b.op("Equal", [cast(top, _INT64), labels]), _FLOAT)
        hits = b.op("Greater", [reduce("ReduceMax", match, [-1]), np.asarray(0.0, np.float32)])
    else:
        target = b.op("GatherElements", [rows, labels], axis=-1)
        n_above = reduce("ReduceSum", cast(b.op("Greater", [rows, target]), _FLOAT), [-1])
        hits = b.op("Less", [n_above, np.asarray(float(k), np.float32)])
    hits = _hits(hits)
    if shape is not None and len(shape) != 1:
        hits = b.op("Reshape", [hits, b.op("Shape", [y_true])], shape=shape)
    else:
        hits.shape = shape
    return hits


@eager
def top_k_categorical_accuracy(y_true: Value, y_pred: Value, k: int = 5) -> Value:
    """``sparse_top_k_categorical_accuracy`` with one-hot labels."""
    labels = y_pred.builder.op("ArgMax", [y_true], axis=-1, keepdims=0,
                               shape=None if y_true.shape is None else y_true.shape[:-1])
    return sparse_top_k_categorical_accuracy.__wrapped__(labels, y_pred, k=k)


# ------------------------------------------------------------------------------------------ mean metrics
class Accuracy(MeanMetricWrapper):
    """How often predictions equal labels exactly."""

    _direction = "up"

    def __init__(self, name: str = "accuracy", dtype: Any = None):
        super().__init__(accuracy, name=name, dtype=dtype)


class BinaryAccuracy(MeanMetricWrapper):
    """How often ``y_pred > threshold`` matches binary labels."""

    _direction = "up"

    def __init__(self, name: str = "binary_accuracy", dtype: Any = None, threshold: float = 0.5):
        super().__init__(binary_accuracy, name=name, dtype=dtype, threshold=threshold)
        self.threshold = threshold


class CategoricalAccuracy(MeanMetricWrapper):
    """How often the arg-max of the prediction matches the one-hot label."""

    _direction = "up"

    def __init__(self, name: str = "categorical_accuracy", dtype: Any = None):
        super().__init__(categorical_accuracy, name=name, dtype=dtype)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """How often the arg-max of the prediction matches the integer label."""

    _direction = "up"
    #: The targets are class ids (the compiler feeds them as int64 of the output's shape minus its last axis).
    sparse_labels = True

    def __init__(self, name: str = "sparse_categorical_accuracy", dtype: Any = None):
        super().__init__(sparse_categorical_accuracy, name=name, dtype=dtype)


class TopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the one-hot label is among the ``k`` top predictions."""

    _direction = "up"

    def __init__(self, k: int = 5, name: str = "top_k_categorical_accuracy", dtype: Any = None):
        super().__init__(top_k_categorical_accuracy, name=name, dtype=dtype, k=k)
        self.k = k


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the integer label is among the ``k`` top predictions (or, with ``from_sorted_ids=True``,
    among the first ``k`` of the sorted class ids in ``y_pred``)."""

    _direction = "up"
    sparse_labels = True

    def __init__(self, k: int = 5, name: str = "sparse_top_k_categorical_accuracy", dtype: Any = None,
                 from_sorted_ids: bool = False):
        super().__init__(sparse_top_k_categorical_accuracy, name=name, dtype=dtype, k=k,
                         from_sorted_ids=from_sorted_ids)
        self.k = k
        self.from_sorted_ids = from_sorted_ids

    def get_config(self) -> dict[str, Any]:
        config = {"name": self.name, "dtype": self.dtype, "k": self.k}
        if self.from_sorted_ids:   # Keras writes it only when set
            config["from_sorted_ids"] = True
        return config
