"""``keras.ops.linalg`` factorizations of small matrices, unrolled into standard ONNX ops over the static
matrix size (gradients flow through the arithmetic): ``cholesky`` (Cholesky-Crout, column by column),
``cholesky_inverse``, ``solve_triangular`` (substitution row by row), ``lu_factor`` (partial pivoting) and
``qr`` (Householder reflections with LAPACK's signs, as NumPy and TensorFlow give them).

Each supports matrices up to ``MAX_FACTOR_SIZE`` (64) rows and columns, batched over any leading axes; a
larger matrix is refused by name. ``cholesky`` and ``cholesky_inverse`` called eagerly raise ``ValueError`` for a
matrix that is not positive definite, as Keras does; inside a graph the result is NaN there instead.

Example:
    >>> import numpy as np
    >>> from onnxforge import ops
    >>> l = ops.cholesky(np.array([[4.0, 2.0], [2.0, 5.0]]))
    >>> np.round(l, 4).tolist()
    [[2.0, 0.0], [1.0, 2.0]]
"""
from __future__ import annotations

__all__ = ["cholesky", "cholesky_inverse", "solve_triangular", "lu_factor", "qr", "MAX_FACTOR_SIZE"]

from typing import Any

import numpy as np

from ..graph.size_limits import check_constant

from ..graph import Value
from ._arrays_util import INT32, INT64, emit
from ._linalg_util import (cols, const, eager_or_none, flatten_batch, float_matrix, householder_qr, lower_symmetric,
                           rows_of, transpose)
from ._util import builder_of, cast_value, int_const, promote, symbolic

MAX_FACTOR_SIZE = 64


def _back(v: Value, dtype: int | None) -> Value:
    return v if dtype is None else cast_value(v, dtype)


def _check_finite(out: Any, op: str) -> Any:
    if not np.all(np.isfinite(np.asarray(out))):
        raise ValueError(f"ops.{op} failed: the input is not symmetric positive definite (a pivot is not positive).")
    return out


def _cholesky_lower(a: Value) -> Value:
    """The lower Cholesky factor of ``a`` (any batch shape), one column at a time (Cholesky-Crout)."""
    b = a.builder
    n = a.shape[-1]
    rows = np.arange(n).reshape(n, 1)
    factor = None
    for j in range(n):
        v = cols(a, j, j + 1)                                             # (..., n, 1)
        if factor is not None:
            v = v - factor @ transpose(rows_of(factor, j, j + 1))         # minus L[:, :j] @ L[j, :j]^T
        v = v / emit(b, "Sqrt", [rows_of(v, j, j + 1)]) * const(a, rows >= j)
        factor = v if factor is None else emit(b, "Concat", [factor, v], axis=-1)
    return factor


@symbolic
def _cholesky(x: Any, upper: bool) -> Value:
    a, back = float_matrix(x, "cholesky", square=True, limit=MAX_FACTOR_SIZE)
    out = _cholesky_lower(lower_symmetric(a))
    return _back(transpose(out) if upper else out, back)


def cholesky(x: Any, upper: bool = False) -> Value:
    """The Cholesky factor of (batches of) symmetric positive-definite matrices ``x`` ``(..., M, M)``: lower
    triangular ``L`` with ``L @ L^T = x``, or ``L^T`` when ``upper=True``. Like NumPy and TensorFlow it reads the
    lower triangle of ``x``; its gradient is symmetric (TensorFlow's and torch's). ``M <= 64``.

    Example:
        >>> import numpy as np
        >>> from onnxforge import ops
        >>> np.round(ops.cholesky(np.array([[4.0, 2.0], [2.0, 5.0]]), upper=True), 4).tolist()
        [[2.0, 1.0], [0.0, 2.0]]
    """
    out = _cholesky(x, upper=bool(upper))
    return _check_finite(out, "cholesky") if eager_or_none(x) else out


def _triangular(a: Value, rhs: Value, lower: bool) -> Value:
    """``x`` with ``a @ x = rhs`` for triangular ``a`` ``(..., n, n)`` and ``rhs`` ``(..., n, k)``, by substitution
    (only ``a``'s ``lower`` or upper triangle is read; batch axes broadcast)."""
    n = a.shape[-1]
    solved = None                                  # the rows of x found so far, in order
    for i in range(n) if lower else range(n - 1, -1, -1):
        row = rows_of(a, i, i + 1)                                        # (..., 1, n)
        rest = rows_of(rhs, i, i + 1)
        if solved is not None:
            known = cols(row, 0, i) if lower else cols(row, i + 1, n)
            rest = rest - known @ solved
        xi = rest / cols(row, i, i + 1)
        if solved is None:
            solved = xi
        else:
            solved = emit(a.builder, "Concat", [solved, xi] if lower else [xi, solved], axis=-2)
    return solved


