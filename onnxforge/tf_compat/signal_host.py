"""``tf.signal.stft``, ``frame``, ``hann_window`` / ``hamming_window`` and the FFTs, ``tf.complex``, ``tf.math.real`` / ``imag`` /
``conj`` / ``angle`` and ``tf.cast`` to complex, on the host, for the ``Dataset.map`` functions of keras.io's
speech examples and TensorFlow's audio tutorial (``tf.abs(tf.signal.stft(waveform, 255, 128))``, the speaker
recognition page's ``tf.signal.fft(tf.complex(audio, tf.zeros_like(audio)))``). Structural ops on the complex
results (``tf.expand_dims``, slicing, ``tf.concat``) run on the host too (``ops/complex_arrays.py``).

onnxforge's graphs have no complex dtype, so ``stft`` runs on concrete arrays only and returns a complex64
NumPy tensor, whose ``tf.abs`` is its float32 magnitude (computed on the host); inside a model use
``keras.ops.stft`` or ``keras.layers.STFTSpectrogram``, which give real and imaginary parts. TensorFlow's
framing is kept: frames of ``frame_length`` every ``frame_step`` samples from the start (no centring; with
``pad_end`` the last frames are zero-padded), each multiplied by the periodic Hann window and transformed by a
real FFT of ``fft_length`` (the next power of two by default).

Example:
    >>> import numpy as np

from .. import ops as _ops
    >>> spectrogram = stft(np.sin(np.arange(64, dtype=np.float32)), frame_length=16, frame_step=8)
    >>> spectrogram.shape, spectrogram.dtype.name
    (TensorShape([7, 9]), 'complex64')
"""
from __future__ import annotations

__all__ = ["stft", "frame", "hann_window", "signal", "complex", "real", "imag", "conj", "angle", "to_complex"]

import math
import types
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import ops as _ops
from ..eager_tensor import EagerTensor
from ..trainer.compiled_function import HostFunctionInTrace
from ..graph import Value


def _host(x: Any, fn: str) -> np.ndarray:
    if isinstance(x, Value) or type(x).__name__ == "KerasTensor":
        raise HostFunctionInTrace(f"tf.signal.{fn} runs on concrete arrays (a Dataset.map function, eager code; a "
                                  "tf.function that calls it runs as Python): onnxforge's graphs have no complex "
                                  "dtype. Inside a model use keras.ops.stft or keras.layers.STFTSpectrogram. "
                                  f"Received: {x!r}")
    return np.asarray(x)


def hann_window(window_length: int, periodic: bool = True, dtype: Any = "float32", name: str | None = None
                ) -> EagerTensor:
    """``tf.signal.hann_window``: ``0.5 - 0.5 cos(2 pi n / N)`` with ``N = window_length`` for a periodic window
    of even length, else ``window_length - 1``."""
    return _raised_cosine(window_length, periodic, dtype, 0.5, 0.5)


def hamming_window(window_length: int, periodic: bool = True, dtype: Any = "float32", name: str | None = None
                   ) -> EagerTensor:
    """``tf.signal.hamming_window``: ``0.54 - 0.46 cos(2 pi n / N)``, ``N`` chosen as for ``hann_window``."""
    return _raised_cosine(window_length, periodic, dtype, 0.54, 0.46)


def _raised_cosine(window_length: int, periodic: bool, dtype: Any, a: float, b: float) -> EagerTensor:
    """``a - b cos(2 pi n / N)`` over ``n < window_length``: the Hann and Hamming windows."""
    n = int(window_length)
    if n == 1:
        return np.ones(1, np.dtype(dtype)).view(EagerTensor)
    # TensorFlow's periodic window divides by N only for an even N (by N - 1 otherwise, as the symmetric one).
    denominator = n if periodic and n % 2 == 0 else n - 1
    w = a - b * np.cos(2.0 * np.pi * np.arange(n) / denominator)
    return w.astype(np.dtype(dtype)).view(EagerTensor)


