"""``tf.TensorSpec``: the shape and dtype a tensor must have, as TensorFlow programs spell it in
``tf.data.Dataset.from_generator(output_signature=...)``, ``tf.function(input_signature=...)`` and
``Dataset.element_spec``.

Example:
    >>> import numpy as np
    >>> spec = TensorSpec(shape=(None, 3), dtype="float32", name="x")
    >>> spec
    TensorSpec(shape=(None, 3), dtype=tf.float32, name='x')
    >>> spec.is_compatible_with(np.zeros((5, 3), np.float32)), spec.is_compatible_with(np.zeros(3, np.float32))
    (True, False)
"""
from __future__ import annotations

__all__ = ["TensorSpec", "normalize_dtype", "shape_compatible"]

from collections.abc import Sequence
from typing import Any

import numpy as np

#: TensorFlow's string dtype: NumPy holds its elements as Python ``bytes`` in an object array.
_STRING_NAMES = ("string", "str", "tf.string")


def normalize_dtype(dtype: Any) -> str:
    """A dtype given as TensorFlow / NumPy / Keras spell it, as its name (``"string"`` for text)."""
    if dtype is None:
        return "float32"
    name = getattr(dtype, "name", dtype)
    if isinstance(name, str) and name in _STRING_NAMES:
        return "string"
    try:
        return np.dtype(name).name
    except TypeError as err:
        raise TypeError(f"TensorSpec: `dtype` must be a dtype such as 'float32' or tf.int64. Received: dtype={dtype!r}"
                        ) from err


def _shape(shape: Any) -> tuple[int | None, ...] | None:
    if shape is None:
        return None
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    if not isinstance(shape, Sequence) and not hasattr(shape, "__iter__"):
        raise TypeError(f"TensorSpec: `shape` must be a sequence of ints and None, or None. Received: shape={shape!r}")
    dims = []
    for d in shape:
        d = getattr(d, "value", d)
        if d is not None and (isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < -1):
            raise TypeError(f"TensorSpec: every dim of `shape` must be a non-negative int or None. Received: "
                            f"shape={shape!r}")
        dims.append(None if d is None or d == -1 else int(d))
    return tuple(dims)


def shape_compatible(expected: tuple[int | None, ...] | None, actual: Sequence[int]) -> bool:
    """Whether a concrete ``actual`` shape fits ``expected`` (``None``: any rank; a ``None`` dim: any size)."""
    if expected is None:
        return True
    return len(expected) == len(actual) and all(e is None or e == a for e, a in zip(expected, actual))


class TensorSpec:
    """The shape and dtype of a tensor.

    Args:
        shape: dims as ints, ``None`` for an unknown dim; ``None`` for an unknown rank.
        dtype: any dtype spelling (``tf.float32``, ``"int64"``, ``np.uint8``); default float32.
        name: an optional name.
    """

    def __init__(self, shape: Any, dtype: Any = "float32", name: str | None = None):
        self._shape = _shape(shape)
        self._dtype = normalize_dtype(dtype)
        self.name = name

    @classmethod
    def from_tensor(cls, tensor: Any, name: str | None = None) -> TensorSpec:
        """The spec of an array or tensor (its full shape and dtype)."""
        array = np.asarray(tensor)
        dtype = "string" if array.dtype.kind in ("S", "U", "O") else array.dtype
        return cls(array.shape, dtype, name)

    @property
    def shape(self) -> tuple[int | None, ...] | None:
        return self._shape

    @property
    def dtype(self) -> str:
        return self._dtype

    def numpy_dtype(self) -> np.dtype:
        """The NumPy dtype of arrays of this spec (``object`` for strings)."""
        return np.dtype(object) if self._dtype == "string" else np.dtype(self._dtype)

    def is_compatible_with(self, spec_or_value: Any) -> bool:
        """Whether a spec or a value could be a tensor of this spec (same dtype, shapes that agree)."""
        if isinstance(spec_or_value, TensorSpec):
            other = spec_or_value
            if other.dtype != self.dtype:
                return False
            if self._shape is None or other.shape is None:
                return True
            return len(self._shape) == len(other.shape) and all(
                a is None or b is None or a == b for a, b in zip(self._shape, other.shape))
        return self.is_compatible_with(TensorSpec.from_tensor(spec_or_value))

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, TensorSpec) and self._shape == other.shape and self._dtype == other.dtype
                and self.name == other.name)

    def __hash__(self) -> int:
        return hash((self._shape, self._dtype, self.name))

    def __repr__(self) -> str:
        shape = "<unknown>" if self._shape is None else self._shape
        return f"TensorSpec(shape={shape}, dtype=tf.{self._dtype}, name={self.name!r})"
