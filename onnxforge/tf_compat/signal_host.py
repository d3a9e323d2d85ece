"""``tf.signal.stft``, ``frame`` and ``hann_window`` on the host, for the ``Dataset.map`` functions of
keras.io's speech examples and TensorFlow's audio tutorial (``tf.abs(tf.signal.stft(waveform, 255, 128))``).

onnxforge's graphs have no complex dtype, so ``stft`` runs on concrete arrays only and returns a complex64
NumPy tensor, whose ``tf.abs`` is its float32 magnitude (computed on the host); inside a model use
``keras.ops.stft`` or ``keras.layers.STFTSpectrogram``, which give real and imaginary parts. TensorFlow's
framing is kept: frames of ``frame_length`` every ``frame_step`` samples from the start (no centring; with
``pad_end`` the last frames are zero-padded), each multiplied by the periodic Hann window and transformed by a
real FFT of ``fft_length`` (the next power of two by default).

Example:
    >>> import numpy as np
    >>> spectrogram = stft(np.sin(np.arange(64, dtype=np.float32)), frame_length=16, frame_step=8)
    >>> spectrogram.shape, spectrogram.dtype.name
    (TensorShape([7, 9]), 'complex64')
"""
from __future__ import annotations

__all__ = ["stft", "frame", "hann_window", "signal"]

import math
import types
from collections.abc import Callable
from typing import Any

import numpy as np

from ..eager_tensor import EagerTensor
from ..graph import Value


def _host(x: Any, fn: str) -> np.ndarray:
    if isinstance(x, Value) or type(x).__name__ == "KerasTensor":
        raise TypeError(f"tf.signal.{fn} runs on concrete arrays (a Dataset.map function, eager code): onnxforge's "
                        "graphs have no complex dtype. Inside a model use keras.ops.stft or "
                        f"keras.layers.STFTSpectrogram. Received: {x!r}")
    return np.asarray(x)


def hann_window(window_length: int, periodic: bool = True, dtype: Any = "float32", name: str | None = None
                ) -> EagerTensor:
    """``tf.signal.hann_window``: ``0.5 - 0.5 cos(2 pi n / N)`` with ``N = window_length`` for a periodic window
    of even length, else ``window_length - 1``."""
    n = int(window_length)
    if n == 1:
        return np.ones(1, np.dtype(dtype)).view(EagerTensor)
    # TensorFlow's periodic window divides by N only for an even N (by N - 1 otherwise, as the symmetric one).
    denominator = n if periodic and n % 2 == 0 else n - 1
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / denominator)
    return w.astype(np.dtype(dtype)).view(EagerTensor)


def frame(signal: Any, frame_length: int, frame_step: int, pad_end: bool = False, pad_value: Any = 0,
          axis: int = -1, name: str | None = None) -> EagerTensor:
    """``tf.signal.frame``: windows of ``frame_length`` every ``frame_step`` along ``axis`` (a new axis of
    frames before the window axis)."""
    x = np.moveaxis(_host(signal, "frame"), axis, -1)
    length = x.shape[-1]
    if pad_end:
        count = -(-length // frame_step)
        need = max((count - 1) * frame_step + frame_length - length, 0)
        x = np.concatenate([x, np.full(x.shape[:-1] + (need,), pad_value, x.dtype)], axis=-1)
    else:
        count = 1 + (length - frame_length) // frame_step if length >= frame_length else 0
    index = np.arange(count)[:, None] * frame_step + np.arange(frame_length)[None, :]
    frames = x[..., index] if count else np.zeros(x.shape[:-1] + (0, frame_length), x.dtype)
    axis = axis % (np.ndim(signal) or 1)
    return np.moveaxis(frames, (-2, -1), (axis, axis + 1)).view(EagerTensor)


def stft(signals: Any, frame_length: int, frame_step: int, fft_length: int | None = None,
         window_fn: Callable[..., Any] | None = hann_window, pad_end: bool = False,
         name: str | None = None) -> EagerTensor:
    """``tf.signal.stft``: complex64 ``(..., frames, fft_length // 2 + 1)`` of float32 ``signals``."""
    x = _host(signals, "stft")
    if x.dtype.kind != "f":
        raise TypeError(f"tf.signal.stft expects float signals. Received dtype {x.dtype}")
    fft_length = int(fft_length) if fft_length is not None else 2 ** math.ceil(math.log2(frame_length))
    frames = np.asarray(frame(x, frame_length, frame_step, pad_end=pad_end), np.float64)
    if window_fn is not None:
        frames = frames * np.asarray(window_fn(frame_length, dtype=x.dtype), np.float64)
    out = np.fft.rfft(frames, n=fft_length, axis=-1)
    return out.astype(np.complex64 if x.dtype != np.float64 else np.complex128).view(EagerTensor)


signal = types.SimpleNamespace(stft=stft, frame=frame, hann_window=hann_window)
