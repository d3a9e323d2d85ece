"""F-beta and F1 scores over one-hot (or multi-label) targets, per class or averaged.

Example:
    >>> import numpy as np
    >>> m = F1Score(threshold=0.5)
    >>> m.update_state(np.array([[1, 1, 1], [1, 0, 0], [1, 1, 0]]),
    ...                np.array([[0.2, 0.6, 0.7], [0.2, 0.6, 0.6], [0.6, 0.8, 0.0]], np.float32))
    >>> [round(float(v), 4) for v in m.result()]
    [0.5, 0.8, 0.6667]
"""
from __future__ import annotations

__all__ = ["FBetaScore", "F1Score"]

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx

from ..graph import Value
from ..losses import EPSILON, _rank, cast, elementwise, expand_dims, reduce
from .base import Metric

_FLOAT = onnx.TensorProto.FLOAT
_AVERAGES = (None, "micro", "macro", "weighted")


class FBetaScore(Metric):
    """``(1 + beta^2) * precision * recall / (beta^2 * precision + recall)`` over 2D targets.

    Args:
        average: ``None`` (one score per class), ``"micro"`` (global counts), ``"macro"`` (unweighted mean
            of class scores) or ``"weighted"`` (mean weighted by each class's number of true instances).
        beta: the weight of recall against precision (> 0).
        threshold: predictions above it are positive; ``None``: each row's largest score is.
        name, dtype: as in ``Metric``.
    """

    _direction = "up"

    def __init__(self, average: str | None = None, beta: float = 1.0, threshold: float | None = None,
                 name: str = "fbeta_score", dtype: Any = None):
        super().__init__(name=name, dtype=dtype)
        if average not in _AVERAGES:
            raise ValueError("Invalid `average` argument value. Expected one of: "
                             f"{{None, 'micro', 'macro', 'weighted'}}. Received: average={average}")
        if not isinstance(beta, float):
            raise ValueError(f"Invalid `beta` argument value. It should be a Python float. Received: beta={beta} "
                             f"of type '{type(beta)}'")
        if beta <= 0.0:
            raise ValueError(f"Invalid `beta` argument value. It should be > 0. Received: beta={beta}")
        if threshold is not None:
            if not isinstance(threshold, float):
                raise ValueError("Invalid `threshold` argument value. It should be a Python float. "
                                 f"Received: threshold={threshold} of type '{type(threshold)}'")
            if threshold > 1.0 or threshold <= 0.0:
                raise ValueError("Invalid `threshold` argument value. It should verify 0 < threshold <= 1. "
                                 f"Received: threshold={threshold}")
        self.average, self.beta, self.threshold = average, beta, threshold
        self._classes: int | None = None

    def state_spec(self) -> list[tuple[str, tuple[int, ...]]]:
        shape = () if self.average == "micro" else (self._classes or 0,)
        return [(n, shape) for n in ("true_positives", "false_positives", "false_negatives", "intermediate_weights")]

    def batch_sums(self, y_true: Value, y_pred: Value, sample_weight: Value | None) -> list[Value]:
        b = y_pred.builder
        if _rank(y_pred) != 2 or _rank(y_true) != 2:
            raise ValueError("FBetaScore expects 2D inputs with shape (batch_size, output_dim). Received input "
                             f"shapes: y_pred.shape={y_pred.shape} and y_true.shape={y_true.shape}.")
        if not isinstance(y_pred.shape[-1], int):
            raise ValueError("FBetaScore expects 2D inputs with shape (batch_size, output_dim), with output_dim fully "
                             f"defined (not None). Received input shapes: y_pred.shape={y_pred.shape} and "
                             f"y_true.shape={y_true.shape}.")
        self._classes = y_pred.shape[-1]
        y_true, y_pred = cast(y_true, _FLOAT), cast(y_pred, _FLOAT)
        if self.threshold is None:
            top = reduce("ReduceMax", y_pred, [-1], keepdims=True)
            # The row's largest score is positive, unless it is 0 (an all-zero row stays all negative).
            positive = b.op("And", [b.op("GreaterOrEqual", [y_pred, top]),
                                    b.op("Greater", [elementwise("Abs", y_pred), np.asarray(1e-9, np.float32)])])
        else:
            positive = b.op("Greater", [y_pred, np.asarray(self.threshold, np.float32)])
        pred = cast(positive, _FLOAT)
        pred.shape = y_pred.shape
        axes = None if self.average == "micro" else [0]
        w = None if sample_weight is None else expand_dims(cast(sample_weight, _FLOAT), 1)

        def total(v: Value) -> Value:
            return reduce("ReduceSum", v if w is None else elementwise("Mul", v, w), axes)

        one_minus_t = elementwise("Sub", np.asarray(1.0, np.float32), y_true, shape=y_true.shape)
        one_minus_p = elementwise("Sub", np.asarray(1.0, np.float32), pred, shape=pred.shape)
        return [total(elementwise("Mul", pred, y_true)), total(elementwise("Mul", pred, one_minus_t)),
                total(elementwise("Mul", one_minus_p, y_true)), total(y_true)]

    def result_from(self, states: Sequence[np.ndarray]) -> Any:
        # Keras computes the score in float32 with epsilon guards; so do we.
        tp, fp, fn, support = (np.asarray(s, np.float32) for s in states)
        eps = np.float32(EPSILON)
        precision = tp / (tp + fp + eps)
        recall = tp / (tp + fn + eps)
        beta2 = np.float32(self.beta ** 2)
        score = precision * recall / (beta2 * precision + recall + eps) * (np.float32(1.0) + beta2)
        if self.average == "weighted":
            score = np.sum(score * (support / (np.sum(support) + eps)))
        elif self.average is not None:
            score = np.mean(score)
        return float(score) if np.ndim(score) == 0 else np.asarray(score)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "average": self.average, "beta": self.beta,
                "threshold": self.threshold}


class F1Score(FBetaScore):
    """The harmonic mean of precision and recall (``FBetaScore`` with ``beta=1``).

    Args:
        average, threshold, name, dtype: as in ``FBetaScore``.
    """

    def __init__(self, average: str | None = None, threshold: float | None = None, name: str = "f1_score",
                 dtype: Any = None):
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["beta"]
        return config
