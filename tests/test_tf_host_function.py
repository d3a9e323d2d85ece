"""``tf.numpy_function`` / ``tf.py_function`` (``tf_compat/host_function``): host Python on concrete arrays, a
``tf.function`` that calls one runs as Python, a model that calls one is refused by name."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf
import onnxforge.keras as keras


def test_numpy_function_gets_numpy_and_casts_to_tout():
    seen = []

    def double(a, b):
        seen.append((type(a), type(b)))
        return a * 2 + b, np.int64(3)

    x, n = tf.numpy_function(double, [tf.constant([1.0, 2.0]), np.ones(2)], [tf.float32, tf.int32])
    assert seen == [(np.ndarray, np.ndarray)]
    assert x.dtype == np.float32 and x.tolist() == [3.0, 5.0]
    assert n.dtype == np.int32 and int(n) == 3
    assert tf.numpy_function(lambda a: None, [np.ones(1)], None) is None


def test_py_function_gets_tensors():
    out = tf.py_function(lambda a: tf.reduce_sum(a) + a.numpy()[0], [np.arange(3.0)], tf.float64)
    assert out.dtype == np.float64 and float(out) == 3.0


def test_tout_count_must_match():
    with pytest.raises(ValueError, match="returned 1 values and Tout names 2"):
        tf.numpy_function(lambda a: a, [np.ones(1)], [tf.float32, tf.float32])


def test_tf_function_calling_numpy_function_runs_as_python():
    calls = []

    @tf.function
    def f(x):
        y = tf.numpy_function(lambda a: (calls.append(1), np.sort(a))[1], [x], tf.float32)
        return tf.expand_dims(y, 0) * 2

    out = f(np.array([3.0, 1.0, 2.0], "float32"))
    assert out.shape == (1, 3) and out.tolist() == [[2.0, 4.0, 6.0]]
    assert f(np.array([5.0, 4.0], "float32")).tolist() == [[8.0, 10.0]]
    assert len(calls) == 2 and f.tracing_count == 1   # the one failed trace, then plain Python


def test_dataset_map_through_tf_function():
    @tf.function
    def flip(v):
        return tf.numpy_function(lambda a: a[::-1].copy(), [v], tf.float32)

    ds = tf.data.Dataset.from_tensor_slices(np.arange(6, dtype="float32").reshape(2, 3)).map(flip).batch(2)
    assert next(iter(ds)).tolist() == [[2.0, 1.0, 0.0], [5.0, 4.0, 3.0]]


def test_inside_a_model_it_is_refused_by_name():
    class HostSin(keras.layers.Layer):
        def call(self, x):
            return tf.numpy_function(np.sin, [x], tf.float32)

    with pytest.raises(TypeError, match=r"tf.numpy_function\(sin\).*Dataset.map function"):
        keras.Sequential([keras.Input((2,)), HostSin()])


def test_tf_function_reading_and_decoding_files_runs_as_python(tmp_path):
    from PIL import Image

    path = str(tmp_path / "a.png")
    Image.fromarray(np.full((4, 5, 3), 51, np.uint8)).save(path)

    @tf.function
    def load(p):
        image = tf.image.decode_png(tf.io.read_file(p), channels=3)
        return tf.image.resize(image, [2, 2]) / 255.0

    np.testing.assert_allclose(load(path), np.full((2, 2, 3), 0.2, np.float32), rtol=1e-6)
    batch = next(iter(tf.data.Dataset.from_tensor_slices([path, path]).map(load).batch(2)))
    assert batch.shape == (2, 2, 2, 3)

    @tf.function
    def spectrogram(x):
        return tf.abs(tf.signal.stft(x, 16, 8))

    assert spectrogram(np.zeros(64, "float32")).shape == (7, 9)
