"""Confusion-matrix counts at thresholds, and the metrics read straight off them.

``confusion_sums`` is Keras's ``update_confusion_matrix_variables`` as graph ops: each entry of ``y_pred``
is one prediction (or, with ``multi_label``, each column its own label), positive where it is above a
threshold, counted with its sample (and label) weight. Evenly spaced thresholds (AUC's default 200) take
Keras's bucketed path: predictions clipped to [0, 1] land in ``ceil(p * (T - 1)) - 1`` and a reversed
cumulative sum gives the counts, in memory linear in the batch; other thresholds are compared directly.

Example:
    >>> import numpy as np
    >>> m = FalseNegatives()
    >>> m.update_state(np.array([0, 1, 1, 1]), np.array([0, 1, 0, 0], np.float32))
    >>> m.result()
    2.0
"""
from __future__ import annotations

__all__ = ["confusion_sums", "TruePositives", "TrueNegatives", "FalsePositives", "FalseNegatives", "Precision",
           "Recall", "NEG_INF", "parse_thresholds", "evenly_spaced"]

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx

from ..graph import Value
from ..losses import EPSILON, _rank, cast, expand_dims, squeeze_or_expand_to_same_rank
from .base import Metric, divide_no_nan

_FLOAT = onnx.TensorProto.FLOAT
_INT64 = onnx.TensorProto.INT64
_BOOL = onnx.TensorProto.BOOL
#: What ``top_k`` filtering writes over the predictions outside the top k (and the default threshold then).
NEG_INF = -1e10
_NAMES = {"tp": "true_positives", "fp": "false_positives", "tn": "true_negatives", "fn": "false_negatives"}


def _const(b: Any, value: Any, dtype: Any = np.float32) -> Value:
    return b.const(np.asarray(value, dtype))


def _ones_like(b: Any, x: Value) -> Value:
    return b.op("ConstantOfShape", [b.op("Shape", [x])], value=onnx.helper.make_tensor("one", _FLOAT, [1], [1.0]))


def filter_top_k(x: Value, k: int) -> Value:
    """Keep the ``k`` largest entries of the last axis of ``x`` and set the rest to ``NEG_INF``."""
    b = x.builder
    _, idx = b.op("TopK", [x, _const(b, [k], np.int64)], axis=-1, largest=1, sorted=1, outputs=2)
    zeros = b.op("ConstantOfShape", [b.op("Shape", [x])], value=onnx.helper.make_tensor("zero", _FLOAT, [1], [0.0]))
    mask = b.op("ScatterElements", [zeros, idx, _ones_like(b, idx)], axis=-1)
    return b.op("Where", [cast(mask, _BOOL), x, _const(b, NEG_INF)], shape=x.shape)


def _column(x: Value, class_id: int) -> Value:
    """``x[..., class_id, None]``."""
    b = x.builder
    out = b.op("Gather", [x, _const(b, [class_id], np.int64)], axis=-1)
    out.shape = None if x.shape is None else x.shape[:-1] + (1,)
    return out


def _prepare(y_true: Value, y_pred: Value, sample_weight: Value | None, top_k: int | None, class_id: int | None,
             label_weights: Any, multi_label: bool) -> tuple[Value, Value, Value]:
    """Labels (0/1 floats), predictions and weights, all of ``y_pred``'s final shape."""
    b = y_pred.builder
    y_true, y_pred = cast(y_true, _FLOAT), cast(y_pred, _FLOAT)
    y_pred, y_true = squeeze_or_expand_to_same_rank(y_pred, y_true)
    if _rank(y_true) is not None and _rank(y_pred) is not None and _rank(y_true) != _rank(y_pred):
        raise ValueError("Confusion metrics (AUC, Precision, Recall, TruePositives, ...) need labels shaped like the "
                         f"predictions (one 0/1 label per predicted probability). Received: y_true.shape={y_true.shape}"
                         f", y_pred.shape={y_pred.shape}. For integer class labels, one-hot encode them "
                         "(keras.utils.to_categorical) or use class_id with one-hot labels.")
    if sample_weight is not None:
        w = expand_dims(cast(sample_weight, _FLOAT), -1)
        _, w = squeeze_or_expand_to_same_rank(y_true, w, expand_rank_1=False)
        sample_weight = w
    if top_k is not None:
        y_pred = filter_top_k(y_pred, top_k)
    if class_id is not None:
        if _rank(y_pred) == 1:
            raise ValueError("When class_id is provided, y_pred must be a 2D array with shape (num_samples, "
                             f"num_classes), found shape: {y_pred.shape}")
        y_true, y_pred = _column(y_true, class_id), _column(y_pred, class_id)
        if sample_weight is not None and _rank(sample_weight) == _rank(y_pred) and \
                sample_weight.shape[-1] not in (1, None):
            sample_weight = _column(sample_weight, class_id)
    labels = cast(cast(y_true, _BOOL), _FLOAT)
    w = _ones_like(b, y_pred) if sample_weight is None else b.op("Expand", [sample_weight, b.op("Shape", [y_pred])])
    if label_weights is not None and not multi_label:
        w = b.op("Mul", [w, _const(b, np.asarray(label_weights, np.float32))])
    return labels, y_pred, w


