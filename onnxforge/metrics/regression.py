"""Regression metrics: means of per-sample errors, the root mean squared error, cosine similarity, and R².

Example:
    >>> import numpy as np
    >>> m = RootMeanSquaredError()
    >>> m.update_state(np.array([[0.0, 1.0]]), np.array([[1.0, 1.0]], np.float32))
    >>> round(m.result(), 4)
    0.7071
"""
from __future__ import annotations

__all__ = [
    "MeanSquaredError", "MeanAbsoluteError", "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError",
    "RootMeanSquaredError", "CosineSimilarity", "LogCoshError", "R2Score", "cosine_similarity",
]

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx

from .. import losses as L
from ..graph import Value
from ..losses import _rank, cast, elementwise, expand_dims, reduce, squeeze_or_expand_to_same_rank
from .accuracy_metrics import eager
from .base import Mean, MeanMetricWrapper, Metric, divide_no_nan

_FLOAT = onnx.TensorProto.FLOAT


class _ErrorMean(MeanMetricWrapper):
    """The weighted mean of one of Keras's per-sample loss functions (config: ``name`` and ``dtype``)."""

    _direction = "down"
    _function: Callable[..., Any]
    _default_name: str

    def __init__(self, name: str | None = None, dtype: Any = None):
        super().__init__(type(self)._function, name=name or self._default_name, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


def _error_mean(fn: Callable[..., Any], class_name: str, default_name: str, doc: str,
                direction: str = "down") -> type[_ErrorMean]:
    def __init__(self: Any, name: str = default_name, dtype: Any = None) -> None:
        _ErrorMean.__init__(self, name=name, dtype=dtype)

    return type(class_name, (_ErrorMean,), {
        "__init__": __init__, "__doc__": doc, "__module__": __name__, "__qualname__": class_name,
        "_function": staticmethod(fn), "_default_name": default_name, "_direction": direction})


MeanSquaredError = _error_mean(L.mean_squared_error, "MeanSquaredError", "mean_squared_error",
                               "Weighted mean of ``mean(square(y_true - y_pred), axis=-1)``.")
MeanAbsoluteError = _error_mean(L.mean_absolute_error, "MeanAbsoluteError", "mean_absolute_error",
                                "Weighted mean of ``mean(abs(y_true - y_pred), axis=-1)``.")
MeanAbsolutePercentageError = _error_mean(
    L.mean_absolute_percentage_error, "MeanAbsolutePercentageError", "mean_absolute_percentage_error",
    "Weighted mean of ``100 * mean(abs((y_true - y_pred) / y_true), axis=-1)``.")
MeanSquaredLogarithmicError = _error_mean(
    L.mean_squared_logarithmic_error, "MeanSquaredLogarithmicError", "mean_squared_logarithmic_error",
    "Weighted mean of ``mean(square(log(y_pred + 1) - log(y_true + 1)), axis=-1)``.")
LogCoshError = _error_mean(L.log_cosh, "LogCoshError", "logcosh",
                           "Weighted mean of ``mean(log(cosh(y_pred - y_true)), axis=-1)``.")


@eager
def cosine_similarity(y_true: Value, y_pred: Value, axis: int = -1) -> Value:
    """Per-sample cosine similarity along ``axis`` (the metric form: 1 is perfect agreement)."""
    y_true, y_pred = squeeze_or_expand_to_same_rank(cast(y_true, y_pred.dtype), y_pred)
    product = elementwise("Mul", L.l2_normalize(y_true, axis), L.l2_normalize(y_pred, axis))
    return reduce("ReduceSum", product, axis)


class CosineSimilarity(MeanMetricWrapper):
    """Weighted mean of the cosine similarity between labels and predictions along ``axis``.

    Example:
        >>> import numpy as np
        >>> m = CosineSimilarity()
        >>> m.update_state(np.array([[0.0, 1.0], [1.0, 1.0]]), np.array([[1.0, 0.0], [1.0, 1.0]], np.float32))
        >>> round(m.result(), 4)
        0.5
    """

    _direction = "up"

    def __init__(self, name: str = "cosine_similarity", dtype: Any = None, axis: int = -1):
        super().__init__(cosine_similarity, name=name, dtype=dtype, axis=axis)
        self.axis = axis

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}   # Keras leaves ``axis`` out


class RootMeanSquaredError(Mean):
    """``sqrt`` of the weighted mean of squared errors (every entry, averaged per sample first)."""

    _direction = "down"

    def __init__(self, name: str = "root_mean_squared_error", dtype: Any = None):
        super().__init__(name=name, dtype=dtype)

    def batch_sums(self, y_true: Value, y_pred: Value, sample_weight: Value | None = None) -> list[Value]:
        y_true, y_pred = squeeze_or_expand_to_same_rank(cast(y_true, _FLOAT), cast(y_pred, _FLOAT))
        d = elementwise("Sub", y_pred, y_true)
        return super().batch_sums(elementwise("Mul", d, d), sample_weight)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        Metric.update_state(self, y_true, y_pred, sample_weight)

    def result_from(self, states: Sequence[np.ndarray]) -> float:
        return float(np.sqrt(divide_no_nan(states[0], states[1])))


