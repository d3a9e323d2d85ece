"""``keras.ops.stft`` / ``keras.ops.istft``: the short-time Fourier transform and its inverse, with the
framing, ``center`` reflect padding, windows and output shapes of Keras 3 on TensorFlow.

Both are standard ONNX ops that already have gradient rules: ``stft`` reflect-pads (``Pad``), cuts frames
with one ``Gather`` and multiplies them by a constant windowed DFT table (``MatMul``); ``istft`` multiplies
by the windowed inverse table and overlap-adds the frames with ``Pad`` and ``Add`` (one per frame overlap).
Signal lengths may be dynamic; the frame count then comes from the graph's shapes.

Example:
    >>> import numpy as np
    >>> from onnxforge import ops
    >>> real, imag = ops.stft(np.arange(5.0, dtype="float32"), 3, 2, 3)
    >>> np.round(np.asarray(real), 3).tolist()   # TensorFlow's odd-length "hann" is symmetric: [0, 1, 0]
    [[0.0, 0.0], [2.0, -1.0], [4.0, -2.0]]
"""
from __future__ import annotations

__all__ = ["stft", "istft"]

from typing import Any

import numpy as np

from ..graph import FLOAT_TYPES, Value, np_dtype
from ..graph.size_limits import check_constant
from ..initializers import signal_window
from ._arrays_util import BIG, INT64, emit, slice_axis
from ._util import as_value, builder_of, cast_value, int_const, promote, symbolic

# Model configs name these ops ``math.stft`` / ``math.istft``, as Keras files do.
OPCALL_MODULE = "math"

_FLOAT32, _FLOAT64 = 1, 11


