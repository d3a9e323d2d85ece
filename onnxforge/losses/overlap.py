"""Keras 3.15's overlap and noise-robust losses: ``dice`` / ``Dice`` and ``tversky`` / ``Tversky`` (image
segmentation) and ``categorical_generalized_cross_entropy`` / ``CategoricalGeneralizedCrossEntropy``.

Example:
    >>> import numpy as np
    >>> round(float(dice(np.array([[1.0, 0.0]]), np.array([[1.0, 0.0]], np.float32))), 6)
    0.0
    >>> Tversky(alpha=0.3, beta=0.7).get_config()["beta"]
    0.7
"""
from __future__ import annotations

__all__ = ["dice", "tversky", "categorical_generalized_cross_entropy", "Dice", "Tversky",
           "CategoricalGeneralizedCrossEntropy"]

from typing import Any

import numpy as np
import onnx

from .. import backend_config
from .functions import _f
from .loss import Loss, LossFunctionWrapper
from .values import _is_symbolic, _rank, cast, elementwise, reduce, run_eagerly, squeeze

_INT64 = onnx.TensorProto.INT64


def _overlaps(y_true: Any, y_pred: Any, axis: Any) -> tuple[Any, Any, Any]:
    """``sum(y_true * y_pred)``, ``sum(y_true)`` and ``sum(y_pred)`` over ``axis`` (``None``: everything)."""
    y_true = cast(y_true, y_pred.dtype)
    both = reduce("ReduceSum", elementwise("Mul", y_true, y_pred), axis)
    return both, reduce("ReduceSum", y_true, axis), reduce("ReduceSum", y_pred, axis)


def dice(y_true: Any, y_pred: Any, axis: Any = None) -> Any:
    """``1 - 2 * sum(y_true * y_pred) / (sum(y_true) + sum(y_pred) + epsilon)`` over ``axis`` (Keras's
    default ``None`` sums over every axis, the batch's too).

    Example:
        >>> import numpy as np
        >>> round(float(dice(np.array([[1.0, 1.0]]), np.array([[1.0, 0.0]], np.float32))), 4)
        0.3333
    """
    if not _is_symbolic(y_true, y_pred):
        return run_eagerly(dice, y_true, y_pred, axis=axis)
    both, true_sum, pred_sum = _overlaps(y_true, y_pred, axis)
    denominator = elementwise("Add", elementwise("Add", true_sum, pred_sum), _f(both, backend_config.epsilon()))
    ratio = elementwise("Div", elementwise("Mul", both, _f(both, 2.0)), denominator)
    return elementwise("Sub", _f(ratio, 1.0), ratio, shape=ratio.shape)


def tversky(y_true: Any, y_pred: Any, alpha: float = 0.5, beta: float = 0.5, axis: Any = None) -> Any:
    """``1 - TP / (TP + alpha * FP + beta * FN + epsilon)`` with soft counts over ``axis``.

    Example:
        >>> import numpy as np
        >>> round(float(tversky(np.array([[1.0, 1.0]]), np.array([[1.0, 0.0]], np.float32))), 4)
        0.3333
    """
    if not _is_symbolic(y_true, y_pred):
        return run_eagerly(tversky, y_true, y_pred, alpha=alpha, beta=beta, axis=axis)
    both, true_sum, pred_sum = _overlaps(y_true, y_pred, axis)
    # FP = sum((1 - y_pred) * y_true) = sum(y_true) - TP, FN = sum(y_pred * (1 - y_true)) = sum(y_pred) - TP:
    # Keras's names, kept (its "fp" counts missed positives), so alpha and beta weigh what they weigh there.
    fp = elementwise("Sub", true_sum, both)
    fn = elementwise("Sub", pred_sum, both)
    denominator = elementwise("Add", both, elementwise("Mul", fp, _f(fp, float(alpha))))
    denominator = elementwise("Add", denominator, elementwise("Mul", fn, _f(fn, float(beta))))
    denominator = elementwise("Add", denominator, _f(both, backend_config.epsilon()))
    ratio = elementwise("Div", both, denominator)
    return elementwise("Sub", _f(ratio, 1.0), ratio, shape=ratio.shape)


