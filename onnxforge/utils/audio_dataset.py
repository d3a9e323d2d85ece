"""``audio_dataset_from_directory``: WAV files read with the standard library's ``wave`` module."""
from __future__ import annotations

__all__ = ["audio_dataset_from_directory", "read_wav"]

import os
import stat
import wave
from collections.abc import Sequence
from typing import Any

import numpy as np

from .dataset_loaders import _from_directory

_FORMATS = (".wav",)


def read_wav(path: str, desired_samples: int = -1) -> tuple[np.ndarray, int]:
    """``(audio, sample_rate)`` of a PCM WAV file as ``tf.audio.decode_wav`` gives them: float32 samples in
    [-1, 1) of shape ``(samples, channels)`` (16-bit values divided by 32768), cut or zero-padded to
    ``desired_samples`` when it is not -1.

    Example:
        >>> import os, tempfile, wave
        >>> path = os.path.join(tempfile.mkdtemp(), "a.wav")
        >>> with wave.open(path, "wb") as w:
        ...     w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000)
        ...     w.writeframes(np.asarray([0, 16384, -32768], "<i2").tobytes())
        >>> audio, rate = read_wav(path, desired_samples=4)
        >>> audio[:, 0].tolist(), rate
        ([0.0, 0.5, -1.0, 0.0], 8000)
    """
    # wave.open would wait forever on a FIFO and read a device until memory runs out: regular files only.
    if isinstance(path, (str, bytes, os.PathLike)) and os.path.exists(path) \
            and not stat.S_ISREG(os.stat(path).st_mode):
        raise ValueError(f"read_wav(): {os.fsdecode(path)!r} is not a regular file (a device, FIFO or socket, or a "
                         "link to one); a WAV clip is read from a file")
    try:
        with wave.open(path, "rb") as f:
            channels, width, rate, frames = f.getnchannels(), f.getsampwidth(), f.getframerate(), f.getnframes()
            data = f.readframes(frames)
    except (wave.Error, EOFError) as err:
        raise ValueError(f"Could not read {path!r} as a PCM WAV file ({err}). audio_dataset_from_directory reads "
                         "uncompressed integer PCM (8, 16, 24 or 32 bits).") from None
    if width == 1:    # 8-bit WAV is unsigned, centred on 128
        samples = (np.frombuffer(data, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 3:  # 24-bit little-endian: widened to int32 by a zero low byte
        raw = np.frombuffer(data, np.uint8).reshape(-1, 3)
        wide = np.zeros((raw.shape[0], 4), np.uint8)
        wide[:, 1:] = raw
        samples = wide.view("<i4").reshape(-1).astype(np.float32) / 2.0 ** 31
    elif width in (2, 4):
        samples = np.frombuffer(data, f"<i{width}").astype(np.float32) / 2.0 ** (8 * width - 1)
    else:
        raise ValueError(f"Could not read {path!r}: {8 * width}-bit samples are not supported (8, 16, 24 or 32).")
    audio = samples[:frames * channels].reshape(-1, channels)
    if desired_samples is not None and desired_samples >= 0:
        audio = audio[:desired_samples]
        if audio.shape[0] < desired_samples:
            audio = np.concatenate([audio, np.zeros((desired_samples - audio.shape[0], channels), np.float32)])
    return np.ascontiguousarray(audio, np.float32), rate


def audio_dataset_from_directory(directory: str, labels: Any = "inferred", label_mode: str | None = "int",
                                 class_names: Sequence[str] | None = None, batch_size: int | None = 32,
                                 sampling_rate: int | None = None, output_sequence_length: int | None = None,
                                 ragged: bool = False, shuffle: bool = True, seed: int | None = None,
                                 validation_split: float | None = None, subset: str | None = None,
                                 follow_links: bool = False, verbose: bool = True) -> Any:
    """A ``Dataset`` of ``(audio, labels)`` batches from ``directory/<class>/<.wav files>``, as Keras builds it.

    Each clip is float32 ``(samples, channels)`` (see ``read_wav``). With ``output_sequence_length`` every clip is
    cut or zero-padded to that many samples; without it a batch is zero-padded to its longest clip.

    Args:
        directory, labels, label_mode, class_names, batch_size, shuffle, seed, validation_split, subset,
            follow_links, verbose: as in ``image_dataset_from_directory``.
        sampling_rate: the files' expected sample rate. Keras resamples with ``tensorflow-io``; onnxforge does not
            resample and raises, naming the file, when one has another rate.
        output_sequence_length: the samples of every clip.
        ragged: Keras's ragged batches; onnxforge has no ragged tensors and raises.

    Returns:
        A ``Dataset`` (a pair with ``subset="both"``) with ``class_names`` and ``file_paths``.

    Example:
        >>> import os, tempfile, wave
        >>> root = tempfile.mkdtemp()
        >>> for label, n in [("no", 3), ("yes", 5)]:
        ...     os.makedirs(os.path.join(root, label))
        ...     with wave.open(os.path.join(root, label, "a.wav"), "wb") as w:
        ...         w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000)
        ...         w.writeframes(np.ones(n, "<i2").tobytes())
        >>> ds = audio_dataset_from_directory(root, batch_size=2, shuffle=False, verbose=False)
        >>> audio, label = next(iter(ds))
        >>> audio.shape, label.tolist(), ds.class_names
        (TensorShape([2, 5, 1]), [0, 1], ['no', 'yes'])
    """
    if labels is not None and not (isinstance(labels, str) and labels == "inferred"):
        if not isinstance(labels, (list, tuple)):
            raise ValueError("The `labels` argument should be a list/tuple of integer labels, of the same size as the "
                             "number of audio files in the target directory, \"inferred\" or None. Received: "
                             f"labels={labels!r}")
        if class_names:
            raise ValueError('You can only pass `class_names` if `labels="inferred"`. Received: '
                             f"labels={labels!r}, and class_names={class_names!r}")
    if ragged and output_sequence_length is not None:
        raise ValueError("Cannot set both `ragged` and `output_sequence_length`")
    if ragged:
        raise ValueError("audio_dataset_from_directory(ragged=True) needs ragged tensors, which onnxforge does not "
                         "have: leave ragged=False (batches are zero-padded to their longest clip) or set "
                         "`output_sequence_length`. Received: ragged=True")
    if sampling_rate is not None:
        if isinstance(sampling_rate, bool) or not isinstance(sampling_rate, int):
            raise ValueError(f"`sampling_rate` should have an integer value. Received: sampling_rate={sampling_rate}")
        if sampling_rate <= 0:
            raise ValueError(f"`sampling_rate` should be higher than 0. Received: sampling_rate={sampling_rate}")
    if output_sequence_length is not None and (isinstance(output_sequence_length, bool) or
                                               not isinstance(output_sequence_length, int) or
                                               output_sequence_length <= 0):
        raise ValueError("`output_sequence_length` should be a positive integer. Received: "
                         f"output_sequence_length={output_sequence_length!r}")
    if labels is None or label_mode is None:   # Keras's audio loader: then no labels and no class names at all
        labels = label_mode = None
    desired = -1 if output_sequence_length is None else output_sequence_length

    def load(path: str) -> np.ndarray:
        audio, rate = read_wav(path, desired)
        if sampling_rate is not None and rate != sampling_rate:
            raise ValueError(f"{path!r} is sampled at {rate} Hz but sampling_rate={sampling_rate}: onnxforge does not "
                             "resample audio (Keras needs tensorflow-io for it). Resample the files, or pass the rate "
                             "they have.")
        return audio

    return _from_directory(directory, labels, label_mode, class_names, batch_size, shuffle, seed, validation_split,
                           subset, follow_links, verbose, _FORMATS, load, padded=output_sequence_length is None)