def confusion_sums(y_true: Value, y_pred: Value, sample_weight: Value | None, thresholds: Sequence[float],
                   class_id: int | None = None, top_k: int | None = None, evenly: bool = False,
                   multi_label: bool = False, label_weights: Any = None) -> dict[str, Value]:
    """Weighted true/false positive/negative counts at each threshold (``y_pred > threshold`` is positive).

    Args:
        y_true, y_pred, sample_weight: graph values (labels count as positive where non-zero).
        thresholds: the thresholds, ascending for the bucketed path.
        class_id: count only this column of multi-class predictions.
        top_k: count only each row's ``k`` largest predictions as candidates for positive.
        evenly: the thresholds are evenly spaced over [0, 1] (with optional end points just outside it):
            clip the predictions to [0, 1] and bucket them as Keras does.
        multi_label: keep one count per label (column): the results are (T, labels) instead of (T,).
        label_weights: per-label weights (non-multi-label only; multi-label weighs labels in the result).

    Returns:
        ``{"tp", "fp", "tn", "fn"}``, each of shape (T,) or (T, labels).
    """
    b = y_pred.builder
    labels, preds, w = _prepare(y_true, y_pred, sample_weight, top_k, class_id, label_weights, multi_label)
    if multi_label:
        if _rank(preds) != 2:
            raise ValueError("`y_pred` must have rank 2 when `multi_label=True`. Found rank "
                             f"{_rank(preds)}. Full shape received for `y_pred`: {preds.shape}")
        shape = _const(b, [-1, preds.shape[-1] if isinstance(preds.shape[-1], int) else 0], np.int64)
    else:
        shape = _const(b, [-1, 1], np.int64)   # every entry one sample of a single label
    preds, labels, w = (b.op("Reshape", [v, shape]) for v in (preds, labels, w))       # (N, L)
    pos_w = b.op("Mul", [labels, w])
    neg_w = b.op("Mul", [b.op("Sub", [_const(b, 1.0), labels]), w])
    t = np.asarray(thresholds, np.float64)
    if evenly:
        tp, fp = _bucketed(preds, pos_w, neg_w, t)
    else:
        tp, fp = _compared(preds, pos_w, neg_w, t)
    total_pos = b.op("ReduceSum", [pos_w, _const(b, [0], np.int64)], keepdims=0)                 # (L,)
    total_neg = b.op("ReduceSum", [neg_w, _const(b, [0], np.int64)], keepdims=0)
    fn, tn = b.op("Sub", [total_pos, tp]), b.op("Sub", [total_neg, fp])
    out = {"tp": tp, "fp": fp, "tn": tn, "fn": fn}
    if not multi_label:   # (T, 1) -> (T,)
        out = {k: b.op("Reshape", [v, _const(b, [-1], np.int64)]) for k, v in out.items()}
    return out


