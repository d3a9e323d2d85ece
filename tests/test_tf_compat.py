"""``import onnxforge as tf``: the TensorFlow tensor functions that Keras programs call around
``tf.GradientTape`` have TensorFlow's defaults (checked against NumPy's equivalents), and a train_step
written with them trains."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf
from onnxforge import keras

X = np.arange(12, dtype="float32").reshape(3, 4)


@pytest.mark.parametrize("got,want", [
    (lambda: tf.reduce_mean(X, axis=1), X.mean(1)),
    (lambda: tf.reduce_sum(X, axis=[0, 1], keepdims=True), X.sum((0, 1), keepdims=True)),
    (lambda: tf.reduce_max(X), X.max()),
    (lambda: tf.concat([X, X], axis=0), np.concatenate([X, X])),
    (lambda: tf.gather(X, [2, 0]), X[[2, 0]]),                         # axis 0 by default
    (lambda: tf.argmax(X), X.argmax(0)),                                 # axis 0 by default
    (lambda: tf.split(X, [1, 3], axis=1), np.split(X, [1], axis=1)),     # sizes, not cut indices
    (lambda: tf.split(X, 2, axis=1), np.split(X, 2, axis=1)),
    (lambda: tf.matmul(X, X, transpose_b=True), X @ X.T),
    (lambda: tf.range(2, 8, 3), np.arange(2, 8, 3)),
    (lambda: tf.clip_by_value(X, 2.0, 5.0), np.clip(X, 2, 5)),
    (lambda: tf.transpose(X, [1, 0]), X.T),
    (lambda: tf.one_hot([0, 2], 3, on_value=5.0, off_value=-1.0), np.where(np.eye(3)[[0, 2]] > 0, 5.0, -1.0)),
    (lambda: tf.zeros((2, 2)), np.zeros((2, 2))),
    (lambda: tf.constant([1.0, 2.0]).dtype, np.dtype("float32")),
    # tf.fill has its value's type, Python numbers as TensorFlow types them (keras.ops.full would give floatx)
    (lambda: tf.fill((2,), 3).dtype, np.dtype("int32")), (lambda: tf.fill((2,), 3.0).dtype, np.dtype("float32")),
    (lambda: tf.fill((2,), True).dtype, np.dtype("bool")), (lambda: tf.fill((2,), 3), np.full(2, 3)),
    (lambda: tf.range(np.int64(3)).dtype, np.dtype("int64")),   # a tensor bound: its own type
    (lambda: tf.nn.softmax(X), np.exp(X) / np.exp(X).sum(-1, keepdims=True)),
    (lambda: tf.math.reduce_logsumexp(X, axis=0), np.log(np.exp(X).sum(0))),
    (lambda: tf.shape(X)[1], 4),
])
def test_tensorflow_defaults(got, want):
    out = got()
    if isinstance(want, list):
        assert len(out) == len(want)
        for a, b in zip(out, want):
            np.testing.assert_allclose(np.asarray(a), b, rtol=1e-5)
    elif isinstance(want, np.dtype):
        assert out == want
    else:
        np.testing.assert_allclose(np.asarray(out), want, rtol=1e-5)


def test_a_tensorflow_style_train_step_trains():
    """A GAN-style step: tf.shape, tf.random.uniform label noise, tf.reduce_mean and tf.GradientTape."""
    class Model(keras.Model):
        def __init__(self):
            super().__init__()
            self.net = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
            self.tracker = keras.metrics.Mean(name="loss")

        @property
        def metrics(self):
            return [self.tracker]

        def train_step(self, data):
            x, y = data
            noise = 0.01 * tf.random.uniform(tf.shape(y))
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(self.net(x) - (y + noise)))
            grads = tape.gradient(loss, self.net.trainable_weights)
            self.optimizer.apply_gradients(zip(grads, self.net.trainable_weights))
            self.tracker.update_state(loss)
            return {"loss": self.tracker.result()}

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5]], "float32")
    model = Model()
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    history = model.fit(x, y, batch_size=16, epochs=5, verbose=0)
    assert history.history["loss"][-1] < 0.1 * history.history["loss"][0]


# ------------------------------------------------------------------ the names the tf.keras guides use
def test_the_guides_tensorflow_names_resolve():
    for name in ("data.Dataset", "data.AUTOTUNE", "data.experimental.AUTOTUNE", "add_n", "nest.flatten",
                 "nest.map_structure", "nest.pack_sequence_as", "TensorShape", "Tensor", "print", "equal",
                 "not_equal", "sequence_mask", "boolean_mask", "config.run_functions_eagerly"):
        obj = tf
        for part in name.split("."):
            obj = getattr(obj, part)
    assert tf.data.Dataset is keras.utils.Dataset and tf.data.AUTOTUNE == -1


def test_unsupported_tf_data_and_config_names_say_so():
    with pytest.raises(AttributeError, match="tf.data.TFRecordDataset is not supported"):
        tf.data.TFRecordDataset
    with pytest.raises(AttributeError, match="tf.config.set_visible_devices is not supported"):
        tf.config.set_visible_devices


def test_gpu_setup_preamble_runs():
    """tf.keras 2 scripts open with this; the answer follows onnxruntime's providers, as TF's follows CUDA."""
    import onnxruntime

    gpus = tf.config.list_physical_devices("GPU")
    assert bool(gpus) == ("CUDAExecutionProvider" in onnxruntime.get_available_providers())
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)
        assert tf.config.experimental.get_memory_growth(gpu)
    cpus = tf.config.experimental.list_physical_devices("CPU")
    assert [(d.name, d.device_type) for d in cpus] == [("/physical_device:CPU:0", "CPU")]
    assert len(tf.config.list_physical_devices()) == 1 + len(gpus)
    with pytest.raises(ValueError, match="device='GPU'"):
        tf.config.experimental.set_memory_growth("GPU", True)


def test_fit_takes_a_tf_data_pipeline():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 3)).astype("float32"), np.ones((20, 1), "float32")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(20).batch(5).prefetch(tf.data.AUTOTUNE)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(ds, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    xb, _ = next(iter(ds))
    assert isinstance(xb, tf.Tensor) and xb.numpy().shape == (5, 3)


# Expected values below are what TensorFlow 2.21 returns for the same calls.
NEST = {"b": [1, (2, None)], "a": 3, "c": "x"}


def test_nest_matches_tensorflow():
    assert tf.nest.flatten(NEST) == [3, 1, 2, None, "x"]
    assert tf.nest.flatten(None) == [None] and tf.nest.flatten("ab") == ["ab"]
    assert tf.nest.map_structure(lambda x, y: (x, y), {"b": 1, "a": [2, 3]}, {"a": [4, 5], "b": 6}) == \
        {"b": (1, 6), "a": [(2, 4), (3, 5)]}
    packed = tf.nest.pack_sequence_as({"b": 0, "a": [0, (0,)]}, [1, 2, 3])
    assert packed == {"b": 3, "a": [1, (2,)]} and list(packed) == ["b", "a"]   # the structure's key order
    point = __import__("collections").namedtuple("Point", "x y")
    assert tf.nest.map_structure(lambda v: v * 2, point(1, [2])) == point(2, [4])
    assert tf.nest.map_structure(lambda a, b: a + b, [1, 2], (1, 2), check_types=False) == [2, 4]
    with pytest.raises(TypeError):
        tf.nest.map_structure(lambda a, b: a, [1, 2], (1, 2))
    with pytest.raises(ValueError, match="same number of elements"):
        tf.nest.map_structure(lambda a, b: a, [1, 2], [1])
    with pytest.raises(ValueError, match="Structure had 2 atoms, but flat_sequence had 1"):
        tf.nest.pack_sequence_as([0, 0], [1])


def test_tensor_shape_matches_tensorflow():
    s = tf.TensorShape([None, 3])
    assert (repr(s), s.as_list(), s.rank, len(s), s[1], repr(s[:1]), str(s)) == \
        ("TensorShape([None, 3])", [None, 3], 2, 2, 3, "TensorShape([None])", "(None, 3)")
    assert s == [None, 3] and s == (None, 3) and s != [2, 3] and not s.is_fully_defined()
    assert tf.TensorShape([2, 3]).num_elements() == 6 and tf.TensorShape([2]).concatenate([3]) == (2, 3)
    assert tf.zeros(tf.TensorShape([2, 3])).shape == (2, 3)
    unknown = tf.TensorShape(None)
    assert unknown.rank is None and repr(unknown) == "TensorShape(None)"
    with pytest.raises(ValueError, match="unknown TensorShape"):
        unknown.as_list()


def test_tensor_is_the_type_of_onnxforge_tensors_as_in_tensorflow():
    assert isinstance(tf.constant(1.0), tf.Tensor) and isinstance(tf.ones(2) * 2, tf.Tensor)
    assert not isinstance(np.ones(2), tf.Tensor)
    assert not isinstance(tf.Variable(np.ones(2, "float32"), name="v"), tf.Tensor)
    assert isinstance(keras.Input((2,)), tf.Tensor)
    seen = []
    keras.Sequential([keras.Input((2,)), keras.layers.Lambda(lambda t: seen.append(isinstance(t, tf.Tensor)) or t)])
    assert seen and all(seen)
    assert tf.constant([1.0, 2.0]).numpy().tolist() == [1.0, 2.0]
    with pytest.raises(TypeError, match="tf.constant"):
        tf.Tensor()


@pytest.mark.parametrize("args,kwargs,want", [
    (("loss", 1.5, 3, [1, 2]), {}, "loss 1.5 3 [1, 2]\n"),
    ((np.array([1.0, 2.5, 3.0], "float32"),), {}, "[1 2.5 3]\n"),
    ((np.arange(10),), {}, "[0 1 2 ... 7 8 9]\n"),
    ((np.arange(10),), {"summarize": -1}, "[0 1 2 3 4 5 6 7 8 9]\n"),
    ((np.arange(30).reshape(10, 3),), {},
     "[[0 1 2]\n [3 4 5]\n [6 7 8]\n ...\n [21 22 23]\n [24 25 26]\n [27 28 29]]\n"),
    (({"a": 2},), {"sep": ",", "end": "!\n"}, "{'a': 2}!\n"),
    ((np.array([0.1, 1e-9], "float32"),), {}, "[0.1 1e-09]\n"),
    ((np.array([[1.25, 2], [3, 4]], "float32"),), {}, "[[1.25 2]\n [3 4]]\n"),
    ((np.array([True, False]),), {}, "[1 0]\n"),
    ((np.float32(7.0),), {}, "7\n"),
])
def test_print_formats_as_tensorflow(args, kwargs, want):
    import io
    stream = io.StringIO()
    tf.print(*[tf.constant(a) if isinstance(a, (np.ndarray, np.generic)) else a for a in args],
             output_stream=stream, **kwargs)
    assert stream.getvalue() == want


def test_print_of_a_graph_value_says_it_cannot():
    class Show(keras.layers.Layer):
        def call(self, x):
            tf.print("x", x)
            return x

    with pytest.raises(NotImplementedError, match="ONNX has no print op"):
        keras.Sequential([keras.Input((2,)), Show()]).predict(np.ones((2, 2), "float32"), verbose=0)


@pytest.mark.parametrize("got,want", [
    (lambda: tf.sequence_mask([1, 3, 2], 5),
     [[True, False, False, False, False], [True, True, True, False, False], [True, True, False, False, False]]),
    (lambda: tf.sequence_mask([[1], [2]]), [[[True, False]], [[True, True]]]),
    (lambda: tf.sequence_mask([1, 2], dtype=tf.float32), [[1.0, 0.0], [1.0, 1.0]]),
    (lambda: tf.boolean_mask(np.arange(24).reshape(2, 3, 4), [True, False]), [np.arange(12).reshape(3, 4).tolist()]),
    (lambda: tf.boolean_mask(np.arange(24).reshape(2, 3, 4), [[True, False, True], [False, False, True]]),
     [[0, 1, 2, 3], [8, 9, 10, 11], [20, 21, 22, 23]]),
    (lambda: tf.boolean_mask(np.arange(24).reshape(2, 3, 4), [[True, False, True, False]] * 3, axis=1),
     [[0, 2, 4, 6, 8, 10], [12, 14, 16, 18, 20, 22]]),
    (lambda: tf.add_n([np.ones(2, "float32"), np.full(2, 2.0, "float32")]), [3.0, 3.0]),
    (lambda: tf.equal([1, 2], 2), [False, True]),
    (lambda: tf.not_equal([1, 2], [1, 3]), [False, True]),
])
def test_mask_and_sum_functions_match_tensorflow(got, want):
    assert np.asarray(got()).tolist() == want


def test_add_n_rejects_what_tensorflow_rejects():
    with pytest.raises(ValueError, match="at least one"):
        tf.add_n([])
    with pytest.raises(ValueError, match="same shape"):
        tf.add_n([np.ones(2), np.ones((1, 2))])


def test_sequence_mask_in_a_functional_model_with_a_dynamic_width():
    lengths = keras.Input((), dtype="int32")
    model = keras.Model(lengths, keras.layers.Lambda(lambda n: tf.cast(tf.sequence_mask(n), "float32"))(lengths))
    assert model.predict(np.array([1, 3, 0], "int32"), verbose=0).tolist() == [[1, 0, 0], [1, 1, 1], [0, 0, 0]]


def test_a_masked_loss_with_boolean_mask_add_n_and_not_equal_trains():
    class Model(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(1)

        def call(self, x):
            return self.dense(x)

        def train_step(self, data):
            x, y = data
            with tf.GradientTape() as tape:
                pred = tf.squeeze(self(x), -1)
                keep = tf.not_equal(y, -1.0)   # -1 marks a missing label
                loss = tf.add_n([tf.reduce_mean(tf.boolean_mask(tf.square(pred - y), keep)), 0.0 * pred[0]])
            grads = tape.gradient(loss, self.trainable_weights)
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
            return {"loss": loss, "kept": tf.reduce_sum(tf.cast(keep, "float32"))}

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype("float32")
    y = x @ np.array([1.0, -2.0, 0.5], "float32")
    y[::4] = -1.0
    model = Model()
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    # Keras 3 logs a plain returned value as the epoch's last step; unshuffled, every batch of 16 keeps 12.
    history = model.fit(x, y, batch_size=16, epochs=5, verbose=0, shuffle=False).history
    assert history["kept"] == [12.0] * 5 and history["loss"][-1] < 0.05 * history["loss"][0]


def test_run_functions_eagerly_is_recorded():
    assert tf.config.functions_run_eagerly() is False
    tf.config.run_functions_eagerly(True)
    try:
        assert tf.config.functions_run_eagerly() is True
    finally:
        tf.config.run_functions_eagerly(False)


def test_tf2_experimental_preprocessing_names_are_the_layers():
    """TF 2.3-2.5 code imports preprocessing layers from `layers.experimental.preprocessing`."""
    from onnxforge.keras.layers.experimental.preprocessing import Normalization, Rescaling

    exp = tf.keras.layers.experimental
    for name in exp.preprocessing.__all__:
        assert getattr(exp.preprocessing, name) is getattr(keras.layers, name)
    assert exp.EinsumDense is keras.layers.EinsumDense
    data = np.arange(12, dtype=np.float32).reshape(4, 3)
    norm = Normalization()
    norm.adapt(data)
    model = keras.Sequential([keras.Input((3,)), Rescaling(2.0), norm])
    want = (data * 2.0 - data.mean(0)) / np.sqrt(data.var(0))
    np.testing.assert_allclose(model.predict(data, verbose=0), want, rtol=1e-5)
