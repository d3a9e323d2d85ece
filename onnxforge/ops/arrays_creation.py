"""Array creation ``keras.ops.numpy`` ops: triangles (``tril`` / ``triu`` / ``tri``), diagonals (``eye``,
``identity``, ``diagonal``, ``trace``, ``diag``, ``diagflat``), ranges (``linspace``, ``logspace``,
``geomspace``), ``empty`` / ``copy`` / ``array`` and ``vander``.

Triangles are ``Where`` masks rather than ``Trilu`` so that every op here has a gradient rule. An
``OpCall`` config records them under ``arrays.<name>``, where they are re-exported.

Example:
    >>> from onnxforge import ops
    >>> ops.tril([[1.0, 2.0], [3.0, 4.0]]).tolist()
    [[1.0, 0.0], [3.0, 4.0]]
"""
from __future__ import annotations

__all__ = ['tril', 'triu', 'tri', 'eye', 'identity', 'diagonal', 'trace', 'diag', 'diagflat', 'linspace', 'logspace', 'geomspace', 'empty', 'empty_like', 'copy', 'array', 'vander']

import builtins
from typing import Any

import numpy as np
import onnx

from ..backend_config import floatx
from ..graph import FLOAT_TYPES, Value, np_dtype, protos
from ..graph.size_limits import check_constant
from ._arrays_util import BOOL, INT64, axis_index, dim, emit, rank_of, value
from ._util import as_value, builder_of, cast_value, dtype_enum, int_const, symbolic

# The module name that OpCall configs record for these ops (they were in arrays.py, which re-exports them).
OPCALL_MODULE = "arrays"


def _triangle_mask(b: Any, rows: Value, cols: Value, k: Any, lower: bool) -> Value:
    r = emit(b, "Unsqueeze", [emit(b, "Range", [as_value(np.int64(0), b), rows, as_value(np.int64(1), b)]),
                           int_const(b, [1])])
    c = emit(b, "Unsqueeze", [emit(b, "Range", [as_value(np.int64(0), b), cols, as_value(np.int64(1), b)]),
                           int_const(b, [0])])
    offset = c - r
    kk = as_value(np.int64(int(k)), b) if not isinstance(k, Value) else cast_value(k, INT64)
    return emit(b, "LessOrEqual", [offset, kk]) if lower else emit(b, "GreaterOrEqual", [offset, kk])


def _triangle(x: Any, k: Any, lower: bool) -> Value:
    v = value(x)
    b = v.builder
    # A mask through Where rather than ONNX's Trilu: Where has a gradient rule.
    mask = _triangle_mask(b, dim(v, -2), dim(v, -1), k, lower)
    if v.dtype == BOOL:   # onnxruntime has no boolean Where
        return emit(b, "And", [v, mask])
    return emit(b, "Where", [mask, v, as_value(0, b, like=v)], dtype=v.dtype)


@symbolic
def tril(x: Any, k: int = 0) -> Value:
    """The lower triangle (entries on and below the ``k``-th diagonal) of the last two axes."""
    return _triangle(x, k, lower=True)


@symbolic
def triu(x: Any, k: int = 0) -> Value:
    """The upper triangle (entries on and above the ``k``-th diagonal) of the last two axes."""
    return _triangle(x, k, lower=False)


def _creation(*args: Any) -> Any:
    b = builder_of(args)
    assert b is not None   # `symbolic` calls creation ops only inside a graph
    return b


def _size(b: Any, n: Any) -> Value:
    return cast_value(as_value(n, b), INT64) if isinstance(n, Value) else as_value(np.int64(int(n)), b)


@symbolic
def tri(N: Any, M: Any = None, k: int = 0, dtype: Any = None) -> Value:
    b = _creation(N, M, k)
    rows = _size(b, N)
    cols = rows if M is None else _size(b, M)
    mask = _triangle_mask(b, rows, cols, k, True)
    return cast_value(mask, dtype_enum(dtype or floatx()))


