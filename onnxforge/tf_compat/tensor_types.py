"""``tf.Tensor`` and ``tf.TensorShape``: the types TensorFlow programs check against and annotate with.

onnxforge's tensors are an ``EagerTensor`` (the result of an op, a layer or ``tf.constant`` on arrays), a
graph ``Value`` (inside a traced step or ``call``) or a ``KerasTensor`` (a functional model's input and
outputs): ``isinstance(x, tf.Tensor)`` is true for all three, and false for a plain NumPy array or a
``Variable``, as in TensorFlow. Shapes are tuples everywhere in onnxforge; ``TensorShape`` is one with
TensorFlow's methods, for code that builds or compares one.

Example:
    >>> import numpy as np
    >>> import onnxforge as tf
    >>> isinstance(tf.constant([1.0]), Tensor), isinstance(np.ones(1), Tensor)
    (True, False)
    >>> s = TensorShape([None, 3])
    >>> s, s.as_list(), s.rank, s == (None, 3), s.is_fully_defined()
    (TensorShape([None, 3]), [None, 3], 2, True, False)
"""
from __future__ import annotations

__all__ = ["Tensor", "TensorShape", "StringDType"]

import abc
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..eager_tensor import EagerTensor, set_shape_type
from ..graph.value import Value
from ..layers.keras_tensor import KerasTensor


class Tensor(abc.ABC):
    """``tf.Tensor``, for ``isinstance`` checks and type hints: onnxforge's three kinds of tensor are its
    virtual subclasses. Make a tensor with ``tf.constant`` or ``tf.convert_to_tensor``."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Tensor:
        raise TypeError("tf.Tensor cannot be constructed directly: use tf.constant(value) or "
                        "tf.convert_to_tensor(value).")


for _kind in (EagerTensor, Value, KerasTensor):
    Tensor.register(_kind)


class TensorShape(tuple):
    """``tf.TensorShape``: a tuple of ints and ``None`` (unknown dims); ``TensorShape(None)`` has unknown rank.

    Being a tuple, it goes wherever onnxforge takes a shape (``tf.zeros(shape)``, ``tf.reshape``).
    """

    def __new__(cls, dims: Any) -> TensorShape:
        if dims is None:
            shape = super().__new__(cls, ())
            shape._unknown_rank = True
            return shape
        if isinstance(dims, (int, np.integer)):
            dims = (dims,)
        shape = super().__new__(cls, (None if d is None else int(getattr(d, "value", d)) for d in dims))
        shape._unknown_rank = False
        return shape

    @property
    def rank(self) -> int | None:
        """The number of dims, or ``None`` for an unknown rank."""
        return None if self._unknown_rank else tuple.__len__(self)

    ndims = rank

    @property
    def dims(self) -> list[int | None] | None:
        return None if self._unknown_rank else list(self)

    def __len__(self) -> int:
        if self._unknown_rank:
            raise ValueError("Cannot take the length of shape with unknown rank.")
        return tuple.__len__(self)

    def __getitem__(self, key: Any) -> Any:
        item = tuple.__getitem__(self, key)
        return TensorShape(item) if isinstance(key, slice) else item

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, TensorShape) and (self._unknown_rank or other._unknown_rank):
            return self._unknown_rank and other._unknown_rank
        try:
            return tuple(self) == tuple(other)
        except TypeError:
            return NotImplemented

    def __ne__(self, other: Any) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = tuple.__hash__

    def __repr__(self) -> str:
        return "TensorShape(None)" if self._unknown_rank else f"TensorShape({list(self)})"

    def __str__(self) -> str:
        if self._unknown_rank:
            return "<unknown>"
        return "(" + ", ".join(str(d) for d in self) + ("," if len(self) == 1 else "") + ")"

    def as_list(self) -> list[int | None]:
        """The dims as a list (``None`` for an unknown one)."""
        if self._unknown_rank:
            raise ValueError("as_list() is not defined on an unknown TensorShape.")
        return list(self)

    def is_fully_defined(self) -> bool:
        """Whether the rank and every dim are known."""
        return not self._unknown_rank and all(d is not None for d in self)

    def num_elements(self) -> int | None:
        """The product of the dims, or ``None`` when one is unknown."""
        return int(np.prod(self, dtype=np.int64)) if self.is_fully_defined() else None

    def is_compatible_with(self, other: Any) -> bool:
        """Whether some shape fits both: an unknown rank or dim matches anything."""
        other = other if isinstance(other, TensorShape) else TensorShape(other)
        if self._unknown_rank or other._unknown_rank:
            return True
        return tuple.__len__(self) == tuple.__len__(other) and all(
            a is None or b is None or a == b for a, b in zip(self, other))

    def merge_with(self, other: Any) -> TensorShape:
        """The shape with the dims known in either (they must agree where both are known)."""
        other = other if isinstance(other, TensorShape) else TensorShape(other)
        if not self.is_compatible_with(other):
            raise ValueError(f"Shapes {self} and {other} are not compatible")
        if self._unknown_rank:
            return other
        if other._unknown_rank:
            return self
        return TensorShape(a if a is not None else b for a, b in zip(self, other))

    def concatenate(self, other: Iterable[int | None] | None) -> TensorShape:
        """This shape followed by ``other``'s dims."""
        other = other if isinstance(other, TensorShape) else TensorShape(other)
        if self._unknown_rank or other._unknown_rank:
            return TensorShape(None)
        return TensorShape(tuple(self) + tuple(other))


set_shape_type(TensorShape)   # an eager tensor's shape is a TensorShape, as TensorFlow's is


class StringDType(str):
    """``tf.string``: the name ``"string"`` (so it goes wherever a dtype name does) that also equals the dtype of a
    string tensor, whose values NumPy holds as ``<U`` text (``.numpy()``'s object arrays of bytes too), as
    ``t.dtype == tf.string`` is true in TensorFlow.

    Example:
        >>> import numpy as np
        >>> string = StringDType("string")
        >>> np.array(["a", "bc"]).dtype == string, np.dtype("float32") == string, string == "string"
        (True, False, True)
    """

    __slots__ = ()

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, np.dtype):
            return other.kind in "OUS"
        return str.__eq__(self, other)

    def __ne__(self, other: Any) -> bool:
        return not self.__eq__(other)

    __hash__ = str.__hash__

    @property
    def name(self) -> str:
        return "string"
