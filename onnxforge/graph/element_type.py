"""The element type a traced value shows: an ONNX ``int``, as onnx and the graph code want it, that reads as
the Keras dtype name (``"float32"``) wherever user code looks at it.

Inside a traced ``call()`` or ``tf.function`` a tensor's ``dtype`` is what Keras 3 code compares with dtype names
(``x.dtype == "float32"``, ``"float" in x.dtype``, ``x.dtype.name``, ``tf.cast(m, x.dtype)``), while the graph
builder, the gradient rules and onnx's helpers compare and hash it as ``onnx.TensorProto`` numbers. An ``int``
subclass serves both: it hashes and compares as its number, and compares with a dtype name, a NumPy dtype or
scalar type by name.

Example:
    >>> import onnx
    >>> t = element_type(onnx.TensorProto.FLOAT)
    >>> t == onnx.TensorProto.FLOAT, t == "float32", t == "float64", "float" in t, t.name
    (True, True, False, True, 'float32')
    >>> str(t), t.is_floating
    ('float32', True)
"""
from __future__ import annotations

__all__ = ["ElementType", "element_type", "dtype_name"]

from typing import Any

import numpy as np
import onnx

_T = onnx.TensorProto
_SPECIAL_NAMES = {_T.BFLOAT16: "bfloat16", _T.STRING: "string", _T.UNDEFINED: "undefined"}


def dtype_name(elem_type: int) -> str:
    """Keras's name of an ONNX element type (``"float32"``, ``"bfloat16"``, ``"string"``)."""
    if elem_type in _SPECIAL_NAMES:
        return _SPECIAL_NAMES[elem_type]
    try:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)).name
    except (KeyError, TypeError, ValueError):
        return _T.DataType.Name(elem_type).lower()


def _other_name(other: Any) -> str | None:
    """The dtype name ``other`` stands for (a name, a NumPy dtype or scalar type), or ``None``."""
    if isinstance(other, str):
        if other in ("string", "str", "bfloat16"):
            return "bfloat16" if other == "bfloat16" else "string"
    elif not (isinstance(other, np.dtype) or (isinstance(other, type) and issubclass(other, np.generic))
              or other in (float, bool, str, bytes)):
        return None
    try:
        dtype = np.dtype(other)
    except TypeError:
        return None
    return "string" if dtype.kind in "OUS" else dtype.name


class ElementType(int):
    """An ONNX element type (an ``int``) that compares with Keras / NumPy dtypes by name; see the module doc."""

    __slots__ = ()

    @property
    def name(self) -> str:
        """The Keras dtype name (``"float32"``)."""
        return dtype_name(int(self))

    @property
    def is_floating(self) -> bool:
        return self.name.startswith(("float", "bfloat"))

    @property
    def is_integer(self) -> bool:
        return self.name.startswith(("int", "uint"))

    @property
    def is_bool(self) -> bool:
        return self.name == "bool"

    @property
    def as_numpy_dtype(self) -> type:
        return str if self.name == "string" else np.dtype(onnx.helper.tensor_dtype_to_np_dtype(int(self))).type

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, int):
            return int.__eq__(self, other)
        name = _other_name(other)
        return NotImplemented if name is None else self.name == name

    def __ne__(self, other: Any) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = int.__hash__

    def __contains__(self, part: str) -> bool:
        return part in self.name

    def startswith(self, prefix: Any) -> bool:
        return self.name.startswith(prefix)

    def endswith(self, suffix: Any) -> bool:
        return self.name.endswith(suffix)

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return repr(self.name)

    def __format__(self, spec: str) -> str:
        return format(self.name, spec) if not spec or spec[-1] not in "bcdoxXn" else int.__format__(self, spec)

    def __reduce__(self) -> tuple:
        return element_type, (int(self),)


_CACHE: dict[int, ElementType] = {}


def element_type(elem_type: int | None) -> ElementType | None:
    """``elem_type`` as an ``ElementType`` (``None`` stays ``None``), one shared object per number."""
    if elem_type is None or type(elem_type) is ElementType:
        return elem_type
    found = _CACHE.get(elem_type)
    if found is None:
        found = _CACHE[int(elem_type)] = ElementType(int(elem_type))
    return found
