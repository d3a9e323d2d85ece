"""Programs from tensorflow.org's tutorials ("Introduction to tensors", "... to gradients and automatic
differentiation", "... to Variables", "... to modules, layers and models", "Basic training loops",
"tf.function"), shrunk to small shapes, run with ``import onnxforge as tf`` and compared with TensorFlow."""
from __future__ import annotations

import contextlib

import numpy as np
import pytest

import onnxforge as tf


@pytest.fixture(scope="module")
def rtf():
    return pytest.importorskip("tensorflow")


def _np(x):
    return np.asarray(x.numpy() if hasattr(x, "numpy") else x)


# ------------------------------------------------------------------------------------------ tf.Module
def _modules(t):
    class Dense(t.Module):
        def __init__(self, in_features, out_features, name=None):
            super().__init__(name=name)
            self.w = t.Variable(t.ones([in_features, out_features]) * 0.1, name="w")
            self.b = t.Variable(t.zeros([out_features]), name="b")
            self.frozen = t.Variable(1.0, trainable=False, name="frozen")

        def __call__(self, x):
            return t.nn.relu(t.matmul(x, self.w) + self.b) * self.frozen

    class SequentialModule(t.Module):
        def __init__(self, name=None):
            super().__init__(name=name)
            self.dense_2 = Dense(3, 2)
            self.dense_1 = Dense(3, 3)
            self.extra = [t.Variable(2.0, name="extra"), {"z": t.Variable(3.0, name="z")}]

        def __call__(self, x):
            return self.dense_2(self.dense_1(x)) * self.extra[0]

    return SequentialModule(name="the_model"), Dense


def _names(variables):
    return [v.name.split(":")[0].split("/")[-1] for v in variables]


def test_module_walks_variables_and_submodules_in_tensorflows_order(rtf):
    mine, _ = _modules(tf)
    theirs, _ = _modules(rtf)
    assert mine.name == theirs.name == "the_model"
    for attr in ("variables", "trainable_variables", "non_trainable_variables"):
        assert _names(getattr(mine, attr)) == _names(getattr(theirs, attr)), attr
        for a, b in zip(getattr(mine, attr), getattr(theirs, attr)):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert [m.name for m in mine.submodules] == [m.name for m in theirs.submodules] == ["dense", "dense"]
    x = np.array([[2.0, 2.0, 2.0]], "float32")
    np.testing.assert_allclose(_np(mine(x)), theirs(x).numpy())


def test_module_default_name_and_bad_name():
    _, dense = _modules(tf)

    class MyFancyModule(tf.Module):
        pass

    assert MyFancyModule().name == "my_fancy_module" and dense(1, 1).name == "dense"
    with pytest.raises(ValueError, match="not a valid module name"):
        tf.Module(name="has space")
    with tf.Module(name="scope").name_scope as scope:
        assert scope == "scope/"


def test_module_holding_a_keras_layer_lists_its_weights(rtf):
    class Wrapper(tf.Module):
        def __init__(self):
            super().__init__()
            self.layer = tf.keras.layers.Dense(2)
            self.layer.build((None, 3))
            self.scale = tf.Variable(1.0)

    w = Wrapper()
    assert len(w.trainable_variables) == 3 and w.submodules == (w.layer,)


def _training_loop(t):
    x = t.constant(np.linspace(-2, 2, 16, dtype="float32"))
    y = x * 3.0 + 2.0 + t.constant(np.sin(np.arange(16, dtype="float32")))

    class MyModel(t.Module):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.w = t.Variable(5.0)
            self.b = t.Variable(0.0)

        def __call__(self, x):
            return self.w * x + self.b

    model = MyModel()
    for _ in range(4):
        with t.GradientTape() as tape:
            loss = t.reduce_mean(t.square(y - model(x)))
        dw, db = tape.gradient(loss, model.trainable_variables[::-1])[::-1]
        model.b.assign_sub(0.1 * db)
        model.w.assign_sub(0.1 * dw)
    return [model.w.numpy(), model.b.numpy(), _np(loss)]


def test_basic_training_loop_of_a_module_matches_tensorflow(rtf):
    for got, want in zip(_training_loop(tf), _training_loop(rtf)):
        np.testing.assert_allclose(got, want, rtol=1e-5)