def _shift(x: Any, axes: Any, sign: int) -> Any:
    # A roll by half of each axis (rounded down forward, up backward): graph ops, so traced tensors work too.
    rank = len(_ops.shape(x))
    axes = list(range(rank)) if axes is None else [axes] if isinstance(axes, int) else list(axes)
    sizes = [_ops.shape(x)[a] for a in axes]
    return _ops.roll(x, [sign * (d // 2) for d in sizes], axis=axes)


def fftshift(x: Any, axes: Any = None, name: str | None = None) -> Any:
    """``tf.signal.fftshift``: the zero-frequency entry moved to the middle of each of ``axes`` (all by default)."""
    return _shift(np.asarray(x) if isinstance(x, (list, tuple)) else x, axes, 1)


def ifftshift(x: Any, axes: Any = None, name: str | None = None) -> Any:
    """``tf.signal.ifftshift``: the inverse of ``fftshift``."""
    return _shift(np.asarray(x) if isinstance(x, (list, tuple)) else x, axes, -1)


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


def _complex_dtype(x: np.ndarray) -> Any:
    return np.complex128 if x.dtype in (np.float64, np.complex128) else np.complex64


def _fourier(fn: Callable[..., np.ndarray], name: str, axes: int, inverse_real: bool = False) -> Callable[..., Any]:
    """TensorFlow's FFTs over the innermost ``axes`` axes (``fft_length`` for the real ones)."""
    name_ = name

    def transform(input: Any, fft_length: Any = None, name: str | None = None) -> EagerTensor:  # noqa: A002
        x = _host(input, name_)
        lengths = None if fft_length is None else [int(n) for n in np.ravel(np.asarray(fft_length))]
        if lengths is not None and len(lengths) != axes:
            raise ValueError(f"tf.signal.{name_}: fft_length needs {axes} value(s). Received: fft_length={fft_length!r}")
        out = fn(x, s=lengths, axes=tuple(range(-axes, 0)))
        if inverse_real:
            return out.astype(np.float64 if x.dtype == np.complex128 else np.float32).view(EagerTensor)
        return out.astype(_complex_dtype(x)).view(EagerTensor)

    transform.__name__ = name
    transform.__doc__ = f"``tf.signal.{name}`` on a concrete array (complex results stay on the host)."
    return transform


def complex(real: Any, imag: Any, name: str | None = None) -> EagerTensor:  # noqa: A001 (TensorFlow's name)
    """``tf.complex(real, imag)``: complex64 from float32 parts (complex128 from float64), on the host."""
    re, im = _host(real, "complex"), _host(imag, "complex")
    if re.dtype != im.dtype or re.dtype not in (np.float32, np.float64):
        raise TypeError(f"tf.complex needs two float32 or two float64 tensors. Received dtypes {re.dtype} and {im.dtype}")
    return (re + 1j * im).astype(_complex_dtype(re)).view(EagerTensor)


def _part(fn: Callable[[np.ndarray], np.ndarray], what: str) -> Callable[..., Any]:
    def part(input: Any, name: str | None = None) -> EagerTensor:  # noqa: A002
        x = _host(input, what)
        out = fn(x)
        float_type = np.float64 if x.dtype in (np.complex128, np.float64) else np.float32
        return np.asarray(out, x.dtype if what == "conj" else float_type).view(EagerTensor)
    part.__name__ = what
    return part


real, imag, conj, angle = _part(np.real, "real"), _part(np.imag, "imag"), _part(np.conj, "conj"), \
    _part(np.angle, "angle")


def to_complex(x: Any, dtype: str) -> EagerTensor:
    """``tf.cast(x, tf.complex64)`` on the host: real values get a zero imaginary part."""
    return _host(x, "cast").astype(dtype).view(EagerTensor)


signal = types.SimpleNamespace(
    stft=stft, frame=frame, hann_window=hann_window, hamming_window=hamming_window, fftshift=fftshift,
    ifftshift=ifftshift,
    fft=_fourier(np.fft.fftn, "fft", 1), ifft=_fourier(np.fft.ifftn, "ifft", 1),
    fft2d=_fourier(np.fft.fftn, "fft2d", 2), ifft2d=_fourier(np.fft.ifftn, "ifft2d", 2),
    fft3d=_fourier(np.fft.fftn, "fft3d", 3), ifft3d=_fourier(np.fft.ifftn, "ifft3d", 3),
    rfft=_fourier(np.fft.rfftn, "rfft", 1), irfft=_fourier(np.fft.irfftn, "irfft", 1, inverse_real=True),
    rfft2d=_fourier(np.fft.rfftn, "rfft2d", 2), irfft2d=_fourier(np.fft.irfftn, "irfft2d", 2, inverse_real=True),
)
