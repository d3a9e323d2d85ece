"""``optimizer.learning_rate`` as Keras code handles it: a number that also has ``assign`` and ``numpy``.

In Keras 3 the learning rate is a Variable, so scripts call ``optimizer.learning_rate.assign(0.5)``,
``.numpy()``, ``float(...)``, and tf.keras ones ``tf.keras.backend.set_value(optimizer.learning_rate, x)``.
onnxforge keeps the rate on the host and feeds it to the training graph every step, so the rate read here is
a ``float`` (arithmetic, comparisons, formatting, ``json`` all work unchanged) that remembers its optimizer:
``assign`` goes through the optimizer's ``learning_rate`` setter.

The value is the rate at the time of the read (as Keras's ``float(optimizer.learning_rate)``): after
``assign`` read ``optimizer.learning_rate`` again for the new one.

Example:
    >>> from onnxforge.optimizers import SGD
    >>> opt = SGD(learning_rate=0.1)
    >>> lr = opt.learning_rate
    >>> lr * 2, lr < 1, f"{lr:.2f}", lr.numpy()
    (0.2, True, '0.10', array(0.1, dtype=float32))
    >>> lr.assign(0.5); opt.learning_rate
    0.5
"""
from __future__ import annotations

__all__ = ["LearningRate"]

from typing import Any

import numpy as np


class LearningRate(float):
    """The learning rate of ``optimizer``'s next step, as a float with Keras Variable's ``assign``/``numpy``.

    Args:
        value: the rate.
        optimizer: the optimizer whose ``learning_rate`` setter ``assign`` calls.
    """

    _optimizer: Any

    def __new__(cls, value: float, optimizer: Any) -> LearningRate:
        self = super().__new__(cls, value)
        self._optimizer = optimizer
        return self

    def assign(self, value: Any) -> None:
        """Set the optimizer's learning rate (raises if it follows a ``LearningRateSchedule``, as in Keras)."""
        self._optimizer.learning_rate = _scalar(value)

    def numpy(self) -> np.ndarray:
        """The rate as a float32 scalar array, like Keras's learning-rate Variable."""
        return np.asarray(float(self), np.float32)

    @property
    def value(self) -> float:
        return float(self)

    @property
    def dtype(self) -> str:
        return "float32"

    @property
    def shape(self) -> tuple[int, ...]:
        return ()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(float(self), dtype or np.float32)

    def __reduce__(self) -> tuple[type, tuple[float]]:
        # Copies and pickles (logs, history, deepcopy of configs) are plain floats, not the optimizer too.
        return float, (float(self),)

    def __repr__(self) -> str:
        return float.__repr__(self)


def _scalar(value: Any) -> Any:
    """A host number from what Keras code assigns: floats, numpy scalars and 0-d arrays, tensors."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        value = value.numpy()
    array = np.asarray(value)
    return float(array.reshape(())) if array.size == 1 and array.dtype.kind in "fiu" else value
