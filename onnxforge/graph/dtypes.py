"""Keras's dtype promotion on ONNX element types: the type two operands meet in (``int32 + int64 -> int64``,
``bool + int32 -> int32``, ``int64 + float16 -> float16``), and what Python numbers (weak types) do to it.

Keras 3 (``keras/src/backend/common/dtypes.py``) adopts JAX's promotion lattice; this is that lattice on
ONNX enums, so every op that combines tensors emits the same result type Keras reports, and the symbolic
dtype a value carries is the one its node computes. One departure, shared with Keras's TensorFlow backend
and NumPy: 64-bit results stay 64-bit (Keras's JAX-like rule narrows them to 32 bits on other backends).

Example:
    >>> from onnx import TensorProto as T
    >>> result_type([T.INT32, T.INT64]) == T.INT64, result_type([T.BOOL], weak=[int]) == T.INT32
    (True, True)
    >>> result_type([T.INT32], weak=[float]) == T.FLOAT, result_type([T.UINT8, T.INT8]) == T.INT16
    (True, True)
"""
from __future__ import annotations

__all__ = ["result_type"]

import functools
from collections.abc import Iterable, Sequence

import onnx

_T = onnx.TensorProto
_WEAK_INT, _WEAK_FLOAT = "int", "float"   # Python ints and floats: they take the tensor's width

# Each type -> the types immediately above it (Keras's _type_promotion_lattice, without complex types).
_LATTICE: dict[object, tuple[object, ...]] = {
    _T.BOOL: (_WEAK_INT,),
    _WEAK_INT: (_T.UINT8, _T.INT8),
    _T.UINT8: (_T.INT16, _T.UINT16), _T.UINT16: (_T.INT32, _T.UINT32), _T.UINT32: (_T.INT64, _T.UINT64),
    _T.UINT64: (_WEAK_FLOAT,),
    _T.INT8: (_T.INT16,), _T.INT16: (_T.INT32,), _T.INT32: (_T.INT64,), _T.INT64: (_WEAK_FLOAT,),
    _WEAK_FLOAT: (_T.BFLOAT16, _T.FLOAT16),
    _T.BFLOAT16: (_T.FLOAT,), _T.FLOAT16: (_T.FLOAT,), _T.FLOAT: (_T.DOUBLE,), _T.DOUBLE: (),
    # Strings meet only strings (``tf.concat`` / ``tf.stack`` of string tensors); numbers never promote to them.
    _T.STRING: (),
}


def _upper_bounds() -> dict[object, frozenset]:
    bounds: dict[object, frozenset] = {}

    def above(node: object) -> frozenset:
        if node not in bounds:
            bounds[node] = frozenset({node}).union(*(above(n) for n in _LATTICE[node]))
        return bounds[node]

    for node in _LATTICE:
        above(node)
    return bounds


_UPPER = _upper_bounds()


@functools.lru_cache(maxsize=256)
def _least_upper_bound(nodes: frozenset) -> object:
    unknown = [n for n in nodes if n not in _UPPER]
    if unknown:
        raise ValueError(f"No implicit dtype promotion for ONNX element type {unknown[0]}. Cast the operands to "
                         f"one dtype first. Received: dtypes={sorted(map(str, nodes))}")
    common = frozenset.intersection(*(_UPPER[n] for n in nodes))
    least = [c for c in common if common <= _UPPER[c]]
    if not least:
        raise ValueError(f"No implicit dtype promotion between ONNX element types {sorted(map(str, nodes))}. Cast "
                         "the operands to one dtype first.")
    return least[0]


def result_type(dtypes: Sequence[int], weak: Iterable[type] = (), weak_float: int = _T.FLOAT) -> int:
    """The ONNX element type Keras gives when tensors of ``dtypes`` meet Python numbers of the types in
    ``weak`` (``bool``, ``int``, ``float``); a Python float meeting only integers gives ``weak_float``
    (Keras's ``floatx()``), a Python int meeting only bools gives int32 (Keras's default int)."""
    nodes = set(dtypes)
    for kind in weak:
        nodes.add(_T.BOOL if kind is bool else _WEAK_FLOAT if kind is float else _WEAK_INT)
    if not nodes:
        raise ValueError("result_type needs at least one dtype.")
    out = _least_upper_bound(frozenset(nodes))
    if out == _WEAK_INT:
        return _T.INT32
    if out == _WEAK_FLOAT:
        return weak_float
    return int(out)
