"""The shape a traced value shows: a ``tuple`` of dims (ints, symbolic names such as ``"batch"``, ``None``), as
the graph code wants it, with ``tf.TensorShape``'s accessors for user code inside a traced ``call()`` or
``tf.function`` (``x.shape.as_list()``, ``x.shape.rank``), where a dim known only at run time reads ``None``.

Example:
    >>> s = TracedShape(("batch", 3))
    >>> s == ("batch", 3), s.as_list(), s.rank, s.is_fully_defined()
    (True, [None, 3], 2, False)
"""
from __future__ import annotations

__all__ = ["TracedShape", "traced_shape"]

import math
from typing import Any


class TracedShape(tuple):
    """A traced value's dims (a ``tuple``) with ``tf.TensorShape``'s accessors; see the module doc."""

    __slots__ = ()

    def as_list(self) -> list[int | None]:
        """The dims, ``None`` for one known only at run time (TensorFlow's unknown dim)."""
        return [d if isinstance(d, int) else None for d in self]

    @property
    def rank(self) -> int:
        return len(self)

    ndims = rank

    @property
    def dims(self) -> list[int | None]:
        return self.as_list()

    def is_fully_defined(self) -> bool:
        return all(isinstance(d, int) for d in self)

    def num_elements(self) -> int | None:
        """The number of elements, ``None`` unless every dim is known."""
        return math.prod(self) if self.is_fully_defined() else None

    def __reduce__(self) -> tuple:
        return TracedShape, (tuple(self),)


def traced_shape(dims: Any) -> TracedShape | None:
    """``dims`` as a ``TracedShape`` (``None``, an unknown rank, stays ``None``)."""
    if dims is None or type(dims) is TracedShape:
        return dims
    return TracedShape(dims)
