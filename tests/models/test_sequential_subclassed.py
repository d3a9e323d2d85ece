"""Sequential (deferred build, add/pop, config), subclassed models and summary()."""
from __future__ import annotations

import numpy as np
import pytest

from onnxforge import layers as L
from onnxforge.graph import GraphBuilder
from onnxforge.layers.serialization import deserialize, serialize
from onnxforge.models import Input, Model, Sequential
from onnxforge.tracing import TraceContext
from tests.layers.helpers import run, trace


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# ------------------------------------------------------------------ Sequential
def test_input_shape_on_first_layer_builds_immediately():
    model = Sequential([L.Dense(4, input_shape=(3,), activation="relu"), L.Dense(2)], name="seq")
    assert model.built and model.inputs[0].shape == (None, 3) and model.outputs[0].shape == (None, 2)
    assert [type(layer).__name__ for layer in model.layers] == ["Dense", "Dense"]
    assert model.count_params() == 16 + 10
    x = _x(5, 3)
    (k1, b1), (k2, b2) = (layer.get_weights() for layer in model.layers)
    np.testing.assert_allclose(run(model, x), np.maximum(x @ k1 + b1, 0) @ k2 + b2, rtol=1e-5, atol=1e-6)


def test_deferred_build_by_build_or_by_trace():
    model = Sequential([L.Dense(4), L.Dense(2)])
    assert not model.built and model.weights == []
    with pytest.raises(ValueError, match="has not been built yet"):
        _ = model.inputs
    with pytest.raises(ValueError, match="isn't built"):
        model.count_params()
    model.build((None, 6))
    assert model.built and model.count_params() == 6 * 4 + 4 + 10
    other = Sequential([L.Dense(3), L.Dense(1)])
    b = GraphBuilder()
    with TraceContext(b, training=False).active():
        (out,) = other.trace([b.input("x", 1, ("batch", 7))], training=False)
    assert out.shape == ("batch", 1) and other.inputs[0].shape == (None, 7)
    with pytest.raises(ValueError, match="is built for input shape"):
        other.build((None, 8))


def test_add_input_pop_and_errors():
    model = Sequential(name="stack")
    model.add(Input(shape=(4,)))
    model.add(L.Dense(3, name="d1"))
    assert model.built and model.outputs[0].shape == (None, 3)
    model.add(L.Dense(2, name="d2"))
    assert model.outputs[0].shape == (None, 2)
    assert model.pop().name == "d2" and model.outputs[0].shape == (None, 3)
    with pytest.raises(ValueError, match="unique names"):
        model.add(L.Dense(1, name="d1"))
    with pytest.raises(TypeError, match="Only instances of `keras.Layer`"):
        model.add("dense")
    with pytest.raises(ValueError, match="already been configured"):
        model.add(Input(shape=(5,)))
    bad = L.Dense(2, name="bad")
    bad.build((None, 9))
    with pytest.raises(ValueError, match=r"Input 0 of layer \"bad\".*axis -1.*value 9.*\(None, 4\)"):
        Sequential([Input(shape=(4,)), bad])
    with pytest.raises(ValueError, match="already built: cannot add weight 'kernel'"):
        bad.build((None, 9))


def test_sequential_config_round_trip():
    model = Sequential([Input(shape=(6, 6, 1)), L.Conv2D(2, 3, activation="relu"), L.MaxPooling2D(),
                        L.Flatten(), L.Dropout(0.2), L.Dense(3, activation="softmax")], name="cnn")
    config = model.get_config()
    assert config["layers"][0]["class_name"] == "InputLayer" and config["build_input_shape"] == [None, 6, 6, 1]
    clone = Sequential.from_config(config)
    assert clone.get_config() == config
    clone.set_weights(model.get_weights())
    x = _x(2, 6, 6, 1)
    np.testing.assert_allclose(run(clone, x), run(model, x), rtol=1e-6)
    again = deserialize(serialize(model))
    assert isinstance(again, Sequential) and again.count_params() == model.count_params()


