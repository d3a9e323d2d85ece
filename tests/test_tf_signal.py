"""``tf.signal.stft`` / ``frame`` / ``hann_window`` and ``tf.abs`` of their complex result against TensorFlow:
the spectrograms of keras.io's CTC speech example (``tf.abs(tf.signal.stft(x, 255, 128))``), its transformer
ASR (``fft_length=256`` with ``frame_length=200``) and TensorFlow's audio tutorial
(``spectrogram[..., tf.newaxis]``). Before, ``tf.signal`` was missing."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf

rtf = pytest.importorskip("tensorflow")

WAVE = np.random.default_rng(0).normal(size=(2, 1000)).astype("float32")


@pytest.mark.parametrize("kwargs", [dict(frame_length=255, frame_step=128), dict(frame_length=200, frame_step=80,
                                    fft_length=256), dict(frame_length=64, frame_step=50, pad_end=True),
                                    dict(frame_length=32, frame_step=16, window_fn=None)])
def test_stft_magnitude_matches_tensorflow(kwargs):
    want = rtf.signal.stft(WAVE, **kwargs)
    got = tf.signal.stft(WAVE, **kwargs)
    assert got.dtype == np.complex64 and got.shape == tuple(want.shape)
    np.testing.assert_allclose(np.asarray(got), want.numpy(), rtol=1e-4, atol=2e-4)
    magnitude = tf.abs(got)
    assert np.asarray(magnitude).dtype == np.float32
    np.testing.assert_allclose(np.asarray(magnitude), rtf.abs(want).numpy(), rtol=1e-4, atol=2e-4)
    one = tf.abs(tf.signal.stft(WAVE[0], **kwargs))[..., tf.newaxis]
    assert one.shape == tuple(want.shape[1:]) + (1,)


def test_hann_window_and_frame_match_tensorflow():
    for n in (1, 6, 7):
        for periodic in (True, False):
            np.testing.assert_allclose(tf.signal.hann_window(n, periodic=periodic),
                                       rtf.signal.hann_window(n, periodic=periodic).numpy(), atol=1e-6)
    x = np.arange(24, dtype="float32").reshape(2, 12)
    for kwargs in [dict(frame_length=5, frame_step=3), dict(frame_length=5, frame_step=3, pad_end=True),
                   dict(frame_length=2, frame_step=1, axis=0), dict(frame_length=20, frame_step=3)]:
        want = rtf.signal.frame(x, **kwargs).numpy()
        got = np.asarray(tf.signal.frame(x, **kwargs))
        assert got.shape == want.shape, kwargs
        np.testing.assert_array_equal(got, want)


def test_stft_inside_a_model_is_refused_clearly():
    import onnxforge.keras as keras

    with pytest.raises(TypeError, match="keras.ops.stft"):
        tf.signal.stft(keras.Input(shape=(100,)), frame_length=16, frame_step=8)
    assert tf.abs(np.array([-1.5, 2.0], "float32")).tolist() == [1.5, 2.0]
