"""More of ``tf.signal``: ``linear_to_mel_weight_matrix``, ``mfccs_from_log_mel_spectrograms``, ``dct`` /
``idct``, ``overlap_and_add``, ``inverse_stft`` and ``inverse_stft_window_fn`` and the Kaiser, Kaiser-Bessel-derived
and Vorbis windows, as audio programs chain them
(STFT magnitude -> mel filterbank -> log -> MFCCs; a vocoder's ``inverse_stft``).

The real-valued steps are products with constant matrices: the mel filterbank is a constant, the DCTs are a
``MatMul`` with a cosine matrix over the last axis, and ``overlap_and_add`` is a ``MatMul`` with the 0/1
matrix that sends each frame sample to its output position (sizes known while tracing). So they run
eagerly, in a ``tf.function`` and inside a model, with gradients. ``inverse_stft`` starts from complex STFTs,
which exist on the host only (``signal_host``), so it takes concrete arrays.

Example:
    >>> import numpy as np
    >>> import onnxforge as tf
    >>> tf.signal.linear_to_mel_weight_matrix(4, 9, 8000, 100.0, 4000.0).shape
    TensorShape([9, 4])
    >>> tf.signal.overlap_and_add(np.ones((3, 4), "float32"), 2).tolist()
    [1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 1.0, 1.0]
"""
from __future__ import annotations

__all__ = ["linear_to_mel_weight_matrix", "mfccs_from_log_mel_spectrograms", "dct", "idct", "overlap_and_add",
           "inverse_stft", "inverse_stft_window_fn", "kaiser_window", "kaiser_bessel_derived_window", "vorbis_window"]

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import ops as _ops
from ..eager_tensor import EagerTensor
from .signal_host import _host, hann_window


def _hertz_to_mel(hertz: np.ndarray) -> np.ndarray:
    # The HTK mel scale TensorFlow uses: 1127 ln(1 + f / 700).
    return 1127.0 * np.log1p(hertz / 700.0)


def linear_to_mel_weight_matrix(num_mel_bins: int = 20, num_spectrogram_bins: int = 129, sample_rate: Any = 8000,
                                lower_edge_hertz: float = 125.0, upper_edge_hertz: float = 3800.0,
                                dtype: Any = "float32", name: str | None = None) -> EagerTensor:
    """``tf.signal.linear_to_mel_weight_matrix``: ``[num_spectrogram_bins, num_mel_bins]`` triangular filters,
    evenly spaced on the HTK mel scale between the edges; the DC bin gets no weight."""
    if int(num_mel_bins) <= 0:
        raise ValueError(f"num_mel_bins must be positive. Got: {num_mel_bins}")
    if float(lower_edge_hertz) < 0.0:
        raise ValueError(f"lower_edge_hertz must be non-negative. Got: {lower_edge_hertz}")
    if float(lower_edge_hertz) >= float(upper_edge_hertz):
        raise ValueError(f"lower_edge_hertz {lower_edge_hertz} >= upper_edge_hertz {upper_edge_hertz}")
    if float(sample_rate) <= 0.0:
        raise ValueError(f"sample_rate must be positive. Got: {sample_rate}")
    if float(upper_edge_hertz) > float(sample_rate) / 2:
        raise ValueError(f"upper_edge_hertz must not be larger than the Nyquist frequency (sample_rate / 2). Got "
                         f"{upper_edge_hertz} for sample_rate: {sample_rate}")
    dt = np.dtype(dtype).type
    freqs = np.linspace(0.0, float(sample_rate) / 2.0, int(num_spectrogram_bins), dtype=dt)[1:]
    bins_mel = _hertz_to_mel(freqs)[:, None]
    edges = np.linspace(_hertz_to_mel(dt(lower_edge_hertz)), _hertz_to_mel(dt(upper_edge_hertz)),
                        int(num_mel_bins) + 2, dtype=dt)
    lower, center, upper = edges[None, :-2], edges[None, 1:-1], edges[None, 2:]
    rising = (bins_mel - lower) / (center - lower)
    falling = (upper - bins_mel) / (upper - center)
    weights = np.maximum(dt(0), np.minimum(rising, falling)).astype(dt)
    return np.concatenate([np.zeros((1, int(num_mel_bins)), dt), weights]).view(EagerTensor)


def _dct_matrix(size: int, kind: int, ortho: bool, dtype: Any) -> np.ndarray:
    """``M`` with ``dct(x) = x @ M`` over a last axis of ``size`` (TensorFlow's / SciPy's unnormalized forms)."""
    n, k = np.arange(size)[:, None].astype(np.float64), np.arange(size)[None, :].astype(np.float64)
    if kind == 1:
        m = 2.0 * np.cos(np.pi * n * k / (size - 1))
        m[0, :], m[-1, :] = 1.0, (-1.0) ** np.arange(size)
    elif kind == 2:
        m = 2.0 * np.cos(np.pi * k * (2 * n + 1) / (2 * size))
        if ortho:
            m *= np.where(k == 0, np.sqrt(1.0 / (4 * size)), np.sqrt(1.0 / (2 * size)))
    elif kind == 3:
        m = 2.0 * np.cos(np.pi * n * (2 * k + 1) / (2 * size))
        m[0, :] = 1.0
        if ortho:   # the transpose of the orthonormal DCT-II
            m = (2.0 * np.cos(np.pi * n * (2 * k + 1) / (2 * size))
                 * np.where(n == 0, np.sqrt(1.0 / (4 * size)), np.sqrt(1.0 / (2 * size))))
    else:
        m = 2.0 * np.cos(np.pi * (2 * n + 1) * (2 * k + 1) / (4 * size))
        if ortho:
            m *= np.sqrt(1.0 / (2 * size))
    return m.astype(dtype)


