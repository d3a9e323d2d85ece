"""Weight initializers with Keras 3 names, defaults, fan computation and seeding.

An initializer is called with a shape (and dtype) and returns a host ``numpy`` array: weights are
created on the host and enter programs as graph inputs or initializers.

Seeding follows Keras 3: an initializer built with ``seed=None`` draws a seed once, at construction, from
Python's ``random`` module (so ``set_random_seed`` makes whole models reproducible), and then returns the
same values every time it is called with the same shape. Values are drawn with numpy, so they are
distributed like Keras's but are not the same numbers.

Example:
    >>> from onnxforge import initializers
    >>> init = initializers.get("glorot_uniform")
    >>> w = init((3, 4))
    >>> w.shape, bool(abs(w).max() <= (6 / 7) ** 0.5)
    ((3, 4), True)
"""
from __future__ import annotations

__all__ = [
    "Initializer", "Constant", "Zeros", "Ones", "RandomNormal", "RandomUniform", "TruncatedNormal",
    "VarianceScaling", "GlorotUniform", "GlorotNormal", "HeUniform", "HeNormal", "LecunUniform",
    "LecunNormal", "Orthogonal", "Identity", "compute_fans", "get", "serialize", "deserialize",
    "set_random_seed", "constant", "zeros", "ones", "random_normal", "random_uniform", "truncated_normal",
    "variance_scaling", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform",
    "lecun_normal", "orthogonal", "identity", "OrthogonalInitializer", "IdentityInitializer",
    "STFT", "STFTInitializer", "stft", "signal_window",
]

import math
import random
from typing import Any

import numpy as np

from .graph.size_limits import check_constant
from .initializer_values import is_value, value_initializer
from .keras_objects import object_config, object_from_config


def set_random_seed(seed: int) -> None:
    """Seed Python's and numpy's global generators, like ``keras.utils.set_random_seed``."""
    random.seed(seed)
    np.random.seed(seed)


def _make_default_seed() -> int:
    return random.randint(1, int(1e9))


def compute_fans(shape: tuple, input_axes: Any = None, output_axes: Any = None) -> tuple[int, int]:
    """Keras's fan-in / fan-out of a weight shape (convolution kernels: ``(..., in, out)``); with
    ``input_axes`` and ``output_axes`` (einsum kernels), the products of those axes."""
    shape = tuple(shape)
    if input_axes is not None and output_axes is not None:
        return (int(np.prod([shape[a] for a in input_axes], dtype=np.int64)),
                int(np.prod([shape[a] for a in output_axes], dtype=np.int64)))
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return int(shape[0]), int(shape[0])
    if len(shape) == 2:
        return int(shape[0]), int(shape[1])
    receptive = int(np.prod(shape[:-2]))
    return int(shape[-2] * receptive), int(shape[-1] * receptive)


class Initializer:
    """Base class: ``__call__(shape, dtype=None) -> np.ndarray`` and a config round trip."""

    def __call__(self, shape: tuple, dtype: Any = None) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict) -> Initializer:
        return cls(**config)

    def clone(self) -> Initializer:
        return type(self).from_config(self.get_config())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config()})"


def _dtype(dtype: Any) -> np.dtype:
    return np.dtype("float32" if dtype is None else dtype)


class Constant(Initializer):
    """Fills with ``value``: a number, or an array broadcast to the shape (keras.io's pretrained word
    embeddings pass the whole matrix, ``Constant(embedding_matrix)``).

    Example:
        >>> Constant(np.eye(2)).get_config()["value"]["class_name"]
        '__numpy__'
        >>> Constant.from_config(Constant(np.eye(2)).get_config())((2, 2)).tolist()
        [[1.0, 0.0], [0.0, 1.0]]
    """

    def __init__(self, value: Any = 0.0):
        if isinstance(value, dict) and value.get("class_name") == "__numpy__":
            # Keras's serialized form of an array (what a Keras-written .keras file holds)
            value = np.asarray(value["config"]["value"], dtype=value["config"].get("dtype"))
        elif not isinstance(value, (bool, int, float, np.ndarray, np.generic)) and hasattr(value, "__array__"):
            value = np.asarray(value)   # an eager tensor: its values, as Keras's ops.cast(value) reads them
        self.value = value

    def __call__(self, shape, dtype=None):
        return np.full(tuple(shape), self.value, dtype=_dtype(dtype))

    def get_config(self):
        value = self.value
        if isinstance(value, (np.ndarray, np.generic)):
            # As Keras's serialize_keras_object writes it, so either library reads the other's files: a
            # scalar as a Python number, an array as a "__numpy__" object.
            arr = np.asarray(value)
            value = arr.item() if arr.ndim == 0 else \
                {"class_name": "__numpy__", "config": {"value": arr.tolist(), "dtype": str(arr.dtype)}}
        return {"value": value}


