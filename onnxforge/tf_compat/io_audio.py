"""``tf.io.read_file`` and ``tf.audio.decode_wav`` on the host, for the ``Dataset.map`` functions of keras.io's
speech examples (CTC ASR, speaker recognition) that read each WAV file by name.

onnxforge runs a ``Dataset.map`` function eagerly, element by element, so these are host functions on
concrete values: ``read_file`` gives the file's bytes as a scalar string tensor (an object array holding
``bytes``, whose ``numpy()`` is the bytes, as TensorFlow's), ``decode_wav`` gives ``(audio, sample_rate)``
with float32 samples in [-1, 1) of shape ``(samples, channels)`` and an int32 rate. Inside a compiled model
(a graph) they are refused with a clear error. ``tf.io.decode_raw`` reinterprets strings' bytes as numbers (TensorFlow's
tensor guide reads ``"Duck"`` as uint8), also on the host.

Example:
    >>> import os, tempfile, wave
    >>> import numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "a.wav")
    >>> with wave.open(path, "wb") as w:
    ...     w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000)
    ...     w.writeframes(np.asarray([0, 16384], "<i2").tobytes())
    >>> audio, rate = decode_wav(read_file(path))
    >>> audio[:, 0].tolist(), int(rate)
    ([0.0, 0.5], 8000)
"""
from __future__ import annotations

__all__ = ["read_file", "decode_wav", "decode_raw", "io", "audio"]

import io as _io
import os
import types
from typing import Any

import numpy as np

from ..eager_tensor import EagerTensor
from ..trainer.compiled_function import HostFunctionInTrace
from ..graph import Value
from ..utils.audio_dataset import read_wav


def _host(x: Any, fn: str) -> Any:
    if isinstance(x, Value) or type(x).__name__ == "KerasTensor":
        raise HostFunctionInTrace(f"tf.{fn} runs on concrete values (in a Dataset.map function or eagerly; a "
                                  f"tf.function that calls it runs as Python), not inside a compiled model. "
                                  f"Received: {x!r}")
    value = np.asarray(x).reshape(()).item() if not isinstance(x, (str, bytes, os.PathLike)) else x
    return value


def read_file(filename: Any, name: str | None = None) -> EagerTensor:
    """``tf.io.read_file``: the whole file as one scalar string (its ``numpy()`` is the ``bytes``)."""
    path = _host(filename, "io.read_file")
    path = path.decode() if isinstance(path, bytes) else os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    out = np.empty((), dtype=object)
    out[()] = data
    return out.view(EagerTensor)


def decode_wav(contents: Any, desired_channels: int = -1, desired_samples: int = -1,
               name: str | None = None) -> tuple[EagerTensor, EagerTensor]:
    """``tf.audio.decode_wav``: ``(audio, sample_rate)`` of 8/16/24/32-bit PCM WAV bytes; ``desired_samples``
    cuts or zero-pads, ``desired_channels`` keeps the first channels or repeats a mono one."""
    data = _host(contents, "audio.decode_wav")
    if not isinstance(data, bytes):
        raise TypeError(f"tf.audio.decode_wav expects the bytes of a WAV file (tf.io.read_file's result). "
                        f"Received: {type(data).__name__}")
    audio, rate = read_wav(_io.BytesIO(data), desired_samples)  # type: ignore[arg-type]
    if desired_channels is not None and desired_channels > 0 and desired_channels != audio.shape[1]:
        if audio.shape[1] == 1:
            audio = np.repeat(audio, desired_channels, axis=1)
        elif desired_channels < audio.shape[1]:
            audio = audio[:, :desired_channels]
        else:
            raise ValueError(f"tf.audio.decode_wav: the file has {audio.shape[1]} channels; cannot make "
                             f"desired_channels={desired_channels} of them.")
    return audio.view(EagerTensor), np.asarray(rate, np.int32).view(EagerTensor)


def decode_raw(input_bytes: Any, out_type: Any, little_endian: bool = True, fixed_length: int | None = None,
               name: str | None = None) -> EagerTensor:
    """``tf.io.decode_raw``: each string's bytes read as ``out_type`` numbers, a new last axis (TensorFlow's).

    All strings must give the same count (TensorFlow's rule), unless ``fixed_length`` (bytes per string)
    cuts or zero-pads them to one length.

    Example:
        >>> decode_raw(np.asarray(["Duck"], object), "uint8").tolist()
        [[68, 117, 99, 107]]
    """
    if isinstance(input_bytes, Value) or type(input_bytes).__name__ == "KerasTensor":
        _host(input_bytes, "io.decode_raw")
    dtype = np.dtype(getattr(out_type, "name", out_type))
    if dtype.kind not in "iufcb":
        raise TypeError(f"tf.io.decode_raw: out_type must be a numeric dtype. Received: {out_type!r}")
    dtype = dtype.newbyteorder("<" if little_endian else ">")
    strings = np.asarray(input_bytes.numpy() if hasattr(input_bytes, "numpy") else input_bytes, dtype=object)
    data = [v.encode() if isinstance(v, str) else bytes(v) for v in strings.reshape(-1)]
    from .errors import InvalidArgumentError
    if fixed_length is not None:
        if fixed_length % dtype.itemsize:
            raise InvalidArgumentError(f"tf.io.decode_raw: fixed_length ({fixed_length}) must be a multiple of the "
                                       f"size of out_type {dtype.name} ({dtype.itemsize})")
        data = [d[:fixed_length].ljust(fixed_length, b"\0") for d in data]
    sizes = {len(d) for d in data}
    for d in data:
        if len(d) % dtype.itemsize:
            raise InvalidArgumentError(f"tf.io.decode_raw: input to DecodeRaw has length {len(d)} that is not a "
                                       f"multiple of {dtype.itemsize}, the size of {dtype.name}")
    if len(sizes) > 1:
        raise InvalidArgumentError(f"tf.io.decode_raw: the strings have different lengths {sorted(sizes)}; "
                                   "TensorFlow requires one size (or pass fixed_length).")
    count = (sizes.pop() if sizes else 0) // dtype.itemsize
    values = np.asarray([np.frombuffer(d, dtype) for d in data], dtype).reshape(strings.shape + (count,))
    return values.astype(dtype.newbyteorder("=")).view(EagerTensor)


io = types.SimpleNamespace(read_file=read_file, decode_raw=decode_raw)
audio = types.SimpleNamespace(decode_wav=decode_wav)
