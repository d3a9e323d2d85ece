"""``keras.ops.linalg`` spectral decompositions of small matrices in standard ONNX ops: ``eigh`` by cyclic
Jacobi sweeps, ``svd`` by one-sided (Hestenes) Jacobi, and ``lstsq``, ``pinv``, ``matrix_rank`` from the SVD.

The rotations of a sweep run in the round-robin order, ``n/2`` disjoint pairs at once, so one round is one
rotation matrix ``J`` built from the pairs' cosines and sines (two small matrix products with constant 0/1
matrices) and applied with ``MatMul``: gradients flow through the arithmetic. The number of sweeps is fixed
when the graph is built, from the matrix size and the float type, with margin over what random, graded and
clustered spectra need to reach the type's accuracy (measured: 8x8 float64 needs 6 sweeps, 16x16 needs 9).
One-sided Jacobi works on the columns themselves (their Gram entries are recomputed from the rotated columns
each round), so small singular values keep their relative accuracy, unlike the eigenvalues of ``A^T A``.

Eigenvalues come in ascending order (NumPy, TensorFlow), singular values in descending order. The sign of each
eigenvector and singular-vector pair is not unique and not normalized (nor is it in NumPy or TensorFlow).
Sizes: ``eigh`` up to 32x32, ``svd`` (and what uses it) up to 32 in the smaller dimension and 64 in the larger.

Example:
    >>> import numpy as np
    >>> from onnxforge import ops
    >>> w, v = ops.eigh(np.array([[2.0, 1.0], [1.0, 2.0]]))
    >>> np.round(w, 4).tolist()
    [1.0, 3.0]
"""
from __future__ import annotations

__all__ = ["eigh", "svd", "lstsq", "pinv", "matrix_rank", "eig", "MAX_JACOBI_SIZE"]

import math
from typing import Any

import numpy as np

from ..graph.size_limits import check_constant
import onnx

from ..graph import Value, np_dtype
from ._arrays_util import INT32, emit
from ._linalg_util import (cols, const, identities, flatten_batch, float_matrix, householder_qr, lower_symmetric, rows_of,
                           safe_sqrt, sorting_permutation, transpose)
from ._util import builder_of, cast_value, int_const, promote, symbolic

MAX_JACOBI_SIZE = 32
MAX_SVD_LONG_SIDE = 64


def _sweeps(n: int, dtype: int) -> int:
    double = dtype == onnx.TensorProto.DOUBLE
    return (6 if double else 3) + math.ceil(math.log2(max(n, 2))) + (1 if double else 0)


