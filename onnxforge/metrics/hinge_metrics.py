"""Hinge metrics: weighted means of Keras's hinge losses (0/1 labels count as -1/1).

Example:
    >>> import numpy as np
    >>> m = Hinge()
    >>> m.update_state(np.array([[0.0, 1.0], [0.0, 0.0]]), np.array([[0.6, 0.4], [0.4, 0.6]], np.float32))
    >>> round(m.result(), 4)
    1.3
"""
from __future__ import annotations

__all__ = ["Hinge", "SquaredHinge", "CategoricalHinge"]

from .. import losses as L
from .regression import _error_mean

Hinge = _error_mean(L.hinge, "Hinge", "hinge", "Weighted mean of ``mean(maximum(1 - y_true * y_pred, 0))``.")
SquaredHinge = _error_mean(L.squared_hinge, "SquaredHinge", "squared_hinge",
                           "Weighted mean of ``mean(square(maximum(1 - y_true * y_pred, 0)))``.")
CategoricalHinge = _error_mean(L.categorical_hinge, "CategoricalHinge", "categorical_hinge",
                               "Weighted mean of ``maximum(neg - pos + 1, 0)`` with one-hot labels.")
