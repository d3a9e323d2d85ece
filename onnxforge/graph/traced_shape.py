"""The shape a traced value shows: a ``tuple`` of dims (ints, symbolic names such as ``"batch"``, ``None``), as
the graph code wants it, with ``tf.TensorShape``'s accessors for user code inside a traced ``call()`` or
``tf.function`` (``x.shape.as_list()``, ``x.shape.rank``), where a dim known only at run time reads ``None``.

Example:
    >>> s = TracedShape(("batch", 3))
    >>> s == ("batch", 3), s.as_list(), s.rank, s.is_fully_defined()
    (True, [None, 3], 2, False)
"""
from __future__ import annotations

__all__ = ["TracedShape", "traced_shape", "refined_shape"]

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


def refined_shape(current: Any, given: Any) -> tuple | None:
    """TensorFlow's ``Tensor.set_shape`` rule: ``current`` (``None`` for an unknown rank) with each dim it does not
    know taken from ``given``; ``None`` dims of ``given`` leave the dim as it is.

    Example:
        >>> refined_shape(("batch", None, 3), [None, 8, 3])
        ('batch', 8, 3)

    Raises:
        ValueError: the ranks differ, or a dim known on both sides differs (TensorFlow's message).
    """
    if given is None:
        return None if current is None else tuple(current)
    wanted = [None if d is None else int(d) for d in (given.as_list() if hasattr(given, "as_list") else given)]
    if current is None:
        return tuple(wanted)
    have = list(current)
    if len(have) != len(wanted) or any(isinstance(h, int) and w is not None and h != w for h, w in zip(have, wanted)):
        shown = tuple(h if isinstance(h, int) else None for h in have)
        raise ValueError(f"Tensor's shape {shown} is not compatible with supplied shape {wanted}.")
    return tuple(w if w is not None and not isinstance(h, int) else h for h, w in zip(have, wanted))