@symbolic
def eye(N: Any, M: Any = None, k: int = 0, dtype: Any = None) -> Value:
    """A 2-D tensor with ones on the ``k``-th diagonal (default dtype ``floatx()``)."""
    b = _creation(N, M, k)
    rows = _size(b, N)
    cols = rows if M is None else _size(b, M)
    r = emit(b, "Unsqueeze", [emit(b, "Range", [as_value(np.int64(0), b), rows, as_value(np.int64(1), b)]),
                           int_const(b, [1])])
    c = emit(b, "Unsqueeze", [emit(b, "Range", [as_value(np.int64(0), b), cols, as_value(np.int64(1), b)]),
                           int_const(b, [0])])
    kk = as_value(np.int64(int(k)), b) if not isinstance(k, Value) else cast_value(k, INT64)
    out = cast_value(emit(b, "Equal", [c - r, kk]), dtype_enum(dtype or floatx()))
    if isinstance(N, (int, np.integer)) and (M is None or isinstance(M, (int, np.integer))):
        out.shape = (int(N), int(N if M is None else M))
    return out


@symbolic
def identity(n: Any, dtype: Any = None) -> Value:
    return eye(n, dtype=dtype)


@symbolic
def diagonal(x: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Value:
    """The ``offset`` diagonal of the ``axis1`` x ``axis2`` planes, as the last axis (NumPy's layout)."""
    v = value(x)
    rank = rank_of(v, "diagonal")
    a1, a2 = axis_index(axis1, rank, "diagonal"), axis_index(axis2, rank, "diagonal")
    rest = [a for a in range(rank) if a not in (a1, a2)]
    from .numpy import transpose

    m = transpose(v, rest + [a1, a2])
    n1, n2 = v.shape[a1], v.shape[a2]
    if not (isinstance(n1, int) and isinstance(n2, int)):
        raise ValueError("ops.diagonal needs static sizes along axis1 and axis2.")
    offset = int(offset)
    rows = np.arange(builtins.max(0, -offset), n1)
    rows = rows[rows + offset < n2]
    b = v.builder
    if not len(rows):
        return emit(b, "Slice", [emit(b, "ReduceSum", [m, int_const(b, [-1])], keepdims=0), int_const(b, [0]),
                              int_const(b, [0]), int_const(b, [-1])])
    flat = emit(b, "Reshape", [m, emit(b, "Concat", [emit(b, "Slice", [emit(b, "Shape", [m]), int_const(b, [0]),
                                                              int_const(b, [-2])]),
                                               int_const(b, [n1 * n2])], axis=0)])
    return emit(b, "Gather", [flat, int_const(b, (rows * n2 + rows + offset).tolist())], axis=-1)


@symbolic
def trace(x: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Value:
    d = diagonal(x, offset, axis1, axis2)
    return emit(d.builder, "ReduceSum", [d, int_const(d.builder, [-1])], keepdims=0)


@symbolic
def diag(x: Any, k: int = 0) -> Value:
    """The ``k``-th diagonal of a matrix, or the square matrix with a vector on its ``k``-th diagonal."""
    v = value(x)
    rank = rank_of(v, "diag")
    if rank == 2:
        return diagonal(v, k)
    if rank != 1:
        raise ValueError(f"ops.diag takes a 1-D or 2-D tensor. Received rank {rank}.")
    n = v.shape[0]
    if not isinstance(n, int):
        raise ValueError("ops.diag of a vector needs its static size.")
    size = n + builtins.abs(int(k))
    rows = np.arange(n) + builtins.max(0, -int(k))
    cols = np.arange(n) + builtins.max(0, int(k))
    b = v.builder
    zeros = emit(b, "Mul", [emit(b, "ConstantOfShape", [int_const(b, [size * size])],
                              value=_zero_tensor(v.dtype)), as_value(0, b, like=v)])
    flat = emit(b, "ScatterElements", [zeros, int_const(b, (rows * size + cols).tolist()), v], axis=0)
    return emit(b, "Reshape", [flat, int_const(b, [size, size])], shape=(size, size))


def _zero_tensor(dtype: int) -> Any:
    return protos.tensor_from_array(np.zeros(1, np_dtype(dtype)), "value")


@symbolic
def diagflat(x: Any, k: int = 0) -> Value:
    v = value(x)
    return diag(emit(v.builder, "Reshape", [v, int_const(v.builder, [-1])]), k)  # diag of ravel(x)


@symbolic
def linspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True, retstep: bool = False,
             dtype: Any = None, axis: int = 0) -> Any:
    """``num`` evenly spaced values from ``start`` to ``stop`` (included when ``endpoint``)."""
    b = _creation(start, stop)
    elem = dtype_enum(dtype or floatx())
    # bfloat16 counts in float32 and is cast at the end (onnxruntime's CPU provider has only Cast for it).
    compute = onnx.TensorProto.FLOAT if elem == onnx.TensorProto.BFLOAT16 else \
        elem if elem in FLOAT_TYPES else dtype_enum(floatx())
    lo = as_value(start, b, dtype=compute)
    hi = as_value(stop, b, dtype=compute)
    num = int(num)
    div = (num - 1) if endpoint else num
    step = (hi - lo) / builtins.max(div, 1) if div > 0 else hi - lo
    idx = cast_value(emit(b, "Range", [as_value(np.int64(0), b), as_value(np.int64(num), b),
                                    as_value(np.int64(1), b)]), compute)
    lo_r = emit(lo.builder, "Unsqueeze", [lo, int_const(b, [lo.shape.__len__() if lo.shape else 0])]) \
        if lo.shape else lo
    step_r = emit(step.builder, "Unsqueeze", [step, int_const(b, [len(step.shape)])]) if step.shape else step
    out = lo_r + idx * step_r if lo.shape else lo + idx * step
    if endpoint and num > 1 and not lo.shape:
        # The last value is exactly ``stop`` (as NumPy), not ``start + (num - 1) * step``.
        last = emit(b, "Equal", [emit(b, "Range", [as_value(np.int64(0), b), as_value(np.int64(num), b),
                                             as_value(np.int64(1), b)]), as_value(np.int64(num - 1), b)])
        out = emit(b, "Where", [last, hi, out], dtype=compute)
    if lo.shape and axis != 0:
        from .numpy import transpose

        rank = len(lo.shape) + 1
        axis = axis % rank
        perm = list(range(rank - 1))
        perm.insert(axis, rank - 1)
        out = transpose(out, perm)
    elif lo.shape:
        from .numpy import transpose

        rank = len(lo.shape) + 1
        out = transpose(out, [rank - 1] + list(range(rank - 1)))
    out.shape = (num,) if not lo.shape else out.shape
    out = cast_value(out, elem)
    return (out, step) if retstep else out


@symbolic
def logspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True, base: float = 10.0, dtype: Any = None,
             axis: int = 0) -> Value:
    exps = linspace(start, stop, num, endpoint=endpoint, axis=axis)
    b = exps.builder
    out = emit(b, "Pow", [as_value(float(base), b, like=exps), exps])
    return cast_value(out, dtype_enum(dtype or floatx()))