class Zeros(Initializer):
    """Fills with 0."""

    def __call__(self, shape, dtype=None):
        return np.zeros(tuple(shape), dtype=_dtype(dtype))


class Ones(Initializer):
    """Fills with 1."""

    def __call__(self, shape, dtype=None):
        return np.ones(tuple(shape), dtype=_dtype(dtype))


class _RandomInitializer(Initializer):
    def __init__(self, seed: int | None = None):
        if seed is not None and not isinstance(seed, (int, np.integer)):
            raise ValueError(f"`seed` must be an integer or None. Received: seed={seed!r}")
        self._init_seed = seed
        self.seed = int(seed) if seed is not None else _make_default_seed()

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)

    def get_config(self):
        return {"seed": self._init_seed}


def _truncated(rng: np.random.Generator, shape: tuple, mean: float, stddev: float) -> np.ndarray:
    """Normal samples redrawn until they fall within two standard deviations (as Keras)."""
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2.0
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2.0
    return mean + stddev * out


class RandomNormal(_RandomInitializer):
    """Normal distribution, ``mean=0.0``, ``stddev=0.05``."""

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None):
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def __call__(self, shape, dtype=None):
        return self._rng().normal(self.mean, self.stddev, tuple(shape)).astype(_dtype(dtype))

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, **super().get_config()}


class RandomUniform(_RandomInitializer):
    """Uniform distribution on ``[minval, maxval)``, defaults ``-0.05, 0.05``."""

    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None):
        super().__init__(seed)
        self.minval, self.maxval = minval, maxval

    def __call__(self, shape, dtype=None):
        return self._rng().uniform(self.minval, self.maxval, tuple(shape)).astype(_dtype(dtype))

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, **super().get_config()}


class TruncatedNormal(_RandomInitializer):
    """Normal distribution truncated at two standard deviations, ``mean=0.0``, ``stddev=0.05``."""

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None):
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def __call__(self, shape, dtype=None):
        return _truncated(self._rng(), tuple(shape), self.mean, self.stddev).astype(_dtype(dtype))

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, **super().get_config()}


class VarianceScaling(_RandomInitializer):
    """Keras's ``VarianceScaling``: ``scale / fan`` variance, truncated normal, normal or uniform."""

    def __init__(self, scale: float = 1.0, mode: str = "fan_in", distribution: str = "truncated_normal",
                 seed: int | None = None, input_axes: Any = None, output_axes: Any = None):
        if scale <= 0.0:
            raise ValueError(f"Argument `scale` must be positive float. Received: scale={scale}")
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError("Invalid `mode` argument: expected one of {'fan_in', 'fan_out', 'fan_avg'}. "
                             f"Received: mode={mode}")
        distribution = distribution.lower()
        if distribution == "normal":
            distribution = "truncated_normal"
        if distribution not in ("uniform", "truncated_normal", "untruncated_normal"):
            raise ValueError("Invalid `distribution` argument: expected one of {'uniform', 'normal', "
                             f"'truncated_normal', 'untruncated_normal'}}. Received: distribution={distribution}")
        super().__init__(seed)
        self.scale, self.mode, self.distribution = scale, mode, distribution
        # Axes of an einsum kernel that count as its inputs / outputs (EinsumDense sets them).
        self.input_axes = None if input_axes is None else [int(a) for a in input_axes]
        self.output_axes = None if output_axes is None else [int(a) for a in output_axes]

    def __call__(self, shape, dtype=None):
        shape = tuple(shape)
        fan_in, fan_out = compute_fans(shape, self.input_axes, self.output_axes)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        scale = self.scale / max(1.0, fan)
        rng = self._rng()
        if self.distribution == "truncated_normal":
            # 0.879... is the stddev of a unit normal truncated to [-2, 2]: correct for the truncation.
            out = _truncated(rng, shape, 0.0, math.sqrt(scale) / 0.87962566103423978)
        elif self.distribution == "untruncated_normal":
            out = rng.normal(0.0, math.sqrt(scale), shape)
        else:
            limit = math.sqrt(3.0 * scale)
            out = rng.uniform(-limit, limit, shape)
        return out.astype(_dtype(dtype))

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                **super().get_config(), "input_axes": self.input_axes, "output_axes": self.output_axes}


