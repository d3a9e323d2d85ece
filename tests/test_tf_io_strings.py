"""``tf.io.read_file``, ``tf.audio.decode_wav`` and ``tf.strings.unicode_split`` / ``reduce_join`` / ``length``
against TensorFlow, as keras.io's CTC speech-recognition example uses them: a ``Dataset.map`` that reads each
WAV file by name, pads it with ``tf.zeros([maxlen] - tf.shape(audio))`` and maps the transcript's characters
through a ``StringLookup``, then ``tf.strings.reduce_join(num_to_char(ids)).numpy().decode("utf-8")`` on the
decoded predictions. Before, ``tf.io`` and ``tf.audio`` were missing (the ``tf.strings`` functions are
``strings_fns``'s, checked here in the example's use)."""
from __future__ import annotations

import wave

import numpy as np
import pytest

import onnxforge
import onnxforge.keras as fkeras

rtf = pytest.importorskip("tensorflow")


def _wav(path, samples, width=2, channels=1, rate=16000):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(np.asarray(samples, {1: "u1", 2: "<i2", 4: "<i4"}[width]).tobytes())
    return str(path)


@pytest.mark.parametrize("width,channels,kwargs", [(2, 1, {}), (2, 2, {"desired_samples": 5}),
                                                   (2, 1, {"desired_samples": 9}), (2, 2, {"desired_channels": 1}),
                                                   (2, 1, {"desired_channels": 2})])
def test_read_file_and_decode_wav_match_tensorflow(tmp_path, width, channels, kwargs):
    """TensorFlow reads 16-bit PCM only (onnxforge also 8, 24 and 32-bit: tests/test_audio_dataset.py)."""
    samples = np.random.default_rng(channels).integers(-2 ** 15, 2 ** 15, 7 * channels)
    path = _wav(tmp_path / "a.wav", samples, width, channels, rate=8000)
    contents = onnxforge.io.read_file(path)
    assert contents.numpy() == rtf.io.read_file(path).numpy()
    want_audio, want_rate = rtf.audio.decode_wav(rtf.io.read_file(path), **kwargs)
    audio, rate = onnxforge.audio.decode_wav(contents, **kwargs)
    assert audio.dtype == np.float32 and audio.shape == tuple(want_audio.shape)
    np.testing.assert_allclose(np.asarray(audio), want_audio.numpy(), rtol=1e-6)
    assert int(rate) == int(want_rate) and np.asarray(rate).dtype == want_rate.numpy().dtype


def test_unicode_split_reduce_join_and_length_match_tensorflow():
    for text in ["ab ba", "héllo", b"bytes!"]:
        want = [c.decode() for c in rtf.strings.unicode_split(text, "UTF-8").numpy()]
        assert onnxforge.strings.unicode_split(text, input_encoding="UTF-8").tolist() == want
    grid = np.array([["a", "bc", "d"], ["é", "", "f"]])
    for kwargs in [{}, {"axis": 0}, {"axis": 1, "separator": "-"}, {"axis": -1, "keepdims": True},
                   {"axis": [0, 1], "separator": " "}, {"axis": [1, 0], "keepdims": True}]:
        want = rtf.strings.reduce_join(grid, **kwargs).numpy()
        got = onnxforge.strings.reduce_join(grid, **kwargs).numpy()
        assert np.shape(got) == np.shape(want), kwargs
        assert np.asarray(got).tolist() == np.asarray(want).tolist(), kwargs
    for unit in ["BYTE", "UTF8_CHAR"]:
        np.testing.assert_array_equal(onnxforge.strings.length(grid, unit=unit),
                                      rtf.strings.length(grid, unit=unit).numpy())


def test_ctc_asr_dataset_map_and_decoding(tmp_path):
    """The example's ``encode_single_sample`` (spectrogram by ``keras.ops.stft``: ``tf.signal`` is not here)
    and its decoding of a row of ids, under TensorFlow's tf.data and under onnxforge."""
    rng = np.random.default_rng(0)
    files = [_wav(tmp_path / f"{i}.wav", (np.sin(np.arange(n) * 0.05) * 16000).astype(int) + rng.integers(0, 9, n))
             for i, n in enumerate([900, 1100])]
    texts = ["ab ba", "héé a"]
    outs = []
    for tf, keras in ((rtf, rtf.keras), (onnxforge, fkeras)):
        char_to_num = keras.layers.StringLookup(vocabulary=sorted(set("".join(texts))), mask_token=None)
        num_to_char = keras.layers.StringLookup(vocabulary=char_to_num.get_vocabulary(), mask_token=None,
                                                invert=True)

        def encode_single_sample(wav_file, label, tf=tf, char_to_num=char_to_num):
            audio, _ = tf.audio.decode_wav(tf.io.read_file(wav_file))
            audio = tf.squeeze(audio, axis=-1)
            zero_padding = tf.zeros([1200] - tf.shape(audio), dtype=tf.float32)
            equal_length = tf.concat([tf.cast(audio, tf.float32), zero_padding], 0)
            return equal_length, char_to_num(tf.strings.unicode_split(label, input_encoding="UTF-8"))

        ds = tf.data.Dataset.from_tensor_slices((np.array(files), np.array(texts))).map(encode_single_sample)
        audio, labels = next(iter(ds.batch(2)))
        decoded = [tf.strings.reduce_join(num_to_char(row)).numpy().decode("utf-8") for row in labels]
        outs.append((np.asarray(audio), np.asarray(labels), decoded))
    (wa, wl, wd), (ga, gl, gd) = outs
    np.testing.assert_allclose(ga, wa, rtol=1e-6)
    np.testing.assert_array_equal(gl, wl)
    assert gd == wd == texts


def test_split_to_number_and_to_tensor_match_tensorflow():
    """keras.io's movielens transformer: ``tf.strings.to_number(tf.strings.split(batch, ","), tf.float32)
    .to_tensor()`` on a batch of comma-joined ratings of one length, and ``tf.strings.split(ids, ",")``. Rows of
    different lengths are a RaggedTensor in TensorFlow, which onnxforge has not: refused, naming it."""
    batch = np.array(["4.0,3.5,5", "1,,2", "a b,c,d"])
    for sep in [",", None]:
        want = rtf.strings.split(batch, sep=sep).to_tensor().numpy()
        if sep is None:
            with pytest.raises(ValueError, match="RaggedTensor"):
                onnxforge.strings.split(batch, sep=sep)
            continue
        got = onnxforge.strings.split(batch, sep=sep).to_tensor()
        assert np.asarray(got).tolist() == [[v.decode() for v in row] for row in want.tolist()]
    good = np.array(["4.0,3.5,5", "1,2,-3"])
    want = rtf.strings.to_number(rtf.strings.split(good, ","), rtf.dtypes.float32).to_tensor()
    got = onnxforge.strings.to_number(onnxforge.strings.split(good, ","), onnxforge.dtypes.float32).to_tensor()
    assert np.asarray(got).dtype == np.float32
    np.testing.assert_array_equal(np.asarray(got), want.numpy())
    for text in ["a  b c", "", "x,,y"]:
        for sep in [None, ","]:
            want = [v.decode() for v in rtf.strings.split(text, sep=sep).numpy()]
            assert np.asarray(onnxforge.strings.split(text, sep=sep)).tolist() == want, (text, sep)
    assert np.asarray(onnxforge.strings.split("a,b,c", ",", maxsplit=1)).tolist() == ["a", "b,c"]
