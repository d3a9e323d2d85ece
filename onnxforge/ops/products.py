"""Products and boolean reductions (``keras.ops.numpy``): ``tensordot``, ``einsum``, ``dot``, ``outer``,
``inner``, ``kron``, ``cross``; ``any`` / ``all`` / ``count_nonzero``, ``average``, ``isclose``, ``select``.

Products are ONNX ``Einsum`` / ``MatMul`` nodes (both have gradient rules).

Example:
    >>> import numpy as np
    >>> from onnxforge import ops
    >>> ops.tensordot(np.ones((2, 3)), np.ones((3, 4)), axes=1).shape
    TensorShape([2, 4])
    >>> bool(ops.any(np.array([0, 0, 1])))
    True
"""
from __future__ import annotations

__all__ = [
    "tensordot",
    "einsum",
    "outer",
    "inner",
    "dot",
    "vdot",
    "kron",
    "cross",
    "any",
    "all",
    "count_nonzero",
    "amax",
    "amin",
    "ptp",
    "average",
    "isclose",
    "allclose",
    "select",
]

import builtins
import string
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..backend_config import floatx
from ..graph import FLOAT_TYPES, Value
from ._arrays_util import BOOL, INT32, INT64, emit, rank_of, slice_axis, value
from ._util import as_value, builder_of, cast_value, dtype_enum, int_const, promote, symbolic
from .arrays import moveaxis


@symbolic
def tensordot(x1: Any, x2: Any, axes: Any = 2) -> Value:
    """Sum of products over ``axes`` (an int: the last ``axes`` of ``x1`` with the first of ``x2``; or two
    lists of axes), as ``numpy.tensordot``."""
    b = builder_of(x1, x2)
    a, c = promote(b, x1, x2)
    ra, rc = rank_of(a, "tensordot"), rank_of(c, "tensordot")
    if isinstance(axes, (int, np.integer)):
        n = int(axes)
        ax_a, ax_c = list(range(ra - n, ra)), list(range(n))
    else:
        ax_a, ax_c = axes
        ax_a = [ax_a] if isinstance(ax_a, (int, np.integer)) else list(ax_a)
        ax_c = [ax_c] if isinstance(ax_c, (int, np.integer)) else list(ax_c)
        ax_a, ax_c = [int(i) % ra for i in ax_a], [int(i) % rc for i in ax_c]
    letters = iter(string.ascii_letters)
    la = [next(letters) for _ in range(ra)]
    lc = [next(letters) for _ in range(rc)]
    for i, j in zip(ax_a, ax_c):
        lc[j] = la[i]
    out = [la[i] for i in range(ra) if i not in ax_a] + [lc[j] for j in range(rc) if j not in ax_c]
    return einsum(f"{''.join(la)},{''.join(lc)}->{''.join(out)}", a, c)


@symbolic
def einsum(subscripts: str, *operands: Any) -> Value:
    """Einstein summation (``ai.onnx`` ``Einsum``); integer operands are summed as ``int32`` as in Keras."""
    b = builder_of(*operands)
    values = promote(b, *operands)
    if values and values[0].dtype == BOOL:
        values = [cast_value(v, 6) for v in values]
    return emit(b, "Einsum", values, equation=subscripts.replace(" ", ""))


@symbolic
def outer(x1: Any, x2: Any) -> Value:
    b = builder_of(x1, x2)
    a, c = promote(b, x1, x2)
    a = emit(b, "Reshape", [a, int_const(b, [-1, 1])])
    c = emit(b, "Reshape", [c, int_const(b, [1, -1])])
    return a * c


@symbolic
def inner(x1: Any, x2: Any) -> Value:
    b = builder_of(x1, x2)
    a, c = promote(b, x1, x2)
    if not a.shape or not c.shape:
        return a * c
    return tensordot(a, c, axes=([-1], [-1]))


@symbolic
def dot(x1: Any, x2: Any) -> Value:
    """NumPy's ``dot``: a product for scalars, ``matmul`` for vectors and matrices, else a sum over the last
    axis of ``x1`` and the second-to-last of ``x2``."""
    b = builder_of(x1, x2)
    a, c = promote(b, x1, x2)
    ra, rc = len(a.shape or ()), len(c.shape or ())
    if ra == 0 or rc == 0:
        return a * c
    if rc <= 2:
        return emit(b, "MatMul", [a, c])
    return tensordot(a, c, axes=([-1], [-2]))


@symbolic
def vdot(x1: Any, x2: Any) -> Value:
    b = builder_of(x1, x2)
    a, c = promote(b, x1, x2)
    return emit(b, "ReduceSum", [emit(b, "Reshape", [a, int_const(b, [-1])]) * emit(b, "Reshape", [c, int_const(b, [-1])])],
                keepdims=0)


@symbolic
def kron(x1: Any, x2: Any) -> Value:
    b = builder_of(x1, x2)
    a, c = promote(b, x1, x2)
    ra, rc = rank_of(a, "kron"), rank_of(c, "kron")
    r = builtins.max(ra, rc)
    a = emit(b, "Reshape", [a, int_const(b, [1] * (r - ra) + list(a.shape))]) if ra < r else a
    c = emit(b, "Reshape", [c, int_const(b, [1] * (r - rc) + list(c.shape))]) if rc < r else c
    if not builtins.all(isinstance(d, int) for d in (*a.shape, *c.shape)):
        raise ValueError("ops.kron needs static shapes.")
    a_exp = emit(b, "Reshape", [a, int_const(b, [d for s in a.shape for d in (s, 1)])])
    c_exp = emit(b, "Reshape", [c, int_const(b, [d for s in c.shape for d in (1, s)])])
    return emit(b, "Reshape", [a_exp * c_exp, int_const(b, [p * q for p, q in zip(a.shape, c.shape)])])


