"""``keras.ops.linalg`` (the parts a graph of standard ops computes exactly): ``norm`` for vectors and
matrices, ``det``, and ``inv`` / ``solve`` for small static matrices by Gauss-Jordan elimination unrolled
into the graph (differentiable through ordinary arithmetic).

Example:
    >>> import numpy as np
    >>> from onnxforge import ops
    >>> float(ops.norm(np.array([3.0, 4.0])))
    5.0
"""
from __future__ import annotations

__all__ = ["norm", "det", "inv", "solve"]

from typing import Any

import numpy as np

from ..graph.size_limits import check_constant

from ..backend_config import floatx
from ..graph import FLOAT_TYPES, Value
from ._arrays_util import emit
from ._util import as_value, builder_of, cast_value, dtype_enum, int_const, promote, symbolic


def _float(x: Any) -> Value:
    b = builder_of(x)
    v = as_value(x, b)
    return v if v.dtype in FLOAT_TYPES else cast_value(v, dtype_enum(floatx()))


def _reduce(op: str, v: Value, axes: list[int] | None, keepdims: bool) -> Value:
    b = v.builder
    return emit(b, op, [v] if axes is None else [v, int_const(b, axes)], keepdims=int(keepdims))


@symbolic
def norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Value:  # noqa: A002
    """NumPy's ``linalg.norm``: vector norms (``ord`` None/2, 1, inf, -inf, 0, any p) over one axis,
    the Frobenius norm over all entries or two axes, and the matrix 1 / inf norms."""
    v = _float(x)
    b = v.builder
    rank = len(v.shape)
    if axis is None:
        if ord is None or (ord == "fro" and rank == 2):
            return emit(b, "Sqrt", [_reduce("ReduceSum", v * v, None, keepdims)])
        if rank == 1:
            axis = 0
        elif rank == 2:
            axis = (0, 1)
        else:
            raise ValueError(f"ops.norm: ord={ord!r} needs a 1-D or 2-D tensor or an axis.")
    axes = [int(a) % rank for a in axis] if isinstance(axis, (list, tuple)) else [int(axis) % rank]
    a = emit(b, "Abs", [v])
    if len(axes) == 1:
        if ord is None or ord == 2:
            return emit(b, "Sqrt", [_reduce("ReduceSum", v * v, axes, keepdims)])
        if ord == 1:
            return _reduce("ReduceSum", a, axes, keepdims)
        if ord in (np.inf, "inf"):
            return _reduce("ReduceMax", a, axes, keepdims)
        if ord in (-np.inf, "-inf"):
            return _reduce("ReduceMin", a, axes, keepdims)
        if ord == 0:
            nz = cast_value(emit(b, "Not", [emit(b, "Equal", [v, as_value(0.0, b, like=v)])]), v.dtype)
            return _reduce("ReduceSum", nz, axes, keepdims)
        if isinstance(ord, str):
            raise ValueError(f"ops.norm: ord={ord!r} is a matrix norm; give two axes.")
        p = float(ord)
        powered = emit(b, "Pow", [a, as_value(p, b, like=v)])
        return emit(b, "Pow", [_reduce("ReduceSum", powered, axes, keepdims), as_value(1.0 / p, b, like=v)])
    if len(axes) != 2:
        raise ValueError(f"ops.norm takes one or two axes. Received: axis={axis!r}")
    row, col = axes
    if ord is None or ord == "fro":
        return emit(b, "Sqrt", [_reduce("ReduceSum", v * v, axes, keepdims)])
    if ord in (1, -1):
        sums = _reduce("ReduceSum", a, [row], True)
        out = _reduce("ReduceMax" if ord == 1 else "ReduceMin", sums, [col], True)
    elif ord in (np.inf, -np.inf):
        sums = _reduce("ReduceSum", a, [col], True)
        out = _reduce("ReduceMax" if ord == np.inf else "ReduceMin", sums, [row], True)
    else:
        raise ValueError(f"ops.norm: matrix ord={ord!r} is not supported (use 'fro', 1, -1, inf or -inf).")
    return out if keepdims else emit(b, "Squeeze", [out, int_const(b, sorted(axes))])