def _compared(preds: Value, pos_w: Value, neg_w: Value, thresholds: np.ndarray) -> tuple[Value, Value]:
    """Counts above each threshold by direct comparison: (T, L)."""
    b = preds.builder
    t = _const(b, thresholds.astype(np.float32).reshape(1, 1, -1))
    above = cast(b.op("Greater", [b.op("Unsqueeze", [preds, _const(b, [-1], np.int64)]), t]), _FLOAT)   # (N, L, T)
    axes = _const(b, [0], np.int64)

    def count(weights: Value) -> Value:
        weighted = b.op("Mul", [b.op("Unsqueeze", [weights, _const(b, [-1], np.int64)]), above])
        return b.op("Transpose", [b.op("ReduceSum", [weighted, axes], keepdims=0)], perm=[1, 0])
    return count(pos_w), count(neg_w)


def _bucketed(preds: Value, pos_w: Value, neg_w: Value, thresholds: np.ndarray) -> tuple[Value, Value]:
    """Keras's evenly-spaced path: bucket index ``ceil(p * (T - 1)) - 1`` per prediction, a scatter-add
    per bucket, and a reversed cumulative sum: (T, L), in memory linear in N * L."""
    b = preds.builder
    n_t = len(thresholds)
    with_epsilon = bool(thresholds[0] < 0.0 or thresholds[-1] > 1.0)
    p = b.op("Clip", [preds, _const(b, 0.0), _const(b, 1.0)])
    bucket = b.op("Sub", [b.op("Ceil", [b.op("Mul", [p, _const(b, float(n_t - 1))])]), _const(b, 1.0)])
    if with_epsilon:   # the first threshold lies below 0: every prediction passes it
        bucket = b.op("Relu", [bucket])
    bucket = cast(bucket, _INT64)
    # A prediction of exactly 0 without the epsilon end point is below every threshold: Keras drops its
    # bucket index -1 from the sums; send it to an extra bucket that is sliced off.
    bucket = b.op("Where", [b.op("Less", [bucket, _const(b, 0, np.int64)]), _const(b, n_t, np.int64), bucket])
    n_labels = b.op("Gather", [b.op("Shape", [preds]), _const(b, [1], np.int64)], axis=0)
    flat = b.op("Add", [b.op("Mul", [bucket, n_labels]), b.op("Range", [_const(b, 0, np.int64),
                                                                       b.op("Squeeze", [n_labels]),
                                                                       _const(b, 1, np.int64)])])
    flat = b.op("Reshape", [flat, _const(b, [-1], np.int64)])
    size = b.op("Mul", [_const(b, [n_t + 1], np.int64), n_labels])
    grid = b.op("Concat", [_const(b, [n_t + 1], np.int64), n_labels], axis=0)

    def count(weights: Value) -> Value:
        zeros = b.op("ConstantOfShape", [size], value=onnx.helper.make_tensor("zero", _FLOAT, [1], [0.0]))
        sums = b.op("ScatterElements", [zeros, flat, b.op("Reshape", [weights, _const(b, [-1], np.int64)])],
                    axis=0, reduction="add")
        per_bucket = b.op("Slice", [b.op("Reshape", [sums, grid]), _const(b, [0], np.int64),
                                    _const(b, [n_t], np.int64), _const(b, [0], np.int64)])
        return b.op("CumSum", [per_bucket, _const(b, 0, np.int64)], reverse=1)
    return count(pos_w), count(neg_w)


# ------------------------------------------------------------------------------------------ thresholds
def parse_thresholds(thresholds: Any, default: float = 0.5) -> tuple[np.ndarray, bool]:
    """Keras's ``parse_init_thresholds``: the thresholds as an array and whether one scalar was given."""
    if thresholds is None:
        return np.asarray([default]), True
    listed = [thresholds] if isinstance(thresholds, (int, float)) else list(thresholds)
    invalid = [t for t in listed if t is None or t < 0 or t > 1]
    if invalid:   # Keras's message, listing the offending values
        raise ValueError(f"Threshold values must be in [0, 1]. Received: {invalid}")
    if isinstance(thresholds, (int, float)):
        return np.asarray([float(thresholds)]), True
    return np.asarray(listed, np.float64), False


def evenly_spaced(thresholds: Sequence[float]) -> bool:
    """Keras's ``is_evenly_distributed_thresholds``: such thresholds take its bucketed (clipping) path."""
    t = np.asarray(thresholds, np.float64)
    if t.size < 3:
        return False
    return bool(np.allclose(t, np.arange(t.size, dtype=np.float32) / (t.size - 1), atol=EPSILON))


