"""``tf.linalg``'s matrix functions on batches of matrices (the last two axes), from ``keras.ops``:
``det``, ``inv``, ``solve``, ``cholesky``, ``qr``, ``svd``, ``eigh``, ``slogdet``, ``logdet``, ``trace``,
``diag`` / ``diag_part`` / ``set_diag``, ``band_part``, ``matvec``, ``triangular_solve``, ``adjoint``, ``pinv``, ``lstsq``.

TensorFlow's ``svd`` returns ``(s, u, v)`` with ``v`` not transposed; ``eigh`` returns ``(e, v)``.

Example:
    >>> import numpy as np
    >>> a = np.array([[2.0, 1.0], [1.0, 4.0]], np.float32)
    >>> round(float(det(a)), 4), trace(a).tolist(), matvec(a, np.ones(2, np.float32)).tolist()
    (7.0, 6.0, [3.0, 5.0])
"""
from __future__ import annotations

__all__ = ["det", "inv", "solve", "cholesky", "qr", "svd", "eigh", "eigvalsh", "slogdet", "logdet", "trace", "diag",
           "diag_part", "set_diag", "band_part", "matvec", "triangular_solve", "adjoint", "pinv", "lstsq", "cross", "normalize",
           "matrix_rank", "cholesky_solve", "tensor_diag", "tensor_diag_part"]

import builtins
from typing import Any

import numpy as np

from .. import ops as _ops
from ..ops._util import symbolic
from .math_fns import norm
from .tensors import constant


def _swap_last(x: Any) -> Any:
    rank = len(_ops.shape(x))
    return _ops.transpose(x, list(builtins.range(rank - 2)) + [rank - 1, rank - 2])


def det(input: Any, name: str | None = None) -> Any:  # noqa: A002
    """``tf.linalg.det``: the determinant of each matrix."""
    return _ops.det(input)


def inv(input: Any, adjoint: builtins.bool = False, name: str | None = None) -> Any:  # noqa: A002
    """``tf.linalg.inv``: the inverse of each matrix (of its adjoint with ``adjoint=True``)."""
    return _ops.inv(_swap_last(input) if adjoint else input)


def solve(matrix: Any, rhs: Any, adjoint: builtins.bool = False, name: str | None = None) -> Any:
    """``tf.linalg.solve``: ``X`` with ``matrix @ X = rhs``."""
    return _ops.solve(_swap_last(matrix) if adjoint else matrix, rhs)


def cholesky(input: Any, name: str | None = None) -> Any:  # noqa: A002
    """``tf.linalg.cholesky``: the lower-triangular factor ``L`` with ``L @ L^T = input``."""
    return _ops.cholesky(input)


def qr(input: Any, full_matrices: builtins.bool = False, name: str | None = None) -> tuple[Any, Any]:  # noqa: A002
    """``tf.linalg.qr``: ``(q, r)``, reduced unless ``full_matrices``."""
    return _ops.qr(input, mode="complete" if full_matrices else "reduced")


def svd(tensor: Any, full_matrices: builtins.bool = False, compute_uv: builtins.bool = True,
        name: str | None = None) -> Any:
    """``tf.linalg.svd``: ``s`` alone, or ``(s, u, v)`` with ``tensor = u @ diag(s) @ adjoint(v)``."""
    if not compute_uv:
        return _ops.svd(tensor, full_matrices=full_matrices, compute_uv=False)
    u, s, vh = _ops.svd(tensor, full_matrices=full_matrices)
    return s, u, _swap_last(vh)


def eigh(tensor: Any, name: str | None = None) -> tuple[Any, Any]:
    """``tf.linalg.eigh``: ``(e, v)``, the eigenvalues (ascending) and eigenvectors of symmetric matrices."""
    return _ops.eigh(tensor)


def eigvalsh(tensor: Any, name: str | None = None) -> Any:
    """``tf.linalg.eigvalsh``: the eigenvalues of symmetric matrices, ascending."""
    return _ops.eigh(tensor)[0]


def slogdet(input: Any, name: str | None = None) -> tuple[Any, Any]:  # noqa: A002
    """``tf.linalg.slogdet``: ``(sign, log|det|)`` of each matrix."""
    return _ops.slogdet(input)


def logdet(matrix: Any, name: str | None = None) -> Any:
    """``tf.linalg.logdet``: ``log(det)`` of Hermitian positive-definite matrices, through their Cholesky
    factor (twice the sum of the logs of its diagonal), as TensorFlow computes it."""
    return 2.0 * _ops.sum(_ops.log(diag_part(_ops.cholesky(matrix))), axis=-1)


def trace(x: Any, name: str | None = None) -> Any:
    """``tf.linalg.trace``: the sum of each matrix's diagonal."""
    return _ops.trace(x, axis1=-2, axis2=-1)


