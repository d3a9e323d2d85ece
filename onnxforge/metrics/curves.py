"""Metrics read off a curve of confusion counts over many thresholds: AUC, and the best sensitivity,
specificity, precision or recall subject to a constraint on the other.

Example:
    >>> import numpy as np
    >>> m = AUC(num_thresholds=3)
    >>> m.update_state(np.array([0, 0, 1, 1]), np.array([0, 0.5, 0.3, 0.9], np.float32))
    >>> m.result()
    0.75
    >>> m = SensitivityAtSpecificity(0.5)
    >>> m.update_state(np.array([0, 0, 0, 1, 1]), np.array([0, 0.3, 0.8, 0.3, 0.8], np.float32))
    >>> m.result()
    0.5
"""
from __future__ import annotations

__all__ = ["AUC", "SensitivitySpecificityBase", "SensitivityAtSpecificity", "SpecificityAtSensitivity",
           "PrecisionAtRecall", "RecallAtPrecision"]

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..graph import Value
from ..losses import EPSILON, elementwise
from .base import Metric, divide_no_nan
from .confusion import confusion_sums, evenly_spaced

_COUNTS = ("true_positives", "false_positives", "true_negatives", "false_negatives")


def _ratio32(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``divide_no_nan`` in float32, as Keras computes these curves (so a constraint like ``>= 0.5`` sees the
    same rounding)."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return np.divide(a, b, out=np.zeros(np.broadcast(a, b).shape, np.float32), where=b != 0)


class SensitivitySpecificityBase(Metric):
    """Counts at ``num_thresholds`` evenly spaced thresholds in [0, 1]; subclasses pick the best value of one
    rate where the other meets ``value``.

    Args:
        value: the constraint on the constrained rate, in [0, 1].
        num_thresholds: the number of thresholds (one threshold means 0.5).
        class_id: compute the metric for one class of a multi-class prediction.
        name, dtype: as in ``Metric``.
    """

    _direction = "up"
    _value_arg = "value"

    def __init__(self, value: float, num_thresholds: int = 200, class_id: int | None = None,
                 name: str | None = None, dtype: Any = None):
        super().__init__(name=name, dtype=dtype)
        if num_thresholds <= 0:
            raise ValueError("Argument `num_thresholds` must be an integer > 0. "
                             f"Received: num_thresholds={num_thresholds}")
        self.value = value
        self.class_id = class_id
        self.num_thresholds = num_thresholds
        if num_thresholds == 1:
            self.thresholds, self._evenly = [0.5], False
        else:
            inner = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
            self.thresholds, self._evenly = [0.0] + inner + [1.0], True

    @staticmethod
    def _check(value: float, arg: str) -> None:
        if value < 0 or value > 1:
            raise ValueError(f"Argument `{arg}` must be in the range [0, 1]. Received: {arg}={value}")

    def state_spec(self) -> list[tuple[str, tuple[int, ...]]]:
        return [(n, (len(self.thresholds),)) for n in _COUNTS]

    def batch_sums(self, y_true: Value, y_pred: Value, sample_weight: Value | None) -> list[Value]:
        sums = confusion_sums(y_true, y_pred, sample_weight, self.thresholds, class_id=self.class_id,
                              evenly=self._evenly)
        return [sums["tp"], sums["fp"], sums["tn"], sums["fn"]]

    def _rates(self, states: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        tp, fp, tn, fn = states
        return {"sensitivity": _ratio32(tp, np.asarray(tp) + fn), "specificity": _ratio32(tn, np.asarray(tn) + fp),
                "precision": _ratio32(tp, np.asarray(tp) + fp)}

    #: (constrained rate, maximized rate), names as in ``_rates``.
    _pair = ("specificity", "sensitivity")

    def result_from(self, states: Sequence[np.ndarray]) -> float:
        rates = self._rates(states)
        constrained, dependent = rates[self._pair[0]], rates[self._pair[1]]
        feasible = constrained >= np.float32(self.value)
        return float(np.max(np.where(feasible, dependent, np.float32(0.0)), initial=0.0))

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "class_id": self.class_id,
                "num_thresholds": self.num_thresholds, self._value_arg: self.value}


class SensitivityAtSpecificity(SensitivitySpecificityBase):
    """The best sensitivity (recall) over thresholds where the specificity is at least ``specificity``."""

    _value_arg = "specificity"
    _pair = ("specificity", "sensitivity")

    def __init__(self, specificity: float, num_thresholds: int = 200, class_id: int | None = None,
                 name: str | None = None, dtype: Any = None):
        self._check(specificity, "specificity")
        self.specificity = specificity
        super().__init__(specificity, num_thresholds=num_thresholds, class_id=class_id, name=name, dtype=dtype)


class SpecificityAtSensitivity(SensitivitySpecificityBase):
    """The best specificity over thresholds where the sensitivity is at least ``sensitivity``."""

    _value_arg = "sensitivity"
    _pair = ("sensitivity", "specificity")

    def __init__(self, sensitivity: float, num_thresholds: int = 200, class_id: int | None = None,
                 name: str | None = None, dtype: Any = None):
        self._check(sensitivity, "sensitivity")
        self.sensitivity = sensitivity
        super().__init__(sensitivity, num_thresholds=num_thresholds, class_id=class_id, name=name, dtype=dtype)


class PrecisionAtRecall(SensitivitySpecificityBase):
    """The best precision over thresholds where the recall is at least ``recall``."""

    _value_arg = "recall"
    _pair = ("sensitivity", "precision")

    def __init__(self, recall: float, num_thresholds: int = 200, class_id: int | None = None,
                 name: str | None = None, dtype: Any = None):
        self._check(recall, "recall")
        self.recall = recall
        super().__init__(recall, num_thresholds=num_thresholds, class_id=class_id, name=name, dtype=dtype)


class RecallAtPrecision(SensitivitySpecificityBase):
    """The best recall over thresholds where the precision is at least ``precision`` (0 if none reaches it)."""

    _value_arg = "precision"
    _pair = ("precision", "sensitivity")

    def __init__(self, precision: float, num_thresholds: int = 200, class_id: int | None = None,
                 name: str | None = None, dtype: Any = None):
        self._check(precision, "precision")
        self.precision = precision
        super().__init__(precision, num_thresholds=num_thresholds, class_id=class_id, name=name, dtype=dtype)


# ------------------------------------------------------------------------------------------ AUC
_CURVES = ("ROC", "PR", "PRGAIN")
_SUMMATIONS = ("interpolation", "minoring", "majoring")


class AUC(Metric):
    """Area under the ROC (default), PR or PR-gain curve, from counts at ``num_thresholds`` thresholds.

    Thresholds, state (true/false positives/negatives per threshold) and the Riemann sums follow Keras:
    ``[-1e-7, 1/(n-1), ..., (n-2)/(n-1), 1 + 1e-7]``; ``"interpolation"`` uses mid-point heights for ROC
    and Davis & Goadrich interpolation for PR; ``"minoring"``/``"majoring"`` use lower/upper heights.

    Args:
        num_thresholds: number of thresholds (> 1), default 200.
        curve: ``"ROC"``, ``"PR"`` or ``"PRGAIN"``.
        summation_method: ``"interpolation"``, ``"minoring"`` or ``"majoring"``.
        name, dtype: as in ``Metric``.
        thresholds: explicit thresholds in [0, 1] (the end points are added).
        multi_label: one curve per label (column of a 2D prediction), averaged; else every entry is one
            prediction of one curve.
        num_labels: the number of labels with ``multi_label`` (otherwise taken from the data).
        label_weights: weights of the labels: in the average of per-label areas with ``multi_label``,
            else in the counts.
        from_logits: apply a sigmoid to the predictions first.

    Example:
        >>> import numpy as np
        >>> m = AUC(multi_label=True, num_thresholds=3)
        >>> m.update_state(np.array([[0, 1], [1, 0]]), np.array([[0.2, 0.9], [0.8, 0.4]], np.float32))
        >>> m.result()
        1.0
    """

    _direction = "up"

    def __init__(self, num_thresholds: int = 200, curve: str = "ROC", summation_method: str = "interpolation",
                 name: str | None = None, dtype: Any = None, thresholds: Sequence[float] | None = None,
                 multi_label: bool = False, num_labels: int | None = None, label_weights: Any = None,
                 from_logits: bool = False):
        super().__init__(name=name, dtype=dtype)
        if str(curve).upper() not in _CURVES:
            raise ValueError(f'Invalid `curve` argument value "{curve}". Expected one of: {list(_CURVES)}. '
                             f"Received: curve={curve!r}")
        if str(summation_method).lower() not in _SUMMATIONS:
            raise ValueError(f'Invalid `summation_method` argument value "{summation_method}". Expected one of: '
                             f"{list(_SUMMATIONS)}. Received: summation_method={summation_method!r}")
        if not multi_label and num_labels:
            raise ValueError("`num_labels` is needed only when `multi_label` is True.")
        if thresholds is not None:
            inner = sorted(float(t) for t in thresholds)
            self.num_thresholds = len(inner) + 2
            self._evenly = evenly_spaced([0.0, *inner, 1.0])
        else:
            if num_thresholds <= 1:
                raise ValueError("Argument `num_thresholds` must be an integer > 1. "
                                 f"Received: num_thresholds={num_thresholds}")
            self.num_thresholds = num_thresholds
            inner = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
            self._evenly = True
        self._init_thresholds = thresholds
        self._thresholds = np.asarray([0.0 - EPSILON] + inner + [1.0 + EPSILON])
        self.curve = str(curve).upper()
        self.summation_method = str(summation_method).lower()
        self.multi_label = bool(multi_label)
        self.num_labels = num_labels
        self.label_weights = None if label_weights is None else np.asarray(label_weights, np.float32)
        self.from_logits = from_logits
        self._num_labels = num_labels

    @property
    def thresholds(self) -> list[float]:
        return list(self._thresholds)

    def state_spec(self) -> list[tuple[str, tuple[int, ...]]]:
        shape = (self.num_thresholds, self._num_labels or 0) if self.multi_label else (self.num_thresholds,)
        return [(n, shape) for n in _COUNTS]

    def batch_sums(self, y_true: Value, y_pred: Value, sample_weight: Value | None) -> list[Value]:
        if self.multi_label:
            if y_pred.shape is None or len(y_pred.shape) != 2:
                raise ValueError("`y_pred` must have rank 2 when `multi_label=True`. Found rank "
                                 f"{None if y_pred.shape is None else len(y_pred.shape)}. Full shape received for "
                                 f"`y_pred`: {y_pred.shape}")
            labels = y_pred.shape[-1]
            if not isinstance(labels, int):
                raise ValueError(f"AUC(multi_label=True) needs the number of labels: y_pred has shape {y_pred.shape}. "
                                 "Pass num_labels=... .")
            if self._num_labels not in (None, labels):
                raise ValueError(f"AUC {self.name!r} was built for {self._num_labels} labels (num_labels). Received "
                                 f"y_pred of shape {y_pred.shape}.")
            self._num_labels = labels
        if self.from_logits:
            y_pred = elementwise("Sigmoid", y_pred)
        sums = confusion_sums(y_true, y_pred, sample_weight, self._thresholds, evenly=self._evenly,
                              multi_label=self.multi_label,
                              label_weights=None if self.multi_label else self.label_weights)
        return [sums["tp"], sums["fp"], sums["tn"], sums["fn"]]

    def _average(self, by_label: np.ndarray) -> float:
        """One area per label -> their (label-weighted) mean, as Keras's multi-label AUC."""
        if self.label_weights is None:
            return float(np.mean(by_label))
        return divide_no_nan(np.sum(by_label * self.label_weights), np.sum(self.label_weights))

    def result_from(self, states: Sequence[np.ndarray]) -> float:
        tp, fp, tn, fn = (np.asarray(s, np.float64) for s in states)
        if tp.size == 0:
            return 0.0
        if self.curve == "PR" and self.summation_method == "interpolation":
            terms = _interpolated_pr_terms(tp, fp, fn)
        else:
            if self.curve == "ROC":
                x, y = divide_no_nan(fp, fp + tn), divide_no_nan(tp, tp + fn)
            elif self.curve == "PR":
                x, y = divide_no_nan(tp, tp + fn), divide_no_nan(tp, tp + fp)
            else:
                x, y = _pr_gain(tp, fp, tn, fn)
            if self.summation_method == "interpolation":
                heights = (y[:-1] + y[1:]) / 2.0
            elif self.summation_method == "minoring":
                heights = np.minimum(y[:-1], y[1:])
            else:
                heights = np.maximum(y[:-1], y[1:])
            terms = (x[:-1] - x[1:]) * heights
        if self.multi_label:
            return self._average(np.sum(terms, axis=0))
        return float(np.sum(terms))

    def get_config(self) -> dict[str, Any]:
        config = {"name": self.name, "dtype": self.dtype, "num_thresholds": self.num_thresholds, "curve": self.curve,
                  "summation_method": self.summation_method, "multi_label": self.multi_label,
                  "num_labels": self.num_labels,
                  "label_weights": None if self.label_weights is None else self.label_weights.tolist(),
                  "from_logits": self.from_logits}
        if self._init_thresholds is not None:
            config["thresholds"] = list(self._thresholds[1:-1])
        return config


def _pr_gain(tp: np.ndarray, fp: np.ndarray, tn: np.ndarray, fn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Recall gain and precision gain (Flach & Kull), with Keras's guards for undefined points."""
    scale = divide_no_nan(tp + fn, tn + fp)
    recall_gain = 1.0 - scale * divide_no_nan(fn, tp)
    precision_gain = 1.0 - scale * divide_no_nan(fp, tp)
    recall_gain = np.maximum(np.where(tp == 0.0, 0.0, recall_gain), 0.0)
    precision_gain = np.where(tp == 0.0, 1.0, precision_gain)
    return recall_gain, precision_gain


def _interpolated_pr_terms(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """Davis & Goadrich (2006) interpolation of the PR curve, as Keras's ``AUC.interpolate_pr_auc``: the
    area between consecutive thresholds (axis 0), per label when the counts have a label axis."""
    dtp = tp[:-1] - tp[1:]
    p = tp + fp
    dp = p[:-1] - p[1:]
    prec_slope = divide_no_nan(dtp, np.maximum(dp, 0))
    intercept = tp[1:] - prec_slope * p[1:]
    both = (p[:-1] > 0) & (p[1:] > 0)
    safe_p_ratio = np.where(both, divide_no_nan(p[:-1], np.maximum(p[1:], 0)), 1.0)
    with np.errstate(divide="ignore"):
        log_ratio = np.log(np.where(safe_p_ratio > 0, safe_p_ratio, 1.0))
    return np.asarray(divide_no_nan(prec_slope * (dtp + intercept * log_ratio), np.maximum(tp[1:] + fn[1:], 0)))