def test_checkpoint_of_a_module_and_a_function_method(tmp_path):
    mine, _ = _modules(tf)

    class WithFunction(tf.Module):
        def __init__(self):
            super().__init__()
            self.inner = mine

        @tf.function
        def __call__(self, x):
            return self.inner(x)

    model = WithFunction()
    x = np.ones((1, 3), "float32")
    before = _np(model(x))
    path = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    mine.dense_1.w.assign(np.zeros((3, 3), "float32"))
    assert not np.allclose(_np(model(x)), before)
    tf.train.Checkpoint(model=model).restore(path)
    np.testing.assert_allclose(_np(model(x)), before)


# ------------------------------------------------------------------------------------------ tensors, errors
def test_reshape_and_gather_raise_invalid_argument(rtf):
    for t in (tf, rtf):
        with pytest.raises(t.errors.InvalidArgumentError):
            t.reshape(t.range(24), [7, -1])
        with pytest.raises(t.errors.InvalidArgumentError):
            t.reshape(t.range(6), [4, 2])
        with pytest.raises(t.errors.InvalidArgumentError):
            t.gather(t.constant([1.0, 2.0]), 5)
    with pytest.raises(ValueError, match="requires a multiple of 7"):   # a ValueError too, for Keras code
        tf.reshape(tf.range(24), [7, -1])
    assert issubclass(tf.errors.InvalidArgumentError, tf.errors.OpError)


@pytest.mark.parametrize("index_shape,axis,batch_dims", [((2, 5), 1, 1), ((2, 3, 6), 2, 2), ((2, 7), 2, 1),
                                                         ((2, 3, 2, 2), 3, 1), ((2, 3), -1, -1), ((2, 4), None, 1)])
def test_tf_gather_with_batch_dims_matches_tensorflow_values_and_gradients(rtf, index_shape, axis, batch_dims):
    """The masked autoencoder's ``tf.gather(patches, mask_indices, axis=1, batch_dims=1)``, values and the
    gradient with respect to ``params`` (it trains through the gathered patches)."""
    rng = np.random.default_rng(0)
    params = rng.normal(size=(2, 3, 4, 5)).astype("float32")
    size = params.shape[batch_dims if axis is None else axis]
    indices = rng.integers(0, size, index_shape)
    out = {}
    for name, t in (("tf", rtf), ("onnxforge", tf)):
        p = t.Variable(params)
        with t.GradientTape() as tape:
            g = t.gather(p, indices, axis=axis, batch_dims=batch_dims)
            loss = t.reduce_sum(g * t.cos(g))
        out[name] = (np.asarray(g), np.asarray(tape.gradient(loss, p)))
    for want, got in zip(out["tf"], out["onnxforge"]):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    with pytest.raises(tf.errors.InvalidArgumentError, match="should be equal to indices.shape"):
        tf.gather(params, np.zeros((3, 2), "int64"), axis=1, batch_dims=1)


def test_tensor_basics_match_tensorflow(rtf):
    def program(t):
        m = t.constant([[1, 2], [3, 4], [5, 6]], dtype=t.float16)
        return {"item": m[1, 1].numpy(), "shape": t.shape(t.zeros([3, 2, 4])), "rmax": t.reduce_max([1, 2, 3]),
                "rsum": t.reduce_sum([1.0, 2.0]), "size": t.size(t.zeros([3, 2]))}

    got, want = program(tf), program(rtf)
    for key in want:
        w = _np(want[key])
        assert _np(got[key]).dtype == w.dtype, key
        np.testing.assert_array_equal(_np(got[key]), w)


def test_variables_behave_as_in_tensorflow(rtf):
    def program(t):
        a = t.Variable([2.0, 3.0])
        x2 = t.Variable(2.0) + 1.0
        before = a.read_value()
        out = a.assign_add([2, 3])
        return {"is_tensor": t.is_tensor(x2), "x2": x2.numpy(), "after": out.numpy(), "before": before.numpy(),
                "sub": a.assign_sub([1.0, 1.0]).numpy(), "chained": a.assign([5, 6]).read_value().numpy()}

    got, want = program(tf), program(rtf)
    for key in want:
        np.testing.assert_array_equal(np.asarray(got[key]), np.asarray(want[key]), err_msg=key)