@symbolic
def det(x: Any) -> Value:
    """Determinant of the last two axes (square)."""
    v = _float(x)
    return emit(v.builder, "Det", [v])


def _gauss_jordan(a: Value, rhs: Value) -> Value:
    """Solve ``a @ out = rhs`` for static ``n x n`` ``a`` by Gauss-Jordan with partial pivoting, unrolled."""
    b = a.builder
    n = a.shape[-1]
    if not isinstance(n, int) or a.shape[-2] != n:
        raise ValueError(f"ops.inv / ops.solve need static square matrices. Received shape {a.shape}.")
    aug = emit(b, "Concat", [a, rhs], axis=-1)                         # (..., n, n + m)
    for col in range(n):
        # Pivot: the row (at or below `col`) with the largest |entry| in this column, swapped into place.
        column = emit(b, "Slice", [aug, int_const(b, [col]), int_const(b, [col + 1]), int_const(b, [-1])])
        below = emit(b, "Abs", [column])
        rows = np.arange(n).reshape([n, 1])
        below = emit(b, "Where", [as_value(rows >= col, b), below, as_value(-1.0, b, like=below)])
        pivot = emit(b, "ArgMax", [below], axis=-2, keepdims=1)          # (..., 1, 1)
        onehot_p = cast_value(emit(b, "Equal", [as_value(rows.astype(np.int64), b), pivot]), a.dtype)
        onehot_c = as_value((rows == col).astype(np.float32), b, like=a)
        swap = onehot_c - onehot_p                                     # moves row p to col and col to p
        row_p = emit(b, "ReduceSum", [aug * onehot_p, int_const(b, [-2])], keepdims=1)
        row_c = emit(b, "ReduceSum", [aug * onehot_c, int_const(b, [-2])], keepdims=1)
        aug = aug + swap * (row_p - row_c)
        row = emit(b, "ReduceSum", [aug * onehot_c, int_const(b, [-2])], keepdims=1)
        pivot_value = emit(b, "Slice", [row, int_const(b, [col]), int_const(b, [col + 1]), int_const(b, [-1])])
        row = row / pivot_value
        factors = emit(b, "Slice", [aug, int_const(b, [col]), int_const(b, [col + 1]), int_const(b, [-1])])
        factors = factors * (1.0 - onehot_c)
        aug = aug - factors * row
        aug = aug * (1.0 - onehot_c) + row * onehot_c
    return emit(b, "Slice", [aug, int_const(b, [n]), int_const(b, [np.iinfo(np.int64).max]), int_const(b, [-1])])


@symbolic
def inv(x: Any) -> Value:
    """Inverse of (batches of) small static square matrices."""
    v = _float(x)
    b = v.builder
    n = v.shape[-1]
    check_constant((n, n), 8, "the identity matrix of a linear-algebra op")   # pre-alloc
    eye = as_value(np.eye(n, dtype=np.float32), b, like=v)
    rhs = emit(b, "Add", [emit(b, "Mul", [v, as_value(0.0, b, like=v)]), eye])   # eye broadcast to the batch
    return _gauss_jordan(v, rhs)


@symbolic
def solve(a: Any, b: Any) -> Value:
    """``x`` with ``a @ x = b`` for small static square ``a``; ``b`` is ``(..., n)`` or ``(..., n, m)``."""
    bld = builder_of(a, b)
    av, bv = promote(bld, a, b)
    av, bv = _float(av), _float(bv)
    vector = len(bv.shape) == len(av.shape) - 1
    rhs = emit(bld, "Unsqueeze", [bv, int_const(bld, [-1])]) if vector else bv
    out = _gauss_jordan(av, rhs)
    return emit(bld, "Squeeze", [out, int_const(bld, [-1])]) if vector else out
