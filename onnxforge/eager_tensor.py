"""``EagerTensor``: what layers, models and ``onnxforge.ops`` return when called on concrete arrays.

Keras 3 returns a backend tensor from an eager call (a ``torch.Tensor`` on the torch backend, an
``EagerTensor`` on TensorFlow). onnxforge computes eager calls with onnxruntime and hands back a numpy
array subclass, so everything numpy does works unchanged (``np.asarray(t)``, ``float(t)``, ``t + 1``,
``t[0]``, ``t.shape``, ``t.dtype``, in-place ``t *= 255``) and the tensor habits of Keras code work too:
``t.numpy()`` and ``ops.convert_to_numpy(t)``. Passing one back into a layer or an op is passing an array.

String tensors hold Python ``str`` inside (NumPy ``<U`` or object arrays, what onnxruntime takes and returns),
so ``np.asarray(t)``, comparisons with ``str`` and the text layers work on them unchanged; only ``t.numpy()``
hands them out as TensorFlow does: UTF-8 ``bytes`` for a scalar, an object array of ``bytes`` otherwise, so
the tutorials' ``t.numpy().decode("utf-8")`` works. Indexing one gives a 0-d tensor, as TensorFlow's.

Example:
    >>> import numpy as np
    >>> t = EagerTensor(np.arange(3, dtype=np.float32))
    >>> (t * 2).numpy().tolist(), float(t[1])
    ([0.0, 2.0, 4.0], 1.0)
    >>> words = EagerTensor(np.array(["héllo", "a"]))
    >>> words.numpy(), words[0].numpy().decode("utf-8")
    (array([b'h\\xc3\\xa9llo', b'a'], dtype=object), 'héllo')
"""
from __future__ import annotations

__all__ = ["EagerTensor", "as_eager", "set_tape_hooks", "set_shape_type", "is_text", "as_tf_bytes", "text_feed"]

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
    if isinstance(x, np.generic):
        return np.asarray(x).view(EagerTensor)
    return x


def is_text(array: np.ndarray) -> bool:
    """Whether ``array`` is a string tensor: NumPy text dtypes, or an object array of only ``str`` / ``bytes``."""
    if array.dtype.kind in "UST":
        return True
    return array.dtype == object and array.size > 0 and all(isinstance(v, (str, bytes)) for v in array.flat)


def _weak_scalars(inputs: tuple) -> tuple:
    """NumPy scalars beside a tensor as Python numbers: TensorFlow and torch keep the tensor's dtype for
    ``t / np.float64(2)`` or ``t - np.int64(1)`` (keras.io's NeRF divides float32 rays by the focal length,
    a float64 read from an ``.npz``), where NumPy 2 would promote a float32 tensor to float64. Only a float
    beside a float tensor, or an integer beside a float or integer tensor that can hold it: where the two
    frameworks disagree (a float beside an integer tensor) NumPy's rule stays."""
    kinds = {x.dtype.kind for x in inputs if isinstance(x, EagerTensor)}
    if not kinds or not kinds <= {"f", "i", "u"} or not any(isinstance(x, np.generic) for x in inputs):
        return inputs
    tensor_dtype = next(x.dtype for x in inputs if isinstance(x, EagerTensor))

    def weak(x: Any) -> Any:
        if not isinstance(x, np.generic) or isinstance(x, np.bool_):
            return x
        if x.dtype.kind == "f" and kinds == {"f"}:
            return float(x)
        if x.dtype.kind in "iu" and (kinds == {"f"} or (len(kinds) == 1 and np.min_scalar_type(x) != object and
                                                        np.can_cast(np.min_scalar_type(x), tensor_dtype))):
            return int(x)
        return x
    return tuple(weak(x) for x in inputs)


def _text_operands(inputs: tuple) -> tuple:
    """A string tensor compared with ``bytes`` (a value its ``.numpy()`` gave): the bytes decoded, so that
    ``t == b"a"`` compares texts as TensorFlow does (NumPy would compare ``str`` with ``bytes`` as unequal)."""
    if not any(isinstance(x, EagerTensor) and is_text(x.view(np.ndarray)) for x in inputs):
        return inputs

    def text(x: Any) -> Any:
        if isinstance(x, bytes):
            return x.decode("utf-8", errors="surrogateescape")
        if isinstance(x, np.ndarray) and not isinstance(x, EagerTensor) and x.dtype.kind in "SO" and x.size and \
                all(isinstance(v, bytes) for v in x.flat):
            return np.asarray([v.decode("utf-8", errors="surrogateescape") for v in x.flat]).reshape(x.shape)
        return x
    return tuple(text(x) for x in inputs)