def test_sequential_unbuilt_config_and_nested_in_functional():
    seq = Sequential([L.Dense(2)], name="unbuilt")
    assert "build_input_shape" not in seq.get_config()
    x = Input(shape=(5,))
    model = Model(x, seq(x))  # building on first symbolic call
    assert seq.built and model.outputs[0].shape == (None, 2)


# ------------------------------------------------------------------ subclassed
class TwoLayer(Model):
    def __init__(self, units=4, **kwargs):
        super().__init__(**kwargs)
        self.hidden = L.Dense(units, activation="relu")
        self.drop = L.Dropout(0.5)
        self.out = L.Dense(1)

    def call(self, inputs, training=None):
        return self.out(self.drop(self.hidden(inputs), training=training))


def test_subclassed_model_builds_traces_and_reports():
    model = TwoLayer(name="two")
    assert model.layers == [model.hidden, model.drop, model.out] and model.weights == []
    with pytest.raises(ValueError, match="has no defined inputs"):
        _ = model.inputs
    model.build((None, 3))
    assert model.count_params() == 3 * 4 + 4 + 5
    assert model.inputs[0].shape == (None, 3) and model.outputs[0].shape == (None, 1)
    x = _x(4, 3)
    (k1, b1), (k2, b2) = model.hidden.get_weights(), model.out.get_weights()
    np.testing.assert_allclose(run(model, x), np.maximum(x @ k1 + b1, 0) @ k2 + b2, rtol=1e-5, atol=1e-6)
    traced = trace(model, ((3,), np.float32), training=True)
    assert traced.noise_names == ["noise_0"]  # training reaches the Dropout through call()
    # Keras 3's automatic config: plain constructor arguments serialize without a get_config() ...
    config = model.get_config()
    assert (config["name"], config["units"]) == ("two", 4)
    assert type(TwoLayer.from_config(config)) is TwoLayer
    # ... others need one.
    with pytest.raises(NotImplementedError, match="subclassed"):
        TwoLayer(units=np.int64(4)).get_config()


def test_subclassed_model_builds_on_first_trace_and_inside_functional():
    model = TwoLayer(units=2)
    b = GraphBuilder()
    with TraceContext(b, training=False).active():
        (out,) = model.trace([b.input("x", 1, ("batch", 5))], training=False)
    assert model.built and model.count_params() == 5 * 2 + 2 + 3
    wrapped = TwoLayer(units=3)
    x = Input(shape=(2,))
    assert Model(x, wrapped(x)).outputs[0].shape == (None, 1)


# ------------------------------------------------------------------ summary
def test_summary_table():
    model = Sequential([Input(shape=(8, 8, 1)), L.Conv2D(4, 3, activation="relu", name="conv"),
                        L.BatchNormalization(name="bn"), L.Flatten(name="flat"), L.Dense(10, name="logits")],
                       name="tiny")
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert lines[0] == 'Model: "tiny"'
    header = next(line for line in lines if "Layer (type)" in line)
    assert all(h in header for h in ("Output Shape", "Param #", "FLOPs"))
    conv_row = next(line for line in lines if "conv (Conv2D)" in line)
    # 6*6 outputs x 4 filters x (3*3*1) MACs x 2, + bias adds + relu.
    assert "(None, 6, 6, 4)" in conv_row and " 40 " in conv_row and "2,880" in conv_row
    assert "(None, 144)" in next(line for line in lines if "flat (Flatten)" in line)
    assert " Total params: 1,506 (5.88 KB)" in lines
    assert " Trainable params: 1,498 (5.85 KB)" in lines
    assert " Non-trainable params: 8 (32.00 B)" in lines
    # conv 2,880 + BN 2 per element (288) + dense 2*144*10 + 10 bias (2,890).
    assert "Total FLOPs: 6,058" in text and "Connected to" not in text
    assert "InputLayer" not in text


def test_functional_summary_shows_connections_and_subclassed_shapes():
    a, b = Input(shape=(3,), name="a"), Input(shape=(3,), name="b")
    model = Model([a, b], L.Add(name="sum")([a, b]), name="fan_in")
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Connected to" in text and "a[0][0]" in text and "b[0][0]" in text
    assert "a (InputLayer)" in text
    sub = TwoLayer()
    sub.build((None, 3))
    lines = []
    sub.summary(print_fn=lines.append)
    assert "(None, 4)" in next(line for line in lines if "(Dense)" in line)