def dct(input: Any, type: int = 2, n: int | None = None, axis: int = -1, norm: str | None = None,  # noqa: A002
        name: str | None = None) -> Any:
    """``tf.signal.dct``: the type 1-4 discrete cosine transform of the last axis (``n``: truncate or zero-pad
    it first; ``norm="ortho"`` for types 2-4)."""
    if type not in (1, 2, 3, 4):
        raise ValueError(f"Types 1, 2, 3 and 4 are supported. Got: type={type!r}")
    if axis != -1:
        raise NotImplementedError(f"axis must be -1. Got: {axis}")
    if norm not in (None, "ortho"):
        raise ValueError(f"Normalization must be None or 'ortho'. Got: norm={norm!r}")
    if type == 1 and norm == "ortho":
        raise ValueError("Normalization is not supported for the Type-I DCT.")
    x = np.asarray(input, np.float32) if isinstance(input, (list, tuple)) else input
    dtype = _ops.dtype(x)
    if dtype not in ("float32", "float64"):
        raise ValueError(f"tf.signal.dct: input must be float32 or float64. Received dtype {dtype}")
    length = _ops.shape(x)[-1]
    if n is not None:
        if int(n) < 1:
            raise ValueError(f"n should be a positive integer or None. Got: n={n}")
        if not isinstance(length, int):
            raise ValueError("tf.signal.dct: the last axis must have a size known while tracing to apply n.")
        x = x[..., :int(n)] if int(n) <= length else _ops.pad(x, [[0, 0]] * (len(_ops.shape(x)) - 1) +
                                                              [[0, int(n) - length]])
        length = int(n)
    if not isinstance(length, int):
        raise ValueError("tf.signal.dct: the last axis must have a size known while tracing.")
    if type == 1 and length < 2:
        raise ValueError(f"The Type-I DCT requires a last axis of at least 2. Got: {length}")
    return _ops.matmul(x, _dct_matrix(length, type, norm == "ortho", dtype))


def idct(input: Any, type: int = 2, n: int | None = None, axis: int = -1, norm: str | None = None,  # noqa: A002
         name: str | None = None) -> Any:
    """``tf.signal.idct``: ``dct`` of the inverse type (3 for 2, 2 for 3), unscaled as TensorFlow's: without
    ``norm="ortho"``, ``idct(dct(x))`` is ``x`` times ``2 * N`` for types 2 and 3."""
    if type not in (1, 2, 3, 4):
        raise ValueError(f"Types 1, 2, 3 and 4 are supported. Got: type={type!r}")
    return dct(input, {1: 1, 2: 3, 3: 2, 4: 4}[type], n, axis, norm)


def mfccs_from_log_mel_spectrograms(log_mel_spectrograms: Any, name: str | None = None) -> Any:
    """``tf.signal.mfccs_from_log_mel_spectrograms``: the DCT-II of each log-mel frame, scaled by
    ``1 / sqrt(2 * num_mel_bins)`` (keep the first 13 or so for MFCCs)."""
    length = _ops.shape(log_mel_spectrograms)[-1]
    if not isinstance(length, int) or length < 1:
        raise ValueError(f"num_mel_bins must be positive. Got: {length}")
    return dct(log_mel_spectrograms, type=2) * np.asarray(1.0 / math.sqrt(2.0 * length),
                                                          _ops.dtype(log_mel_spectrograms))