def _rounds(n: int) -> list[list[tuple[int, int]]]:
    """Round-robin pairings: every pair ``p < q`` once per sweep, ``n/2`` disjoint pairs per round."""
    m = n + n % 2
    players = list(range(m))
    rounds = []
    for _ in range(m - 1):
        pairs = [(min(p, q), max(p, q)) for p, q in ((players[i], players[m - 1 - i]) for i in range(m // 2))
                 if p < n and q < n]
        rounds.append(pairs)
        players = [players[0], players[-1], *players[1:-1]]
    return rounds


class _Rotations:
    """Constants of one round: where its pairs' entries sit in a flattened ``n x n`` matrix, and the 0/1
    matrices that place cosines and sines into the round's rotation ``J``."""

    def __init__(self, like: Value, n: int, pairs: list[tuple[int, int]]) -> None:
        b = like.builder
        self.n = n
        self.pp = b.const(np.array([p * n + p for p, _ in pairs], np.int64))
        self.qq = b.const(np.array([q * n + q for _, q in pairs], np.int64))
        self.pq = b.const(np.array([p * n + q for p, q in pairs], np.int64))
        place_c = np.zeros((len(pairs), n * n))
        place_s = np.zeros((len(pairs), n * n))
        check_constant((n, n), 8, "the identity matrix of a linear-algebra op")   # pre-alloc
        fixed = np.eye(n)
        for k, (p, q) in enumerate(pairs):
            place_c[k, [p * n + p, q * n + q]] = 1.0
            place_s[k, p * n + q], place_s[k, q * n + p] = 1.0, -1.0
            fixed[p, p] = fixed[q, q] = 0.0
        self.place_c, self.place_s = const(like, place_c), const(like, place_s)
        self.fixed = const(like, fixed.reshape(1, n * n))

    def matrix(self, gram: Value) -> Value:
        """The rotation ``J`` ``(B, n, n)`` with ``(J^T gram J)[p, q] = 0`` for each pair of the round."""
        b, n = gram.builder, self.n
        flat = emit(b, "Reshape", [gram, int_const(b, [-1, n * n])])
        app, aqq, apq = (emit(b, "Gather", [flat, idx], axis=1) for idx in (self.pp, self.qq, self.pq))
        d = aqq - app
        root = safe_sqrt(d * d + apq * apq * 4.0)
        den = emit(b, "Abs", [d]) + root
        sign = emit(b, "Where", [emit(b, "GreaterOrEqual", [d, const(d, 0.0)]), const(d, 1.0), const(d, -1.0)])
        zero = emit(b, "Equal", [den, const(d, 0.0)])
        t = emit(b, "Where", [zero, const(d, 0.0), apq * sign * 2.0 / emit(b, "Where", [zero, const(d, 1.0), den])])
        c = emit(b, "Reciprocal", [emit(b, "Sqrt", [t * t + 1.0])])
        j = c @ self.place_c + (t * c) @ self.place_s + self.fixed
        return emit(b, "Reshape", [j, int_const(b, [-1, n, n])])


def _jacobi(a: Value, one_sided: bool) -> tuple[Value, Value]:
    """Two-sided: ``(J^T a J, V)`` for symmetric ``a`` ``(B, n, n)``, nearly diagonal. One-sided: ``(a V, V)`` for
    ``a`` ``(B, m, n)``, with nearly orthogonal columns. ``V`` accumulates the rotations."""
    n = a.shape[-1]
    rotations = [_Rotations(a, n, pairs) for pairs in _rounds(n)]
    v = None
    for _ in range(_sweeps(n, a.dtype) if n > 1 else 0):
        for rot in rotations:
            j = rot.matrix(transpose(a) @ a if one_sided else a)
            a = a @ j if one_sided else transpose(j) @ a @ j
            v = j if v is None else v @ j
    if v is None:
        v = identities(a, n)
    return a, v


def _diagonal(a: Value, n: int) -> Value:
    check_constant((n, n), 8, "the identity matrix of a linear-algebra op")   # pre-alloc
    return emit(a.builder, "ReduceSum", [a * const(a, np.eye(n)), int_const(a.builder, [-1])], keepdims=0)


def _apply(p: Value, v: Value) -> Value:
    """``v`` ``(B, n)`` permuted by the 0/1 matrix ``p``."""
    b = v.builder
    return emit(b, "Squeeze", [emit(b, "Unsqueeze", [v, int_const(b, [-2])]) @ p, int_const(b, [-2])])


@symbolic
def eigh(x: Any) -> tuple[Value, Value]:
    """Eigenvalues (ascending) and orthonormal eigenvectors (columns) of (batches of) symmetric matrices
    ``x`` ``(..., M, M)``, ``M <= 32``; like NumPy and TensorFlow it reads the lower triangle of ``x``.
    Differentiable (eigenvectors where the eigenvalues are distinct).

    Example:
        >>> import numpy as np
        >>> from onnxforge import ops
        >>> w, v = ops.eigh(np.array([[2.0, 0.0], [0.0, -1.0]]))
        >>> w.tolist(), np.abs(v).tolist()
        ([-1.0, 2.0], [[0.0, 1.0], [1.0, 0.0]])
    """
    a, back = float_matrix(x, "eigh", square=True, limit=MAX_JACOBI_SIZE)
    flat, restore = flatten_batch(lower_symmetric(a))
    diag, vectors = _jacobi(flat, one_sided=False)
    w = _diagonal(diag, a.shape[-1])
    order = sorting_permutation(w, descending=False)
    w, vectors = _apply(order, w), vectors @ order
    n = a.shape[-1]
    w, vectors = restore(w, [n]), restore(vectors, [n, n])
    return (w, vectors) if back is None else (cast_value(w, back), cast_value(vectors, back))


def _svd_tall(a: Value, compute_uv: bool, full: bool) -> tuple[Value | None, Value, Value | None]:
    """``(u, s, v)`` of ``a`` ``(B, m, n)`` with ``m >= n``: ``a = u diag(s) v^T``, ``s`` descending; ``u`` is
    ``(B, m, m)`` when ``full`` else ``(B, m, n)``, ``v`` ``(B, n, n)``."""
    b = a.builder
    m, n = a.shape[-2:]
    rotated, v = _jacobi(a, one_sided=True)
    s = safe_sqrt(emit(b, "ReduceSum", [rotated * rotated, int_const(b, [-2])], keepdims=0))     # (B, n)
    order = sorting_permutation(s, descending=True)
    s = _apply(order, s)
    if not compute_uv:
        return None, s, None
    rotated, v = rotated @ order, v @ order
    # Columns of a negligible singular value have no direction: they are set to zero, and QR completes u
    # (as it does the extra columns of a full u) with orthonormal columns; the signs of R's diagonal put the
    # other columns back as they were.
    largest = cols(s, 0, 1)
    eps = float(np.finfo(np_dtype(a.dtype)).eps)
    keep = emit(b, "Greater", [s, largest * (eps * max(m, n))])
    scale = emit(b, "Where", [keep, emit(b, "Reciprocal", [emit(b, "Where", [keep, s, const(s, 1.0)])]),
                              const(s, 0.0)])
    u = rotated * emit(b, "Unsqueeze", [scale, int_const(b, [-2])])
    q, r = householder_qr(u, m, n)
    diag = _diagonal(rows_of(r, 0, n) if m > n else r, n)
    signs = emit(b, "Where", [emit(b, "Less", [diag, const(diag, 0.0)]), const(diag, -1.0), const(diag, 1.0)])
    if m > n and full:
        signs = emit(b, "Pad", [signs, int_const(b, [0, 0, 0, m - n]), const(signs, 1.0)])
    elif m > n:
        q = cols(q, 0, n)
    u = q * emit(b, "Unsqueeze", [signs, int_const(b, [-2])])
    return u, s, v


@symbolic
def _svd(x: Any, full_matrices: bool, compute_uv: bool) -> Any:
    a, back = float_matrix(x, "svd", limit=MAX_JACOBI_SIZE, limit_of="min")
    m, n = a.shape[-2:]
    if max(m, n) > MAX_SVD_LONG_SIDE:
        raise ValueError(f"ops.svd is unrolled into the graph and supports at most {MAX_SVD_LONG_SIDE} rows or "
                         f"columns. Received: x with shape {a.shape}")
    flat, restore = flatten_batch(a)
    wide = m < n
    u, s, v = _svd_tall(transpose(flat) if wide else flat, compute_uv, full_matrices)
    k = min(m, n)
    outs = [restore(s, [k])]
    if compute_uv:
        if wide:
            u, v = v, u
        outs = [restore(u, [m, m if full_matrices else k]), outs[0],
                restore(transpose(v), [n if full_matrices else k, n])]
    if back is not None:
        outs = [cast_value(o, back) for o in outs]
    return tuple(outs) if compute_uv else outs[0]


def svd(x: Any, full_matrices: bool = True, compute_uv: bool = True) -> Any:
    """Singular value decomposition of ``x`` ``(..., M, N)``: ``(u, s, vh)`` with ``x = u @ diag(s) @ vh``,
    ``s`` ``(..., K)`` descending, ``K = min(M, N)``; ``u`` ``(..., M, M)`` and ``vh`` ``(..., N, N)`` when
    ``full_matrices`` else ``(..., M, K)`` and ``(..., K, N)``; only ``s`` when ``compute_uv=False``.
    ``K <= 32`` and ``M, N <= 64``. Gradients flow through ``s`` (and ``u``, ``vh`` for distinct values).

    Example:
        >>> import numpy as np
        >>> from onnxforge import ops
        >>> np.round(ops.svd(np.array([[3.0, 0.0], [4.0, 5.0]]), compute_uv=False).astype(float), 4).tolist()
        [6.7082, 2.2361]
    """
    return _svd(x, full_matrices=bool(full_matrices), compute_uv=bool(compute_uv))


def _reduced_svd(a: Value) -> tuple[Value, Value, Value]:
    flat, restore = flatten_batch(a)
    m, n = a.shape[-2:]
    if m < n:
        v, s, u = _svd_tall(transpose(flat), True, False)
    else:
        u, s, v = _svd_tall(flat, True, False)
    return u, s, v


@symbolic
def _pinv(x: Any, rcond: Any) -> Value:
    a, back = float_matrix(x, "pinv", limit=MAX_JACOBI_SIZE, limit_of="min")
    m, n = a.shape[-2:]
    b = a.builder
    _, restore = flatten_batch(a)
    u, s, v = _reduced_svd(a)
    eps = float(np.finfo(np_dtype(a.dtype)).eps)
    cutoff = cols(s, 0, 1) * (10.0 * max(m, n) * eps if rcond is None else float(rcond))
    keep = emit(b, "Greater", [s, cutoff])
    inv_s = emit(b, "Where", [keep, emit(b, "Reciprocal", [emit(b, "Where", [keep, s, const(s, 1.0)])]),
                              const(s, 0.0)])
    out = (v * emit(b, "Unsqueeze", [inv_s, int_const(b, [-2])])) @ transpose(u)
    out = restore(out, [n, m])
    return out if back is None else cast_value(out, back)


def pinv(x: Any, rcond: float | None = None) -> Value:
    """Moore-Penrose pseudo-inverse ``(..., N, M)`` of ``x`` ``(..., M, N)`` from its SVD; singular values up to
    ``rcond`` times the largest count as zero (default, TensorFlow's: ``10 * max(M, N) * eps``).

    Example:
        >>> import numpy as np
        >>> from onnxforge import ops
        >>> a = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
        >>> (np.round(ops.pinv(a) @ a, 4) + 0.0).tolist()
        [[1.0, 0.0], [0.0, 1.0]]
    """
    return _pinv(x, rcond=rcond)


@symbolic
def _matrix_rank(x: Any, tol: Any) -> Value:
    a, _ = float_matrix(x, "matrix_rank", limit=MAX_JACOBI_SIZE, limit_of="min")
    m, n = a.shape[-2:]
    b = a.builder
    flat, restore = flatten_batch(a)
    _, s, _ = _svd_tall(transpose(flat) if m < n else flat, False, False)
    eps = float(np.finfo(np_dtype(a.dtype)).eps)
    cutoff = cols(s, 0, 1) * (eps * max(m, n)) if tol is None else const(s, float(tol))
    count = emit(b, "ReduceSum", [cast_value(emit(b, "Greater", [s, cutoff]), INT32), int_const(b, [-1])],
                 keepdims=0)
    return restore(count, [])


def matrix_rank(x: Any, tol: float | None = None) -> Value:
    """The rank (int32) of each matrix of ``x`` ``(..., M, N)``: the count of singular values above ``tol``
    (default, TensorFlow's: ``max(M, N) * eps * largest singular value``).

    Example:
        >>> import numpy as np
        >>> from onnxforge import ops
        >>> int(ops.matrix_rank(np.array([[1.0, 2.0], [2.0, 4.0]])))
        1
    """
    return _matrix_rank(x, tol=tol)


@symbolic
def _lstsq(a: Any, b: Any, rcond: Any) -> Value:
    bld = builder_of(a, b)
    av, bv = promote(bld, a, b)
    if av.shape is None or len(av.shape) != 2:
        raise ValueError(f"ops.lstsq expects `a` of rank 2. Received: a with shape {av.shape}")
    if bv.shape is None or len(bv.shape) not in (1, 2):
        raise ValueError(f"ops.lstsq expects `b` of rank 1 or 2. Received: b with shape {bv.shape}")
    if bv.shape[0] != av.shape[0]:
        raise ValueError(f"ops.lstsq: `b.shape[0]` must equal `a.shape[0]`. Received: a.shape={av.shape}, "
                         f"b.shape={bv.shape}")
    av, back = float_matrix(av, "lstsq", "a", limit=MAX_JACOBI_SIZE, limit_of="min")
    bv = cast_value(bv, av.dtype)
    m, n = av.shape
    vector = len(bv.shape) == 1
    rhs = emit(bld, "Unsqueeze", [bv, int_const(bld, [-1])]) if vector else bv
    u, s, v = _reduced_svd(av)                                      # (1, m, k), (1, k), (1, n, k)
    eps = float(np.finfo(np_dtype(av.dtype)).eps)
    keep = emit(bld, "GreaterOrEqual", [s, cols(s, 0, 1) * (eps * max(m, n) if rcond is None else float(rcond))])
    inv_s = emit(bld, "Where", [keep, emit(bld, "Reciprocal", [emit(bld, "Where", [keep, s, const(s, 1.0)])]),
                                const(s, 0.0)])
    coef = (transpose(u) @ rhs) * emit(bld, "Unsqueeze", [inv_s, int_const(bld, [-1])])
    out = emit(bld, "Squeeze", [v @ coef, int_const(bld, [0])])
    if vector:
        out = emit(bld, "Squeeze", [out, int_const(bld, [-1])])
    return out if back is None else cast_value(out, back)


def lstsq(a: Any, b: Any, rcond: float | None = None) -> Value:
    """The least-squares (minimum-norm) solution ``x`` ``(N,)`` or ``(N, K)`` of ``a @ x = b`` for ``a``
    ``(M, N)`` and ``b`` ``(M,)`` or ``(M, K)``, from the SVD of ``a``; singular values below ``rcond`` times
    the largest are dropped (default ``max(M, N) * eps``, Keras's).

    Example:
        >>> import numpy as np
        >>> from onnxforge import ops
        >>> np.round(ops.lstsq(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), np.array([1.0, 2.0, 3.0])), 4).tolist()
        [1.0, 2.0]
    """
    return _lstsq(a, b, rcond=rcond)


class ComplexResultError(NotImplementedError, ValueError):
    """An op whose result would be complex: onnxforge has no complex dtype."""


def eig(x: Any) -> tuple[Value, Value]:
    """Not available: the eigen decomposition of a general real matrix is complex (``complex64`` in Keras), and
    onnxforge has no complex dtype. For symmetric matrices use ``ops.eigh``.

    Example:
        >>> import numpy as np
        >>> from onnxforge import ops
        >>> try:
        ...     ops.eig(np.eye(2))
        ... except NotImplementedError as e:
        ...     print(str(e).split(":")[0])
        ops.eig returns complex eigenvalues and eigenvectors
    """
    shape = getattr(x, "shape", None)
    raise ComplexResultError(
        f"ops.eig returns complex eigenvalues and eigenvectors: onnxforge has no complex dtype (received x with "
        f"shape {shape}). For symmetric (or Hermitian real) matrices use ops.eigh, which returns real results.")
