"""``Hashing``: Keras 3's hashing trick, with TensorFlow's bucket numbers bit for bit, on the host.

Keras hashes every value as a string (integers by their decimal text, floats truncated to int64 first) with
FarmHash's ``Fingerprint64`` (``tf.strings.to_hash_bucket_fast``), or with a salt by SipHash-2-4 keyed by
the salt's two 64-bit halves (``tf.strings.to_hash_bucket_strong``), then takes the hash modulo the bin
count. ONNX's standard operators cannot read a string's bytes, so the layer runs on arrays (eagerly, and in
``Dataset.map`` pipelines, where Keras's documentation places it) and is refused inside a model with an
error that names the alternatives. Keras itself computes it with TensorFlow on the CPU whatever the backend.

Example:
    >>> from onnxforge import keras
    >>> keras.layers.Hashing(num_bins=3)([["A"], ["B"], ["C"], ["D"], ["E"]]).numpy().ravel().tolist()
    [1, 0, 1, 1, 2]
    >>> keras.layers.Hashing(num_bins=3, salt=133)([["A"], ["B"], ["C"], ["D"], ["E"]]).numpy().ravel().tolist()
    [0, 0, 2, 1, 0]
"""
from __future__ import annotations

__all__ = ["Hashing", "hash_buckets", "siphash24"]

from collections.abc import Callable
from typing import Any

import numpy as np

from ...eager_tensor import as_eager
from ...graph import Value
from ..base import Layer
from ..keras_tensor import KerasTensor
from .farmhash import fingerprint64

_M = (1 << 64) - 1
_MODES = ("int", "one_hot", "multi_hot", "count")


def _rotl(v: int, r: int) -> int:
    return ((v << r) | (v >> (64 - r))) & _M


def _sip_rounds(v: list[int], n: int) -> None:
    v0, v1, v2, v3 = v
    for _ in range(n):
        v0 = (v0 + v1) & _M
        v1 = _rotl(v1, 13) ^ v0
        v0 = _rotl(v0, 32)
        v2 = (v2 + v3) & _M
        v3 = _rotl(v3, 16) ^ v2
        v0 = (v0 + v3) & _M
        v3 = _rotl(v3, 21) ^ v0
        v2 = (v2 + v1) & _M
        v1 = _rotl(v1, 17) ^ v2
        v2 = _rotl(v2, 32)
    v[:] = [v0, v1, v2, v3]