def _fixed_variance_scaling(name: str, scale: float, mode: str, distribution: str, doc: str) -> type:
    def __init__(self, seed: int | None = None, input_axes: Any = None, output_axes: Any = None):
        VarianceScaling.__init__(self, scale=scale, mode=mode, distribution=distribution, seed=seed,
                                 input_axes=input_axes, output_axes=output_axes)

    def get_config(self):
        return {"seed": self._init_seed, "input_axes": self.input_axes, "output_axes": self.output_axes}

    return type(name, (VarianceScaling,), {"__init__": __init__, "get_config": get_config, "__doc__": doc,
                                            "__module__": __name__})


GlorotUniform = _fixed_variance_scaling("GlorotUniform", 1.0, "fan_avg", "uniform",
                                        "Uniform on ±sqrt(6 / (fan_in + fan_out)).")
GlorotNormal = _fixed_variance_scaling("GlorotNormal", 1.0, "fan_avg", "truncated_normal",
                                       "Truncated normal, stddev sqrt(2 / (fan_in + fan_out)).")
HeUniform = _fixed_variance_scaling("HeUniform", 2.0, "fan_in", "uniform", "Uniform on ±sqrt(6 / fan_in).")
HeNormal = _fixed_variance_scaling("HeNormal", 2.0, "fan_in", "truncated_normal",
                                   "Truncated normal, stddev sqrt(2 / fan_in).")
LecunUniform = _fixed_variance_scaling("LecunUniform", 1.0, "fan_in", "uniform",
                                       "Uniform on ±sqrt(3 / fan_in).")
LecunNormal = _fixed_variance_scaling("LecunNormal", 1.0, "fan_in", "truncated_normal",
                                      "Truncated normal, stddev sqrt(1 / fan_in).")


class Orthogonal(_RandomInitializer):
    """An orthogonal matrix (from the QR decomposition of a normal one) times ``gain``."""

    def __init__(self, gain: float = 1.0, seed: int | None = None):
        super().__init__(seed)
        self.gain = gain

    def __call__(self, shape, dtype=None):
        shape = tuple(shape)
        if len(shape) < 2:
            raise ValueError("The tensor to initialize must be at least two-dimensional. "
                             f"Received: shape={shape} of rank {len(shape)}.")
        rows, cols = int(np.prod(shape[:-1])), shape[-1]
        a = self._rng().standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.diag(r))  # makes the decomposition unique, hence the distribution uniform
        if rows < cols:
            q = q.T
        return (self.gain * q.reshape(shape)).astype(_dtype(dtype))

    def get_config(self):
        return {"gain": self.gain, **super().get_config()}


class Identity(Initializer):
    """``gain`` times the identity matrix (2-D shapes only)."""

    def __init__(self, gain: float = 1.0):
        self.gain = gain

    def __call__(self, shape, dtype=None):
        shape = tuple(shape)
        if len(shape) != 2:
            raise ValueError("Identity matrix initializer can only be used for 2D matrices. "
                             f"Received: shape={shape} of rank {len(shape)}.")
        return (self.gain * np.eye(*shape)).astype(_dtype(dtype))

    def get_config(self):
        return {"gain": self.gain}


# ------------------------------------------------------------------------------------------ STFT kernels
# scipy.signal's window names (with its aliases) that numpy computes here: sums of cosines, and a few shapes.
_COSINE_SUMS = {
    ("hann", "han"): (0.5, 0.5),
    ("hamming", "hamm", "ham"): (0.54, 0.46),
    ("blackman", "black", "blk"): (0.42, 0.5, 0.08),
    ("blackmanharris", "blackharr", "bkh"): (0.35875, 0.48829, 0.14128, 0.01168),
    ("nuttall", "nutl", "nut"): (0.3635819, 0.4891775, 0.1365995, 0.0106411),
    ("flattop", "flat", "flt"): (0.21557895, 0.41663158, 0.277263158, 0.083578947, 0.006947368),
}
_SHAPES = {("boxcar", "box", "ones", "rect", "rectangular"): "boxcar", ("bartlett", "bart", "brt"): "bartlett",
           ("triang", "triangle", "tri"): "triang", ("cosine", "halfcosine"): "cosine"}
_WINDOW_KIND = {alias: coeffs for names, coeffs in {**_COSINE_SUMS, **_SHAPES}.items() for alias in names}