@symbolic
def cross(x1: Any, x2: Any, axisa: int = -1, axisb: int = -1, axisc: int = -1, axis: int | None = None) -> Value:
    """The 3-vector cross product along the last axis."""
    b = builder_of(x1, x2)
    a, c = promote(b, x1, x2)
    if axis is not None:
        axisa = axisb = axisc = axis
    a, c = moveaxis(a, axisa, -1), moveaxis(c, axisb, -1)
    ax = [slice_axis(a, len(a.shape) - 1, i, i + 1) for i in range(3)]
    cx = [slice_axis(c, len(c.shape) - 1, i, i + 1) for i in range(3)]
    out = emit(b, "Concat", [ax[1] * cx[2] - ax[2] * cx[1], ax[2] * cx[0] - ax[0] * cx[2],
                          ax[0] * cx[1] - ax[1] * cx[0]], axis=-1)
    return moveaxis(out, -1, axisc)


def _reduce_axes(axis: Any) -> list[int] | None:
    if axis is None:
        return None
    return [int(a) for a in axis] if isinstance(axis, (list, tuple)) else [int(axis)]


def _bool_reduce(x: Any, axis: Any, keepdims: bool, op: str) -> Value:
    v = value(x)
    b = v.builder
    as_int = cast_value(emit(b, "Not", [emit(b, "Equal", [v, as_value(0, b, like=v)])]) if v.dtype != BOOL else v,
                        INT64)
    axes = _reduce_axes(axis)
    args = [as_int] if axes is None else [as_int, int_const(b, axes)]
    return cast_value(emit(b, op, args, keepdims=int(bool(keepdims))), BOOL)


@symbolic
def any(x: Any, axis: Any = None, keepdims: bool = False) -> Value:  # noqa: A001
    return _bool_reduce(x, axis, keepdims, "ReduceMax")


@symbolic
def all(x: Any, axis: Any = None, keepdims: bool = False) -> Value:  # noqa: A001
    return _bool_reduce(x, axis, keepdims, "ReduceMin")


@symbolic
def count_nonzero(x: Any, axis: Any = None) -> Value:
    v = value(x)
    b = v.builder
    # Counted in int32, Keras's result type on every backend (a count past 2**31 would need int64 anyway).
    nz = cast_value(emit(b, "Not", [emit(b, "Equal", [v, as_value(0, b, like=v)])]) if v.dtype != BOOL else v, INT32)
    axes = _reduce_axes(axis)
    return emit(b, "ReduceSum", [nz] if axes is None else [nz, int_const(b, axes)], keepdims=0)


@symbolic
def amax(x: Any, axis: Any = None, keepdims: bool = False) -> Value:
    from .numpy import max as _max

    return _max(x, axis=axis, keepdims=keepdims)


@symbolic
def amin(x: Any, axis: Any = None, keepdims: bool = False) -> Value:
    from .numpy import min as _min

    return _min(x, axis=axis, keepdims=keepdims)


@symbolic
def ptp(x: Any, axis: Any = None, keepdims: bool = False) -> Value:
    return amax(x, axis, keepdims) - amin(x, axis, keepdims)


@symbolic
def average(x: Any, axis: Any = None, weights: Any = None) -> Value:
    """The (weighted) mean; 1-D ``weights`` apply along ``axis``, as NumPy."""
    from .numpy import mean

    if weights is None:
        return mean(x, axis=axis)
    b = builder_of(x, weights)
    v, w = promote(b, x, weights)
    if v.dtype not in FLOAT_TYPES:
        v, w = cast_value(v, dtype_enum(floatx())), cast_value(w, dtype_enum(floatx()))
    if axis is not None and w.shape is not None and len(w.shape) == 1 and v.shape is not None and len(v.shape) > 1:
        shape = [1] * len(v.shape)
        shape[int(axis) % len(v.shape)] = -1
        w = emit(b, "Reshape", [w, int_const(b, shape)])
    axes = _reduce_axes(axis)
    ww = w * emit(b, "Add", [emit(b, "Mul", [v, as_value(0.0, b, like=v)]), as_value(1.0, b, like=v)])
    num = emit(b, "ReduceSum", [v * w] if axes is None else [v * w, int_const(b, axes)], keepdims=0)
    den = emit(b, "ReduceSum", [ww] if axes is None else [ww, int_const(b, axes)], keepdims=0)
    return num / den


@symbolic
def isclose(x1: Any, x2: Any, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False) -> Value:
    b = builder_of(x1, x2)
    a, c = promote(b, x1, x2)
    if a.dtype not in FLOAT_TYPES:
        return emit(b, "Equal", [a, c])
    close = emit(b, "LessOrEqual", [emit(b, "Abs", [a - c]), emit(b, "Abs", [c]) * float(rtol) + float(atol)])
    if equal_nan:
        close = emit(b, "Or", [close, emit(b, "And", [emit(b, "IsNaN", [a]), emit(b, "IsNaN", [c])])])
    return close


@symbolic
def allclose(x1: Any, x2: Any, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False) -> Value:
    return all(isclose(x1, x2, rtol, atol, equal_nan))


@symbolic
def select(condlist: Sequence[Any], choicelist: Sequence[Any], default: Any = 0) -> Value:
    """The choice of the first true condition, per entry (``default`` where none holds)."""
    b = builder_of(*condlist, *choicelist)
    values = promote(b, *choicelist, default)
    out = values[-1]
    for cond, choice in reversed(list(zip(condlist, values[:-1]))):
        c = cast_value(as_value(cond, b), BOOL)
        out = emit(b, "Where", [c, choice, out], dtype=choice.dtype)
    return out