@symbolic
def _solve_triangular(a: Any, b: Any, lower: bool) -> Value:
    bld = builder_of(a, b)
    av, bv = promote(bld, a, b)
    av, back = float_matrix(av, "solve_triangular", "a", square=True, limit=MAX_FACTOR_SIZE)
    if bv.shape is None or len(bv.shape) < 1:
        raise ValueError(f"ops.solve_triangular expects `b` of rank >= 1. Received: b with shape {bv.shape}")
    vector = len(bv.shape) == len(av.shape) - 1
    if vector:
        bv = emit(bld, "Unsqueeze", [bv, int_const(bld, [-1])])
    bv, _ = float_matrix(bv, "solve_triangular", "b")
    n = av.shape[-1]
    if bv.shape[-2] != n:
        raise ValueError("ops.solve_triangular: `b` must have as many rows as `a`. Received: a with shape "
                         f"{av.shape}, b with shape {bv.shape[:-1] if vector else bv.shape}")
    if bv.dtype != av.dtype:
        bv = cast_value(bv, av.dtype)
    out = _triangular(av, bv, bool(lower))
    if vector:
        out = emit(bld, "Squeeze", [out, int_const(bld, [-1])])
    return _back(out, back)


def solve_triangular(a: Any, b: Any, lower: bool = False) -> Value:
    """``x`` with ``a @ x = b`` for triangular ``a`` ``(..., M, M)`` (its lower triangle when ``lower=True``,
    else its upper one) and ``b`` ``(..., M)`` or ``(..., M, K)``; batch axes broadcast. ``M <= 64``.

    Example:
        >>> import numpy as np
        >>> from onnxforge import ops
        >>> ops.solve_triangular(np.array([[2.0, 0.0], [1.0, 1.0]]), np.array([2.0, 3.0]), lower=True).tolist()
        [1.0, 2.0]
    """
    return _solve_triangular(a, b, lower=bool(lower))


@symbolic
def _cholesky_inverse(x: Any, upper: bool) -> Value:
    f, back = float_matrix(x, "cholesky_inverse", square=True, limit=MAX_FACTOR_SIZE)
    n = f.shape[-1]
    check_constant((n, n), 8, "the identity matrix of a linear-algebra op")   # pre-alloc
    eye = emit(f.builder, "Expand", [const(f, np.eye(n)), emit(f.builder, "Shape", [f])])
    inv = _triangular(f, eye, lower=not upper)
    return _back(inv @ transpose(inv) if upper else transpose(inv) @ inv, back)


def cholesky_inverse(x: Any, upper: bool = False) -> Value:
    """The inverse of ``A = L @ L^T`` from its Cholesky factor ``x = L`` (lower; ``x = L^T`` when ``upper=True``),
    as Keras's TensorFlow backend and ``torch.cholesky_inverse`` compute it. ``M <= 64``.

    Example:
        >>> import numpy as np
        >>> from onnxforge import ops
        >>> np.round(ops.cholesky_inverse(np.array([[2.0, 0.0], [1.0, 2.0]])), 4).tolist()
        [[0.3125, -0.125], [-0.125, 0.25]]
    """
    out = _cholesky_inverse(x, upper=bool(upper))
    return _check_finite(out, "cholesky_inverse") if eager_or_none(x) else out


