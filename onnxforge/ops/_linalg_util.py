"""What the unrolled matrix decompositions share: checked float matrices of static size, a batch flattened to
one leading axis and restored, constants in the matrices' type, slices, square roots safe at zero, and the
Householder QR that ``qr`` and ``svd``'s basis completion both run."""
from __future__ import annotations

__all__ = ["float_matrix", "flatten_batch", "const", "cols", "rows_of", "safe_sqrt", "transpose", "householder_qr",
           "sorting_permutation", "lower_symmetric", "eager_or_none", "shaped", "identities"]

import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from ..graph.size_limits import check_constant
import onnx

from ..backend_config import floatx
from ..graph import FLOAT_TYPES, Value, np_dtype
from ..graph.shape_inference import fill_shapes
from ._arrays_util import BIG, emit, value
from ._util import builder_of, cast_value, dtype_enum, int_const

_HALF = {onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16}
_NUMERIC = {onnx.TensorProto.INT8, onnx.TensorProto.INT16, onnx.TensorProto.INT32, onnx.TensorProto.INT64,
            onnx.TensorProto.UINT8, onnx.TensorProto.UINT16, onnx.TensorProto.UINT32, onnx.TensorProto.UINT64}


def float_matrix(x: Any, op: str, arg: str = "x", square: bool = False, limit: int | None = None,
                 limit_of: str = "size") -> tuple[Value, int | None]:
    """``x`` as a float32/float64 value of rank >= 2 with static last two axes (integers become floatx,
    float16/bfloat16 are computed in float32), and the type to cast results back to (``None``: keep)."""
    v = value(x)
    if v.dtype not in FLOAT_TYPES and v.dtype not in _NUMERIC:
        raise TypeError(f"ops.{op} takes a float or integer tensor. Received: {arg} of dtype "
                        f"{np_dtype(v.dtype) if v.dtype else 'unknown'}")
    if v.shape is None or len(v.shape) < 2:
        raise ValueError(f"ops.{op} expects `{arg}` of rank >= 2 (matrices in its last two axes). Received: "
                         f"{arg} with shape {v.shape}")
    m, n = v.shape[-2:]
    if not isinstance(m, int) or not isinstance(n, int):
        raise ValueError(f"ops.{op} builds its graph for a matrix size known in advance: the last two axes of "
                         f"`{arg}` must be static. Received: {arg} with shape {v.shape}")
    if square and m != n:
        raise ValueError(f"ops.{op} expects a square matrix. Received: {arg} with non-square shape {v.shape}")
    if limit is not None and (min(m, n) if limit_of == "min" else max(m, n)) > limit:
        which = "smaller matrix dimension" if limit_of == "min" else "matrix size"
        raise ValueError(f"ops.{op} is unrolled into the graph and supports a {which} of at most {limit}. "
                         f"Received: {arg} with shape {v.shape}")
    back = None
    if v.dtype in _HALF:
        back, v = v.dtype, cast_value(v, onnx.TensorProto.FLOAT)
    elif v.dtype not in FLOAT_TYPES:
        v = cast_value(v, dtype_enum(floatx()))
    return v, back


def flatten_batch(v: Value) -> tuple[Value, Callable[[Value, list[int]], Value]]:
    """``v`` reshaped to ``(B, m, n)`` and a function reshaping a ``(B, *dims)`` result to ``v``'s batch axes
    followed by ``dims``."""
    b = v.builder
    tail = list(v.shape[-2:])
    flat = emit(b, "Reshape", [v, int_const(b, [-1, *tail])])
    batch = v.shape[:-2]

    def restore(out: Value, dims: list[int]) -> Value:
        if all(isinstance(d, int) for d in batch):
            return emit(b, "Reshape", [out, int_const(b, [*batch, *dims])])
        lead = emit(b, "Slice", [emit(b, "Shape", [v]), int_const(b, [0]), int_const(b, [-2])])
        shape = emit(b, "Concat", [lead, int_const(b, dims)], axis=0) if dims else lead
        return emit(b, "Reshape", [out, shape])

    return flat, restore


def const(like: Value, array: Any) -> Value:
    return like.builder.const(np.asarray(array, dtype=np_dtype(like.dtype)))


def cols(v: Value, start: int, stop: int | None = None) -> Value:
    return emit(v.builder, "Slice", [v, int_const(v.builder, [start]), int_const(v.builder, [BIG if stop is None else stop]),
                                     int_const(v.builder, [-1])])


def rows_of(v: Value, start: int, stop: int | None = None) -> Value:
    return emit(v.builder, "Slice", [v, int_const(v.builder, [start]), int_const(v.builder, [BIG if stop is None else stop]),
                                     int_const(v.builder, [-2])])


# builder -> how many of its nodes have been given inferred shapes by ``shaped``
_filled: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()


