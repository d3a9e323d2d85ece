"""``tf.SparseTensor`` and ``tf.sparse``: the little of TensorFlow's sparse tensors that programs use to build
a dense tensor from a few indices, such as the text-generation tutorial's mask of banned token ids
(``tf.sparse.to_dense(tf.SparseTensor(indices, values, dense_shape))``).

A ``SparseTensor`` holds its concrete ``indices`` (int64, ``(N, rank)``), ``values`` (``(N,)``) and
``dense_shape``; ``to_dense`` scatters them on the host. Sparse tensors are not graph values: arithmetic on
them, sparse ops inside a compiled graph and ``tf.sparse`` functions other than the ones below are not here.
``tf.cast`` casts a sparse tensor's values; ``tf.edit_distance`` (``edit_distance.py``) compares two of them.

Example:
    >>> import onnxforge as tf
    >>> sp = tf.SparseTensor(indices=[[0, 1], [2, 0]], values=[5.0, 7.0], dense_shape=[3, 2])
    >>> tf.sparse.to_dense(sp).numpy().tolist()
    [[0.0, 5.0], [0.0, 0.0], [7.0, 0.0]]
"""
from __future__ import annotations

__all__ = ["SparseTensor", "sparse"]

import types
from typing import Any

import numpy as np

from ..eager_tensor import as_eager
from ..graph.value import Value
from ..layers.keras_tensor import KerasTensor
from .errors import InvalidArgumentError


def _host(x: Any, arg: str) -> np.ndarray:
    if isinstance(x, (Value, KerasTensor)):
        raise NotImplementedError(f"tf.SparseTensor: `{arg}` is a tensor traced into an ONNX graph ({x!r}); "
                                  "onnxforge's sparse tensors hold concrete arrays only. Build it outside the "
                                  "compiled function (in __init__, as the tutorials do).")
    return np.asarray(x)


def _values(values: Any) -> np.ndarray:
    array = _host(values, "values")
    # TensorFlow's types for Python numbers: float32 and int32.
    if not isinstance(values, np.ndarray) and array.dtype == np.float64:
        return array.astype(np.float32)
    if not isinstance(values, np.ndarray) and array.dtype == np.int64:
        return array.astype(np.int32)
    return array


class SparseTensor:
    """``tf.SparseTensor(indices, values, dense_shape)``: ``values[i]`` at ``indices[i]`` of a tensor of
    ``dense_shape``, every other element implicit (zero unless ``to_dense`` is given a ``default_value``)."""

    def __init__(self, indices: Any, values: Any, dense_shape: Any):
        self.indices = _host(indices, "indices").astype(np.int64)
        self.values = _values(values)
        self.dense_shape = _host(dense_shape, "dense_shape").astype(np.int64).reshape(-1)
        rank = len(self.dense_shape)
        if self.indices.ndim != 2 or self.indices.shape[1] != rank:
            raise ValueError(f"tf.SparseTensor: `indices` must have shape (N, {rank}) for dense_shape "
                             f"{self.dense_shape.tolist()}. Received shape {self.indices.shape}")
        if self.values.shape != (self.indices.shape[0],):
            raise ValueError(f"tf.SparseTensor: `values` must have shape ({self.indices.shape[0]},), one per "
                             f"index. Received shape {self.values.shape}")

    @property
    def shape(self) -> tuple[int, ...]:
        """The dense shape as a tuple."""
        return tuple(int(d) for d in self.dense_shape)

    @property
    def dtype(self) -> np.dtype:
        """The values' dtype."""
        return self.values.dtype

    def __repr__(self) -> str:
        return (f"SparseTensor(indices={self.indices.tolist()}, values={self.values.tolist()}, "
                f"dense_shape={self.dense_shape.tolist()})")


def to_dense(sp_input: SparseTensor, default_value: Any = None, validate_indices: bool = True,
             name: str | None = None) -> Any:
    """``tf.sparse.to_dense``: the dense tensor of ``sp_input``, ``default_value`` (0) where no index is."""
    if not isinstance(sp_input, SparseTensor):
        raise TypeError(f"tf.sparse.to_dense: `sp_input` must be a tf.SparseTensor. Received: {type(sp_input)}")
    dense = np.full(sp_input.shape, 0 if default_value is None else default_value, sp_input.values.dtype)
    seen: set[tuple[int, ...]] = set()
    for i, index in enumerate(map(tuple, sp_input.indices.tolist())):
        if any(not 0 <= k < d for k, d in zip(index, sp_input.shape)):
            raise InvalidArgumentError(f"tf.sparse.to_dense: indices[{i}] = {list(index)} is out of bounds: need "
                                       f"0 <= index < {list(sp_input.shape)}")
        if validate_indices and index in seen:
            raise InvalidArgumentError(f"tf.sparse.to_dense: indices[{i}] = {list(index)} is repeated")
        seen.add(index)
        dense[index] = sp_input.values[i]
    return as_eager(dense)


def from_dense(tensor: Any, name: str | None = None) -> SparseTensor:
    """``tf.sparse.from_dense``: the nonzero elements of ``tensor`` (non-empty ones of a string tensor), their
    indices in row-major order, its dtype kept.

    Example:
        >>> from_dense(np.array([[0, 7], [3, 0]])).indices.tolist()
        [[0, 1], [1, 0]]
    """
    dense = _host(tensor, "tensor")
    if dense.dtype == object or dense.dtype.kind in "SU":
        present = np.vectorize(lambda v: len(v) > 0, otypes=[bool])(dense) if dense.size else np.zeros(dense.shape, bool)
    else:
        present = dense != 0
    indices = np.argwhere(present).astype(np.int64).reshape(-1, dense.ndim)
    return SparseTensor(indices, dense[present], np.asarray(dense.shape, np.int64))


#: ``tf.sparse``: ``SparseTensor``, ``to_dense`` and ``from_dense``.
sparse = types.SimpleNamespace(SparseTensor=SparseTensor, to_dense=to_dense, from_dense=from_dense)
