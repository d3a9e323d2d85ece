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

__all__ = ["EagerTensor", "as_eager", "set_tape_hooks", "set_shape_type"]

from collections.abc import Callable
from typing import Any

import numpy as np

#: ``(ufunc hook, getitem hook)``, set by ``onnxforge.eager.tape`` while an eager GradientTape records: numpy
#: calls on tensors the tape follows go to onnxforge's ops so the tape sees them (TensorFlow records its
#: tensors' operators the same way). Each hook returns ``NotImplemented`` to leave the call to numpy.
_TAPE_HOOKS: list[Callable[..., Any] | None] = [None, None]


#: The tuple type ``EagerTensor.shape`` returns: ``tf.TensorShape`` (``as_list()``, ``rank``) once ``tf_compat``
#: registers it, as a TensorFlow tensor's shape is.
_SHAPE_TYPE: list[type] = [tuple]


def set_shape_type(shape_type: type) -> None:
    """Make ``EagerTensor.shape`` a ``shape_type`` (a ``tuple`` subclass built from the dims)."""
    _SHAPE_TYPE[0] = shape_type


def set_tape_hooks(ufunc: Callable[..., Any] | None, getitem: Callable[..., Any] | None) -> None:
    """Install (or, with ``None``, remove) the recording hooks of eager GradientTapes."""
    _TAPE_HOOKS[:] = [ufunc, getitem]


def _plain(x: Any) -> Any:
    return x.view(np.ndarray) if isinstance(x, EagerTensor) else x


def _wrap(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return x.view(EagerTensor)
    if isinstance(x, np.generic) and not isinstance(x, (np.str_, np.bytes_)):
        return np.asarray(x).view(EagerTensor)
    return x


class EagerTensor(np.ndarray):
    """A concrete tensor: a numpy array with the ``numpy()`` method of Keras backends' tensors."""

    def __new__(cls, value: Any) -> EagerTensor:
        return np.asarray(value).view(cls)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        hook = _TAPE_HOOKS[0]
        if hook is not None:
            out = hook(ufunc, method, inputs, kwargs)
            if out is not NotImplemented:
                return out
        # numpy's own computation on plain views, the results as EagerTensors (0-d ones too).
        outs = kwargs.get("out")
        if outs:
            kwargs["out"] = tuple(_plain(o) for o in outs)
        result = getattr(ufunc, method)(*(_plain(x) for x in inputs), **kwargs)
        if outs:
            return outs[0] if len(outs) == 1 else tuple(outs)
        if isinstance(result, tuple):
            return tuple(_wrap(r) for r in result)
        return _wrap(result)

    # ``loss += extra`` while a tape records ``loss``: a new recorded tensor rebound to the name (TensorFlow's
    # tensors are immutable, so its ``+=`` rebinds too); numpy's in-place update would hide it from the tape.
    def _inplace(self, ufunc: Any, other: Any, numpy_inplace: Any) -> Any:
        hook = _TAPE_HOOKS[0]
        if hook is not None:
            out = hook(ufunc, "__call__", (self, other), {})
            if out is not NotImplemented:
                return out
        return numpy_inplace(other)

    def __iadd__(self, other: Any) -> Any:
        return self._inplace(np.add, other, super().__iadd__)

    def __isub__(self, other: Any) -> Any:
        return self._inplace(np.subtract, other, super().__isub__)

    def __imul__(self, other: Any) -> Any:
        return self._inplace(np.multiply, other, super().__imul__)

    def __itruediv__(self, other: Any) -> Any:
        return self._inplace(np.true_divide, other, super().__itruediv__)

    def __ipow__(self, other: Any) -> Any:
        return self._inplace(np.power, other, super().__ipow__)

    def __getitem__(self, index: Any) -> Any:
        hook = _TAPE_HOOKS[1]
        if hook is not None:
            out = hook(self, index)
            if out is not NotImplemented:
                return out
        # ``t[0, 0]`` stays a tensor (``.numpy()`` works) as in TensorFlow and Keras; numpy would hand back a
        # bare scalar.
        item = super().__getitem__(index)
        return _wrap(item) if isinstance(item, np.generic) else item

    def __hash__(self) -> int:
        # A scalar hashes by value, as the numpy scalar indexing used to return did: ``set(np.unique(t))``,
        # ``counts[t[i]] += 1`` and dict keys from a tensor's elements keep working (and match equal numbers).
        if self.ndim == 0:
            return hash(self.item())
        raise TypeError(f"unhashable type: 'EagerTensor' of shape {self.shape}; only scalars hash")

    @property
    def shape(self) -> tuple:
        """The dims, a ``tuple`` (``tf.TensorShape``, with ``as_list()`` and ``rank``, under ``import onnxforge``)."""
        dims = np.ndarray.shape.__get__(self)
        return dims if _SHAPE_TYPE[0] is tuple else _SHAPE_TYPE[0](dims)

    @shape.setter
    def shape(self, dims: Any) -> None:   # numpy's in-place reshape (``t.shape = (2, 3)``)
        np.ndarray.shape.__set__(self, dims)

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
