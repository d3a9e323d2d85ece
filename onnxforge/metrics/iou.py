"""Intersection-over-union metrics, from a confusion matrix of class ids accumulated over batches.

The state is Keras's ``total_confusion_matrix`` (rows: true class, columns: predicted class). Like Keras,
the metrics default to an integer dtype, in which class ids and sample weights are truncated to integers
(pass ``dtype="float32"`` for fractional weights); ids outside ``[0, num_classes)`` and ``ignore_class``
entries are left out.

Example:
    >>> import numpy as np
    >>> m = MeanIoU(num_classes=2)
    >>> m.update_state(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]))
    >>> round(m.result(), 4)
    0.3333
"""
from __future__ import annotations

__all__ = ["IoU", "BinaryIoU", "MeanIoU", "OneHotIoU", "OneHotMeanIoU"]

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx

from ..graph import Value
from ..losses import EPSILON, _rank, cast, expand_dims
from .base import Metric

_FLOAT = onnx.TensorProto.FLOAT
_INT64 = onnx.TensorProto.INT64
_INT_DTYPES = ("int", "int32", "int64", np.int32, np.int64, int)
_FLOAT_DTYPES = ("float32", np.float32, float)


class _IoUBase(Metric):
    """A ``num_classes`` x ``num_classes`` confusion matrix of class ids (sparse or arg-maxed)."""

    _direction = "up"

    def __init__(self, num_classes: int, name: str | None = None, dtype: Any = None, ignore_class: int | None = None,
                 sparse_y_true: bool = True, sparse_y_pred: bool = True, axis: int = -1):
        if dtype is not None and dtype not in _INT_DTYPES + _FLOAT_DTYPES:
            raise ValueError(f"{type(self).__name__}: dtype must be an integer or float32 type. Received: "
                             f"dtype={dtype!r}")
        super().__init__(name=name)
        self._integer = dtype is None or dtype in _INT_DTYPES
        self._dtype = "int32" if self._integer else "float32"
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
            raise ValueError(f"{type(self).__name__}: `num_classes` must be a positive integer. "
                             f"Received: num_classes={num_classes!r}")
        self.num_classes = int(num_classes)
        self.ignore_class = ignore_class
        self.sparse_y_true = sparse_y_true
        self.sparse_y_pred = sparse_y_pred
        self.axis = axis

    @property
    def sparse_labels(self) -> bool:
        """Class-id labels against score predictions: the targets lack the output's class axis."""
        return self.sparse_y_true and not self.sparse_y_pred

    def state_spec(self) -> list[tuple[str, tuple[int, ...]]]:
        return [("total_confusion_matrix", (self.num_classes, self.num_classes))]

    def _ids(self, y: Value, sparse: bool) -> Value:
        b = y.builder
        if not sparse:
            return b.op("ArgMax", [y], axis=self.axis, keepdims=0)
        return cast(y, _INT64) if y.dtype != _INT64 else y

    def batch_sums(self, y_true: Value, y_pred: Value, sample_weight: Value | None) -> list[Value]:
        b = y_pred.builder
        t = self._ids(y_true, self.sparse_y_true)
        p = self._ids(y_pred, self.sparse_y_pred)
        flat = b.const(np.asarray([-1], np.int64))
        if sample_weight is None:
            w = b.op("ConstantOfShape", [b.op("Shape", [t])], value=onnx.helper.make_tensor("one", _FLOAT, [1], [1.0]))
        else:
            w = cast(sample_weight, _FLOAT)
            if self._integer:   # Keras converts the weights to the metric's integer dtype
                w = cast(cast(w, _INT64), _FLOAT)
            rank_t = _rank(t)
            while rank_t is not None and _rank(w) is not None and _rank(w) < rank_t:
                w = expand_dims(w, -1)     # one weight per sample covers all its entries (pixels)
            w = b.op("Expand", [w, b.op("Shape", [t])])
        t, p, w = (b.op("Reshape", [v, flat]) for v in (t, p, w))
        n = b.const(np.asarray(self.num_classes, np.int64))
        zero = b.const(np.asarray(0, np.int64))

        def in_range(ids: Value) -> Value:
            return b.op("And", [b.op("GreaterOrEqual", [ids, zero]), b.op("Less", [ids, n])])

        keep = b.op("And", [in_range(t), in_range(p)])
        if self.ignore_class is not None:
            keep = b.op("And", [keep, b.op("Not", [b.op("Equal", [t, b.const(np.asarray(self.ignore_class,
                                                                                          np.int64))])])])
        index = b.op("Where", [keep, b.op("Add", [b.op("Mul", [t, n]), p]), zero])
        w = b.op("Where", [keep, w, b.const(np.asarray(0.0, np.float32))])
        cells = self.num_classes * self.num_classes
        zeros = b.const(np.zeros(cells, np.float32))
        matrix = b.op("ScatterElements", [zeros, index, w], axis=0, reduction="add")
        return [b.op("Reshape", [matrix, b.const(np.asarray([self.num_classes, self.num_classes], np.int64))])]

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


