"""Window functions and correlation (``keras.ops.numpy``): ``bartlett``, ``blackman``, ``hamming``,
``hanning``, ``kaiser``, ``corrcoef`` and ``correlate``.

A window's length fixes its shape, so it must be a Python int (or a 0-d array): the window is computed in
float64 by NumPy's formulas and becomes a ``floatx()`` constant. ``correlate`` gathers the sliding windows of
the (zero-padded) first sequence with static indices and multiplies them by the second, so it is one
``Gather`` and one ``MatMul``, differentiable in both operands.

Example:
    >>> import numpy as np
    >>> from onnxforge import ops
    >>> ops.hanning(4).round(2).tolist(), ops.correlate(np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0])).tolist()
    ([0.0, 0.75, 0.75, 0.0], [2.0, 3.0])
"""
from __future__ import annotations

__all__ = ["bartlett", "blackman", "hamming", "hanning", "kaiser", "corrcoef", "correlate"]

from typing import Any

import numpy as np

from ..backend_config import floatx
from ..graph import FLOAT_TYPES, Value
from ..graph.size_limits import check_constant
from ._arrays_util import emit, value
from ._util import as_value, builder_of, cast_value, dtype_enum, int_const, promote, symbolic

_MODES = ("valid", "same", "full")


def _length(x: Any, name: str) -> int:
    if isinstance(x, Value) or hasattr(x, "__onnx_value__"):
        raise ValueError(f"ops.{name}: the window length `x` must be a Python int, since it fixes the output's "
                         f"shape. Received: a tensor")
    array = np.asarray(x)
    if array.ndim != 0 or array.dtype.kind not in "iuf" or array != np.floor(array):
        raise ValueError(f"ops.{name}: the window length `x` must be an integer. Received: x={x!r}")
    length = max(int(array), 0)
    check_constant((length,), 8, f"ops.{name}'s window")   # pre-alloc
    return length


def _window(values: np.ndarray) -> Any:
    """The window as a ``floatx()`` tensor: a constant in a trace, an eager tensor outside one."""
    from .core import convert_to_tensor

    return convert_to_tensor(np.asarray(values, np.float64).astype(floatx()))


def _cosine_window(m: int, terms: list[float]) -> np.ndarray:
    """``sum_k (-1)^k a_k cos(2 pi k n / (m - 1))`` for ``n`` in ``[0, m)`` (one sample: 1)."""
    if m == 1:
        return np.ones(1)
    n = np.arange(m)
    return sum((-1) ** k * a * np.cos(2.0 * np.pi * k * n / (m - 1)) for k, a in enumerate(terms))


def bartlett(x: Any) -> Any:
    """The triangular (Bartlett) window of length ``x``.

    Example:
        >>> from onnxforge import ops
        >>> ops.bartlett(5).tolist()
        [0.0, 0.5, 1.0, 0.5, 0.0]
    """
    m = _length(x, "bartlett")
    if m == 1:
        return _window(np.ones(1))
    n = np.arange(m)
    return _window(1.0 - np.abs(2.0 * n / max(m - 1, 1) - 1.0))


def blackman(x: Any) -> Any:
    """The Blackman window of length ``x`` (``0.42 - 0.5 cos + 0.08 cos 2``)."""
    return _window(_cosine_window(_length(x, "blackman"), [0.42, 0.5, 0.08]))


def hamming(x: Any) -> Any:
    """The Hamming window of length ``x`` (``0.54 - 0.46 cos``)."""
    return _window(_cosine_window(_length(x, "hamming"), [0.54, 0.46]))


def hanning(x: Any) -> Any:
    """The Hann window of length ``x`` (``0.5 - 0.5 cos``)."""
    return _window(_cosine_window(_length(x, "hanning"), [0.5, 0.5]))


def kaiser(x: Any, beta: float) -> Any:
    """The Kaiser window of length ``x`` and shape ``beta`` (``I0(beta sqrt(1 - r^2)) / I0(beta)``)."""
    m = _length(x, "kaiser")
    if isinstance(beta, Value) or hasattr(beta, "__onnx_value__"):
        raise ValueError("ops.kaiser: `beta` must be a Python number. Received: a tensor")
    if m == 1:
        return _window(np.ones(1))
    half = (m - 1) / 2.0
    r = (np.arange(m) - half) / half
    return _window(np.i0(float(beta) * np.sqrt(np.clip(1.0 - r * r, 0.0, None))) / np.i0(float(beta)))