def text_feed(value: Any) -> Any:
    """A host array fed to onnxruntime with its ``bytes`` (``.numpy()`` results fed back) decoded from UTF-8:
    onnxruntime's Python binding feeds ``str(b"ab")``, the text ``"b'ab'"``, and fails on ``S`` arrays.
    Other values are returned as they are.

    Raises:
        ValueError: the bytes are not UTF-8 (onnxruntime's string tensors take text only).
    """
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "SO" or not value.size:
        return value
    if value.dtype.kind == "O" and not any(isinstance(v, bytes) for v in value.flat):
        return value
    try:
        texts = [v.decode("utf-8") if isinstance(v, bytes) else v for v in value.flat]
    except UnicodeDecodeError as err:
        raise ValueError(f"A string input holds bytes that are not UTF-8 ({err}); onnxruntime's string tensors "
                         "take UTF-8 text only.") from None
    out = np.empty(value.shape, dtype=object)
    out.flat[:] = texts
    return out


def _utf8(value: Any) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def as_tf_bytes(array: np.ndarray) -> Any:
    """A string array as TensorFlow's ``Tensor.numpy()`` gives it: ``bytes`` for a scalar, else an object array
    of UTF-8 ``bytes`` of the same shape."""
    if array.ndim == 0:
        return _utf8(array.item())
    out = np.empty(array.shape, dtype=object)
    out.flat[:] = [_utf8(v) for v in array.flat]
    return out


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
        if ufunc in (np.equal, np.not_equal):
            inputs = _text_operands(inputs)
        if method == "__call__" and len(inputs) > 1:
            inputs = _weak_scalars(inputs)
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
        if isinstance(item, (str, bytes)) and not isinstance(item, np.generic):
            # an element of an object array of strings (onnxruntime's results)
            scalar = np.empty((), dtype=object)
            scalar[()] = item
            return scalar.view(EagerTensor)
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

    def set_shape(self, shape: Any) -> None:
        """TensorFlow's ``Tensor.set_shape`` on a concrete tensor: a check that ``shape`` fits (its ``None`` dims
        match anything), as TensorFlow's eager tensors do; the shape itself is already known.

        Raises:
            ValueError: ``shape`` contradicts a dim or the rank.
        """
        from .graph.traced_shape import refined_shape

        refined_shape(tuple(self.shape), shape)

    def get_shape(self) -> tuple:
        """TensorFlow's ``Tensor.get_shape``: the same as ``shape``."""
        return self.shape

    def numpy(self) -> Any:
        """The values as a plain ``numpy.ndarray`` of its own, as TensorFlow's ``numpy()`` gives them: writing to
        it leaves the tensor as it was (keras.io's Deep Dream deprocesses ``img.numpy()`` in place, then uses
        ``img`` again); a string tensor's as TensorFlow gives them: ``bytes`` for a scalar, an object array of
        UTF-8 ``bytes`` otherwise."""
        plain = self.view(np.ndarray)
        return as_tf_bytes(plain) if is_text(plain) else plain.copy()

    def to_tensor(self, default_value: Any = None, name: str | None = None, shape: Any = None) -> EagerTensor:
        """The tensor itself: TensorFlow's ragged results whose rows have one length (``unicode_split`` of
        strings of equal length) are dense here, so its ``.to_tensor()`` has nothing to pad."""
        return self

    def __str__(self) -> str:
        # A string tensor prints its elements as TensorFlow's ``print`` does (``[b'c' b'a']``): numpy's own
        # printing indexes the elements, which come back as 0-d tensors and print as ``tensor('c', ...)``.
        plain = self.view(np.ndarray)
        return str(as_tf_bytes(plain)) if is_text(plain) else super().__str__()

    def __format__(self, spec: str) -> str:
        # ``f"{value}"`` of a string scalar is TensorFlow's ``b'female'`` (the data guide prints CSV rows so).
        plain = self.view(np.ndarray)
        return format(as_tf_bytes(plain), spec) if is_text(plain) else super().__format__(spec)

    def __repr__(self) -> str:
        body = repr(self.view(np.ndarray))
        return "tensor" + body[len("array"):] if body.startswith("array") else f"tensor({body})"


def as_eager(value: Any) -> Any:
    """``value`` as an ``EagerTensor`` when it is an array or a numpy scalar; anything else unchanged."""
    if isinstance(value, EagerTensor):
        return value
    if isinstance(value, (np.ndarray, np.generic)):
        return EagerTensor(value)
    return value