def diag(diagonal: Any, name: str | None = None, k: int = 0, num_rows: int = -1, num_cols: int = -1,
         padding_value: Any = 0, align: str = "RIGHT_LEFT") -> Any:
    """``tf.linalg.diag``: square matrices with ``diagonal``'s last axis on their diagonal (batched)."""
    if k != 0 or num_rows != -1 or num_cols != -1 or padding_value != 0:
        raise NotImplementedError("tf.linalg.diag: only the main diagonal of a square matrix is supported. "
                                  f"Received: k={k}, num_rows={num_rows}, num_cols={num_cols}, "
                                  f"padding_value={padding_value}")
    n = _ops.shape(diagonal)[-1]
    return _ops.expand_dims(diagonal, -1) * _ops.eye(n, dtype=_ops.dtype(diagonal))


def diag_part(input: Any, name: str | None = None, k: int = 0, padding_value: Any = 0,  # noqa: A002
              align: str = "RIGHT_LEFT") -> Any:
    """``tf.linalg.diag_part``: the main diagonal of each matrix (``k`` above it, below when negative)."""
    return _ops.diagonal(input, offset=k, axis1=-2, axis2=-1)


def set_diag(input: Any, diagonal: Any, name: str | None = None, k: int = 0,  # noqa: A002
             align: str = "RIGHT_LEFT") -> Any:
    """``tf.linalg.set_diag``: each matrix (the last two axes) with its main diagonal replaced by ``diagonal``
    (``[..., min(M, N)]``); barlow_twins zeroes a cross-correlation matrix's diagonal with it.

    Example:
        >>> import numpy as np
        >>> set_diag(np.ones((2, 3), np.float32), np.zeros(2, np.float32)).tolist()
        [[0.0, 1.0, 1.0], [1.0, 0.0, 1.0]]
    """
    if k != 0:
        raise NotImplementedError(f"tf.linalg.set_diag: only the main diagonal (k=0) is supported. Received: k={k!r}")
    shape = tuple(_ops.shape(input))
    if len(shape) < 2 or not all(isinstance(d, int) for d in shape[-2:]):
        raise ValueError(f"tf.linalg.set_diag: 'input' must be at least 2-D with known matrix sizes. "
                         f"Received: input.shape={shape}")
    rows, cols = shape[-2:]
    diagonal = _ops.cast(diagonal, _ops.dtype(input))
    # diagonal[j] broadcast down the columns (or diagonal[i] along the rows when there are fewer rows): on
    # the diagonal, i == j, either reads the right entry.
    spread = _ops.expand_dims(diagonal, -2) if rows >= cols else _ops.expand_dims(diagonal, -1)
    return _ops.where(np.eye(rows, cols, dtype=bool), spread, input)


def band_part(input: Any, num_lower: Any, num_upper: Any, name: str | None = None) -> Any:  # noqa: A002
    """``tf.linalg.band_part``: entries more than ``num_lower`` below or ``num_upper`` above the diagonal set
    to 0 (a negative count keeps that whole triangle)."""
    rows, cols = _ops.shape(input)[-2:]
    i = _ops.expand_dims(_ops.arange(rows), -1)
    j = _ops.expand_dims(_ops.arange(cols), 0)
    keep = _ops.ones_like(i - j, dtype="bool")
    if int(num_lower) >= 0:
        keep = _ops.logical_and(keep, (i - j) <= int(num_lower))
    if int(num_upper) >= 0:
        keep = _ops.logical_and(keep, (j - i) <= int(num_upper))
    return _ops.where(keep, input, _ops.zeros_like(input))


def matvec(a: Any, b: Any, transpose_a: builtins.bool = False, adjoint_a: builtins.bool = False,
           name: str | None = None) -> Any:
    """``tf.linalg.matvec``: ``a @ b`` for matrices ``a`` and vectors ``b``, batched."""
    a = _swap_last(a) if (transpose_a or adjoint_a) else a
    return _ops.squeeze(_ops.matmul(a, _ops.expand_dims(b, -1)), -1)


def triangular_solve(matrix: Any, rhs: Any, lower: builtins.bool = True, adjoint: builtins.bool = False,
                     name: str | None = None) -> Any:
    """``tf.linalg.triangular_solve``: ``X`` with ``matrix @ X = rhs`` for a triangular ``matrix``
    (lower by default, unlike ``keras.ops.solve_triangular``)."""
    if adjoint:
        matrix, lower = _swap_last(matrix), not lower
    return _ops.solve_triangular(matrix, rhs, lower=lower)


def adjoint(matrix: Any, name: str | None = None) -> Any:
    """``tf.linalg.adjoint``: the last two axes swapped (real tensors)."""
    return _swap_last(matrix)


