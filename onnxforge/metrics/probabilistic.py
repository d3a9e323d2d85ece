"""Probabilistic metrics: weighted means of crossentropies, the KL divergence and the Poisson loss.

Example:
    >>> import numpy as np
    >>> m = BinaryCrossentropy()
    >>> m.update_state(np.array([[0.0, 1.0]]), np.array([[0.5, 0.5]], np.float32))
    >>> round(m.result(), 4)
    0.6931
"""
from __future__ import annotations

__all__ = ["BinaryCrossentropy", "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "KLDivergence",
           "Poisson"]

from typing import Any

from .. import losses as L
from .base import MeanMetricWrapper
from .regression import _error_mean

KLDivergence = _error_mean(L.kl_divergence, "KLDivergence", "kl_divergence",
                           "Weighted mean of ``sum(y_true * log(y_true / y_pred), axis=-1)``.")
Poisson = _error_mean(L.poisson, "Poisson", "poisson",
                      "Weighted mean of ``mean(y_pred - y_true * log(y_pred + 1e-7), axis=-1)``.")


class BinaryCrossentropy(MeanMetricWrapper):
    """Weighted mean of the binary crossentropy (``from_logits``, ``label_smoothing`` as the loss)."""

    _direction = "down"

    def __init__(self, name: str = "binary_crossentropy", dtype: Any = None, from_logits: bool = False,
                 label_smoothing: float = 0):
        super().__init__(L.binary_crossentropy, name=name, dtype=dtype, from_logits=from_logits,
                         label_smoothing=label_smoothing)
        self.from_logits, self.label_smoothing = from_logits, label_smoothing


class CategoricalCrossentropy(MeanMetricWrapper):
    """Weighted mean of the categorical crossentropy of one-hot labels."""

    _direction = "down"

    def __init__(self, name: str = "categorical_crossentropy", dtype: Any = None, from_logits: bool = False,
                 label_smoothing: float = 0, axis: int = -1):
        super().__init__(L.categorical_crossentropy, name=name, dtype=dtype, from_logits=from_logits,
                         label_smoothing=label_smoothing, axis=axis)
        self.from_logits, self.label_smoothing, self.axis = from_logits, label_smoothing, axis


class SparseCategoricalCrossentropy(MeanMetricWrapper):
    """Weighted mean of the categorical crossentropy of integer labels."""

    _direction = "down"
    #: The targets are class ids (the compiler feeds them as int64 of the output's shape minus its last axis).
    sparse_labels = True

    def __init__(self, name: str = "sparse_categorical_crossentropy", dtype: Any = None, from_logits: bool = False,
                 ignore_class: int | None = None, axis: int = -1):
        super().__init__(L.sparse_categorical_crossentropy, name=name, dtype=dtype, from_logits=from_logits,
                         ignore_class=ignore_class, axis=axis)
        self.from_logits, self.ignore_class, self.axis = from_logits, ignore_class, axis
