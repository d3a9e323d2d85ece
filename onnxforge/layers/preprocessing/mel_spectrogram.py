"""``MelSpectrogram``: Keras 3's mel-scaled (and by default decibel) spectrogram of raw audio.

``ops.stft`` (centred, Keras's framing) gives the magnitudes, a constant HTK mel filter bank (the matrix
Keras builds, here in numpy) maps them to mel bins by one ``MatMul``, and ``power_to_db`` takes
``10 log10`` clipped ``top_db`` below the largest value of the whole batch, as Keras does.
"""
from __future__ import annotations

__all__ = ["MelSpectrogram", "mel_filter_bank"]

from typing import Any

import numpy as np

from ...graph import np_dtype
from ...graph.size_limits import check_constant
from ...ops import stft
from ...ops._arrays_util import emit
from ..base import Layer

_MEL_BREAK_HZ = 700.0
_MEL_HIGH_Q = 1127.0


def _hz_to_mel(hz: Any) -> np.ndarray:
    return _MEL_HIGH_Q * np.log(1.0 + np.asarray(hz, np.float64) / _MEL_BREAK_HZ)


def mel_filter_bank(num_mel_bins: int, num_spectrogram_bins: int, sampling_rate: float, lower_edge_hertz: float,
                    upper_edge_hertz: float) -> np.ndarray:
    """The ``(num_spectrogram_bins, num_mel_bins)`` HTK triangular filters (peaks of 1, the DC bin left out)
    that ``MelSpectrogram`` (and ``tf.signal.linear_to_mel_weight_matrix``) multiplies spectra by.

    Example:
        >>> from onnxforge.layers.preprocessing.mel_spectrogram import mel_filter_bank
        >>> mel_filter_bank(4, 9, 16000, 20.0, 8000.0).shape
        (9, 4)
    """
    check_constant((num_spectrogram_bins, num_mel_bins + 2), 8, "the mel filter bank")   # pre-alloc
    hz = np.linspace(0.0, sampling_rate / 2.0, num_spectrogram_bins)[1:]
    mel = _hz_to_mel(hz)[:, None]
    edges = np.linspace(_hz_to_mel(lower_edge_hertz), _hz_to_mel(upper_edge_hertz), num_mel_bins + 2)
    lower, center, upper = edges[:-2][None, :], edges[1:-1][None, :], edges[2:][None, :]
    rising = (mel - lower) / (center - lower)
    falling = (upper - mel) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return np.pad(weights, [(1, 0), (0, 0)])


