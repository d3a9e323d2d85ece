"""``Variable.path`` has Keras 3's meaning (the layers' names and the weight's, joined by "/"), checked against
real Keras 3 on the models where the two agree (a layer built on its own, a functional model, an RNN's cell)."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")

import onnxforge.keras as fkeras  # noqa: E402


def _functional(lib):
    x = lib.Input((4, 3))
    h = lib.layers.LSTM(2, name="lstm", return_sequences=True)(x)
    return lib.Model(x, lib.layers.Dense(1, name="head")(h))


def test_path_is_the_full_name():
    dense = fkeras.layers.Dense(2, name="d1")
    dense.build((None, 3))
    assert [w.path for w in dense.weights] == ["d1/kernel", "d1/bias"]
    assert [w.path for w in _functional(fkeras).weights] == [
        "lstm/lstm_cell/kernel", "lstm/lstm_cell/recurrent_kernel", "lstm/lstm_cell/bias", "head/kernel", "head/bias"]


def test_path_matches_keras():
    keras = pytest.importorskip("keras")
    dense = {lib: lib.layers.Dense(2, name="d1") for lib in (keras, fkeras)}
    for layer in dense.values():
        layer.build((None, 3))
    assert [w.path for w in dense[fkeras].weights] == [w.path for w in dense[keras].weights]
    assert [w.path for w in _functional(fkeras).weights] == [w.path for w in _functional(keras).weights]
    assert np.array_equal(dense[fkeras].kernel.numpy().shape, (3, 2))


# ---------------------------------------------------------------------------------------- outside a trace
def test_host_conversions():
    dense = fkeras.layers.Dense(3, name="conv_d")
    dense.build((None, 4))
    kernel = dense.kernel
    assert np.asarray(kernel).shape == (4, 3) and np.array(kernel).dtype == np.float32
    assert np.asarray(kernel, dtype=np.float64).dtype == np.float64
    np.asarray(kernel)[0, 0] = 99.0                   # a copy: the weight does not change behind the runtime
    assert kernel.numpy()[0, 0] != 99.0
    np.testing.assert_array_equal(fkeras.ops.convert_to_numpy(kernel), kernel.numpy())
    assert kernel.ndim == 2 and len(kernel) == 4 and len(dense.bias) == 3
    count = fkeras.Variable(np.asarray(7, np.int64), name="count")
    assert int(count) == 7 and float(count) == 7.0 and bool(count) and list(range(3))[:count] == [0, 1, 2]
    assert not bool(fkeras.Variable(0.0))
    with pytest.raises(ValueError, match="ambiguous"):
        bool(kernel)
    with pytest.raises(TypeError, match="len"):
        len(count)


def test_comparisons_and_eager_ops():
    v = fkeras.Variable(np.asarray([-1.0, 0.0, 2.0], np.float32), name="cmp")
    assert (v > 0).tolist() == [False, False, True] and (v <= 0).tolist() == [True, True, False]
    assert v in [fkeras.Variable(np.zeros(3, np.float32)), v]     # == stays identity: weights live in lists
    assert float(fkeras.ops.sum(v)) == 1.0
    np.testing.assert_allclose(np.asarray(fkeras.ops.add(v, 1.0)), [0.0, 1.0, 3.0])
    assert float(fkeras.ops.norm(v)) == pytest.approx(5 ** 0.5)


def test_keras_variable_constructor():
    import onnxforge as of

    v = fkeras.Variable(initializer="ones", shape=(2,), name="scale")
    assert (v.name, v.path, v.dtype, v.numpy().tolist()) == ("scale", "scale", np.float32, [1.0, 1.0])
    assert fkeras.Variable(np.zeros(3)).dtype == np.float64          # an array keeps its dtype
    assert fkeras.Variable(1.0).dtype == np.float32 and fkeras.Variable(3).dtype == np.int32
    assert fkeras.Variable([1.0, 2.0], dtype="float16").dtype == np.float16
    assert not fkeras.Variable(np.zeros(2), trainable=False).trainable
    with pytest.raises(ValueError, match="shape"):
        fkeras.Variable(initializer="zeros")
    with pytest.raises(ValueError, match="cannot contain character `/`"):
        fkeras.Variable(1.0, name="a/b")
    dense = fkeras.layers.Dense(1)
    dense.build((None, 2))
    assert isinstance(dense.kernel, fkeras.Variable) and isinstance(v, of.Variable)
    from onnxforge.variables import Variable as CoreVariable

    names = [fkeras.Variable(1.0).name, CoreVariable(np.zeros(2)).name]   # Keras: "variable", then unique
    assert all(n == "variable" or n.startswith("variable_") for n in names) and names[0] != names[1]
    assert of.Variable(np.zeros(2)).name.startswith("Variable")   # tf.Variable keeps TensorFlow's names


def test_keras_variable_matches_keras():
    keras = pytest.importorskip("keras")
    for args, kwargs in [((np.zeros(3),), {}), ((1.0,), {}), (("ones",), {"shape": (2, 2)}),
                         ((np.ones(2),), {"dtype": "float32", "trainable": False})]:
        ours, theirs = fkeras.Variable(*args, **kwargs), keras.Variable(*args, **kwargs)
        assert (str(ours.dtype), ours.shape, ours.trainable) == (theirs.dtype, tuple(theirs.shape), theirs.trainable)
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


@pytest.mark.parametrize("lib", ["keras", "onnxforge"])
def test_numpy_is_a_copy(lib):
    """Style transfer's ``deprocess_image(combination_image.numpy())`` adds the channel means in place: the
    Variable must not change (before, onnxforge handed out its host array and the next step read the edit)."""
    api = pytest.importorskip("keras") if lib == "keras" else fkeras
    image = api.Variable(np.ones((2, 3), np.float32))
    optimizer = api.optimizers.SGD(0.5)
    for _ in range(2):   # the second round reads the value the first update left on the runtime
        host = image.numpy()
        host += 100.0
        host[0, 0] = -1.0
        optimizer.apply_gradients([(api.ops.ones((2, 3)), image)])
    np.testing.assert_allclose(np.asarray(image.numpy()), np.zeros((2, 3)), atol=1e-6)
    np.testing.assert_allclose(np.asarray(image.numpy() + image), np.zeros((2, 3)), atol=1e-6)