@symbolic
def lu_factor(x: Any) -> tuple[Value, Value]:
    """LU decomposition with partial pivoting of square ``x`` ``(..., M, M)``, as Keras's TensorFlow backend
    returns it: ``lu`` holds ``U`` and, below the diagonal, the unit-lower ``L``; ``p`` (int32) gives for each row
    of ``x`` its row in ``L @ U`` (``(L @ U)[p] = x``). JAX and torch return LAPACK's row swaps instead.

    Example:
        >>> import numpy as np
        >>> from onnxforge import ops
        >>> lu, p = ops.lu_factor(np.array([[1.0, 2.0], [3.0, 4.0]]))
        >>> np.round(lu.astype(float), 4).tolist(), p.tolist()
        ([[3.0, 4.0], [0.3333, 0.6667]], [1, 0])
    """
    a, back = float_matrix(x, "lu_factor", square=True, limit=MAX_FACTOR_SIZE)
    b = a.builder
    n = a.shape[-1]
    rows = np.arange(n).reshape(n, 1)
    order = b.const(np.arange(n, dtype=np.int64).reshape(n, 1))           # (n, 1): x's row now at each row
    order = emit(b, "Expand", [order, emit(b, "Concat", [emit(b, "Slice", [emit(b, "Shape", [a]), int_const(b, [0]),
                                                                          int_const(b, [-1])]),
                                                         int_const(b, [1])], axis=0)])
    for col in range(n):
        magnitude = emit(b, "Where", [b.const(rows >= col), emit(b, "Abs", [cols(a, col, col + 1)]), const(a, -1.0)])
        pivot_row = emit(b, "ArgMax", [magnitude], axis=-2, keepdims=1)     # (..., 1, 1)
        is_p = emit(b, "Equal", [b.const(rows.astype(np.int64)), pivot_row])
        onehot_p, onehot_c = cast_value(is_p, a.dtype), const(a, rows == col)
        swap = onehot_c - onehot_p
        row_p = emit(b, "ReduceSum", [a * onehot_p, int_const(b, [-2])], keepdims=1)
        row_c = emit(b, "ReduceSum", [a * onehot_c, int_const(b, [-2])], keepdims=1)
        a = a + swap * (row_p - row_c)
        swap_i = cast_value(swap, INT64)
        ord_p = emit(b, "ReduceSum", [order * cast_value(is_p, INT64), int_const(b, [-2])], keepdims=1)
        ord_c = emit(b, "ReduceSum", [order * b.const((rows == col).astype(np.int64)), int_const(b, [-2])], keepdims=1)
        order = order + swap_i * (ord_p - ord_c)
        # Multipliers below the pivot are stored in place of the zeros they make.
        pivot = cols(row_p, col, col + 1)
        below = const(a, rows > col)
        factors = cols(a, col, col + 1) / pivot * below                     # (..., n, 1)
        right = const(a, (np.arange(n) > col).reshape(1, n))
        a = a - factors * row_p * right
        a = a * (1.0 - below * const(a, (np.arange(n) == col).reshape(1, n))) + factors * const(
            a, (np.arange(n) == col).reshape(1, n))
    # ``order[i]`` is the row of x now at row i; Keras's TensorFlow backend returns its inverse permutation.
    order = emit(b, "Squeeze", [order, int_const(b, [-1])])
    positions = emit(b, "ArgMax", [cast_value(emit(b, "Equal", [emit(b, "Unsqueeze", [order, int_const(b, [-1])]),
                                                                b.const(np.arange(n, dtype=np.int64))]), INT32)],
                     axis=-2, keepdims=0)
    return _back(a, back), cast_value(positions, INT32)


@symbolic
def _qr(x: Any, mode: str) -> tuple[Value, Value]:
    a, back = float_matrix(x, "qr", limit=MAX_FACTOR_SIZE)
    m, n = a.shape[-2:]
    flat, restore = flatten_batch(a)
    q, r = householder_qr(flat, m, n)
    if mode == "reduced" and n < m:
        q, r = cols(q, 0, n), rows_of(r, 0, n)
    k = n if mode == "reduced" and n < m else m
    return _back(restore(q, [m, k]), back), _back(restore(r, [k, n]), back)


def qr(x: Any, mode: str = "reduced") -> tuple[Value, Value]:
    """QR decomposition of ``x`` ``(..., M, N)`` by Householder reflections: ``q`` ``(..., M, K)`` with orthonormal
    columns and upper-triangular ``r`` ``(..., K, N)``, ``K = min(M, N)`` (``mode="complete"``: ``q`` ``(..., M, M)``,
    ``r`` ``(..., M, N)``). The signs are LAPACK's, as NumPy and TensorFlow return them. ``M, N <= 64``.

    Example:
        >>> import numpy as np
        >>> from onnxforge import ops
        >>> q, r = ops.qr(np.array([[3.0, 1.0], [4.0, 2.0]]))
        >>> np.round(r.astype(float), 4).tolist()
        [[-5.0, -2.2], [0.0, 0.4]]
    """
    if mode not in ("reduced", "complete"):
        raise ValueError(f"ops.qr: `mode` must be 'reduced' or 'complete'. Received: mode={mode!r}")
    return _qr(x, mode=mode)
