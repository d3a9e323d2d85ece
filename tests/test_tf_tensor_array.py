"""``tf.TensorArray`` (``tf_compat/tensor_array.py``) against TensorFlow: eagerly, in loops unrolled while
tracing (the tf.function guide's ``for i in tf.range(...)``), and carried through a traced ``tf.while_loop``."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf


@pytest.fixture(scope="module")
def rtf():
    return pytest.importorskip("tensorflow")

def _same(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, (got, want)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_tensor_array_in_an_unrolled_tf_range_loop(rtf):
    """The tf.function guide's pattern: a dynamic array written in ``for i in tf.range(static)``."""
    def make(t):
        @t.function
        def double(x):
            ta = t.TensorArray(t.float32, size=0, dynamic_size=True)
            for i in t.range(x.shape[0]):
                ta = ta.write(i, x[i] * 2.0)
            return ta.stack(), ta.size()
        return double

    x = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], np.float32)
    for g, w in zip(make(tf)(x), make(rtf)(x)):
        _same(g, w.numpy())


def test_tensor_array_guide_dynamic_rnn(rtf):
    def make(t):
        @t.function
        def dynamic_rnn(rnn_step, input_data, initial_state):
            input_data = t.transpose(input_data, [1, 0, 2])
            max_seq_len = input_data.shape[0]
            states = t.TensorArray(t.float32, size=max_seq_len)
            state = initial_state
            for i in t.range(max_seq_len):
                state = rnn_step(input_data[i], state)
                states = states.write(i, state)
            return t.transpose(states.stack(), [1, 0, 2])
        return dynamic_rnn

    x = np.random.default_rng(0).uniform(size=(2, 3, 4)).astype(np.float32)
    step = lambda inp, state: inp + state  # noqa: E731
    _same(make(tf)(step, x, np.zeros((2, 4), np.float32)), make(rtf)(step, x, np.zeros((2, 4), np.float32)).numpy())


def test_tensor_array_carried_through_a_traced_while_loop(rtf):
    def make(t, element_shape):
        @t.function
        def squares(x, n):
            ta = t.TensorArray(t.float32, size=0, dynamic_size=True, element_shape=element_shape)
            fixed = t.TensorArray(t.float32, size=3)

            def body(i, ta, fixed):
                v = x * t.cast(i, t.float32)
                return i + 1, ta.write(i, v * v), fixed.write(i, v)
            _, ta, fixed = t.while_loop(lambda i, *_: i < n, body, [0, ta, fixed])
            return ta.stack(), ta.size(), fixed.stack(), fixed.read(1)
        return squares

    x = np.array([1.0, -2.0], np.float32)
    for shape in ([2], None):
        ours, theirs = make(tf, shape), make(rtf, shape)
        for n in (0, 2, 3):
            for g, w in zip(ours(x, np.int32(n)), theirs(x, np.int32(n))):
                _same(g, w.numpy())


def test_tensor_array_eager_methods(rtf):
    def program(t):
        ta = t.TensorArray(t.float32, size=0, dynamic_size=True)
        ta = ta.write(0, 1.0).write(2, 3.0)
        un = t.TensorArray(t.float32, size=2).unstack(t.constant([[1.0, 2.0], [3.0, 4.0]]))
        empty = t.TensorArray(t.int32, size=2, element_shape=[2])
        sc = t.TensorArray(t.float32, size=3).scatter([2, 0], t.constant([5.0, 6.0]))
        return [ta.stack(), ta.size(), ta.gather([2, 0]), ta.read(1), un.concat(), un.read(0), empty.stack(),
                sc.stack()]

    for g, w in zip(program(tf), program(rtf)):
        _same(g, w.numpy())
    assert tf.TensorArray(tf.float32, size=1, element_shape=[3]).element_shape.as_list() == [3]


def test_tensor_array_errors():
    with pytest.raises(tf.errors.OutOfRangeError, match="index 2 .*not resizeable.*size is 2"):
        tf.TensorArray(tf.float32, size=2).write(2, 1.0)
    with pytest.raises(ValueError, match="shape \\(2,\\).*element shape \\(1,\\)"):
        tf.TensorArray(tf.float32, size=2).write(0, [1.0]).write(1, [1.0, 2.0])
    with pytest.raises(ValueError, match="size must be given"):
        tf.TensorArray(tf.float32)

    def runtime_range(n):
        ta = tf.TensorArray(tf.float32, size=0, dynamic_size=True)
        for i in tf.range(n):
            ta = ta.write(i, 1.0)
        return ta.stack()

    assert tf.function(runtime_range)(np.int32(3)).tolist() == [1.0, 1.0, 1.0]   # converted to a while loop
    with pytest.raises(TypeError, match="tf.range\\(n\\).*AutoGraph.*tf.while_loop"):
        tf.function(runtime_range, autograph=False)(np.int32(3))