def pinv(a: Any, rcond: Any = None, validate_args: builtins.bool = False, name: str | None = None) -> Any:
    """``tf.linalg.pinv``: the Moore-Penrose pseudo-inverse."""
    return _ops.pinv(a) if rcond is None else _ops.pinv(a, rcond=rcond)


def lstsq(matrix: Any, rhs: Any, l2_regularizer: Any = 0.0, fast: builtins.bool = True,
          name: str | None = None) -> Any:
    """``tf.linalg.lstsq``: the least-squares solution of ``matrix @ X = rhs``."""
    if l2_regularizer:
        raise NotImplementedError(f"tf.linalg.lstsq: l2_regularizer is not supported. Received: "
                                  f"l2_regularizer={l2_regularizer}")
    return _ops.lstsq(matrix, rhs)


def cross(a: Any, b: Any, name: str | None = None) -> Any:
    """``tf.linalg.cross``: the cross product of 3-vectors along the last axis."""
    return _ops.cross(a, b)


def normalize(tensor: Any, ord: Any = "euclidean", axis: Any = None, name: str | None = None) -> tuple[Any, Any]:  # noqa: A002
    """``tf.linalg.normalize``: ``(tensor / norm, norm)``, the norm as ``tf.norm(..., keepdims=True)`` gives it."""
    n = norm(tensor, ord=ord, axis=axis, keepdims=True)
    return _ops.divide(tensor, n), n


def matrix_rank(a: Any, tol: Any = None, validate_args: builtins.bool = False, name: str | None = None) -> Any:
    """``tf.linalg.matrix_rank``: the number of singular values above ``tol`` (default: the largest one times
    ``max(rows, cols)`` times the dtype's epsilon), as int32, per matrix of a batch."""
    x = np.asarray(a, np.float32) if isinstance(a, (list, tuple)) else a
    return _matrix_rank(x, tol)


@symbolic   # eagerly one compiled program per signature, not one per step
def _matrix_rank(x: Any, tol: Any) -> Any:
    dtype = _ops.dtype(x)
    s = _ops.svd(x, full_matrices=False, compute_uv=False)
    if tol is None:
        rows, cols = _ops.shape(x)[-2:]
        size = builtins.max(rows, cols) if isinstance(rows, builtins.int) and isinstance(cols, builtins.int) \
            else _ops.cast(_ops.maximum(rows, cols), dtype)
        tol = _ops.max(s, axis=-1, keepdims=True) * size * float(np.finfo(np.dtype(dtype)).eps)
    return _ops.sum(_ops.cast(_ops.greater(s, tol), "int32"), axis=-1)


def cholesky_solve(chol: Any, rhs: Any, name: str | None = None) -> Any:
    """``tf.linalg.cholesky_solve``: ``x`` with ``A x = rhs`` for ``A = chol @ adjoint(chol)`` (``chol`` the
    lower Cholesky factor): two triangular solves."""
    y = triangular_solve(chol, rhs, lower=True)
    return triangular_solve(adjoint(chol), y, lower=False)


def tensor_diag(diagonal: Any, name: str | None = None) -> Any:
    """``tf.linalg.tensor_diag``: the tensor of shape ``D + D`` (``D = diagonal.shape``) that holds
    ``diagonal[i...]`` at ``[i..., i...]`` and zeros elsewhere."""
    x = constant(diagonal) if isinstance(diagonal, (list, tuple)) else diagonal   # TF's int32 / float32
    shape = tuple(_ops.shape(x))
    if not builtins.all(isinstance(d, builtins.int) for d in shape):
        raise ValueError(f"tf.linalg.tensor_diag needs a shape known while tracing. Received {shape}")
    size = builtins.int(np.prod(shape, dtype=np.int64))
    flat = _ops.reshape(x, (size,))
    return _ops.reshape(_ops.expand_dims(flat, -1) * _ops.eye(size, dtype=_ops.dtype(x)), shape + shape)


def tensor_diag_part(input: Any, name: str | None = None) -> Any:  # noqa: A002
    """``tf.linalg.tensor_diag_part``: the inverse of ``tensor_diag`` for a tensor of shape ``D + D``."""
    x = constant(input) if isinstance(input, (list, tuple)) else input
    shape = tuple(_ops.shape(x))
    half = len(shape) // 2
    if len(shape) % 2 or shape[:half] != shape[half:] or not builtins.all(isinstance(d, builtins.int)
                                                                           for d in shape):
        raise ValueError(f"tf.linalg.tensor_diag_part: input must have a known, even-rank shape D + D. Received "
                         f"{shape}")
    size = builtins.int(np.prod(shape[:half], dtype=np.int64))
    square = _ops.reshape(x, (size, size))
    return _ops.reshape(_ops.sum(square * _ops.eye(size, dtype=_ops.dtype(x)), axis=-1), shape[:half])