class R2Score(Metric):
    """The coefficient of determination, per output column, aggregated as Keras does.

    Args:
        class_aggregation: ``"uniform_average"`` (default), ``"variance_weighted_average"`` or ``None``
            (one score per column).
        num_regressors: the number of independent variables, for the adjusted R² (0: plain R²).
        name, dtype: as in ``Metric``.

    Example:
        >>> import numpy as np
        >>> m = R2Score()
        >>> m.update_state(np.array([[1.0], [4.0], [3.0]]), np.array([[2.0], [4.0], [4.0]], np.float32))
        >>> round(m.result(), 4)
        0.5714
    """

    _direction = "up"
    _AGGREGATIONS = (None, "uniform_average", "variance_weighted_average")

    def __init__(self, class_aggregation: str | None = "uniform_average", num_regressors: int = 0,
                 name: str = "r2_score", dtype: Any = None):
        super().__init__(name=name, dtype=dtype)
        if class_aggregation not in self._AGGREGATIONS:
            raise ValueError("Invalid value for argument `class_aggregation`. Expected one of "
                             f"{self._AGGREGATIONS}. Received: class_aggregation={class_aggregation}")
        if num_regressors < 0:
            raise ValueError("Invalid value for argument `num_regressors`. Expected a value >= 0. "
                             f"Received: num_regressors={num_regressors}")
        self.class_aggregation = class_aggregation
        self.num_regressors = num_regressors
        self._columns: int | None = None

    def state_spec(self) -> list[tuple[str, tuple[int, ...]]]:
        c = (self._columns or 0,)
        return [("squared_sum", c), ("sum", c), ("residual", c), ("count", c), ("num_samples", ())]

    def batch_sums(self, y_true: Value, y_pred: Value, sample_weight: Value | None) -> list[Value]:
        b = y_pred.builder
        y_true, y_pred = squeeze_or_expand_to_same_rank(cast(y_true, _FLOAT), cast(y_pred, _FLOAT))
        if _rank(y_pred) != 2 or _rank(y_true) != 2:
            raise ValueError("R2Score expects 2D inputs with shape (batch_size, output_dim). Received input "
                             f"shapes: y_pred.shape={y_pred.shape} and y_true.shape={y_true.shape}.")
        if not isinstance(y_pred.shape[-1], int):
            raise ValueError("R2Score expects 2D inputs with shape (batch_size, output_dim), with output_dim fully "
                             f"defined (not None). Received input shapes: y_pred.shape={y_pred.shape} and "
                             f"y_true.shape={y_true.shape}.")
        self._columns = y_pred.shape[-1]
        if sample_weight is None:
            w = b.op("ConstantOfShape", [b.op("Shape", [y_true])],
                     value=onnx.helper.make_tensor("one", _FLOAT, [1], [1.0]))
        else:
            w = cast(sample_weight, _FLOAT)
            if _rank(w) == 1:
                w = expand_dims(w, 1)
            w = b.op("Expand", [w, b.op("Shape", [y_true])])
        weighted = elementwise("Mul", y_true, w)
        d = elementwise("Sub", y_true, y_pred)
        return [reduce("ReduceSum", elementwise("Mul", y_true, weighted), [0]),
                reduce("ReduceSum", weighted, [0]),
                reduce("ReduceSum", elementwise("Mul", elementwise("Mul", d, d), w), [0]),
                reduce("ReduceSum", w, [0]),
                cast(b.op("Size", [y_true], shape=()), _FLOAT)]

    def result_from(self, states: Sequence[np.ndarray]) -> Any:
        squared_sum, total_sum, residual, count, num_samples = (np.asarray(s, np.float64) for s in states)
        if squared_sum.size == 0:
            return 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = total_sum / count
            total = squared_sum - total_sum * mean
            raw = 1.0 - residual / total
        raw = np.where(np.isinf(raw), 0.0, raw)
        if self.class_aggregation == "uniform_average":
            score: Any = float(np.mean(raw))
        elif self.class_aggregation == "variance_weighted_average":
            with np.errstate(divide="ignore", invalid="ignore"):
                score = float(np.sum(total * raw) / np.sum(total))
        else:
            score = raw
        n, p = float(num_samples), float(self.num_regressors)
        if p != 0:
            if p > n - 1:
                warnings.warn("More independent predictors than datapoints in adjusted R2 score. Falling back to "
                              "standard R2 score.", stacklevel=2)
            elif p == n - 1:
                warnings.warn("Division by zero in Adjusted R2 score. Falling back to standard R2 score.",
                              stacklevel=2)
            else:
                score = 1.0 - (1.0 - np.asarray(score)) * (n - 1.0) / (n - p - 1.0)
                score = float(score) if np.ndim(score) == 0 else score
        return score

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "class_aggregation": self.class_aggregation,
                "num_regressors": self.num_regressors}
