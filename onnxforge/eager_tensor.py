"""``EagerTensor``: what layers, models and ``onnxforge.ops`` return when called on concrete arrays.

Keras 3 returns a backend tensor from an eager call (a ``torch.Tensor`` on the torch backend, an
``EagerTensor`` on TensorFlow). onnxforge computes eager calls with onnxruntime and hands back a numpy
array subclass, so everything numpy does works unchanged (``np.asarray(t)``, ``float(t)``, ``t + 1``,
``t[0]``, ``t.shape``, ``t.dtype``, in-place ``t *= 255``) and the tensor habits of Keras code work too:
``t.numpy()`` and ``ops.convert_to_numpy(t)``. Passing one back into a layer or an op is passing an array.

Example:
    >>> import numpy as np
    >>> t = EagerTensor(np.arange(3, dtype=np.float32))
    >>> (t * 2).numpy().tolist(), float(t[1])
    ([0.0, 2.0, 4.0], 1.0)
"""
from __future__ import annotations

__all__ = ["EagerTensor", "as_eager"]

from typing import Any

import numpy as np


class EagerTensor(np.ndarray):
    """A concrete tensor: a numpy array with the ``numpy()`` method of Keras backends' tensors."""

    def __new__(cls, value: Any) -> EagerTensor:
        return np.asarray(value).view(cls)

    def numpy(self) -> np.ndarray:
        """The values as a plain ``numpy.ndarray`` (a view, no copy)."""
        return self.view(np.ndarray)

    def __repr__(self) -> str:
        body = repr(self.view(np.ndarray))
        return "tensor" + body[len("array"):] if body.startswith("array") else f"tensor({body})"


def as_eager(value: Any) -> Any:
    """``value`` as an ``EagerTensor`` when it is an array or a numpy scalar; anything else unchanged."""
    if isinstance(value, EagerTensor):
        return value
    if isinstance(value, (np.ndarray, np.generic)) and not isinstance(value, (np.str_, np.bytes_)):
        return EagerTensor(value)
    return value
