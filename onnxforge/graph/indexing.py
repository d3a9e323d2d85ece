"""NumPy indexing of a symbolic value (``x[:, 0]``, ``x[..., 1:3]``, ``x[:, None]``) as ONNX ops.

Basic indexing becomes one ``Slice`` (every sliced axis at once), then one ``Squeeze`` for integer indices
and one ``Unsqueeze`` for ``None``. A scalar integer tensor index (``x[i]`` with ``i`` a graph value) is a
``Gather``; one integer list or 1-D integer array index is a ``Gather`` too (NumPy's single advanced index).
Static shapes are computed here, so layers and gradient rules downstream keep known dims.

Example:
    >>> import onnx
    >>> from onnxforge.graph import GraphBuilder
    >>> b = GraphBuilder()
    >>> x = b.input("x", onnx.TensorProto.FLOAT, ("batch", 4, 6))
    >>> x[:, 0].shape, x[..., 1:5:2].shape, x[:, None, -1].shape
    (('batch', 6), ('batch', 4, 2), ('batch', 1, 6))
"""
from __future__ import annotations

__all__ = ["getitem"]

from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

if TYPE_CHECKING:
    from .value import Value

_INT64 = onnx.TensorProto.INT64
_MAX = int(np.iinfo(np.int64).max)
_MIN = int(np.iinfo(np.int64).min)


def _is_int(k: Any) -> bool:
    return isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_))


def _is_tensor_index(k: Any) -> bool:
    from .value import Value

    return isinstance(k, Value) or hasattr(k, "__onnx_value__")


def _slice_len(dim: Any, s: slice) -> Any:
    """The static length of ``dim[s]``: an int where ``dim`` and the bounds are known, the symbol for a
    full ``[:]`` of a symbolic dim, else ``None``."""
    if s.start is None and s.stop is None and s.step in (None, 1):
        return dim
    if isinstance(dim, int) and all(b is None or _is_int(b) for b in (s.start, s.stop, s.step)):
        return len(range(*slice(s.start, s.stop, s.step).indices(dim)))
    return None


def _bound(b: Any, v: Any, default: int) -> Any:
    """A slice bound as an int64 1-D piece: ints stay Python ints, scalar tensors are reshaped to (1,)."""
    if v is None:
        return default
    if _is_int(v):
        return int(v)
    if _is_tensor_index(v):
        v = v.__onnx_value__() if hasattr(v, "__onnx_value__") else v
        if v.dtype != _INT64:
            v = b.op("Cast", [v], to=_INT64, shape=v.shape)
        return b.op("Reshape", [v, b.const(np.asarray([1], np.int64))], shape=(1,))
    raise TypeError(f"Slice bounds must be integers or scalar integer tensors. Received: {v!r}")


def _int_vector(b: Any, items: list) -> Any:
    """An int64 1-D tensor from Python ints and (1,)-shaped values."""
    if all(isinstance(i, int) for i in items):
        return b.const(np.asarray(items, np.int64))
    pieces = [b.const(np.asarray([i], np.int64)) if isinstance(i, int) else i for i in items]
    return b.op("Concat", pieces, axis=0, shape=(len(items),))


def _expand_key(key: Any, rank: int | None, x: Value) -> list:
    """``key`` as one entry per input axis (Ellipsis expanded), ``None`` entries kept in place."""
    key = list(key) if isinstance(key, tuple) else [key]
    ellipses = sum(1 for k in key if k is Ellipsis)
    if ellipses > 1:
        raise IndexError(f"An index can only have a single ellipsis ('...'). Received: {tuple(key)!r}")
    consumed = sum(1 for k in key if k is not None and k is not Ellipsis)
    if ellipses:
        if rank is None:
            raise IndexError(f"Indexing {x.name!r} with '...' needs its rank, which is not known while tracing.")
        i = key.index(Ellipsis)
        key = key[:i] + [slice(None)] * (rank - consumed) + key[i + 1:]
    elif rank is not None:
        key = key + [slice(None)] * (rank - consumed)
    if rank is not None and consumed > rank:
        raise IndexError(f"Too many indices for a tensor of rank {rank}: {consumed} were given. "
                         f"Tensor: {x.name!r} of shape {x.shape}")
    return key


