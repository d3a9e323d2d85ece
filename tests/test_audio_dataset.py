"""audio_dataset_from_directory against Keras's own (tf.data, read with ``tf.audio.decode_wav``) on the same WAV
files: clips, padding, cropping, labels in every mode, splits; bad arguments and files."""
from __future__ import annotations

import os
import wave

import numpy as np
import pytest

from onnxforge.utils import audio_dataset_from_directory
from onnxforge.utils.audio_dataset import read_wav
from tests.keras_oracle.common import keras

pytest.importorskip("tensorflow")   # Keras builds its audio datasets with tf.data on every backend


def _write(path, samples, rate=8000, width=2, channels=None):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels or samples.shape[1])
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(np.ascontiguousarray(samples).tobytes())


@pytest.fixture
def audio_dir(tmp_path, rng):
    for label, lengths in [("cat", [5, 9, 3]), ("dog", [7, 4]), ("owl", [6])]:
        os.makedirs(tmp_path / label)
        for i, n in enumerate(lengths):
            _write(tmp_path / label / f"{i}.wav", rng.integers(-32768, 32767, (n, 2)).astype("<i2"))
    (tmp_path / "cat" / "notes.txt").write_text("not audio")
    return tmp_path


def _batches(ds):
    return [tuple(np.asarray(part) for part in batch) if isinstance(batch, tuple) else (np.asarray(batch),)
            for batch in ds]


@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(output_sequence_length=6, label_mode="categorical", batch_size=4),
    dict(labels=None, batch_size=2),
    dict(label_mode=None, output_sequence_length=8, batch_size=None),
    dict(labels=[1, 0, 1, 1, 0, 0], label_mode="int", batch_size=4),
    dict(validation_split=0.34, subset="training", batch_size=2),
    dict(validation_split=0.34, subset="validation", batch_size=2, class_names=["dog", "cat"]),
])
def test_matches_keras(audio_dir, kwargs):
    kwargs = dict(dict(shuffle=False, verbose=False), **kwargs)
    mine = audio_dataset_from_directory(str(audio_dir), **kwargs)
    theirs = keras.utils.audio_dataset_from_directory(str(audio_dir), **kwargs)
    assert mine.class_names == theirs.class_names
    got, want = _batches(mine), _batches(theirs)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        for a, b in zip(g, w):
            assert a.shape == b.shape and a.dtype == b.dtype
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-7)


def test_binary_labels_and_both_subsets(tmp_path, rng):
    for label in ("no", "yes"):
        os.makedirs(tmp_path / label)
        for i in range(3):
            _write(tmp_path / label / f"{i}.wav", rng.integers(-100, 100, (4 + i, 1)).astype("<i2"))
    kwargs = dict(label_mode="binary", validation_split=0.5, subset="both", seed=3, batch_size=2, verbose=False)
    for mine, theirs in zip(audio_dataset_from_directory(str(tmp_path), **kwargs),
                            keras.utils.audio_dataset_from_directory(str(tmp_path), **kwargs)):
        got = sorted((x.tobytes(), float(y[0])) for bx, by in _batches(mine) for x, y in zip(bx, by))
        want = sorted((x.tobytes(), float(y[0])) for bx, by in _batches(theirs) for x, y in zip(bx, by))
        assert [y for _, y in got] == [y for _, y in want]
        assert len(got) == 3


def test_sample_widths(tmp_path):
    _write(tmp_path / "u8.wav", np.asarray([[0], [128], [255]], np.uint8), width=1)
    assert read_wav(str(tmp_path / "u8.wav"))[0][:, 0].tolist() == [-1.0, 0.0, 127 / 128]
    packed = np.frombuffer((np.asarray([-2 ** 23, 2 ** 22], "<i4") << 8).tobytes(), np.uint8).reshape(2, 4)[:, 1:]
    _write(tmp_path / "s24.wav", packed, width=3, channels=1)
    assert read_wav(str(tmp_path / "s24.wav"))[0][:, 0].tolist() == [-1.0, 0.5]


def test_errors_are_clear(audio_dir):
    with pytest.raises(ValueError, match="ragged=True"):
        audio_dataset_from_directory(str(audio_dir), ragged=True)
    with pytest.raises(ValueError, match="Cannot set both"):
        audio_dataset_from_directory(str(audio_dir), ragged=True, output_sequence_length=3)
    with pytest.raises(ValueError, match="sampling_rate=16000.0"):
        audio_dataset_from_directory(str(audio_dir), sampling_rate=16000.0)
    with pytest.raises(ValueError, match="higher than 0"):
        audio_dataset_from_directory(str(audio_dir), sampling_rate=0)
    ds = audio_dataset_from_directory(str(audio_dir), sampling_rate=16000, shuffle=False, verbose=False)
    with pytest.raises(ValueError, match="sampled at 8000 Hz but sampling_rate=16000"):
        next(iter(ds))
    assert next(iter(audio_dataset_from_directory(str(audio_dir), sampling_rate=8000, verbose=False)))[0].ndim == 3
    with pytest.raises(ValueError, match="label_mode"):
        audio_dataset_from_directory(str(audio_dir), label_mode="sparse")
    with pytest.raises(ValueError, match="labels="):
        audio_dataset_from_directory(str(audio_dir), labels=np.zeros(6))
    (audio_dir / "owl" / "bad.wav").write_bytes(b"RIFF....WAVEjunk")
    with pytest.raises(ValueError, match="bad.wav.*PCM WAV"):
        list(audio_dataset_from_directory(str(audio_dir), shuffle=False, verbose=False))
