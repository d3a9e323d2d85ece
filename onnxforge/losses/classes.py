"""The loss classes (``MeanSquaredError``, ``SparseCategoricalCrossentropy``, ...), each wrapping its function."""
from __future__ import annotations

__all__ = ["SparseCategoricalCrossentropy", "CategoricalCrossentropy", "BinaryCrossentropy", "MeanSquaredError", "MeanAbsoluteError", "Huber", "Hinge", "SquaredHinge", "CategoricalHinge", "LogCosh", "Poisson", "KLDivergence", "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError", "CosineSimilarity", "BinaryFocalCrossentropy", "CategoricalFocalCrossentropy"]

from collections.abc import Callable
from typing import Any

from ..graph import Value
from .loss import Loss, LossFunctionWrapper
from .functions import (_sparse_cce, binary_crossentropy, binary_focal_crossentropy, categorical_crossentropy,
                        categorical_focal_crossentropy, categorical_hinge, cosine_similarity, hinge, huber,
                        kl_divergence, log_cosh, mean_absolute_error, mean_absolute_percentage_error,
                        mean_squared_error, mean_squared_logarithmic_error, poisson, sparse_categorical_crossentropy,
                        squared_hinge)


class MeanSquaredError(LossFunctionWrapper):
    """``mean(square(y_true - y_pred))`` (Keras ``MeanSquaredError``)."""

    def __init__(self, reduction: str | None = "sum_over_batch_size", name: str = "mean_squared_error",
                 dtype: Any = None):
        super().__init__(mean_squared_error, name=name, reduction=reduction, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return Loss.get_config(self)


class MeanAbsoluteError(LossFunctionWrapper):
    """``mean(abs(y_true - y_pred))`` (Keras ``MeanAbsoluteError``)."""

    def __init__(self, reduction: str | None = "sum_over_batch_size", name: str = "mean_absolute_error",
                 dtype: Any = None):
        super().__init__(mean_absolute_error, name=name, reduction=reduction, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return Loss.get_config(self)


class Huber(LossFunctionWrapper):
    """Huber loss with threshold ``delta`` (Keras ``Huber``, default name ``"huber_loss"``)."""

    def __init__(self, delta: float = 1.0, reduction: str | None = "sum_over_batch_size",
                 name: str = "huber_loss", dtype: Any = None):
        super().__init__(huber, name=name, reduction=reduction, dtype=dtype, delta=delta)
        self.delta = delta


class _ProbabilisticLoss(LossFunctionWrapper):
    """A crossentropy: knows whether it expects logits (used for the linear-output warning)."""

    from_logits: bool


class SparseCategoricalCrossentropy(_ProbabilisticLoss):
    """Crossentropy between integer labels and class scores.

    Args:
        from_logits: whether ``y_pred`` are logits. With ``False`` (the Keras default) they must be
            probabilities: they are renormalized by their sum and clipped to [1e-7, 1 - 1e-7].
        ignore_class: a label value whose entries do not count (their loss is 0 and they are left out of
            the ``sum_over_batch_size`` divisor).
        axis: the class axis of ``y_pred``.
        reduction, name, dtype: as in ``Loss``.

    Example:
        >>> import numpy as np
        >>> loss = SparseCategoricalCrossentropy(from_logits=True)
        >>> round(float(loss(np.array([0]), np.array([[0.0, 0.0]], np.float32))), 4)
        0.6931
    """

    sparse_labels = True

    def __init__(self, from_logits: bool = False, ignore_class: int | None = None,
                 reduction: str | None = "sum_over_batch_size", axis: int = -1,
                 name: str = "sparse_categorical_crossentropy", dtype: Any = None):
        super().__init__(sparse_categorical_crossentropy, name=name, reduction=reduction, dtype=dtype,
                         from_logits=from_logits, ignore_class=ignore_class, axis=axis)
        self.from_logits = from_logits
        self.ignore_class = ignore_class
        # Keras's get_config leaves the class axis out (its round trip resets it to -1); ours keeps it.
        self.axis = int(axis)

    def call(self, y_true: Value, y_pred: Value) -> tuple[Value, Value | None]:
        return _sparse_cce(y_true, y_pred, self.from_logits, self.ignore_class, self.axis)


class CategoricalCrossentropy(_ProbabilisticLoss):
    """Crossentropy between one-hot labels and class scores.

    Args:
        from_logits: whether ``y_pred`` are logits (see ``SparseCategoricalCrossentropy``).
        label_smoothing: in [0, 1]; labels become ``y * (1 - s) + s / num_classes``.
        axis: the class axis (default -1).
        reduction, name, dtype: as in ``Loss``.
    """

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction: str | None = "sum_over_batch_size", name: str = "categorical_crossentropy",
                 dtype: Any = None):
        super().__init__(categorical_crossentropy, name=name, reduction=reduction, dtype=dtype,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis


class BinaryCrossentropy(_ProbabilisticLoss):
    """Binary crossentropy, averaged over the last axis.

    Args:
        from_logits: whether ``y_pred`` are logits (exact stable form) or probabilities (clipped to
            [1e-7, 1 - 1e-7]).
        label_smoothing: in [0, 1]; labels are squeezed towards 0.5: ``y * (1 - s) + s / 2``.
        axis: the axis averaged over (default -1).
        reduction, name, dtype: as in ``Loss``.
    """

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction: str | None = "sum_over_batch_size", name: str = "binary_crossentropy",
                 dtype: Any = None):
        super().__init__(binary_crossentropy, name=name, reduction=reduction, dtype=dtype,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis


def _simple_loss(fn: Callable[..., Any], class_name: str, default_name: str, doc: str) -> type[LossFunctionWrapper]:
    """A ``LossFunctionWrapper`` subclass for a per-sample function without options (Keras's config keeps
    only ``name`` and ``reduction``)."""

    def __init__(self: Any, reduction: str | None = "sum_over_batch_size", name: str = default_name,
                 dtype: Any = None) -> None:
        LossFunctionWrapper.__init__(self, fn, name=name, reduction=reduction, dtype=dtype)

    def get_config(self: Any) -> dict[str, Any]:
        return Loss.get_config(self)

    return type(class_name, (LossFunctionWrapper,), {"__init__": __init__, "get_config": get_config, "__doc__": doc,
                                                      "__module__": __name__, "__qualname__": class_name})


Hinge = _simple_loss(hinge, "Hinge", "hinge", "``mean(maximum(1 - y_true * y_pred, 0))``; 0/1 labels count as -1/1.")
SquaredHinge = _simple_loss(squared_hinge, "SquaredHinge", "squared_hinge",
                            "``mean(square(maximum(1 - y_true * y_pred, 0)))``; 0/1 labels count as -1/1.")
CategoricalHinge = _simple_loss(categorical_hinge, "CategoricalHinge", "categorical_hinge",
                                "``maximum(neg - pos + 1, 0)`` with one-hot labels (Keras ``CategoricalHinge``).")
LogCosh = _simple_loss(log_cosh, "LogCosh", "log_cosh", "``mean(log(cosh(y_pred - y_true)))``.")
Poisson = _simple_loss(poisson, "Poisson", "poisson", "``mean(y_pred - y_true * log(y_pred + 1e-7))``.")
KLDivergence = _simple_loss(kl_divergence, "KLDivergence", "kl_divergence",
                            "``sum(y_true * log(y_true / y_pred))`` of distributions clipped to [1e-7, 1].")
MeanAbsolutePercentageError = _simple_loss(
    mean_absolute_percentage_error, "MeanAbsolutePercentageError", "mean_absolute_percentage_error",
    "``100 * mean(abs((y_true - y_pred) / y_true))`` (the divisor at least 1e-7).")
MeanSquaredLogarithmicError = _simple_loss(
    mean_squared_logarithmic_error, "MeanSquaredLogarithmicError", "mean_squared_logarithmic_error",
    "``mean(square(log(y_pred + 1) - log(y_true + 1)))`` (both at least 1e-7).")


class CosineSimilarity(LossFunctionWrapper):
    """Negative cosine similarity along ``axis`` (-1 for identical directions; Keras ``CosineSimilarity``)."""

    def __init__(self, axis: int = -1, reduction: str | None = "sum_over_batch_size", name: str = "cosine_similarity",
                 dtype: Any = None):
        super().__init__(cosine_similarity, name=name, reduction=reduction, dtype=dtype, axis=axis)
        self.axis = axis

    def get_config(self) -> dict[str, Any]:
        return Loss.get_config(self)   # Keras leaves ``axis`` out of the config


class BinaryFocalCrossentropy(_ProbabilisticLoss):
    """Focal binary crossentropy: down-weights easy examples by ``(1 - p_t) ** gamma``.

    Args:
        apply_class_balancing: weight positives by ``alpha`` and negatives by ``1 - alpha``.
        alpha, gamma: the balancing weight and the focusing exponent.
        from_logits, label_smoothing, axis, reduction, name, dtype: as in ``BinaryCrossentropy``.
    """

    def __init__(self, apply_class_balancing: bool = False, alpha: float = 0.25, gamma: float = 2.0,
                 from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction: str | None = "sum_over_batch_size", name: str = "binary_focal_crossentropy",
                 dtype: Any = None):
        super().__init__(binary_focal_crossentropy, name=name, reduction=reduction, dtype=dtype,
                         apply_class_balancing=apply_class_balancing, alpha=alpha, gamma=gamma,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)
        self.from_logits = from_logits


class CategoricalFocalCrossentropy(_ProbabilisticLoss):
    """Focal categorical crossentropy: ``alpha * (1 - p) ** gamma`` times the crossentropy of each class.

    Args:
        alpha, gamma: the weighting factor and the focusing exponent.
        from_logits, label_smoothing, axis, reduction, name, dtype: as in ``CategoricalCrossentropy``.
    """

    def __init__(self, alpha: float = 0.25, gamma: float = 2.0, from_logits: bool = False,
                 label_smoothing: float = 0.0, axis: int = -1, reduction: str | None = "sum_over_batch_size",
                 name: str = "categorical_focal_crossentropy", dtype: Any = None):
        super().__init__(categorical_focal_crossentropy, name=name, reduction=reduction, dtype=dtype, alpha=alpha,
                         gamma=gamma, from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)
        self.from_logits = from_logits