# ------------------------------------------------------------------------------------------ counts
class _ConditionCount(Metric):
    """One confusion-matrix count per threshold (a float for one threshold, else an array)."""

    _kind = "tp"

    def __init__(self, thresholds: Any = None, name: str | None = None, dtype: Any = None):
        super().__init__(name=name, dtype=dtype)
        self.init_thresholds = thresholds
        self.thresholds, _ = parse_thresholds(thresholds)
        self._evenly = evenly_spaced(self.thresholds)

    def state_spec(self) -> list[tuple[str, tuple[int, ...]]]:
        return [("accumulator", (len(self.thresholds),))]

    def batch_sums(self, y_true: Value, y_pred: Value, sample_weight: Value | None) -> list[Value]:
        return [confusion_sums(y_true, y_pred, sample_weight, self.thresholds, evenly=self._evenly)[self._kind]]

    def result_from(self, states: Sequence[np.ndarray]) -> Any:
        counts = np.asarray(states[0], np.float64)
        return float(counts[0]) if len(self.thresholds) == 1 else counts

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "thresholds": self.init_thresholds}


class TruePositives(_ConditionCount):
    """The (weighted) number of true positives at each threshold (default 0.5)."""

    _kind = "tp"


class TrueNegatives(_ConditionCount):
    """The (weighted) number of true negatives at each threshold (default 0.5)."""

    _kind = "tn"


class FalsePositives(_ConditionCount):
    """The (weighted) number of false positives at each threshold (default 0.5)."""

    _kind = "fp"


class FalseNegatives(_ConditionCount):
    """The (weighted) number of false negatives at each threshold (default 0.5)."""

    _kind = "fn"


class Precision(Metric):
    """``tp / (tp + fp)`` at one threshold (default 0.5) or several.

    Args:
        thresholds: a float or a list of floats in [0, 1] (default 0.5, or, with ``top_k``, any score in
            the top k). With a list the result is an array.
        top_k: only each row's ``k`` largest predictions can be positive.
        class_id: compute the metric for one class of a multi-class prediction.
        name, dtype: as in ``Metric``.

    Example:
        >>> import numpy as np
        >>> m = Precision(top_k=1)
        >>> m.update_state(np.array([[0, 0, 1, 1]]), np.array([[1, 1, 1, 1]], np.float32))
        >>> m.result()
        0.0
    """

    _direction = "up"
    _kind = ("tp", "fp")

    def __init__(self, thresholds: Any = None, top_k: int | None = None, class_id: int | None = None,
                 name: str | None = None, dtype: Any = None):
        super().__init__(name=name, dtype=dtype)
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1):
            raise ValueError(f"Argument `top_k` must be a positive integer or None. Received: top_k={top_k!r}")
        self.init_thresholds = thresholds
        self.top_k = top_k
        self.class_id = class_id
        self.thresholds, _ = parse_thresholds(thresholds, default=0.5 if top_k is None else NEG_INF)
        self._evenly = evenly_spaced(self.thresholds)

    def state_spec(self) -> list[tuple[str, tuple[int, ...]]]:
        return [(_NAMES[k], (len(self.thresholds),)) for k in self._kind]

    def batch_sums(self, y_true: Value, y_pred: Value, sample_weight: Value | None) -> list[Value]:
        sums = confusion_sums(y_true, y_pred, sample_weight, self.thresholds, class_id=self.class_id,
                              top_k=self.top_k, evenly=self._evenly)
        return [sums[k] for k in self._kind]

    def result_from(self, states: Sequence[np.ndarray]) -> Any:
        tp, other = states
        out = divide_no_nan(tp, np.asarray(tp) + np.asarray(other))
        return float(np.asarray(out).reshape(-1)[0]) if len(self.thresholds) == 1 else np.asarray(out)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "thresholds": self.init_thresholds, "top_k": self.top_k,
                "class_id": self.class_id}


class Recall(Precision):
    """``tp / (tp + fn)`` at one threshold (default 0.5) or several (arguments as ``Precision``)."""

    _kind = ("tp", "fn")