# ------------------------------------------------------------------------------------------ GradientTape
def _autodiff(t):
    out = {}
    x0 = t.Variable(3.0, name="x0")
    x1 = t.Variable(3.0, name="x1", trainable=False)
    x2 = t.Variable(2.0, name="x2") + 1.0
    x3 = t.constant(3.0, name="x3")
    with t.GradientTape() as tape:
        y = (x0 ** 2) + (x1 ** 2) + (x2 ** 2)
    grads = tape.gradient(y, [x0, x1, x2, x3])
    out["g0"], out["none"] = grads[0], [g is None for g in grads[1:]]
    out["watched"] = [v.name.split(":")[0] for v in tape.watched_variables()]
    a, b = t.Variable(0.0, name="a"), t.Variable(10.0, name="b")
    with t.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(b)
        y = t.reduce_sum(t.math.sin(a) + t.nn.softplus(b))
    grads = tape.gradient(y, {"a": a, "b": b})
    out["a_none"], out["b"] = grads["a"] is None, grads["b"]
    out["watched_b"] = [v.name.split(":")[0] for v in tape.watched_variables()]
    x, z = t.Variable([2.0, 2.0]), t.Variable(3.0)
    with t.GradientTape(persistent=True) as tape:
        w = z ** 2
    out["zero"] = tape.gradient(w, x, unconnected_gradients=t.UnconnectedGradients.ZERO)
    out["none_default"] = tape.gradient(w, z) is not None
    return out


def test_autodiff_tutorial_matches_tensorflow(rtf):
    got, want = _autodiff(tf), _autodiff(rtf)
    for key in want:
        if isinstance(want[key], (list, bool)):
            assert got[key] == want[key], key
        else:
            np.testing.assert_allclose(_np(got[key]), _np(want[key]), err_msg=key)


def test_watched_variables_in_a_traced_step():
    w, frozen, unused = tf.Variable(2.0, name="w"), tf.Variable(1.0, name="f", trainable=False), tf.Variable(0.0)
    seen = {}

    @tf.function
    def step(x):
        u = unused * 1.0
        with tf.GradientTape() as tape:
            tape.watch(frozen)
            y = w * frozen * x
        seen["names"] = [v.name for v in tape.watched_variables()]
        return tape.gradient(y, w) + u

    assert float(step(np.float32(2.0))) == 2.0 and seen["names"] == ["w", "f"]


# ------------------------------------------------------------------------------------------ tf.function
def test_input_signature_binds_as_tensorflow(rtf):
    def program(t):
        @t.function(input_signature=(t.TensorSpec(shape=[None], dtype=t.int32),))
        def next_collatz(x):
            return t.where(x % 2 == 0, x // 2, 3 * x + 1)
        return next_collatz

    mine, theirs = program(tf), program(rtf)
    for arg in (np.array([1, 2, 7], "int32"), [4, 5], np.array([1.5, 4.0])):
        got, want = mine(arg), theirs(arg).numpy()
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    for t, run in ((tf, mine), (rtf, theirs)):
        for bad in (np.array([[1, 2]], "int32"), t.constant([1.0]), np.int32(3)):
            with pytest.raises(TypeError, match="Binding inputs"):
                run(bad)
    with pytest.raises(TypeError, match="too many"):
        mine(np.array([1], "int32"), np.array([1], "int32"))


def test_function_returning_constants_or_nothing():
    @tf.function
    def constants():
        return tf.constant(1.0) * 2, tf.constant([1, 2])

    @tf.function
    def nothing(x):
        return None

    a, b = constants()
    assert float(a) == 2.0 and b.dtype == np.int32 and b.tolist() == [1, 2]
    assert nothing(3) is None


# ------------------------------------------------------------------------ keras.io distributed training
def test_single_device_mirrored_strategy(rtf):
    """keras.io's distributed-training guide: ``MirroredStrategy()``, its replica count, a model built,
    compiled and fit inside ``scope()`` (TensorFlow here sees one CPU: one replica, as onnxforge always has)."""
    mine, theirs = tf.distribute.MirroredStrategy(), rtf.distribute.MirroredStrategy()
    assert mine.num_replicas_in_sync == theirs.num_replicas_in_sync == 1
    rng = np.random.default_rng(0)
    x, y = rng.random((16, 3)).astype("float32"), rng.random((16, 1)).astype("float32")

    def fitted(scope):
        keras = tf.keras
        with scope:
            model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, kernel_initializer="ones")])
            model.compile(optimizer="sgd", loss="mse")
            return model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history["loss"]

    with mine.scope() as entered:
        assert entered is mine
    # One replica: training inside the scope is training without one.
    assert fitted(mine.scope()) == fitted(contextlib.nullcontext())
    with pytest.raises(NotImplementedError, match="MPIStrategy"):
        tf.distribute.MirroredStrategy(["/gpu:0", "/gpu:1"])