def getitem(x: Value, key: Any) -> Value:
    """``x[key]`` with NumPy's basic-indexing semantics (and one integer-array index)."""
    b = x.builder
    assert b is not None, f"{x!r} is not attached to a builder"
    entries = _expand_key(key, x.rank, x)
    if any(isinstance(k, (list, np.ndarray)) or (_is_tensor_index(k) and _rank_of(k) != 0) for k in entries):
        return _advanced(x, entries)
    if x.shape is None and any(k is None for k in entries):
        raise IndexError(f"Indexing {x.name!r} with None (newaxis) needs its rank, which is not known here.")
    shape = list(x.shape) if x.shape is not None else None
    starts: list = []
    ends: list = []
    axes: list[int] = []
    steps: list[int] = []
    gathers: list[tuple[int, Any]] = []
    dropped: list[int] = []     # input axes indexed by an integer (size 1 after slicing, then squeezed)
    mid: list = []              # per input axis, its size after Slice / Gather
    final: list = []            # the output shape, None entries of the key included
    new_axes: list[int] = []
    axis = 0
    for k in entries:
        if k is None:
            new_axes.append(len(final))
            final.append(1)
            continue
        dim = shape[axis] if shape is not None else None
        if isinstance(k, slice):
            if not (k.start is None and k.stop is None and k.step in (None, 1)):
                step = 1 if k.step is None else k.step
                if not _is_int(step) or int(step) == 0:
                    raise ValueError(f"Slice steps must be non-zero Python integers. Received: {k!r}")
                negative = int(step) < 0
                starts.append(_bound(b, k.start, _MAX if negative else 0))
                ends.append(_bound(b, k.stop, _MIN if negative else _MAX))
                axes.append(axis)
                steps.append(int(step))
            size = _slice_len(dim, k)
            mid.append(size)
            final.append(size)
        elif _is_int(k):
            k = int(k)
            if isinstance(dim, int) and not -dim <= k < dim:
                raise IndexError(f"Index {k} is out of bounds for axis {axis} with size {dim} "
                                 f"(tensor {x.name!r} of shape {x.shape}).")
            starts.append(k)
            ends.append(_MAX if k == -1 else k + 1)
            axes.append(axis)
            steps.append(1)
            dropped.append(axis)
            mid.append(1)
        elif _is_tensor_index(k):
            gathers.append((axis, k))
            dropped.append(axis)
            mid.append(1)
        else:
            raise TypeError(f"Only integers, slices (`:`), ellipsis (`...`), None (`newaxis`) and integer "
                            f"tensors are valid indices. Received: {k!r} of type {type(k).__name__}")
        axis += 1
    known = shape is not None
    y = x
    if axes:
        y = b.op("Slice", [y, _int_vector(b, starts), _int_vector(b, ends), b.const(np.asarray(axes, np.int64)),
                           b.const(np.asarray(steps, np.int64))], shape=tuple(mid) if known else None)
    for a, k in gathers:  # a scalar tensor index: a one-element Gather keeps the axis (size 1) for Squeeze
        idx = _bound(b, k, 0)
        y = b.op("Gather", [y, idx], axis=a, shape=tuple(mid) if known else None)
    if dropped:
        kept = tuple(d for i, d in enumerate(mid) if i not in dropped) if known else None
        y = b.op("Squeeze", [y, b.const(np.asarray(dropped, np.int64))], shape=kept)
    if new_axes:
        y = b.op("Unsqueeze", [y, b.const(np.asarray(new_axes, np.int64))], shape=tuple(final) if known else None)
    return y


def _rank_of(k: Any) -> int | None:
    v = k.__onnx_value__() if hasattr(k, "__onnx_value__") else k
    return v.rank


def _advanced(x: Value, entries: list) -> Value:
    """One integer list / array / tensor index among full slices: a ``Gather`` on that axis."""
    b = x.builder
    picks = [(i, k) for i, k in enumerate(entries) if not (isinstance(k, slice) and k == slice(None))]
    if len(picks) != 1 or any(k is None for k in entries):
        raise IndexError("onnxforge supports one integer-array index together with full slices (`x[:, idx]`); "
                         "combine several with ops.take. Received an index with entries "
                         f"{[type(k).__name__ for k in entries]}")
    axis, k = picks[0]
    if _is_tensor_index(k):
        idx = k.__onnx_value__() if hasattr(k, "__onnx_value__") else k
        if idx.dtype != _INT64:
            idx = b.op("Cast", [idx], to=_INT64, shape=idx.shape)
    else:
        array = np.asarray(k)
        if array.dtype.kind == "b":
            raise IndexError("Boolean-mask indexing has a data-dependent shape, which ONNX graphs cannot "
                             "trace here; use ops.where(mask, x, 0) instead.")
        if array.dtype.kind not in "iu":
            raise IndexError(f"Array indices must be integers. Received dtype {array.dtype}.")
        idx = b.const(array.astype(np.int64))
    shape = None
    if x.shape is not None and idx.shape is not None:
        shape = tuple(x.shape[:axis]) + tuple(idx.shape) + tuple(x.shape[axis + 1:])
    return b.op("Gather", [x, idx], axis=axis, shape=shape)