@symbolic
def geomspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True, dtype: Any = None,
              axis: int = 0) -> Value:
    b = _creation(start, stop)
    lo, hi = as_value(start, b, dtype=floatx()), as_value(stop, b, dtype=floatx())
    logs = linspace(emit(b, "Log", [lo]), emit(b, "Log", [hi]), num, endpoint=endpoint, axis=axis)
    return cast_value(emit(b, "Exp", [logs]), dtype_enum(dtype or floatx()))


@symbolic
def empty(shape: Any, dtype: Any = None) -> Value:
    from .numpy import zeros

    return zeros(shape, dtype=dtype)


@symbolic
def empty_like(x: Any, dtype: Any = None) -> Value:
    from .numpy import zeros_like

    return zeros_like(x, dtype=dtype)


@symbolic
def copy(x: Any) -> Value:
    v = value(x)
    return emit(v.builder, "Identity", [v], shape=v.shape)


@symbolic
def array(x: Any, dtype: Any = None) -> Value:
    v = value(x)
    return v if dtype is None else cast_value(v, dtype_enum(dtype))


@symbolic
def vander(x: Any, N: int | None = None, increasing: bool = False) -> Value:
    v = value(x)
    b = v.builder
    n = v.shape[0] if N is None else N
    if not isinstance(n, int):
        raise ValueError("ops.vander needs N or a static length.")
    check_constant((n,), 8, "ops.vander's powers")   # before numpy allocates them
    powers = np.arange(n) if increasing else np.arange(n)[::-1]
    return emit(b, "Pow", [emit(b, "Unsqueeze", [v, int_const(b, [1])]),
                        b.const(powers.astype(np_dtype(v.dtype) if v.dtype is not None else np.float32))])
