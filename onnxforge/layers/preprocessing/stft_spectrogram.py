"""``STFTSpectrogram``: Keras 3's spectrogram layer, an STFT computed by strided 1-D convolutions whose
kernels (``real_kernel``, ``imag_kernel``, from the ``STFT`` initializer) are weights, trainable like any
Conv1D kernel.

Every input channel is convolved on its own (channels folded into the batch); the real and imaginary
kernels run as one ONNX ``Conv`` with both sets of filters, so a trainable layer gets its gradients from the
existing ``Conv`` and ``Concat`` rules.
"""
from __future__ import annotations

__all__ = ["STFTSpectrogram"]

import math
import warnings
from typing import Any

import numpy as np

from ...backend_config import epsilon
from ...graph import Value
from ...initializers import STFT, signal_window
from ...ops import conv
from ...ops._arrays_util import emit
from ...ops._util import int_const
from ..base import InputSpec, Layer
from ..reshaping import normalize_data_format

_MODES = ("log", "magnitude", "psd", "real", "imag", "angle", "stft")


def _dim(b: Any, v: Value, axis: int) -> Value:
    return emit(b, "Shape", [v], start=axis, end=axis + 1)


class STFTSpectrogram(Layer):
    """Spectrogram of 1-D signals ``(batch, time, channels)`` by a short-time Fourier transform, Keras 3's
    ``STFTSpectrogram`` (same arguments, weights, output shapes and numbers).

    Args:
        mode: ``"log"`` (log magnitude), ``"magnitude"``, ``"psd"`` (power, interior bins doubled), ``"real"``,
            ``"imag"``, ``"angle"`` or ``"stft"`` (real and imaginary parts side by side).
        frame_length: samples per frame (the kernels' length).
        frame_step: samples between frames; default ``frame_length // 2``.
        fft_length: DFT size (``fft_length // 2 + 1`` bins); default the power of two at or above
            ``frame_length``.
        window: a scipy window name, an array of ``frame_length`` values, or ``None``.
        periodic: whether a named window is periodic.
        scaling: ``"density"`` (window L2-normalised), ``"spectrum"`` (L1) or ``None``.
        padding: ``"valid"`` or ``"same"``, as in ``Conv1D``.
        expand_dims: return ``(batch, time, bins, channels)`` (or channels first) instead of folding the
            channels into the bins.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.

    Example:
        >>> from onnxforge import layers
        >>> spec = layers.STFTSpectrogram(mode="log", frame_length=32, frame_step=16, fft_length=64)
        >>> spec(layers.Input(shape=(320, 1))).shape
        (None, 19, 33)
    """

    def __init__(self, mode: str = "log", frame_length: int = 256, frame_step: int | None = None,
                 fft_length: int | None = None, window: Any = "hann", periodic: bool = False,
                 scaling: str | None = "density", padding: str = "valid", expand_dims: bool = False,
                 data_format: str | None = None, **kwargs: Any):
        if isinstance(frame_length, bool) or not isinstance(frame_length, (int, np.integer)) or frame_length < 1:
            raise ValueError(f"`frame_length` should be a positive integer. Received: frame_length={frame_length!r}")
        if frame_step is not None and (isinstance(frame_step, bool) or not isinstance(frame_step, (int, np.integer))
                                       or frame_step > frame_length or frame_step < 1):
            raise ValueError("`frame_step` should be a positive integer not greater than `frame_length`. "
                             f"Received frame_step={frame_step!r}, frame_length={frame_length}")
        if fft_length is not None and fft_length < frame_length:
            raise ValueError("`fft_length` should be not less than `frame_length`. "
                             f"Received fft_length={fft_length}, frame_length={frame_length}")
        if fft_length is not None and (fft_length & -fft_length) != fft_length:
            warnings.warn(f"`fft_length` is recommended to be a power of two. Received fft_length={fft_length}",
                          stacklevel=2)
        if mode not in _MODES:
            raise ValueError(f"Output mode is invalid, it must be one of {', '.join(_MODES)}. Received: mode={mode!r}")
        if scaling is not None and scaling not in ("density", "spectrum"):
            raise ValueError(f"Scaling is invalid, it must be `None`, 'density' or 'spectrum'. "
                             f"Received scaling={scaling!r}")
        if padding not in ("valid", "same"):
            raise ValueError(f"Padding is invalid, it should be 'valid', 'same'. Received: padding={padding!r}")
        if isinstance(window, str):
            signal_window(window, 1)   # an unknown name fails here, not at build
        super().__init__(**kwargs)
        self.mode, self.frame_length, self.frame_step, self.fft_length = mode, int(frame_length), frame_step, fft_length
        self._frame_step = int(frame_step or frame_length // 2)
        if self._frame_step < 1:
            raise ValueError(f"frame_length // 2 is 0: give a `frame_step` for frame_length={frame_length}")
        self._fft_length = int(fft_length or 2 ** int(math.ceil(math.log2(frame_length))))
        self.window = window.tolist() if isinstance(window, np.ndarray) else window
        self.periodic, self.scaling, self.padding, self.expand_dims = periodic, scaling, padding, expand_dims
        self.data_format = normalize_data_format(data_format)
        self.input_spec = InputSpec(ndim=3)

    def build(self, input_shape):
        shape = (self.frame_length, 1, self._fft_length // 2 + 1)
        if self.mode != "imag":
            self.real_kernel = self.add_weight(name="real_kernel", shape=shape,
                                               initializer=STFT("real", self.window, self.scaling, self.periodic))
        if self.mode != "real":
            self.imag_kernel = self.add_weight(name="imag_kernel", shape=shape,
                                               initializer=STFT("imag", self.window, self.scaling, self.periodic))

    def _convolve(self, inputs: Value) -> tuple[Value, Value]:
        """Each channel convolved with the kernels: ``(batch, channels, filters, frames)`` and the signals
        ``(batch, channels, time)`` it came from."""
        b = inputs.builder
        signals = emit(b, "Transpose", [inputs], perm=[0, 2, 1]) if self.data_format == "channels_last" else inputs
        kernels = [k for k in (getattr(self, "real_kernel", None), getattr(self, "imag_kernel", None)) if k is not None]
        kernel = kernels[0] if len(kernels) == 1 else emit(b, "Concat", list(kernels), axis=-1)
        if kernel.dtype != inputs.dtype:
            kernel = emit(b, "Cast", [kernel], to=inputs.dtype)
        single = emit(b, "Reshape", [signals, int_const(b, [-1, 1, 0])])                   # (batch * channels, 1, time)
        out = conv(single, kernel, strides=self._frame_step, padding=self.padding, data_format="channels_first")
        shape = emit(b, "Concat", [int_const(b, [-1]), _dim(b, signals, 1), _dim(b, out, 1), _dim(b, out, 2)], axis=0)
        known = (inputs.shape[0], signals.shape[1], out.shape[1], out.shape[2])
        return emit(b, "Reshape", [out, shape], shape=known), signals

    def call(self, inputs):
        if inputs.dtype not in (1, 10, 11):   # float32, float16, float64
            raise TypeError("Invalid input type. Expected `float16`, `float32` or `float64`. Received: input "
                            f"type={inputs.dtype} (ONNX element type)")
        b = inputs.builder
        out, _ = self._convolve(inputs)
        bins = self._fft_length // 2 + 1
        if self.mode in ("real", "imag", "stft"):
            return self._arrange(out)
        real, imag = emit(b, "Split", [out, int_const(b, [bins, bins])], outputs=2, axis=2)
        if self.mode == "angle":
            from ...ops import arctan2
            return self._arrange(arctan2(imag, real))
        power = emit(b, "Add", [emit(b, "Mul", [real, real]), emit(b, "Mul", [imag, imag])])
        if self.mode == "psd":
            # The bins strictly between 0 and Nyquist also stand for their negative-frequency twins.
            twice = np.full((bins, 1), 2.0)
            twice[0] = twice[-1] = 1.0
            return self._arrange(emit(b, "Mul", [power, b.const(twice, inputs.dtype)]))
        eps = b.const(np.asarray(epsilon()), inputs.dtype)
        magnitude = self._arrange(emit(b, "Sqrt", [emit(b, "Max", [power, eps])]))
        if self.mode == "magnitude":
            return magnitude
        return emit(b, "Log", [emit(b, "Max", [magnitude, eps])])

    def _arrange(self, out: Value) -> Value:
        """``(batch, channels, bins, frames)`` in the layer's output layout."""
        b = out.builder
        if self.expand_dims:
            perm = [0, 3, 2, 1] if self.data_format == "channels_last" else [0, 1, 3, 2]
            return emit(b, "Transpose", [out], perm=perm)
        # (batch, frames, channels * bins): the channel-major fold Keras's reshape gives.
        batch, channels, bins, frames = out.shape
        width = channels * bins if isinstance(channels, int) and isinstance(bins, int) else None
        folded = emit(b, "Reshape", [emit(b, "Transpose", [out], perm=[0, 3, 1, 2]), int_const(b, [0, 0, -1])],
                      shape=(batch, frames, width))
        return folded if self.data_format == "channels_last" else emit(b, "Transpose", [folded], perm=[0, 2, 1])

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "frame_length": self.frame_length,
                "frame_step": self.frame_step, "fft_length": self.fft_length, "window": self.window,
                "periodic": self.periodic, "scaling": self.scaling, "padding": self.padding,
                "data_format": self.data_format, "expand_dims": self.expand_dims}
