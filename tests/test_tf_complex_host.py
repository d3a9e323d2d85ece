"""Complex numbers on the host: ``tf.signal`` FFTs, ``tf.complex`` / ``tf.math.real`` ..., ``tf.cast`` to complex,
structural ops on complex arrays, ``keras.ops.view_as_complex`` / ``view_as_real``. NumPy's FFT is the oracle
(TensorFlow's FFTs compute the same transforms); keras.ops against Keras itself."""
from __future__ import annotations

import os

import numpy as np
import pytest

import onnxforge as tf
from onnxforge import ops


def _audio(n=4, length=16):
    return np.random.default_rng(0).normal(size=(n, length, 1)).astype("float32")


def test_keras_io_speaker_recognition_fft_in_a_dataset_map():
    def audio_to_fft(audio):   # as keras.io's speaker recognition page writes it
        audio = tf.squeeze(audio, axis=-1)
        fft = tf.signal.fft(tf.cast(tf.complex(real=audio, imag=tf.zeros_like(audio)), tf.complex64))
        fft = tf.expand_dims(fft, axis=-1)
        return tf.math.abs(fft[:, : (audio.shape[1] // 2), :])

    audio = _audio()
    ds = tf.data.Dataset.from_tensor_slices((audio, np.arange(4))).batch(2).map(lambda x, y: (audio_to_fft(x), y))
    got = np.concatenate([np.asarray(x) for x, _ in ds])
    expected = np.abs(np.fft.fft(audio[..., 0].astype(np.float64)))[:, :8, None]
    assert got.dtype == np.float32 and got.shape == (4, 8, 1)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name, numpy_fn, axes", [
    ("fft", np.fft.fftn, 1), ("ifft", np.fft.ifftn, 1), ("fft2d", np.fft.fftn, 2), ("ifft2d", np.fft.ifftn, 2),
    ("fft3d", np.fft.fftn, 3), ("ifft3d", np.fft.ifftn, 3)])
def test_complex_ffts_match_numpy(name, numpy_fn, axes):
    rng = np.random.default_rng(1)
    x = (rng.normal(size=(2, 3, 4, 5)) + 1j * rng.normal(size=(2, 3, 4, 5))).astype(np.complex64)
    got = getattr(tf.signal, name)(x)
    assert got.dtype == np.complex64
    np.testing.assert_allclose(got, numpy_fn(x.astype(np.complex128), axes=tuple(range(-axes, 0))), rtol=1e-4,
                               atol=1e-4)


def test_real_ffts_match_numpy_with_lengths():
    x = np.random.default_rng(2).normal(size=(3, 6, 8)).astype("float32")
    spectrum = tf.signal.rfft(x, fft_length=[10])
    assert spectrum.dtype == np.complex64 and spectrum.shape == (3, 6, 6)
    np.testing.assert_allclose(spectrum, np.fft.rfft(x, n=10), rtol=1e-4, atol=1e-4)
    back = tf.signal.irfft(tf.signal.rfft(x))
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, x, atol=1e-5)
    np.testing.assert_allclose(tf.signal.irfft2d(tf.signal.rfft2d(x)), x, atol=1e-5)
    with pytest.raises(ValueError, match="rfft2d: fft_length needs 2"):
        tf.signal.rfft2d(x, fft_length=[4])


def test_complex_parts_and_casts():
    re, im = np.array([1.0, -2.0], "float32"), np.array([0.5, 3.0], "float32")
    z = tf.complex(re, im)
    assert z.dtype == np.complex64 and tf.complex(re.astype("float64"), im.astype("float64")).dtype == np.complex128
    np.testing.assert_array_equal(tf.math.real(z), re)
    np.testing.assert_array_equal(tf.math.imag(z), im)
    np.testing.assert_array_equal(tf.math.conj(z), re - 1j * im)
    np.testing.assert_allclose(tf.math.angle(z), np.angle(re + 1j * im), rtol=1e-6)
    assert tf.math.real(z).dtype == np.float32
    np.testing.assert_array_equal(tf.cast(re, tf.complex128), re.astype(np.complex128))
    assert tf.dtypes.complex64 == "complex64"
    with pytest.raises(TypeError, match="two float32 or two float64"):
        tf.complex(re, im.astype("float64"))


def test_structural_ops_on_complex_arrays_and_what_is_refused():
    z = (np.arange(6).reshape(2, 3) + 1j * np.arange(6)[::-1].reshape(2, 3)).astype(np.complex64)
    np.testing.assert_array_equal(ops.transpose(z), z.T)
    np.testing.assert_array_equal(tf.concat([z, np.ones((2, 3), "float32")], axis=0),
                                  np.concatenate([z, np.ones((2, 3))]).astype(np.complex64))
    np.testing.assert_array_equal(ops.add(z, np.ones((2, 3), "float32")), z + 1)
    first, _ = ops.split(z, 2, axis=0)
    np.testing.assert_array_equal(first, z[:1])
    np.testing.assert_array_equal(ops.sum(z, axis=1), z.sum(axis=1))
    assert ops.expand_dims(z, 0).dtype == np.complex64
    with pytest.raises(TypeError, match="ops.exp received a complex array"):
        ops.exp(z)
    with pytest.raises(TypeError, match="ops.multiply received a complex array"):
        ops.multiply(z, np.full((2, 3), 2.0, "float32"))


def test_complex_values_run_as_python_in_a_tf_function_and_are_refused_in_a_model():
    @tf.function
    def spectrum(x):
        return tf.abs(tf.signal.fft(tf.complex(x, tf.zeros_like(x))))

    x = np.random.default_rng(0).normal(size=(2, 8)).astype("float32")
    np.testing.assert_allclose(spectrum(x), np.abs(np.fft.fft(x)), rtol=1e-5, atol=1e-5)

    class Spectrum(tf.keras.layers.Layer):
        def call(self, x):
            return tf.abs(tf.signal.fft(tf.complex(x, tf.zeros_like(x))))

    with pytest.raises(TypeError, match="no complex dtype.*keras.ops.stft"):
        tf.keras.Sequential([tf.keras.Input((8,)), Spectrum()])


def test_view_as_complex_and_real_match_keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    x = np.random.default_rng(3).normal(size=(3, 4, 2)).astype("float32")
    ours = ops.view_as_complex(x)
    theirs = keras.ops.convert_to_numpy(keras.ops.view_as_complex(x))
    assert ours.dtype == theirs.dtype
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(ops.view_as_real(ours),
                                  keras.ops.convert_to_numpy(keras.ops.view_as_real(keras.ops.view_as_complex(x))))
    with pytest.raises(ValueError, match="last dimension is 2"):
        ops.view_as_complex(np.zeros((3, 3), "float32"))