def categorical_generalized_cross_entropy(y_true: Any, y_pred: Any, q: float) -> Any:
    """``(1 - p ** q) / q`` where ``p`` is the probability ``y_pred`` gives the integer label ``y_true``
    (Zhang & Sabuncu, 2018: ``q -> 0`` is crossentropy, ``q = 1`` mean absolute error).

    Example:
        >>> import numpy as np
        >>> categorical_generalized_cross_entropy(np.array([1]), np.array([[0.75, 0.25]], np.float32), 0.5).tolist()
        [1.0]
    """
    if not _is_symbolic(y_true, y_pred):
        return run_eagerly(categorical_generalized_cross_entropy, y_true, y_pred, q=q)
    b = y_pred.builder
    labels = cast(y_true, _INT64)
    if _rank(labels) is not None and _rank(labels) == _rank(y_pred):
        labels = squeeze(labels, -1)   # labels fed as (batch, 1): one id per row, as Keras's one_hot reads them
    classes = b.op("Shape", [y_pred], start=-1, dtype=_INT64, shape=(1,))
    ids = b.op("Range", [b.const(np.asarray(0, np.int64)), b.op("Squeeze", [classes], dtype=_INT64, shape=()),
                         b.const(np.asarray(1, np.int64))], dtype=_INT64, shape=(y_pred.shape[-1],)
               if y_pred.shape is not None else None)
    one_hot = cast(b.op("Equal", [b.op("Unsqueeze", [labels, b.const(np.asarray([-1], np.int64))]), ids]),
                   y_pred.dtype)
    p = reduce("ReduceSum", elementwise("Mul", y_pred, one_hot), -1)
    powered = elementwise("Pow", p, _f(p, float(q)))
    return elementwise("Div", elementwise("Sub", _f(p, 1.0), powered, shape=p.shape), _f(p, float(q)))


class Dice(LossFunctionWrapper):
    """``dice`` as a loss object (Keras ``Dice``; config adds ``axis``).

    Example:
        >>> Dice(axis=(1, 2)).get_config()["axis"]
        (1, 2)
    """

    def __init__(self, reduction: str | None = "sum_over_batch_size", name: str = "dice", axis: Any = None,
                 dtype: Any = None):
        super().__init__(dice, name=name, reduction=reduction, dtype=dtype, axis=axis)
        self.axis = axis

    def get_config(self) -> dict[str, Any]:
        return {**Loss.get_config(self), "axis": self.axis}


class Tversky(LossFunctionWrapper):
    """``tversky`` as a loss object (Keras ``Tversky``; ``alpha=beta=0.5`` is Dice).

    Example:
        >>> Tversky().name
        'tversky'
    """

    def __init__(self, alpha: float = 0.5, beta: float = 0.5, reduction: str | None = "sum_over_batch_size",
                 name: str = "tversky", axis: Any = None, dtype: Any = None):
        super().__init__(tversky, name=name, reduction=reduction, dtype=dtype, alpha=alpha, beta=beta, axis=axis)
        self.alpha, self.beta, self.axis = alpha, beta, axis

    def get_config(self) -> dict[str, Any]:
        return {**Loss.get_config(self), "alpha": self.alpha, "beta": self.beta, "axis": self.axis}


class CategoricalGeneralizedCrossEntropy(LossFunctionWrapper):
    """``categorical_generalized_cross_entropy`` as a loss object, ``q`` in (0, 1), default 0.5.

    Example:
        >>> CategoricalGeneralizedCrossEntropy(q=0.7).get_config()["q"]
        0.7
    """

    sparse_labels = True   # integer class ids, one per row: compiled steps feed them as (batch,) int64

    def __init__(self, q: float = 0.5, reduction: str | None = "sum_over_batch_size",
                 name: str = "categorical_generalized_cross_entropy", dtype: Any = None):
        if not 0 < q < 1:
            raise ValueError(f"q must be in the interval (0, 1). Received: q={q!r}")
        super().__init__(categorical_generalized_cross_entropy, name=name, reduction=reduction, dtype=dtype, q=q)
        self.q = q

    def get_config(self) -> dict[str, Any]:
        return {**Loss.get_config(self), "q": self.q}