def test_subclass_passing_itself_to_model_init():
    # TensorFlow's text-generation tutorial writes `super().__init__(self)`, which tf.keras 2 ignored.
    import onnxforge as tf

    class MyModel(tf.keras.Model):
        def __init__(self):
            super().__init__(self)
            self.dense = tf.keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    model = MyModel()
    assert model.name.startswith("my_model")
    assert tuple(model(np.ones((3, 4), np.float32)).shape) == (3, 2)


def test_sequential_built_by_a_call_takes_other_lengths_later():
    # Keras's Sequential never checks its input against the shape it was built for (a Transformer's
    # feed-forward block, built on the training length, then run one token at a time).
    seq = Sequential([L.Dense(3, kernel_initializer="ones"), L.Dense(2, kernel_initializer="ones")])
    seq(np.ones((2, 7, 4), np.float32))
    out = np.asarray(seq(np.ones((1, 1, 4), np.float32)))
    np.testing.assert_allclose(out, np.full((1, 1, 2), 12.0))
    with pytest.raises(ValueError, match="(?i)incompatible|expected"):
        seq(np.ones((1, 1, 5), np.float32))   # the Dense still checks its own last axis


class Tagger(Model):
    """keras.io's NER model in small: token ids to per-token tag probabilities (any sentence length)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.embed = L.Embedding(10, 4)
        self.tags = L.Dense(3, activation="softmax")

    def call(self, inputs):
        return self.tags(self.embed(inputs))


def test_subclassed_model_takes_new_sequence_lengths_after_build():
    """Built on one length, then fed batches padded to their own lengths and one sentence to predict: the
    differing axis becomes ``None`` (Keras runs ``call`` on any length) and the steps are built again at most
    once for the inputs and once for a user loss's targets, not once per length."""
    from onnxforge import keras, optimizers

    def masked_loss(y_true, y_pred):
        loss = keras.losses.sparse_categorical_crossentropy(y_true, y_pred)
        mask = keras.ops.cast(y_true > 0, "float32")
        return keras.ops.sum(loss * mask) / keras.ops.sum(mask)

    model = Tagger()
    model(np.zeros((1, 6), "int64"))
    assert model.inputs[0].shape == (None, 6)
    model.compile(optimizer=optimizers.SGD(0.1), loss=masked_loss)
    rng = np.random.default_rng(0)
    builds = []
    build_programs = model._build_programs
    model._build_programs = lambda: (builds.append(1), build_programs())[1]
    for width in (6, 4, 9, 5, 7):
        ids = rng.integers(1, 10, (3, width))
        loss = model.train_on_batch(ids, rng.integers(0, 3, (3, width)))
        assert np.isfinite(loss)
    assert model.inputs[0].shape == (None, None) and model.outputs[0].shape == (None, None, 3)
    assert 2 <= len(builds) <= 3   # the first build, then once for the inputs and once for the targets
    sentence = rng.integers(1, 10, (1, 3))
    np.testing.assert_allclose(model.predict(sentence, verbose=0), np.asarray(model(sentence)), rtol=1e-6)


def test_functional_model_keeps_its_declared_length():
    inputs = Input(shape=(6,), dtype="int64")
    model = Model(inputs, L.Dense(2)(L.Embedding(10, 4)(inputs)))
    with pytest.raises(ValueError, match=r"expected shape=\(None, 6\), found shape=\(1, 3\)"):
        model.predict(np.zeros((1, 3), "int64"), verbose=0)


def test_subclassed_model_keeps_its_shape_for_sizes_its_layers_refuse():
    """Only sizes the layers take widen the inputs: a Dense built on 3 features given 5 keeps the clear error."""
    model = TwoLayer()
    model(_x(2, 3))
    with pytest.raises(ValueError, match=r"incompatible: expected shape=\(None, 3\), found shape=\(4, 5\)"):
        model.predict(_x(4, 5), verbose=0)
    assert model.inputs[0].shape == (None, 3) and model.predict(_x(4, 3), verbose=0).shape == (4, 1)
