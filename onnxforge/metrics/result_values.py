"""What ``Metric.result()`` returns on the host: the value as a float or a NumPy array, which also reads like the
tensor Keras returns (``m.result().numpy()``, a float32 like Keras's), so logs, ``History`` and formatting keep
seeing plain numbers while Keras-style training loops work unchanged.

Example:
    >>> v = MetricValue(0.25)
    >>> v + 1.0, v.numpy().dtype, v.shape
    (1.25, dtype('float32'), ())
"""
from __future__ import annotations

__all__ = ["MetricValue", "MetricArray"]

import numpy as np


class MetricValue(float):
    """A scalar metric result: a Python float (logs, ``History``, formatting and arithmetic see one) that also
    reads like the scalar tensor Keras returns, so ``m.result().numpy()`` (a float32, as in Keras) works.

    Example:
        >>> v = MetricValue(0.25)
        >>> v + 1.0, v.numpy().dtype, v.shape
        (1.25, dtype('float32'), ())
    """

    shape: tuple = ()
    dtype: str = "float32"

    def numpy(self) -> np.float32:
        return np.float32(self)


class MetricArray(np.ndarray):
    """An array metric result (``F1Score`` per class, ``Precision`` at several thresholds): a NumPy array that also
    answers ``m.result().numpy()`` with float32 values, as Keras's tensor does.

    Example:
        >>> MetricArray.__name__, np.array([0.5, 1.0]).view(MetricArray).numpy().dtype
        ('MetricArray', dtype('float32'))
    """

    def numpy(self) -> np.ndarray:
        return np.asarray(self, np.float32)