def siphash24(key: tuple[int, int], data: bytes) -> int:
    """SipHash-2-4 of ``data`` under the 128-bit ``key`` given as two unsigned 64-bit words (TensorFlow's
    ``StrongKeyedHash``).

    Example:
        >>> hex(siphash24((0x0706050403020100, 0x0F0E0D0C0B0A0908), bytes(range(15))))
        '0xa129ca6149be45e5'
    """
    k0, k1 = key[0] & _M, key[1] & _M
    v = [k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D, k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573]
    whole = len(data) - len(data) % 8
    for i in range(0, whole, 8):
        m = int.from_bytes(data[i:i + 8], "little")
        v[3] ^= m
        _sip_rounds(v, 2)
        v[0] ^= m
    last = ((len(data) & 0xFF) << 56) | int.from_bytes(data[whole:], "little")
    v[3] ^= last
    _sip_rounds(v, 2)
    v[0] ^= last
    v[2] ^= 0xFF
    _sip_rounds(v, 4)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def _as_text(value: Any) -> bytes:
    """A value's bytes as ``tf.as_string`` writes them (the hash input)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bool, np.bool_)):
        return b"true" if value else b"false"
    return str(int(value)).encode("ascii")


def hash_buckets(values: Any, num_bins: int, key: tuple[int, int] | None = None) -> np.ndarray:
    """TensorFlow's ``to_hash_bucket_fast`` (``key=None``) or ``to_hash_bucket_strong`` (``key``) of an array
    of strings or integers: int64 bins in ``[0, num_bins)``, the input's shape.

    Example:
        >>> hash_buckets(np.array(["A", "B"]), 3).tolist()
        [1, 0]
    """
    array = np.asarray(values)
    if array.dtype.kind == "f":
        array = np.trunc(array).astype(np.int64)   # Keras normalizes floats to int64 before hashing
    flat = array.reshape(-1)
    unique, inverse = np.unique(flat.astype(object) if array.dtype.kind in "US" else flat, return_inverse=True)
    hashed = [fingerprint64(_as_text(u)) if key is None else siphash24(key, _as_text(u)) for u in unique.tolist()]
    bins = np.asarray([h % num_bins for h in hashed], dtype=np.int64)
    return bins[inverse.reshape(-1)].reshape(array.shape)


class Hashing(Layer):
    """Hashes strings or integers into ``num_bins`` bins (Keras 3's ``keras.layers.Hashing``), on arrays.

    Args:
        num_bins: the number of bins, including the mask bin when ``mask_value`` is set.
        mask_value: values equal to it map to bin 0 and the rest hash into ``1 .. num_bins - 1``.
        salt: an integer or a pair of integers: hash by SipHash keyed by them instead of FarmHash.
        output_mode: ``"int"`` (the bins), ``"one_hot"``, ``"multi_hot"`` or ``"count"`` (encoded as
            ``CategoryEncoding`` does).
        sparse: not supported (``True`` raises).

    Raises:
        NotImplementedError: compiled into a model's program (ONNX cannot hash strings); call it in the data
            pipeline. A symbolic call (``Hashing(8)(keras.Input(...))``) only describes the output.

    Example:
        >>> from onnxforge import keras
        >>> layer = keras.layers.Hashing(num_bins=4, mask_value="")
        >>> layer(["", "A", "B"]).numpy().tolist()
        [0, 2, 1]
    """

    _autocast = False

    def __init__(self, num_bins: int, mask_value: Any = None, salt: Any = None, output_mode: str = "int",
                 sparse: bool = False, **kwargs: Any):
        if kwargs.get("dtype") is None:
            kwargs["dtype"] = "int64" if output_mode == "int" else "float32"
        super().__init__(**kwargs)
        if num_bins is None or isinstance(num_bins, bool) or num_bins <= 0:
            raise ValueError("The `num_bins` for `Hashing` cannot be `None` or non-positive values. "
                             f"Received: num_bins={num_bins}.")
        if output_mode == "int" and self.dtype not in ("int32", "int64"):
            raise ValueError('When `output_mode="int"`, `dtype` should be an integer type, \'int32\' or \'in64\'. '
                             f"Received: dtype={kwargs['dtype']}")
        if output_mode not in _MODES:
            raise ValueError(f"Invalid value for argument `output_mode`. Expected one of {_MODES}. "
                             f"Received: output_mode={output_mode}")
        if sparse and output_mode == "int":
            raise ValueError('`sparse` may only be true if `output_mode` is `"one_hot"`, `"multi_hot"`, or '
                             f'`"count"`. Received: sparse={sparse} and output_mode={output_mode}')
        if sparse:
            raise NotImplementedError(f"Hashing {self.name!r}: sparse outputs are not supported by onnxforge. "
                                      "Received: sparse=True")
        if salt is not None and not (isinstance(salt, int) and not isinstance(salt, bool)) and not (
                isinstance(salt, (tuple, list)) and len(salt) == 2):
            raise ValueError("The `salt` argument for `Hashing` can only be a tuple of size 2 integers, or a single "
                             f"integer. Received: salt={salt}.")
        self.num_bins, self.mask_value, self.output_mode, self.sparse = int(num_bins), mask_value, output_mode, False
        self.salt = None if salt is None else ([salt, salt] if isinstance(salt, int) else list(salt))
        self.strong_hash = salt is not None
        self._encode: Callable[[np.ndarray], Any] | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        inputs = args[0] if args else kwargs.get("inputs")
        leaves = _leaves(inputs)
        if any(isinstance(x, KerasTensor) for x in leaves):
            # A symbolic call describes the output (FeatureSpace's encoded features start after it); only
            # compiling the layer into a program is refused, in call().
            return super().__call__(*args, **kwargs)
        if any(isinstance(x, Value) for x in leaves):
            self.call(inputs)
        return as_eager(self._hash(np.asarray(_plain(inputs))))

    def call(self, inputs: Any) -> Any:
        raise NotImplementedError(
            f"Hashing {self.name!r}: Keras hashes with FarmHash64 (or SipHash with a salt), which standard ONNX "
            "operators cannot compute on strings, so the layer cannot be part of a compiled model. Call it on "
            "arrays in the data pipeline (dataset.map(lambda x, y: (hashing(x), y))), as Keras recommends, or use "
            "IntegerLookup / StringLookup with a vocabulary inside the model.")

    def _hash(self, values: np.ndarray) -> np.ndarray:
        if values.dtype.kind not in "iufbUSO":
            raise ValueError(f"Hashing {self.name!r} hashes strings or numbers. Received an array of dtype "
                             f"{values.dtype}.")
        if self.output_mode == "one_hot" and values.ndim and values.shape[-1] == 1:
            values = values[..., 0]
        bins_count = self.num_bins
        mask = None
        if self.mask_value is not None and bins_count > 1:
            bins_count -= 1
            mask = _equal(values, self.mask_value)
        key = None if self.salt is None else (int(self.salt[0]), int(self.salt[1]))
        bins = hash_buckets(values, bins_count, key)
        if mask is not None:
            bins = np.where(mask, 0, bins + 1)
        if self.output_mode == "int":
            return bins.astype(self.dtype)
        if self._encode is None:
            # One encoder, so its eager program is compiled once, not per call; kept as its bound call so the
            # encoder is not a sub-layer (summary, saving and weights see only the Hashing layer, as in Keras).
            from .encoding import CategoryEncoding
            self._encode = CategoryEncoding(num_tokens=self.num_bins, output_mode=self.output_mode,
                                            dtype=self.dtype).__call__
        return np.asarray(self._encode(bins))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        if self.output_mode == "int":
            return tuple(input_shape)
        return tuple(input_shape[:-1]) + (self.num_bins,) if len(input_shape) else (self.num_bins,)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"num_bins": self.num_bins, "salt": self.salt, "mask_value": self.mask_value,
                       "output_mode": self.output_mode, "sparse": self.sparse})
        return config


def _leaves(inputs: Any) -> list[Any]:
    if isinstance(inputs, (list, tuple)):
        return [leaf for x in inputs for leaf in _leaves(x)]
    return [inputs]


def _plain(inputs: Any) -> Any:
    """Nested lists, arrays and eager tensors as one NumPy array (strings as text)."""
    array = np.asarray(inputs)
    if array.dtype.kind == "S":
        array = np.char.decode(array, "utf-8").astype(object)
    return array


def _equal(values: np.ndarray, mask_value: Any) -> np.ndarray:
    if values.dtype.kind in "USO":
        target = mask_value.decode("utf-8") if isinstance(mask_value, bytes) else mask_value
        decode = np.vectorize(lambda v: v.decode("utf-8") if isinstance(v, bytes) else v, otypes=[object])
        return np.asarray(decode(values) == target, dtype=bool)
    return np.asarray(values == mask_value, dtype=bool)
