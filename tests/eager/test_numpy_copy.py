"""``EagerTensor.numpy()`` gives an array of its own, as TensorFlow's does: keras.io's Deep Dream deprocesses
``img.numpy()`` in place (``x /= 2.0; x += 0.5; x *= 255.0`` on a reshaped view) and the tensor must keep
its values. Before, ``numpy()`` returned a view of the tensor's own buffer, so the tensor changed too."""
from __future__ import annotations

import numpy as np

import onnxforge as tf


def test_writing_to_numpy_leaves_the_tensor_alone():
    img = tf.image.resize(tf.ones((1, 4, 4, 3)), (2, 2))
    x = img.numpy()
    x = x.reshape((x.shape[1], x.shape[2], 3))
    x /= 2.0
    x *= 255.0
    np.testing.assert_array_equal(img.numpy(), np.ones((1, 2, 2, 3), "float32"))
    assert img.numpy().flags.writeable and type(img.numpy()) is np.ndarray


def test_variable_and_text_numpy_unchanged():
    v = tf.Variable([1.0, 2.0])
    a = v.numpy()
    a += 1
    np.testing.assert_array_equal(v.numpy(), [1.0, 2.0])
    assert tf.constant("hé").numpy() == "hé".encode()