class MelSpectrogram(Layer):
    """Mel spectrogram of audio ``(batch, samples)`` or ``(samples,)``: ``(batch, num_mel_bins, frames)``,
    Keras 3's ``MelSpectrogram`` (same arguments and numbers; no weights).

    Args:
        fft_length: DFT size.
        sequence_stride: samples between frames.
        sequence_length: samples per frame (the window's length); default ``fft_length``.
        window: ``"hann"``, ``"hamming"``, an array of ``sequence_length`` values, or ``None``.
        sampling_rate: the audio's samples per second.
        num_mel_bins: mel bins in the output.
        min_freq, max_freq: the filter bank's edges in Hz (``max_freq`` defaults to ``sampling_rate / 2``).
        power_to_db: return decibels ``10 log10(max(S, min_power) / max(|ref_power|, min_power))``, clipped
            at ``top_db`` below the largest value of the batch.
        top_db, min_power, ref_power: the decibel conversion's constants.
        mag_exp: the spectrum is ``|STFT| ** mag_exp`` (2 for power).

    Example:
        >>> import numpy as np
        >>> from onnxforge import layers
        >>> mel = layers.MelSpectrogram(fft_length=256, sequence_stride=128, num_mel_bins=20)
        >>> mel(np.zeros((2, 1024), "float32")).shape
        TensorShape([2, 20, 9])
    """

    def __init__(self, fft_length: int = 2048, sequence_stride: int = 512, sequence_length: int | None = None,
                 window: Any = "hann", sampling_rate: int = 16000, num_mel_bins: int = 128,
                 min_freq: float = 20.0, max_freq: float | None = None, power_to_db: bool = True,
                 top_db: float = 80.0, mag_exp: float = 2.0, min_power: float = 1e-10, ref_power: float = 1.0,
                 **kwargs: Any):
        self.fft_length, self.sequence_stride = fft_length, sequence_stride
        self.sequence_length = sequence_length or fft_length
        if self.fft_length < self.sequence_length:
            raise ValueError("`fft_length` must be greater than or equal to `sequence_length`. Received: "
                             f"`sequence_length`={self.sequence_length}, `fft_length`={self.fft_length}.")
        if isinstance(window, str) and window not in ("hann", "hamming"):
            raise ValueError(f'`window` must be "hann", "hamming", an array or None. Received: window={window!r}')
        if isinstance(num_mel_bins, bool) or not isinstance(num_mel_bins, (int, np.integer)) or num_mel_bins < 1:
            raise ValueError(f"`num_mel_bins` must be a positive integer. Received: num_mel_bins={num_mel_bins!r}")
        window = window.tolist() if isinstance(window, np.ndarray) else window
        self.window, self.sampling_rate, self.num_mel_bins = window, sampling_rate, num_mel_bins
        self.min_freq = min_freq
        self.max_freq = max_freq or int(sampling_rate / 2)
        self.power_to_db, self.top_db, self.mag_exp = power_to_db, top_db, mag_exp
        self.min_power, self.ref_power = min_power, ref_power
        super().__init__(**kwargs)

    def call(self, inputs):
        b = inputs.builder
        dtype = 11 if self.compute_dtype == "float64" else 1   # stft runs in float32 or float64, as in Keras
        x = inputs if inputs.dtype == dtype else emit(b, "Cast", [inputs], to=dtype)
        real, imag = stft(x, self.sequence_length, self.sequence_stride, self.fft_length, window=self.window,
                          center=True)
        power = emit(b, "Add", [emit(b, "Mul", [real, real]), emit(b, "Mul", [imag, imag])])
        spectrum = power if self.mag_exp == 2 else emit(b, "Sqrt", [power])
        if self.mag_exp not in (1, 2):
            spectrum = emit(b, "Pow", [spectrum, b.const(np.asarray(self.mag_exp), dtype)])
        bank = mel_filter_bank(self.num_mel_bins, self.fft_length // 2 + 1, self.sampling_rate, self.min_freq,
                               self.max_freq)
        mel = emit(b, "MatMul", [spectrum, b.const(bank.astype(np.float32).astype(np_dtype(dtype)))])
        if self.power_to_db:
            mel = self._decibels(b, mel, dtype)
        rank = len(mel.shape)
        out = emit(b, "Transpose", [mel], perm=[*range(rank - 2), rank - 1, rank - 2])
        target = {"float16": 10, "bfloat16": 16, "float64": 11}.get(self.compute_dtype, 1)
        return out if target == dtype else emit(b, "Cast", [out], to=target)

    def _decibels(self, b: Any, mel: Any, dtype: int) -> Any:
        def const(v: float) -> Any:
            return b.const(np.asarray(v), dtype)

        floor = const(self.min_power)
        ten_over_ln10 = const(10.0 / np.log(10.0))
        db = emit(b, "Mul", [emit(b, "Log", [emit(b, "Max", [mel, floor])]), ten_over_ln10])
        ref = 10.0 * np.log10(max(abs(float(self.ref_power)), float(self.min_power)))
        db = emit(b, "Sub", [db, const(ref)])
        if self.top_db is None:
            return db
        # The floor is top_db under the largest value of the whole batch (Keras's max has no axis).
        peak = emit(b, "ReduceMax", [db], keepdims=0)
        return emit(b, "Max", [db, emit(b, "Sub", [peak, const(self.top_db)])])

    def get_config(self):
        return {**super().get_config(), "fft_length": self.fft_length, "sequence_stride": self.sequence_stride,
                "sequence_length": self.sequence_length, "window": self.window,
                "sampling_rate": self.sampling_rate, "num_mel_bins": self.num_mel_bins, "min_freq": self.min_freq,
                "max_freq": self.max_freq, "power_to_db": self.power_to_db, "top_db": self.top_db,
                "mag_exp": self.mag_exp, "min_power": self.min_power, "ref_power": self.ref_power}