# ------------------------------------------------------------------------------------------ correlation
@symbolic
def corrcoef(x: Any) -> Value:
    """Pearson correlation coefficients between the rows of ``x`` (variables in rows, observations in
    columns), clipped to ``[-1, 1]``; a 1-D ``x`` is one variable (the result is the scalar 1)."""
    v = value(x)
    b = v.builder
    if v.dtype not in FLOAT_TYPES:
        v = cast_value(v, dtype_enum(floatx()))
    rank = len(v.shape) if v.shape is not None else None
    if rank not in (1, 2):
        raise ValueError(f"ops.corrcoef takes a 1-D or 2-D tensor. Received: x with shape {v.shape}")
    rows = emit(b, "Unsqueeze", [v, int_const(b, [0])]) if rank == 1 else v
    centered = rows - emit(b, "ReduceMean", [rows, int_const(b, [-1])], keepdims=1)
    cov = emit(b, "MatMul", [centered, emit(b, "Transpose", [centered], perm=[1, 0])])
    # The 1/(n - 1) of the covariance cancels in the ratio.
    scale = emit(b, "Sqrt", [emit(b, "ReduceSum", [centered * centered, int_const(b, [-1])], keepdims=1)])
    out = cov / emit(b, "MatMul", [scale, emit(b, "Transpose", [scale], perm=[1, 0])])
    out = emit(b, "Clip", [out, as_value(-1.0, b, like=out), as_value(1.0, b, like=out)])
    return emit(b, "Reshape", [out, int_const(b, [])]) if rank == 1 else out


def _static_length(v: Value, name: str, arg: str) -> int:
    if v.shape is None or len(v.shape) != 1 or not isinstance(v.shape[0], int):
        raise ValueError(f"ops.correlate: `{arg}` must be a 1-D tensor of static length. Received: {arg} with "
                         f"shape {v.shape}")
    return v.shape[0]


@symbolic
def correlate(x1: Any, x2: Any, mode: str = "valid") -> Value:
    """NumPy's ``correlate``: ``c[k] = sum_n x1[n + k] * x2[n]`` of two 1-D tensors.

    ``mode="valid"`` keeps the full overlaps only, ``"same"`` the centre ``max(len)`` entries of ``"full"``,
    ``"full"`` every partial overlap. Integers compute in float32 (int64 in float64, as Keras).
    """
    if mode not in _MODES:
        raise ValueError(f"ops.correlate: `mode` must be one of {_MODES}. Received: mode={mode!r}")
    b = builder_of(x1, x2)
    a, c = promote(b, x1, x2)
    if a.dtype not in FLOAT_TYPES:
        target = 11 if a.dtype == 7 else 1
        a, c = cast_value(a, target), cast_value(c, target)
    n, m = _static_length(a, "correlate", "x1"), _static_length(c, "correlate", "x2")
    if n == 0 or m == 0:
        raise ValueError(f"ops.correlate: both sequences must be non-empty. Received: lengths {n} and {m}")
    # full[j] = sum_i x1[j - (m - 1) + i] x2[i] for j in [0, n + m - 1); entries outside x1 read 0.
    padded = emit(b, "Pad", [a, int_const(b, [m - 1, m - 1])], mode="constant")
    full_len = n + m - 1
    if mode == "full":
        start, length = 0, full_len
    elif mode == "same":
        # NumPy's centring: a longer x2 is the swapped, reversed case, which rounds the other way.
        length = max(n, m)
        start = (m - 1) // 2 if n >= m else n // 2
    else:
        length = abs(n - m) + 1
        start = min(n, m) - 1
    check_constant((length, m), 8, "ops.correlate's window index")   # pre-alloc
    index = start + np.arange(length)[:, None] + np.arange(m)[None, :]
    windows = emit(b, "Gather", [padded, b.const(index.astype(np.int64))], axis=0)
    return emit(b, "MatMul", [windows, c])

