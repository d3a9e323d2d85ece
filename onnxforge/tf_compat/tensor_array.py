"""``tf.TensorArray``: a list of same-shaped tensors written one index at a time and read back stacked.

Two representations, TensorFlow's semantics in both. While every index written is known on the host (eager
code, a Python ``for i in range(n)`` or ``for i in tf.range(n)`` loop unrolled while tracing), the elements
are kept as a Python mapping and ``stack`` joins them once. A write at an index computed in the graph, or an
array carried through a traced ``tf.while_loop`` (``graph_flow``), turns it into one ``(size, *element)``
tensor updated with ``ScatterND``; with ``dynamic_size=True`` a write past the end grows it. Unwritten
elements stack as zeros, as TensorFlow 2's do.

Example:
    >>> import numpy as np
    >>> ta = TensorArray("float32", size=0, dynamic_size=True)
    >>> for i in range(3):
    ...     ta = ta.write(i, np.float32(i) * 2)
    >>> ta.stack().tolist(), int(ta.size()), float(ta.read(1))
    ([0.0, 2.0, 4.0], 3, 2.0)
"""
from __future__ import annotations

__all__ = ["TensorArray"]

import builtins
from typing import Any

import numpy as np
import onnx

from .. import ops as _ops
from ..eager_tensor import as_eager
from ..graph import Value
from ..ops._util import as_value, cast_value
from ..trace_state import active_trace
from .errors import OutOfRangeError
from .tensor_types import TensorShape

_INT64 = onnx.TensorProto.INT64


def _host_index(index: Any) -> int | None:
    """``index`` as a Python int when it is known on the host, else ``None`` (a graph value)."""
    if isinstance(index, Value) or hasattr(index, "__onnx_value__"):
        return None
    array = np.asarray(index)
    if array.ndim != 0 or array.dtype.kind not in "iu":
        raise TypeError(f"TensorArray: an index must be a scalar integer. Received: index={index!r}")
    return int(array)


