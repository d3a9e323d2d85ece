"""``keras.ops.slogdet`` and ``keras.ops.cdist``, as compositions of standard ops that gradients flow through.

``slogdet`` runs Gaussian elimination with partial pivoting, unrolled over the static matrix size: the log
of |det| is the sum of the logs of the pivots' magnitudes (no overflow for large determinants, unlike
``log(abs(Det))``), the sign the product of their signs and of one ``-1`` per row swap.

Example:
    >>> import numpy as np
    >>> from onnxforge import ops
    >>> sign, logabsdet = ops.slogdet(np.array([[0.0, 2.0], [3.0, 0.0]]))
    >>> sign.tolist(), round(float(logabsdet), 4)
    (-1.0, 1.7918)
"""
from __future__ import annotations

__all__ = ["slogdet", "cdist"]

from typing import Any

import numpy as np

from ..backend_config import floatx
from ..graph import FLOAT_TYPES, Value
from ._arrays_util import emit, value
from ._util import as_value, builder_of, cast_value, dtype_enum, int_const, promote, symbolic


def _float(v: Value) -> Value:
    return v if v.dtype in FLOAT_TYPES else cast_value(v, dtype_enum(floatx()))


def _row(b: Any, a: Value, onehot: Value) -> Value:
    return emit(b, "ReduceSum", [a * onehot, int_const(b, [-2])], keepdims=1)       # (..., 1, n)


def _column(b: Any, a: Value, col: int) -> Value:
    return emit(b, "Slice", [a, int_const(b, [col]), int_const(b, [col + 1]), int_const(b, [-1])])   # (..., n, 1)


@symbolic
def slogdet(x: Any) -> tuple[Value, Value]:
    """``(sign, log|det|)`` of (batches of) static square matrices; a singular matrix gives ``(0, -inf)``."""
    a = _float(value(x))
    b = a.builder
    if a.shape is None or len(a.shape) < 2 or not isinstance(a.shape[-1], int) or a.shape[-2] != a.shape[-1]:
        raise ValueError(f"ops.slogdet takes (batches of) static square matrices. Received: x with shape {a.shape}")
    n = a.shape[-1]
    rows = np.arange(n).reshape(n, 1)
    zero = as_value(0.0, b, like=a)
    sign = logs = None
    for col in range(n):
        # Pivot: the row at or below `col` with the largest |entry| in this column, swapped into place.
        magnitude = emit(b, "Where", [as_value(rows >= col, b), emit(b, "Abs", [_column(b, a, col)]),
                                      as_value(-1.0, b, like=a)])
        pivot_row = emit(b, "ArgMax", [magnitude], axis=-2, keepdims=1)                 # (..., 1, 1)
        onehot_p = cast_value(emit(b, "Equal", [as_value(rows.astype(np.int64), b), pivot_row]), a.dtype)
        onehot_c = as_value((rows == col).astype(np.float32), b, like=a)
        row_p, row_c = _row(b, a, onehot_p), _row(b, a, onehot_c)
        a = a + (onehot_c - onehot_p) * (row_p - row_c)
        pivot = _column(b, row_p, col)                                                 # (..., 1, 1)
        swapped = cast_value(emit(b, "Not", [emit(b, "Equal", [pivot_row, as_value(np.int64(col), b)])]), a.dtype)
        step_sign = emit(b, "Sign", [pivot]) * (1.0 - 2.0 * swapped)
        step_log = emit(b, "Log", [emit(b, "Abs", [pivot])])
        sign = step_sign if sign is None else sign * step_sign
        logs = step_log if logs is None else logs + step_log
        # Eliminate below the pivot (a zero pivot leaves its column alone; the sign is already 0).
        safe = emit(b, "Where", [emit(b, "Equal", [pivot, zero]), as_value(1.0, b, like=a), pivot])
        below = as_value((rows > col).astype(np.float32), b, like=a)
        a = a - _column(b, a, col) / safe * below * row_p
    squeeze = int_const(b, [-2, -1])
    return emit(b, "Squeeze", [sign, squeeze]), emit(b, "Squeeze", [logs, squeeze])


@symbolic
def cdist(x: Any, y: Any) -> Value:
    """Euclidean distances between the rows of ``x`` ``(..., m, d)`` and of ``y`` ``(..., n, d)``: ``(..., m, n)``
    (batch axes broadcast)."""
    b = builder_of(x, y)
    u, w = promote(b, x, y)
    u, w = _float(u), _float(w)
    for v, name in ((u, "x"), (w, "y")):
        if v.shape is None or len(v.shape) < 2:
            raise ValueError(f"ops.cdist inputs must have rank >= 2. Received: {name} with shape {v.shape}")
    if isinstance(u.shape[-1], int) and isinstance(w.shape[-1], int) and u.shape[-1] != w.shape[-1]:
        raise ValueError(f"ops.cdist: the last axes of x and y must match. Received: shapes {u.shape} and {w.shape}")
    diff = emit(b, "Unsqueeze", [u, int_const(b, [-2])]) - emit(b, "Unsqueeze", [w, int_const(b, [-3])])
    return emit(b, "Sqrt", [emit(b, "ReduceSum", [diff * diff, int_const(b, [-1])], keepdims=0)])