def _symmetric_window(kind: Any, m: int) -> np.ndarray:
    n = np.arange(m, dtype=np.float64)
    if isinstance(kind, tuple):   # a_0 - a_1 cos(2 pi n / (m - 1)) + a_2 cos(...) - ...
        return sum((-1) ** k * a * np.cos(2.0 * np.pi * k * n / (m - 1)) for k, a in enumerate(kind))
    if kind == "boxcar":
        return np.ones(m)
    if kind == "bartlett":
        return np.where(n <= (m - 1) / 2.0, 2.0 * n / (m - 1), 2.0 - 2.0 * n / (m - 1))
    if kind == "triang":
        half = np.arange(1, (m + 1) // 2 + 1, dtype=np.float64)
        if m % 2 == 0:
            w = (2 * half - 1.0) / m
            return np.concatenate([w, w[::-1]])
        w = 2 * half / (m + 1.0)
        return np.concatenate([w, w[-2::-1]])
    return np.sin(np.pi / m * (n + 0.5))   # cosine


def signal_window(window: Any, length: int, periodic: bool = False) -> np.ndarray:
    """The float64 window ``scipy.signal.get_window(window, length, fftbins=periodic)`` names.

    Common names are computed with numpy; other scipy windows (tuples such as ``("kaiser", 8.0)``) need
    scipy installed.

    Example:
        >>> from onnxforge.initializers import signal_window
        >>> signal_window("hann", 4, periodic=True).round(6).tolist()
        [0.0, 0.5, 1.0, 0.5]
    """
    check_constant((length + 1,), 8, f"the {window!r} window")   # a loaded config sizes it: bound before numpy
    kind = _WINDOW_KIND.get(window) if isinstance(window, str) else None
    if kind is None:
        try:
            import scipy.signal
        except ImportError:
            raise ValueError(f"Unknown window: {window!r}. Without scipy installed, a window is one of "
                             f"{sorted(_WINDOW_KIND)}.") from None
        try:
            return np.asarray(scipy.signal.get_window(window, length, fftbins=periodic), np.float64)
        except ValueError as error:
            raise ValueError(f"Unknown window: {window!r} ({error}).") from None
    if length <= 1:
        return np.ones(max(int(length), 0))
    # A periodic window of length m is the symmetric one of length m + 1 without its last sample.
    return _symmetric_window(kind, length + 1)[:-1] if periodic else _symmetric_window(kind, length)


class STFT(Initializer):
    """Conv1D kernels ``(frame_length, 1, fft_length // 2 + 1)`` computing the real or imaginary part of a
    windowed DFT (Keras 3's ``STFT`` initializer, used by ``STFTSpectrogram``).

    Args:
        side: ``"real"`` (cosines) or ``"imag"`` (minus sines).
        window: a scipy window name, an array of ``frame_length`` values, or ``None`` for no window.
        scaling: ``"density"`` divides by the window's L2 norm, ``"spectrum"`` by its L1 norm, ``None`` not.
        periodic: whether a named window is periodic (scipy's ``fftbins``).

    Example:
        >>> from onnxforge.initializers import STFT
        >>> STFT("real", "hann")((16, 1, 9)).shape
        (16, 1, 9)
    """

    def __init__(self, side: str = "real", window: Any = "hann", scaling: str | None = "density",
                 periodic: bool = False):
        if side not in ("real", "imag"):
            raise ValueError(f"side should be 'real' or 'imag'. Received: side={side!r}")
        if isinstance(window, str):
            signal_window(window, 1)   # an unknown name fails now, as in Keras
        if scaling is not None and scaling not in ("density", "spectrum"):
            raise ValueError("Scaling is invalid, it must be `None`, 'density' or 'spectrum'. "
                             f"Received: scaling={scaling!r}")
        self.side, self.window, self.scaling, self.periodic = side, window, scaling, periodic

    def __call__(self, shape, dtype=None):
        frame_length, _, bins = tuple(shape)
        dtype = _dtype(dtype)
        # Keras reads the DFT size from the bins, 2 (bins - 1): an odd fft_length gives the even one below.
        # The angles are rounded in the kernel's dtype in Keras's order, so that the sines which should be 0
        # (the Nyquist bin) keep Keras's signs, and the phase ("angle" spectrograms) its branch.
        freq = np.arange(bins, dtype=dtype)[None, :] / dtype.type((bins - 1) * 2)
        angle = (dtype.type(-2) * np.arange(frame_length, dtype=dtype)[:, None]) * freq * dtype.type(np.pi)
        kernel = (np.cos(angle) if self.side == "real" else np.sin(angle)).astype(np.float64)
        if self.window is not None:
            win = (signal_window(self.window, frame_length, self.periodic) if isinstance(self.window, str)
                   else np.asarray(self.window, np.float64))
            if win.shape != (frame_length,):
                raise ValueError(f"The shape of `window` must be equal to [frame_length]. Received: window "
                                 f"shape={win.shape}, frame_length={frame_length}")
            scale = (np.sqrt(np.sum(win ** 2)) if self.scaling == "density" else
                     np.sum(np.abs(win)) if self.scaling == "spectrum" else 1.0)
            kernel = kernel * win[:, None] / scale
        return kernel[:, None, :].astype(dtype)

    def get_config(self):
        window = self.window.tolist() if isinstance(self.window, np.ndarray) else self.window
        return {"side": self.side, "window": window, "periodic": self.periodic, "scaling": self.scaling}


_CLASSES = [Constant, Zeros, Ones, RandomNormal, RandomUniform, TruncatedNormal, VarianceScaling,
            GlorotUniform, GlorotNormal, HeUniform, HeNormal, LecunUniform, LecunNormal, Orthogonal, Identity, STFT]
_ALIASES: dict[str, type] = {cls.__name__: cls for cls in _CLASSES}
_ALIASES.update({
    "constant": Constant, "zeros": Zeros, "ones": Ones, "random_normal": RandomNormal,
    "random_uniform": RandomUniform, "truncated_normal": TruncatedNormal, "variance_scaling": VarianceScaling,
    "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal, "he_uniform": HeUniform,
    "he_normal": HeNormal, "lecun_uniform": LecunUniform, "lecun_normal": LecunNormal,
    "orthogonal": Orthogonal, "identity": Identity, "uniform": RandomUniform, "normal": RandomNormal,
    "OrthogonalInitializer": Orthogonal, "IdentityInitializer": Identity, "STFTInitializer": STFT, "stft": STFT,
})


# Keras 3 exports the snake-case names as the classes themselves (``keras.initializers.he_normal is HeNormal``),
# so ``he_normal()``, ``he_normal(seed=1)`` and ``isinstance(x, he_normal)`` all work as there.
constant, zeros, ones = Constant, Zeros, Ones
random_normal, random_uniform, truncated_normal = RandomNormal, RandomUniform, TruncatedNormal
variance_scaling, orthogonal, identity = VarianceScaling, Orthogonal, Identity
glorot_uniform, glorot_normal, he_uniform, he_normal = GlorotUniform, GlorotNormal, HeUniform, HeNormal
lecun_uniform, lecun_normal = LecunUniform, LecunNormal


def serialize(initializer: Any) -> dict | str | None:
    """Keras 3's serialized form: ``{"module", "class_name", "config", "registered_name"}``.

    A plain callable serializes as its ``__name__`` (a custom object to pass again when deserializing).
    """
    if initializer is None:
        return None
    if not isinstance(initializer, Initializer):
        return getattr(initializer, "__name__", repr(initializer))
    return object_config(initializer, "keras.initializers")


def deserialize(config: dict, custom_objects: dict | None = None) -> Initializer:
    """The initializer described by ``serialize``'s output (or a ``{"class_name", "config"}`` dict)."""
    return object_from_config(config, _ALIASES, custom_objects, "initializer",
                              sorted(k for k in _ALIASES if k[0].isupper()))


def get(identifier: Any) -> Initializer | None:
    """An initializer from a name (``"he_normal"``), a config dict, an instance, a callable or an array.

    Raises:
        ValueError: for an unknown name or an unsupported identifier type.
    """
    if identifier is None or isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        cls = _ALIASES.get(identifier)
        if cls is None:
            raise ValueError(f"Could not interpret initializer identifier: {identifier!r}. Known names: "
                             f"{sorted(k for k in _ALIASES if k[0].islower())}")
        return cls()
    if is_value(identifier):   # an array or tensor: the initial value itself
        return value_initializer(identifier)
    if callable(identifier):
        if isinstance(identifier, type) and issubclass(identifier, Initializer):
            return identifier()
        return identifier
    raise ValueError(f"Could not interpret initializer identifier: {identifier!r}")


# Keras 3's class names for these two (``keras.initializers.OrthogonalInitializer``), the short ones aliases.
OrthogonalInitializer = Orthogonal
IdentityInitializer = Identity
STFTInitializer = stft = STFT