class TensorArray:
    """``tf.TensorArray(dtype, size, dynamic_size, element_shape)`` (see the module docstring);
    ``clear_after_read``, ``infer_shape``, ``colocate_with_first_write_call`` and the names are accepted.
    ``write`` / ``unstack`` / ``scatter`` return the updated array: keep the result, as TensorFlow requires."""

    def __init__(self, dtype: Any, size: Any = None, dynamic_size: bool | None = None,
                 clear_after_read: bool | None = None, tensor_array_name: str | None = None, handle: Any = None,
                 flow: Any = None, infer_shape: bool = True, element_shape: Any = None,
                 colocate_with_first_write_call: bool = True, name: str | None = None):
        if handle is not None or flow is not None:
            raise NotImplementedError("TensorArray: handle= and flow= (TensorFlow 1 internals) are not supported.")
        self._dtype = np.dtype(getattr(dtype, "name", dtype))
        self._dynamic = bool(dynamic_size)
        if size is None and not self._dynamic:
            raise ValueError("TensorArray: size must be given unless dynamic_size=True. Received: size=None")
        self._size = 0 if size is None else size if isinstance(size, Value) else int(np.asarray(size))
        shape = None if element_shape is None else TensorShape(element_shape)
        self._element_shape = None if shape is None or shape.rank is None else tuple(shape)
        self._items: dict[int, Any] = {}
        self._buffer: Value | None = None

    # ------------------------------------------------------------------------------------ properties
    @property
    def dtype(self) -> str:
        return self._dtype.name

    @property
    def dynamic_size(self) -> bool:
        return self._dynamic

    @property
    def element_shape(self) -> TensorShape:
        return TensorShape(self._element_shape)

    def _copy(self) -> TensorArray:
        if active_trace() is None:
            return self   # eagerly TensorFlow's array changes in place (and write returns it)
        other = object.__new__(TensorArray)
        other.__dict__.update(self.__dict__)
        other._items = dict(self._items)
        return other

    def _length(self) -> int:
        return builtins.max([self._size if isinstance(self._size, int) else 0] + [i + 1 for i in self._items])

    def _element(self, value: Any) -> Any:
        value = _ops.cast(value, self.dtype)
        shape = tuple((value.shape if hasattr(value, "shape") else np.shape(value)))
        shape = tuple(d if isinstance(d, int) else None for d in shape)
        known = self._element_shape
        if known is not None and (len(known) != len(shape) or any(
                a is not None and b is not None and a != b for a, b in zip(known, shape))):
            raise ValueError(f"TensorArray: the value written has shape {shape}, which is incompatible with the "
                             f"array's element shape {known}.")
        if known is None:
            self._element_shape = shape
        elif len(known) == len(shape):
            self._element_shape = tuple(a if a is not None else b for a, b in zip(known, shape))
        return value

    # ------------------------------------------------------------------------------------ writing
    def write(self, index: Any, value: Any, name: str | None = None) -> TensorArray:
        """The array with ``value`` at ``index`` (past the end only with ``dynamic_size=True``)."""
        out = self._copy()
        value = out._element(value)
        i = _host_index(index)
        if i is not None:
            if i < 0 or (not self._dynamic and isinstance(self._size, int) and i >= self._size):
                raise OutOfRangeError(None, None, f"TensorArray: tried to write to index {i} but the array is not resizeable "
                                 f"and its size is {self._size}.")
            if out._buffer is None:
                out._items[i] = value
                return out
        out._to_graph(value, index)
        b = out._buffer.builder
        idx = cast_value(as_value(index, b), _INT64)
        v = as_value(value, b)
        if self._dynamic:
            out._buffer = _grown(out._buffer, b.op("Add", [idx, b.const(np.int64(1))]), v)
        rows = b.op("Reshape", [idx, b.const(np.array([1, 1], np.int64))])
        updates = b.op("Unsqueeze", [v, b.const(np.array([0], np.int64))])
        new = b.op("ScatterND", [out._buffer, rows, updates])
        new.dtype, new.shape = out._buffer.dtype, out._buffer.shape
        out._buffer = new
        return out

    def unstack(self, value: Any, name: str | None = None) -> TensorArray:
        """The array holding the slices of ``value`` along its first axis."""
        out = self._copy()
        first = (value.shape if hasattr(value, "shape") else np.shape(value))
        n = first[0] if len(first) else None
        if isinstance(value, Value) and not isinstance(n, int):
            out._items, out._buffer = {}, cast_value(value, _ops_dtype(self.dtype))
            if out._element_shape is None and value.shape is not None:
                out._element_shape = tuple(d if isinstance(d, int) else None for d in value.shape[1:])
            return out
        if isinstance(out._size, int):
            out._size = builtins.max(out._size, int(n))
        for i in range(int(n)):
            out = out.write(i, value[i])
        return out

    def scatter(self, indices: Any, value: Any, name: str | None = None) -> TensorArray:
        """The array with ``value[k]`` at ``indices[k]``."""
        out = self
        for k, i in enumerate(np.asarray(indices).reshape(-1).tolist()):
            out = out.write(int(i), value[k])
        return out

    # ------------------------------------------------------------------------------------ reading
    def read(self, index: Any, name: str | None = None) -> Any:
        """The element at ``index``."""
        i = _host_index(index)
        if self._buffer is None and i is not None:
            if i in self._items:
                return self._items[i]
            if self._element_shape is not None and None not in self._element_shape and i < self._length():
                return _ops.zeros(self._element_shape, self.dtype)
            raise OutOfRangeError(None, None, f"TensorArray: could not read index {i}: it has not been written (size "
                             f"{self._length()}).")
        stacked = self.stack()
        b = stacked.builder if isinstance(stacked, Value) else None
        if b is None:
            return stacked[i]
        return b.op("Gather", [stacked, cast_value(as_value(index, b), _INT64)], axis=0,
                    dtype=stacked.dtype, shape=None if stacked.shape is None else tuple(stacked.shape[1:]))

    def stack(self, name: str | None = None) -> Any:
        """Every element, stacked along a new first axis (unwritten ones as zeros)."""
        if self._buffer is not None:
            return self._buffer
        n = self._length()
        if n and len(self._items) == n:
            return _ops.stack([self._items[i] for i in range(n)])
        shape = self._element_shape
        if shape is None or None in shape:
            if not n:
                raise ValueError("TensorArray: stack() of an empty array needs its element_shape (the result's "
                                 "shape is (0, *element_shape)). Pass element_shape= to TensorArray.")
            raise ValueError(f"TensorArray: elements {sorted(set(range(n)) - set(self._items))} were never "
                             f"written and the element shape {shape} is not fully known.")
        if not self._items:
            return _ops.zeros((n, *shape), self.dtype)
        zero = _ops.zeros(shape, self.dtype)
        return _ops.stack([self._items.get(i, zero) for i in range(n)])

    def gather(self, indices: Any, name: str | None = None) -> Any:
        """The elements at ``indices``, stacked."""
        return _ops.take(self.stack(), indices, axis=0)

    def concat(self, name: str | None = None) -> Any:
        """The elements joined along their first axis."""
        stacked = self.stack()
        shape = getattr(stacked, "shape", None)
        return _ops.reshape(stacked, (-1, *shape[2:])) if shape is not None and len(shape) >= 2 else stacked

    def size(self, name: str | None = None) -> Any:
        """The number of elements, an int32 scalar."""
        if self._buffer is None:
            return as_eager(np.asarray(self._length(), np.int32))
        b = self._buffer.builder
        n = b.op("Gather", [b.op("Shape", [self._buffer]), b.const(np.int64(0))], axis=0)
        return b.op("Cast", [n], to=onnx.TensorProto.INT32, shape=())

    def identity(self) -> TensorArray:
        return self

    def close(self, name: str | None = None) -> None:
        return None

    def mark_used(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"<TensorArray dtype={self.dtype} size={self._size} dynamic_size={self._dynamic}>"

    # ------------------------------------------------------------------------------------ graph form
    def _to_graph(self, value: Any, index: Any) -> None:
        """Switch to the one-tensor form in the graph of ``value`` / ``index``."""
        if self._buffer is not None:
            return
        b = next(x.builder for x in (value, index) if isinstance(x, Value))
        self._buffer = self.flow(b)
        self._items = {}

    def flow(self, b: Any) -> Value:
        """The whole array as one ``(size, *element)`` graph value (what a traced loop carries)."""
        if self._buffer is not None:
            return self._buffer
        shape = self._element_shape
        if not self._items and (shape is None or None in shape):
            raise ValueError("TensorArray: an array written at indices known only in the graph, or carried "
                             "through a traced loop, needs its element shape before its first write. Pass "
                             "element_shape= to TensorArray.")
        stacked = as_value(self.stack(), b, dtype=self.dtype)
        if isinstance(self._size, Value):
            raise NotImplementedError("TensorArray: a size computed in the graph is not supported; pass a "
                                      "Python int or dynamic_size=True.")
        return stacked

    def can_flow(self) -> bool:
        """Whether ``flow`` can build the one-tensor form now (something written, or the element shape given)."""
        shape = self._element_shape
        return self._buffer is not None or bool(self._items) or (shape is not None and None not in shape)

    def shaped_like(self, other: TensorArray) -> TensorArray:
        """This array with the element shape ``other`` (its later version) learned from its writes."""
        if other._element_shape is None or None in other._element_shape:
            raise ValueError("TensorArray: the element shape of an array carried through a traced tf.while_loop "
                             "is not known from the loop's writes. Pass element_shape= to TensorArray.")
        out = object.__new__(TensorArray)
        out.__dict__.update(self.__dict__)
        out._items = dict(self._items)
        out._element_shape = other._element_shape
        return out

    def with_flow(self, value: Value) -> TensorArray:
        """This array's settings holding the one-tensor form ``value``."""
        other = object.__new__(TensorArray)
        other.__dict__.update(self.__dict__)
        other._items, other._buffer = {}, value
        return other


def _ops_dtype(name: str) -> int:
    from ..graph import onnx_dtype

    return onnx_dtype(np.dtype(name))


def _grown(buffer: Value, need: Value, value: Value) -> Value:
    """``buffer`` with zero rows appended up to ``need`` rows (a dynamic array written past its end)."""
    b = buffer.builder
    shape = b.op("Shape", [buffer])
    have = b.op("Slice", [shape, b.const(np.array([0], np.int64)), b.const(np.array([1], np.int64))])
    more = b.op("Max", [b.op("Sub", [b.op("Reshape", [need, b.const(np.array([1], np.int64))]), have]),
                        b.const(np.array([0], np.int64))])
    rows = b.op("Concat", [more, b.op("Shape", [value])], axis=0)
    zeros = b.op("ConstantOfShape", [rows], value=_zero_tensor(buffer.dtype))
    zeros.dtype = buffer.dtype
    out = b.op("Concat", [buffer, zeros], axis=0)
    out.dtype = buffer.dtype
    out.shape = None if buffer.shape is None else (None, *buffer.shape[1:])
    return out


def _zero_tensor(dtype: int) -> Any:
    from ..graph import np_dtype, protos

    return protos.tensor_from_array(np.zeros(1, np_dtype(dtype)), "value")