class IoU(_IoUBase):
    """``tp / (tp + fp + fn)`` per class, averaged over ``target_class_ids`` (classes never seen are left out).

    Args:
        num_classes: the number of classes (the confusion matrix is ``num_classes`` squared).
        target_class_ids: the classes whose IoU is averaged.
        name, dtype: as in ``Metric`` (``dtype`` defaults to int, as in Keras).
        ignore_class: a label id left out of the counts.
        sparse_y_true, sparse_y_pred: whether labels / predictions are class ids (else scores, arg-maxed
            along ``axis``).
        axis: the class axis of dense labels or predictions.
    """

    def __init__(self, num_classes: int, target_class_ids: Sequence[int], name: str | None = None, dtype: Any = None,
                 ignore_class: int | None = None, sparse_y_true: bool = True, sparse_y_pred: bool = True,
                 axis: int = -1):
        super().__init__(num_classes, name=name, dtype=dtype, ignore_class=ignore_class, sparse_y_true=sparse_y_true,
                         sparse_y_pred=sparse_y_pred, axis=axis)
        if max(target_class_ids) >= num_classes:
            raise ValueError(f"Target class id {max(target_class_ids)} is out of range, which is [0, {num_classes}).")
        self.target_class_ids = list(target_class_ids)

    def result_from(self, states: Sequence[np.ndarray]) -> float:
        cm = np.asarray(states[0], np.float32)
        tp = np.diag(cm)
        denominator = (cm.sum(axis=0) + cm.sum(axis=1) - tp)[self.target_class_ids]
        tp = tp[self.target_class_ids]
        valid = denominator > 1e-9
        iou = np.where(valid, tp / (denominator + np.float32(EPSILON)), np.float32(0.0))
        return float(np.sum(iou) / (np.float32(valid.sum()) + np.float32(EPSILON)))

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "num_classes": self.num_classes,
                "target_class_ids": self.target_class_ids, "ignore_class": self.ignore_class,
                "sparse_y_true": self.sparse_y_true, "sparse_y_pred": self.sparse_y_pred, "axis": self.axis}


class BinaryIoU(IoU):
    """IoU of binary labels and scores: a prediction is class 1 where ``y_pred >= threshold``.

    Args:
        target_class_ids: which of the classes 0 and 1 to average (default both).
        threshold: the decision threshold.
        name, dtype: as in ``IoU``.
    """

    def __init__(self, target_class_ids: Sequence[int] = (0, 1), threshold: float = 0.5, name: str | None = None,
                 dtype: Any = None):
        super().__init__(num_classes=2, target_class_ids=target_class_ids, name=name, dtype=dtype)
        self.threshold = threshold

    def batch_sums(self, y_true: Value, y_pred: Value, sample_weight: Value | None) -> list[Value]:
        b = y_pred.builder
        above = cast(b.op("GreaterOrEqual", [cast(y_pred, _FLOAT), np.asarray(self.threshold, np.float32)]), _INT64)
        above.shape = y_pred.shape
        return super().batch_sums(y_true, above, sample_weight)

    def get_config(self) -> dict[str, Any]:
        return {"target_class_ids": self.target_class_ids, "threshold": self.threshold, "name": self.name,
                "dtype": self.dtype}


class MeanIoU(IoU):
    """IoU averaged over every class (arguments as ``IoU``, without ``target_class_ids``)."""

    def __init__(self, num_classes: int, name: str | None = None, dtype: Any = None, ignore_class: int | None = None,
                 sparse_y_true: bool = True, sparse_y_pred: bool = True, axis: int = -1):
        super().__init__(num_classes, list(range(num_classes)), name=name, dtype=dtype, ignore_class=ignore_class,
                         sparse_y_true=sparse_y_true, sparse_y_pred=sparse_y_pred, axis=axis)

    def get_config(self) -> dict[str, Any]:
        return {"num_classes": self.num_classes, "name": self.name, "dtype": self.dtype,
                "ignore_class": self.ignore_class, "sparse_y_true": self.sparse_y_true,
                "sparse_y_pred": self.sparse_y_pred, "axis": self.axis}


class OneHotIoU(IoU):
    """``IoU`` with one-hot labels (and, by default, score predictions), arg-maxed along ``axis``."""

    def __init__(self, num_classes: int, target_class_ids: Sequence[int], name: str | None = None, dtype: Any = None,
                 ignore_class: int | None = None, sparse_y_pred: bool = False, axis: int = -1):
        super().__init__(num_classes, target_class_ids, name=name, dtype=dtype, ignore_class=ignore_class,
                         sparse_y_true=False, sparse_y_pred=sparse_y_pred, axis=axis)

    def get_config(self) -> dict[str, Any]:
        return {"num_classes": self.num_classes, "target_class_ids": self.target_class_ids, "name": self.name,
                "dtype": self.dtype, "ignore_class": self.ignore_class, "sparse_y_pred": self.sparse_y_pred,
                "axis": self.axis}


class OneHotMeanIoU(MeanIoU):
    """``MeanIoU`` with one-hot labels (and, by default, score predictions), arg-maxed along ``axis``."""

    def __init__(self, num_classes: int, name: str | None = None, dtype: Any = None, ignore_class: int | None = None,
                 sparse_y_pred: bool = False, axis: int = -1):
        super().__init__(num_classes, name=name, dtype=dtype, ignore_class=ignore_class, sparse_y_true=False,
                         sparse_y_pred=sparse_y_pred, axis=axis)

    def get_config(self) -> dict[str, Any]:
        return {"num_classes": self.num_classes, "name": self.name, "dtype": self.dtype,
                "ignore_class": self.ignore_class, "sparse_y_pred": self.sparse_y_pred, "axis": self.axis}