def overlap_and_add(signal: Any, frame_step: int, name: str | None = None) -> Any:
    """``tf.signal.overlap_and_add``: frames ``[..., frames, frame_length]`` summed into ``[..., (frames - 1) *
    frame_step + frame_length]``, frame ``f`` starting at ``f * frame_step``."""
    step = int(frame_step)
    shape = tuple(_ops.shape(signal))
    if len(shape) < 2:
        raise ValueError(f"tf.signal.overlap_and_add: signal must have rank at least 2. Received shape {shape}")
    if step < 1:
        raise ValueError(f"tf.signal.overlap_and_add: frame_step must be positive. Received: {frame_step}")
    frames, length = shape[-2:]
    if not isinstance(frames, int) or not isinstance(length, int):
        raise ValueError(f"tf.signal.overlap_and_add: the frame count and length must be known while tracing. "
                         f"Received shape {shape}")
    total = max((frames - 1) * step + length, 0) if frames else 0
    if isinstance(signal, np.ndarray) and np.iscomplexobj(signal):   # host STFT frames
        out = np.zeros(signal.shape[:-2] + (total,), signal.dtype)
        for f in range(frames):
            out[..., f * step:f * step + length] += signal[..., f, :]
        return out.view(EagerTensor)
    x = np.asarray(signal, np.float32) if isinstance(signal, (list, tuple)) else signal
    places = np.zeros((frames * length, total), np.dtype(_ops.dtype(x)))
    source = np.arange(frames * length)
    places[source, (source // length) * step + source % length] = 1
    flat = _ops.reshape(x, (*[d if isinstance(d, int) else -1 for d in shape[:-2]], frames * length))
    return _ops.matmul(flat, places)


def inverse_stft(stfts: Any, frame_length: int, frame_step: int, fft_length: int | None = None,
                 window_fn: Callable[..., Any] | None = hann_window, name: str | None = None) -> EagerTensor:
    """``tf.signal.inverse_stft``: complex ``[..., frames, fft_length // 2 + 1]`` back to float signals: each
    frame's inverse real FFT cut to ``frame_length``, windowed by ``window_fn`` and overlap-added."""
    x = _host(stfts, "inverse_stft")
    if x.dtype.kind != "c":
        raise ValueError(f"tf.signal.inverse_stft: stfts must be complex64 or complex128. Received dtype {x.dtype}")
    fft_length = int(fft_length) if fft_length is not None else 2 ** math.ceil(math.log2(int(frame_length)))
    real = np.float64 if x.dtype == np.complex128 else np.float32
    frames = np.fft.irfft(x.astype(np.complex128), n=fft_length, axis=-1)[..., :int(frame_length)]
    if frames.shape[-1] < int(frame_length):
        frames = np.concatenate([frames, np.zeros(frames.shape[:-1] + (int(frame_length) - frames.shape[-1],))], -1)
    if window_fn is not None:
        frames = frames * np.asarray(window_fn(int(frame_length), dtype=real), np.float64)
    return np.asarray(overlap_and_add(frames, int(frame_step)), real).view(EagerTensor)


def inverse_stft_window_fn(frame_step: int, forward_window_fn: Callable[..., Any] = hann_window,
                           name: str | None = None) -> Callable[..., EagerTensor]:
    """``tf.signal.inverse_stft_window_fn``: a ``window_fn`` for ``inverse_stft`` that undoes the forward
    window: it divides by the sum of the squared forward windows overlapping each position."""
    step = int(frame_step)

    def window(frame_length: int, dtype: Any = "float32") -> EagerTensor:
        forward = np.asarray(forward_window_fn(int(frame_length), dtype=dtype))
        overlaps = -(-int(frame_length) // step)
        squares = np.zeros(overlaps * step, forward.dtype)
        squares[:int(frame_length)] = forward * forward
        denominator = np.tile(squares.reshape(overlaps, step).sum(axis=0), overlaps)[:int(frame_length)]
        return (forward / denominator).astype(forward.dtype).view(EagerTensor)

    return window


def _window_dtype(dtype: Any, fn: str) -> np.dtype:
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise ValueError(f"tf.signal.{fn}: dtype must be a floating point type. Received: dtype={dt.name}")
    return dt


def kaiser_window(window_length: int, beta: float = 12.0, dtype: Any = "float32",
                  name: str | None = None) -> EagerTensor:
    """``tf.signal.kaiser_window``: ``I0(beta sqrt(1 - a^2)) / I0(beta)`` with ``a`` running from -1 to 1."""
    dt, n = _window_dtype(dtype, "kaiser_window"), int(window_length)
    if n == 1:
        return np.ones(1, dt).view(EagerTensor)
    half = (n - 1) / 2.0
    a = (np.arange(n, dtype=np.float64) - half) / half
    w = np.i0(float(beta) * np.sqrt(np.clip(1.0 - a * a, 0.0, None))) / np.i0(float(beta))
    return w.astype(dt).view(EagerTensor)


def kaiser_bessel_derived_window(window_length: int, beta: float = 12.0, dtype: Any = "float32",
                                 name: str | None = None) -> EagerTensor:
    """``tf.signal.kaiser_bessel_derived_window``: the square root of the running sum of a Kaiser window of
    ``window_length // 2 + 1`` (normalized by its total), mirrored (the MDCT's power-complementary window)."""
    dt, half = _window_dtype(dtype, "kaiser_bessel_derived_window"), int(window_length) // 2
    running = np.cumsum(np.asarray(kaiser_window(half + 1, beta, "float64")))
    rising = np.sqrt(running[:-1] / running[-1])
    return np.concatenate([rising, rising[::-1]]).astype(dt).view(EagerTensor)


def vorbis_window(window_length: int, dtype: Any = "float32", name: str | None = None) -> EagerTensor:
    """``tf.signal.vorbis_window``: ``sin(pi / 2 * sin(pi (n + 0.5) / N) ** 2)``."""
    dt, n = _window_dtype(dtype, "vorbis_window"), int(window_length)
    inner = np.sin(np.pi * (np.arange(n, dtype=np.float64) + 0.5) / n)
    return np.sin(np.pi / 2.0 * inner * inner).astype(dt).view(EagerTensor)