def _check_lengths(sequence_length: Any, sequence_stride: Any, fft_length: Any) -> tuple[int, int, int]:
    for name, v in (("sequence_stride", sequence_stride), ("sequence_length", sequence_length),
                    ("fft_length", fft_length)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
            raise ValueError(f"`{name}` must be a positive integer. Received: {name}={v!r}")
    if fft_length < sequence_length:
        raise ValueError("`fft_length` must equal or larger than `sequence_length`. Received: "
                         f"sequence_length={sequence_length}, fft_length={fft_length}")
    return int(sequence_length), int(sequence_stride), int(fft_length)


def _window(b: Any, window: Any, sequence_length: int, dtype: int) -> np.ndarray | Value | None:
    """The window as host float64 values, or a graph value (a window tensor), or ``None``."""
    if window is None:
        return None
    if isinstance(window, str):
        if window not in ("hann", "hamming"):
            raise ValueError('If a string is passed to `window`, it must be one of `"hann"`, `"hamming"`. '
                             f"Received: window={window!r}")
        # TensorFlow's periodic windows are periodic for even lengths only (odd ones come out symmetric).
        return signal_window(window, sequence_length, periodic=sequence_length % 2 == 0)
    win = as_value(window, b) if isinstance(window, Value) or hasattr(window, "__onnx_value__") else \
        np.asarray(window, np.float64)
    shape = tuple(win.shape) if win.shape is not None else None
    if shape != (sequence_length,):
        raise ValueError(f"The shape of `window` must be equal to [sequence_length]. Received: window "
                         f"shape={shape}, sequence_length={sequence_length}")
    return cast_value(win, dtype) if isinstance(win, Value) else win


def _frame_count(b: Any, length: Any, size: int, stride: int) -> Value:
    """``1 + (length - size) // stride`` as an int64 scalar from a dynamic ``length``."""
    steps = emit(b, "Div", [emit(b, "Sub", [length, as_value(np.int64(size), b)]), as_value(np.int64(stride), b)])
    return emit(b, "Add", [steps, as_value(np.int64(1), b)])


def _frames(v: Value, start: int, size: int, stride: int, window_size: int) -> Value:
    """Frames ``(..., F, size)`` of the last axis: frame ``t`` holds samples ``t * stride + start + j``,
    ``F`` the number of ``window_size`` windows that fit."""
    b = v.builder
    n = v.shape[-1]
    check_constant((size,), 8, "the frame offsets of a spectral op")   # pre-alloc
    offsets = start + np.arange(size, dtype=np.int64)
    if isinstance(n, int):
        count = 1 + (n - window_size) // stride
        if count < 1:
            raise ValueError(f"The signal ({n} samples after padding) is shorter than one frame of {window_size}.")
        check_constant((count, size), 8, "the frame index of a spectral op")   # pre-alloc
        index = as_value(np.arange(count, dtype=np.int64)[:, None] * stride + offsets[None, :], b)
    else:
        length = emit(b, "Squeeze", [emit(b, "Shape", [v], start=-1), int_const(b, [0])])
        count = _frame_count(b, length, window_size, stride)
        starts = emit(b, "Range", [as_value(np.int64(0), b), count, as_value(np.int64(1), b)])
        starts = emit(b, "Mul", [emit(b, "Unsqueeze", [starts, int_const(b, [1])]), as_value(np.int64(stride), b)])
        index = emit(b, "Add", [starts, as_value(offsets[None, :], b)])
    return emit(b, "Gather", [v, index], axis=-1)


def _float_signal(x: Any, name: str) -> Value:
    b = builder_of(x)
    v = as_value(x, b)
    if v.dtype not in (_FLOAT32, _FLOAT64):
        raise TypeError(f"Invalid input type. Expected `float32` or `float64`. Received: input type="
                        f"{np.dtype(np_dtype(v.dtype)).name if v.dtype is not None else None} (ops.{name})")
    if not v.shape:
        raise ValueError(f"ops.{name} needs a signal of rank >= 1. Received: shape={v.shape}")
    return v


@symbolic
def stft(x: Any, sequence_length: int, sequence_stride: int, fft_length: int, window: Any = "hann",
         center: bool = True) -> tuple[Value, Value]:
    """Short-time Fourier transform along the last axis: ``(real, imag)``, each ``(..., frames,
    fft_length // 2 + 1)``.

    Args:
        x: a float32 or float64 signal ``(..., samples)``.
        sequence_length: samples per frame (the window's length).
        sequence_stride: samples between frame starts.
        fft_length: DFT size, at least ``sequence_length`` (the window is zero-padded in the middle of it).
        window: ``"hann"``, ``"hamming"`` (periodic), an array of ``sequence_length`` values, or ``None`` for
            no window (frames then span ``fft_length`` samples).
        center: reflect-pad ``fft_length // 2`` samples on both sides so frame ``t`` centres on
            ``t * sequence_stride``.

    Example:
        >>> import numpy as np
        >>> from onnxforge import ops
        >>> real, imag = ops.stft(np.zeros((2, 64), "float32"), 16, 8, 16)
        >>> real.shape
        TensorShape([2, 9, 9])
    """
    sequence_length, stride, n = _check_lengths(sequence_length, sequence_stride, fft_length)
    v = _float_signal(x, "stft")
    b = v.builder
    win = _window(b, window, sequence_length, v.dtype)
    if center:
        pad = n // 2
        size = v.shape[-1]
        if isinstance(size, int) and pad >= size:
            raise ValueError(f"ops.stft with center=True reflect-pads {pad} samples (fft_length // 2) on each "
                             f"side, which needs a longer signal. Received: {size} samples, fft_length={n}")
        if pad:
            v = emit(b, "Pad", [v, int_const(b, [pad, pad]), None, int_const(b, [-1])], mode="reflect")
    # Only the window's support is read: the samples it zero-pads to fft_length (or all of them, unwindowed).
    start, size = ((n - sequence_length) // 2, sequence_length) if win is not None else (0, n)
    frames = _frames(v, start, size, stride, n)
    check_constant((size, 2 * (n // 2 + 1)), 8, "ops.stft's DFT table")   # pre-alloc
    bins = np.arange(n // 2 + 1)
    angle = 2.0 * np.pi * (((np.arange(size)[:, None] + start) * bins[None, :]) % n) / n
    table = np.concatenate([np.cos(angle), -np.sin(angle)], axis=1)
    if isinstance(win, np.ndarray):
        table = table * win[:, None]
    elif isinstance(win, Value):
        frames = emit(b, "Mul", [frames, win])
    spectrum = emit(b, "MatMul", [frames, b.const(table, v.dtype)])
    real, imag = emit(b, "Split", [spectrum, int_const(b, [len(bins), len(bins)])], outputs=2, axis=-1)
    return real, imag


def _inverse_window(b: Any, win: np.ndarray | Value, n: int, stride: int, like: Value) -> np.ndarray | Value:
    """TensorFlow's ``inverse_stft_window_fn``: the window over the sum of the squared windows that overlap
    each position of a frame (0 where that sum is 0)."""
    overlaps = -(-n // stride)
    if isinstance(win, np.ndarray):
        check_constant((overlaps * stride,), 8, "ops.istft's window normalization")   # before numpy pads to it
        denom = np.pad(win ** 2, (0, overlaps * stride - n)).reshape(overlaps, stride).sum(axis=0)
        denom = np.tile(denom, overlaps)[:n]
        return np.where(denom == 0, 0.0, win / np.where(denom == 0, 1.0, denom))
    square = emit(b, "Pad", [emit(b, "Mul", [win, win]), int_const(b, [0, overlaps * stride - n])])
    denom = emit(b, "ReduceSum", [emit(b, "Reshape", [square, int_const(b, [overlaps, stride])]),
                                  int_const(b, [0])], keepdims=0)
    denom = slice_axis(emit(b, "Tile", [denom, int_const(b, [overlaps])]), 0, 0, n)
    zero = as_value(0.0, b, like=like)
    is_zero = emit(b, "Equal", [denom, zero])
    safe = emit(b, "Where", [is_zero, as_value(1.0, b, like=like), denom])
    return emit(b, "Where", [is_zero, zero, emit(b, "Div", [win, safe])])


def _overlap_add(frames: Value, n: int, stride: int) -> Value:
    """Sum of the frames ``(..., F, n)`` placed ``stride`` apart: ``(..., (F - 1) * stride + n)``. Each
    frame cut into ``ceil(n / stride)`` hops; hop ``j`` of every frame lands ``j`` hops later."""
    b = frames.builder
    rank = len(frames.shape)
    hops = -(-n // stride)
    if hops * stride > n:
        frames = emit(b, "Pad", [frames, int_const(b, [0, hops * stride - n]), None, int_const(b, [-1])])
    split = emit(b, "Reshape", [frames, int_const(b, [0] * (rank - 1) + [hops, stride])])   # (..., F, hops, s)
    total = None
    for j in range(hops):
        hop = emit(b, "Gather", [split, as_value(np.int64(j), b)], axis=-2)                    # (..., F, s)
        placed = emit(b, "Pad", [hop, int_const(b, [j, hops - 1 - j]), None, int_const(b, [-2])])
        total = placed if total is None else emit(b, "Add", [total, placed])
    signal = emit(b, "Reshape", [total, int_const(b, [0] * (rank - 2) + [-1])])
    return slice_axis(signal, rank - 2, 0, -(hops * stride - n) or BIG)   # drop the last hop's zero tail


@symbolic
def istft(x: Any, sequence_length: int, sequence_stride: int, fft_length: int, length: int | None = None,
          window: Any = "hann", center: bool = True) -> Value:
    """Inverse short-time Fourier transform: the signal whose ``stft`` (same arguments) is ``x = (real,
    imag)``, by TensorFlow's windowed overlap-add.

    Args:
        x: ``(real, imag)`` float tensors ``(..., frames, bins)``.
        sequence_length, sequence_stride, fft_length, window, center: those given to ``stft``.
        length: the number of samples to return (cut, counted from the first sample of the signal);
            ``None`` returns all of them (less the ``center`` padding).

    Example:
        >>> import numpy as np
        >>> from onnxforge import ops
        >>> signal = np.random.default_rng(0).normal(size=(64,)).astype("float32")
        >>> back = ops.istft(ops.stft(signal, 16, 4, 16), 16, 4, 16)
        >>> bool(np.allclose(back[8:-8], signal[8:-8], atol=1e-5))   # exact away from the two ends
        True
    """
    sequence_length, stride, n = _check_lengths(sequence_length, sequence_stride, fft_length)
    if not isinstance(x, (tuple, list)) or len(x) != 2:
        raise ValueError(f"Input `x` should be a tuple of two tensors - real and imaginary. Received: x={x!r}")
    b = builder_of(*x)
    real, imag = (as_value(p, b) for p in x)
    if real.dtype not in FLOAT_TYPES or imag.dtype not in FLOAT_TYPES:
        raise ValueError("At least one tensor in input `x` is not of type float. Received: x dtypes="
                         f"{real.dtype}, {imag.dtype} (ONNX element types)")
    if real.shape is not None and imag.shape is not None and tuple(real.shape) != tuple(imag.shape):
        raise ValueError("Both the real and imaginary parts should have the same shape. Received: "
                         f"x[0].shape = {real.shape}, x[1].shape = {imag.shape}")
    real, imag = promote(b, real, imag)
    if real.shape is None or len(real.shape) < 2:
        raise ValueError(f"Input should have rank >= 2. Received: input.shape = {real.shape}")
    if length is not None and (isinstance(length, bool) or not isinstance(length, (int, np.integer))):
        raise ValueError(f"`length` must be an integer or None. Received: length={length!r}")
    win = _window(b, window, sequence_length, real.dtype)
    bins = real.shape[-1]
    if not isinstance(bins, int):
        raise ValueError("ops.istft needs a static number of frequency bins (the last axis of x).")
    # TensorFlow's irfft reads the first n // 2 + 1 bins; the interior ones stand for two (conjugates).
    check_constant((2 * bins, n), 8, "ops.istft's DFT table")   # pre-alloc
    k = np.arange(bins)[:, None]
    t = np.arange(n)[None, :]
    weight = np.where((k == 0) | ((n % 2 == 0) & (k == n // 2)), 1.0, 2.0) * (k <= n // 2)
    angle = 2.0 * np.pi * ((k * t) % n) / n
    table = np.concatenate([weight * np.cos(angle), -weight * np.sin(angle)], axis=0) / n   # (2 bins, n)
    if win is not None:
        pad = (n - sequence_length) // 2
        padded = (np.pad(win, (pad, n - sequence_length - pad)) if isinstance(win, np.ndarray) else
                  emit(b, "Pad", [win, int_const(b, [pad, n - sequence_length - pad])]))
        win = _inverse_window(b, padded, n, stride, real)
    if isinstance(win, np.ndarray):
        table = table * win[None, :]
    frames = emit(b, "MatMul", [emit(b, "Concat", [real, imag], axis=-1),
                                b.const(table, real.dtype)])
    if isinstance(win, Value):
        frames = emit(b, "Mul", [frames, win])
    signal = _overlap_add(frames, n, stride)
    start = n // 2 if center else 0
    axis = len(signal.shape) - 1
    if length is not None:
        return slice_axis(signal, axis, start, start + int(length))
    if center:
        # Keras slices [start:-(n // 2)], which is empty when n // 2 == 0.
        return slice_axis(signal, axis, start, -(n // 2) if n // 2 else 0)
    return signal