def shaped(v: Value) -> Value:
    """``v`` with the shape ONNX infers (``Value`` arithmetic does not annotate every result)."""
    if v.shape is None:
        b = v.builder
        fill_shapes(b, min(_filled.get(b, 0), len(b.nodes)))
        _filled[b] = len(b.nodes)
    return v


def transpose(v: Value) -> Value:
    v = shaped(v)
    perm = list(range(len(v.shape)))
    perm[-2], perm[-1] = perm[-1], perm[-2]
    return emit(v.builder, "Transpose", [v], perm=perm)


def safe_sqrt(x: Value) -> Value:
    """``sqrt(x)`` whose gradient at ``x == 0`` is 0 instead of ``inf * 0 = nan``."""
    b = x.builder
    zero = emit(b, "Equal", [x, const(x, 0.0)])
    root = emit(b, "Sqrt", [emit(b, "Where", [zero, const(x, 1.0), x])])
    return emit(b, "Where", [zero, const(x, 0.0), root])


def lower_symmetric(a: Value) -> Value:
    """The symmetric matrix of ``a``'s lower triangle (what LAPACK, NumPy and TensorFlow read), whose gradient
    is symmetric as TensorFlow's and torch's are: ``sym(a)`` plus a correction that carries no gradient."""
    from .core import stop_gradient

    n = a.shape[-1]
    check_constant((n, n), 8, "the identity matrix of a linear-algebra op")   # pre-alloc (both masks)
    strict = const(a, np.tril(np.ones((n, n)), -1))
    diag = const(a, np.eye(n))
    low = a * strict
    filled = low + transpose(low) + a * diag
    sym = (a + transpose(a)) * 0.5
    return sym + stop_gradient(filled - sym)


def identities(a: Value, n: int) -> Value:
    """``(B, n, n)`` identity matrices, one per matrix of ``a`` ``(B, ., .)``."""
    check_constant((n, n), 8, "the identity matrix of a linear-algebra op")   # pre-alloc
    return cols(rows_of(a, 0, 1), 0, 1) * 0.0 + const(a, np.eye(n))


def householder_qr(a: Value, m: int, n: int) -> tuple[Value, Value]:
    """``(q, r)`` of ``a`` ``(B, m, n)`` by Householder reflections unrolled over the columns, with LAPACK's
    signs (``r[k, k] = -sign(a_kk) * norm``; a column already zero below the diagonal is left as it is)."""
    b = a.builder
    rows = np.arange(m).reshape(m, 1)
    q = None
    for k in range(min(m - 1, n)):
        col = cols(a, k, k + 1)                                           # (B, m, 1)
        alpha = rows_of(col, k, k + 1)                                    # (B, 1, 1)
        below = col * const(a, rows > k)
        sigma = emit(b, "ReduceSum", [below * below, int_const(b, [1])], keepdims=1)
        norm = safe_sqrt(alpha * alpha + sigma)
        sign = emit(b, "Where", [emit(b, "GreaterOrEqual", [alpha, const(a, 0.0)]), const(a, 1.0), const(a, -1.0)])
        v = below + (alpha + sign * norm) * const(a, rows == k)
        vtv = emit(b, "ReduceSum", [v * v, int_const(b, [1])], keepdims=1)
        live = emit(b, "Greater", [sigma, const(a, 0.0)])
        scale = emit(b, "Where", [live, const(a, 2.0) / emit(b, "Where", [live, vtv, const(a, 1.0)]), const(a, 0.0)])
        vt = transpose(v)
        a = a - (v * scale) @ (vt @ a)
        reflect = (v * scale) @ vt
        check_constant((m, m), 8, "the identity matrix of a linear-algebra op")   # pre-alloc
        q = const(a, np.eye(m)) - reflect if q is None else q - (q @ v) @ (vt * scale)
    if q is None:
        q = identities(a, m)
    check_constant((m, n), 8, "the triangular mask of a linear-algebra op")   # pre-alloc
    return q, a * const(a, np.triu(np.ones((m, n))))


def sorting_permutation(keys: Value, descending: bool) -> Value:
    """The ``(B, n, n)`` 0/1 matrix ``p`` with ``keys @ p`` sorted (and ``x @ p`` the columns in that order):
    a matrix product keeps the gradients flowing, where TopK's indices would need a rule of their own."""
    b = keys.builder
    n = keys.shape[-1]
    _, idx = b.op("TopK", [keys, int_const(b, [n])], outputs=2, axis=-1, largest=int(descending), sorted=1)
    onehot = emit(b, "Equal", [emit(b, "Unsqueeze", [idx, int_const(b, [-2])]),
                               b.const(np.arange(n, dtype=np.int64).reshape(n, 1))])
    return cast_value(onehot, keys.dtype)


def eager_or_none(*args: Any) -> bool:
    """Whether an op called with ``args`` runs eagerly (no graph and no functional-API tensor among them)."""
    from ._util import _has_keras_tensor

    return builder_of(args) is None and not _has_keras_tensor(args)
