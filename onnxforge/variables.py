"""Variables: the weights and state of layers and optimizers, shared by every program that uses them."""
from __future__ import annotations

__all__ = ["Variable"]

import itertools
from typing import Any

import numpy as np

_ids = itertools.count()


class Variable:
    """A named tensor of state: a layer weight, a BatchNorm statistic, an optimizer slot.

    One ``Variable`` object exists per weight, however many models and compiled programs use it (GANs
    share layers between models). Its live value is either a host array or a device-resident
    onnxruntime ``OrtValue`` that the runtime swaps in after each training step; ``numpy()`` reads it
    back, ``assign()`` replaces it from the host.

    Inside a trace (see ``onnxforge.tracing``), a ``Variable`` used as an op input stands for its graph
    value, so layer code reads ``x @ self.kernel``.

    Example:
        >>> import numpy as np
        >>> v = Variable(np.zeros((2, 3), np.float32), name="dense/kernel")
        >>> v.shape, v.trainable
        ((2, 3), True)
        >>> v.assign(np.ones((2, 3))); float(v.numpy().sum())
        6.0
    """

    def __init__(self, value: Any, name: str, trainable: bool = True, regularizer: Any = None,
                 dtype: Any = np.float32, autocast: bool = True):
        self._host = np.array(value, dtype=dtype)
        self._device: Any = None  # an onnxruntime OrtValue, owned by the runtime
        self.name = name
        self.trainable = trainable
        self.regularizer = regularizer
        #: Under a mixed-precision layer, reads in ``call`` are cast to the compute dtype (Keras's autocast).
        self.autocast = bool(autocast)
        self.uid = next(_ids)  # stable identity for dict keys across renames

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._host.shape) if self._device is None else tuple(self._device.shape())

    @property
    def dtype(self) -> np.dtype:
        return self._host.dtype

    def numpy(self) -> np.ndarray:
        """The current value as a host array (copied back from the device if it lives there)."""
        if self._device is not None:
            self._host = np.array(self._device.numpy(), copy=True)
            self._device = None  # host is authoritative again until the runtime uploads it
        return self._host

    def assign(self, value: Any) -> None:
        """Replace the value from the host. The shape must match."""
        array = np.asarray(value, dtype=self.dtype)
        if array.shape != self.shape:
            raise ValueError(f"Cannot assign a value of shape {array.shape} to variable {self.name!r} "
                             f"of shape {self.shape}.")
        self._host = array.copy()
        self._device = None

    # Runtime hooks: the device copy is swapped in without touching the host.
    def _set_device(self, ortvalue: Any) -> None:
        self._device = ortvalue

    def _get_device(self) -> Any:
        return self._device

    def __onnx_value__(self):
        from .tracing import current_trace

        return current_trace().read_autocast(self)

    def __repr__(self) -> str:
        return f"<Variable {self.name!r} shape={self.shape} trainable={self.trainable}>"
