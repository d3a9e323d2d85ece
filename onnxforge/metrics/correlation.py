"""Correlation metrics: per-sample Pearson and concordance correlation along an axis, averaged.

Keras computes both for each sample along ``axis`` (the last by default) and reports their weighted
mean, so a prediction with one value per sample has no defined correlation (Keras returns NaN too).

Example:
    >>> import numpy as np
    >>> m = PearsonCorrelation()
    >>> m.update_state(np.array([[1.0, 2.0, 3.0]]), np.array([[2.0, 4.0, 7.0]], np.float32))
    >>> round(m.result(), 4)
    0.9934
"""
from __future__ import annotations

__all__ = ["PearsonCorrelation", "ConcordanceCorrelation", "pearson_correlation", "concordance_correlation"]

from typing import Any

from ..graph import Value
from ..losses import EPSILON, _f, cast, elementwise, reduce, squeeze_or_expand_to_same_rank
from .accuracy_metrics import eager
from .base import MeanMetricWrapper


def _centered(x: Value, axis: int) -> Value:
    return elementwise("Sub", x, reduce("ReduceMean", x, axis, keepdims=True))


def _variance(x: Value, axis: int) -> Value:
    """The population variance along ``axis``, kept as a length-1 axis."""
    d = _centered(x, axis)
    return reduce("ReduceMean", elementwise("Mul", d, d), axis, keepdims=True)


@eager
def pearson_correlation(y_true: Value, y_pred: Value, axis: int = -1) -> Value:
    """Per-sample Pearson correlation coefficient along ``axis``."""
    y_true, y_pred = squeeze_or_expand_to_same_rank(cast(y_true, y_pred.dtype), y_pred)
    t, p = _centered(y_true, axis), _centered(y_pred, axis)
    t = elementwise("Div", t, elementwise("Sqrt", _variance(t, axis)))
    p = elementwise("Div", p, elementwise("Sqrt", _variance(p, axis)))
    return reduce("ReduceMean", elementwise("Mul", t, p), axis)


@eager
def concordance_correlation(y_true: Value, y_pred: Value, axis: int = -1) -> Value:
    """Per-sample concordance correlation coefficient along ``axis`` (Keras's formula, which centres both
    factors of the covariance on the prediction's mean)."""
    y_true, y_pred = squeeze_or_expand_to_same_rank(cast(y_true, y_pred.dtype), y_pred)
    t_mean = reduce("ReduceMean", y_true, axis, keepdims=True)
    p_mean = reduce("ReduceMean", y_pred, axis, keepdims=True)
    covar = elementwise("Mul", elementwise("Sub", y_true, p_mean), elementwise("Sub", y_pred, p_mean))
    gap = elementwise("Sub", t_mean, p_mean)
    norm = elementwise("Add", elementwise("Add", _variance(_centered(y_true, axis), axis),
                                          _variance(_centered(y_pred, axis), axis)), elementwise("Mul", gap, gap))
    ratio = elementwise("Div", elementwise("Mul", covar, _f(covar, 2.0)),
                        elementwise("Add", norm, _f(norm, EPSILON)))
    return reduce("ReduceMean", ratio, axis)


class PearsonCorrelation(MeanMetricWrapper):
    """Weighted mean of the per-sample Pearson correlation along ``axis``."""

    _direction = "up"

    def __init__(self, name: str = "pearson_correlation", dtype: Any = None, axis: int = -1):
        super().__init__(pearson_correlation, name=name, dtype=dtype, axis=axis)
        self.axis = axis


class ConcordanceCorrelation(MeanMetricWrapper):
    """Weighted mean of the per-sample concordance correlation along ``axis``."""

    _direction = "up"

    def __init__(self, name: str = "concordance_correlation", dtype: Any = None, axis: int = -1):
        super().__init__(concordance_correlation, name=name, dtype=dtype, axis=axis)
        self.axis = axis
