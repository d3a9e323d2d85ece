"""Patterns that public Keras 3 programs use, each a minimal program run by Keras 3 (torch) and onnxforge.

Each test writes one program once against the ``keras`` API and runs it with both libraries on the same
weights; the numbers must agree.
"""
from __future__ import annotations

import numpy as np
import pytest

from .common import copy_weights, fkeras, keras, max_diff, random_weights

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

RNG = np.random.default_rng(0)


def _pair(build):
    k, f = build(keras), build(fkeras)
    random_weights(k)
    copy_weights(k, f)
    return k, f


# --------------------------------------------------------------------------- functional input rank
def _image_model(K):
    inp = K.Input((6, 6, 1))
    x = K.layers.Conv2D(2, 3)(inp)
    return K.Model(inp, K.layers.Dense(3)(K.layers.Flatten()(x)))


def test_functional_model_takes_images_without_their_channel_axis_as_keras_does():
    """``(n, 28, 28)`` digits into ``Input((28, 28, 1))``: Keras adds the axis (and drops an extra one)."""
    k, f = _pair(_image_model)
    x = RNG.normal(size=(4, 6, 6)).astype("float32")
    want = k.predict(x, verbose=0)
    np.testing.assert_allclose(f.predict(x, verbose=0), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(f(x)), want, rtol=1e-5, atol=1e-6)
    # A wrapper model calls the functional one on rank-3 graph values (the trainer pattern).
    outer_in = fkeras.Input((6, 6))
    assert fkeras.Model(outer_in, f(outer_in)).output.shape == (None, 3)
    for m, K in ((k, keras), (f, fkeras)):
        m.compile(optimizer=K.optimizers.SGD(0.1), loss="mse")
    y = RNG.normal(size=(4, 3)).astype("float32")
    assert f.train_on_batch(x, y) == pytest.approx(k.train_on_batch(x, y), rel=1e-5)
    assert max_diff(k.get_weights(), f.get_weights()) < 1e-5


def test_functional_model_squeezes_a_trailing_unit_axis_and_refuses_other_ranks():
    def build(K):
        inp = K.Input((5,))
        return K.Model(inp, K.layers.Dense(2)(inp))

    k, f = _pair(build)
    x = RNG.normal(size=(3, 5, 1)).astype("float32")
    np.testing.assert_allclose(f.predict(x, verbose=0), k.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="incompatible"):
        f.predict(RNG.normal(size=(3, 5, 2)).astype("float32"), verbose=0)
    with pytest.raises(ValueError, match=r"expected ndim=2, found ndim=4"):
        f(fkeras.Input((5, 1, 1)))


# --------------------------------------------------------------------------- keras.ops on KerasTensors
def _ops_model(K):
    ops = K.ops
    tokens = K.Input((None,), dtype="int32")
    e = K.layers.Embedding(11, 4)(tokens)
    pooled = ops.mean(e, axis=1)
    peak = ops.max(e, axis=(1,), keepdims=False)
    extra = ops.expand_dims(ops.sum(ops.square(pooled), axis=-1), -1)
    merged = ops.concatenate([pooled, peak, extra, ops.cast(ops.shape(e)[2], "float32") * ops.ones_like(extra)],
                             axis=-1)
    out = K.layers.Dense(2)(ops.reshape(merged, (-1, 10)))
    return K.Model(tokens, ops.softmax(out, axis=-1))


def test_keras_ops_applied_to_functional_tensors_become_graph_nodes():
    k, f = _pair(_ops_model)
    x = RNG.integers(0, 11, size=(5, 7)).astype("int32")
    want = k.predict(x, verbose=0)
    np.testing.assert_allclose(f.predict(x, verbose=0), want, rtol=1e-5, atol=1e-6)
    # Op nodes are not layers (as in Keras), but they are part of the model's graph and its config.
    assert [type(layer).__name__ for layer in f.layers] == ["InputLayer", "Embedding", "Dense"]
    again = fkeras.Model.from_config(f.get_config())
    again.set_weights(f.get_weights())
    np.testing.assert_allclose(again.predict(x, verbose=0), want, rtol=1e-5, atol=1e-6)
    y = np.eye(2, dtype="float32")[RNG.integers(0, 2, 5)]
    for m, K in ((k, keras), (f, fkeras)):
        m.compile(optimizer=K.optimizers.SGD(0.5), loss="categorical_crossentropy")
    for _ in range(2):
        assert f.train_on_batch(x, y) == pytest.approx(k.train_on_batch(x, y), rel=1e-5)
    assert max_diff(k.get_weights(), f.get_weights()) < 1e-5


def test_keras_op_on_functional_tensor_with_an_unsupported_argument_is_refused_clearly():
    inp = fkeras.Input((3,))
    with pytest.raises(TypeError, match="keras.ops call on functional-API tensors"):
        fkeras.ops.add(inp, object())


# --------------------------------------------------------------------------- loss=[fn, None]
def _two_heads(K):
    inp = K.Input((4,))
    hidden = K.layers.Dense(3, name="hidden")(inp)
    return K.Model(inp, [K.layers.Dense(2, name="head")(hidden), hidden])


def test_targets_only_for_the_outputs_with_a_loss():
    """``compile(loss=[fn, None])`` and ``fit(x, y)`` with one target array, as a miniature GPT that also
    returns its embeddings does."""
    k, f = _pair(_two_heads)
    x = RNG.normal(size=(8, 4)).astype("float32")
    y = RNG.normal(size=(8, 2)).astype("float32")
    for m, K in ((k, keras), (f, fkeras)):
        m.compile(optimizer=K.optimizers.SGD(0.1), loss=[K.losses.MeanSquaredError(), None])
    hk = k.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    hf = f.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_allclose(hf.history["loss"], hk.history["loss"], rtol=1e-5)
    assert max_diff(k.get_weights(), f.get_weights()) < 1e-5


# --------------------------------------------------------------------------- keras.config switches
@pytest.mark.parametrize("K", [keras, fkeras], ids=["keras", "onnxforge"])
def test_config_debug_caps_and_switches(K):
    inp = K.Input((3,))
    model = K.Model(inp, K.layers.Dense(1)(inp))
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((40, 3), "float32"), np.zeros((40, 1), "float32")
    K.config.set_max_epochs(2)
    K.config.set_max_steps_per_epoch(3)
    try:
        with pytest.warns(UserWarning, match="Limiting epochs to 2"):
            history = model.fit(x, y, batch_size=4, epochs=5, verbose=0)
        assert len(history.history["loss"]) == 2
        assert K.config.max_epochs() == 2 and K.config.max_steps_per_epoch() == 3
    finally:
        K.config.set_max_epochs(None)
        K.config.set_max_steps_per_epoch(None)
    assert K.config.max_epochs() is None
    K.config.disable_traceback_filtering()
    assert not K.config.is_traceback_filtering_enabled()
    K.config.enable_traceback_filtering()
    K.config.disable_interactive_logging()
    try:
        assert not K.config.is_interactive_logging_enabled()
        model.fit(x, y, batch_size=20, epochs=1, verbose=1)
    finally:
        K.config.enable_interactive_logging()
    assert K.config.is_interactive_logging_enabled()


def test_progress_goes_to_logging_when_interactive_logging_is_off(capsys, caplog):
    inp = fkeras.Input((3,))
    model = fkeras.Model(inp, fkeras.layers.Dense(1)(inp))
    model.compile(optimizer="sgd", loss="mse")
    fkeras.config.disable_interactive_logging()
    try:
        with caplog.at_level("INFO", logger="onnxforge"):
            model.fit(np.ones((8, 3)), np.zeros((8, 1)), batch_size=4, epochs=1, verbose=1)
    finally:
        fkeras.config.enable_interactive_logging()
    assert "loss" not in capsys.readouterr().out
    assert any("loss" in r.getMessage() for r in caplog.records)


def test_max_steps_per_epoch_caps_the_batches_of_an_epoch():
    seen = []

    class Count(fkeras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(batch)

    inp = fkeras.Input((3,))
    model = fkeras.Model(inp, fkeras.layers.Dense(1)(inp))
    model.compile(optimizer="sgd", loss="mse")
    fkeras.config.set_max_steps_per_epoch(3)
    try:
        model.fit(np.ones((40, 3)), np.zeros((40, 1)), batch_size=4, epochs=1, verbose=0, callbacks=[Count()])
    finally:
        fkeras.config.set_max_steps_per_epoch(None)
    assert seen == [0, 1, 2]


# --------------------------------------------------------------------------- Conv.convolution_op
def _standardized_convs(K):
    ops = K.ops

    class Override(K.layers.Conv2D):     # replaces the convolution itself
        def convolution_op(self, inputs, kernel):
            mean, var = ops.moments(kernel, axes=[0, 1, 2], keepdims=True)
            return ops.conv(inputs, (kernel - mean) / ops.sqrt(var + 1e-10), padding="valid",
                            strides=list(self.strides))

    class WithCall(K.layers.Conv2D):     # calls the inherited convolution on a transformed kernel
        def call(self, inputs):
            mean, var = ops.moments(self.kernel, axes=[0, 1, 2], keepdims=True)
            result = self.convolution_op(inputs, (self.kernel - mean) / ops.sqrt(var + 1e-10))
            return result + self.bias if self.use_bias else result

    inp = K.Input((8, 8, 2))
    x = WithCall(3, 3, activation="relu")(inp)
    x = Override(4, 3, strides=2, activation="tanh")(x)
    return K.Model(inp, K.layers.Dense(2)(K.layers.Flatten()(x)))


def test_conv_subclasses_that_override_or_call_convolution_op_train_like_keras():
    k, f = _pair(_standardized_convs)
    x = RNG.normal(size=(4, 8, 8, 2)).astype("float32")
    y = RNG.normal(size=(4, 2)).astype("float32")
    np.testing.assert_allclose(f.predict(x, verbose=0), k.predict(x, verbose=0), rtol=1e-4, atol=1e-5)
    for m, K in ((k, keras), (f, fkeras)):
        m.compile(optimizer=K.optimizers.SGD(0.05), loss="mse")
    for _ in range(2):
        assert f.train_on_batch(x, y) == pytest.approx(k.train_on_batch(x, y), rel=1e-4)
    assert max_diff(k.get_weights(), f.get_weights()) < 1e-4


# --------------------------------------------------------------------------- endpoint layers
def _endpoint_layer(K):
    class LogisticEndpoint(K.layers.Layer):
        def __init__(self, name=None):
            super().__init__(name=name)
            self.loss_fn = K.losses.BinaryCrossentropy(from_logits=True)
            self.accuracy_metric = K.metrics.BinaryAccuracy(name="accuracy")

        def call(self, logits, targets=None, sample_weight=None):
            if targets is not None:
                self.add_loss(self.loss_fn(targets, logits, sample_weight))
                self.accuracy_metric.update_state(targets, K.ops.sigmoid(logits), sample_weight)
            return K.ops.sigmoid(logits)

    return LogisticEndpoint


def _endpoint_data():
    r = np.random.default_rng(3)
    return {"inputs": r.normal(size=(12, 5)).astype("float32"),
            "targets": (r.random((12, 1)) > 0.5).astype("float32"),
            "sample_weight": r.random((12, 1)).astype("float32")}


def test_metric_updated_in_a_layer_call_is_reported_like_keras():
    def build(K):
        inputs = K.Input((5,), name="inputs")
        targets = K.Input((1,), name="targets")
        weights = K.Input((1,), name="sample_weight")
        preds = _endpoint_layer(K)()(K.layers.Dense(1)(inputs), targets, weights)
        model = K.Model([inputs, targets, weights], preds)
        model.compile(K.optimizers.SGD(0.1))
        return model

    k, f = _pair(build)
    data = _endpoint_data()
    hk = k.fit(data, batch_size=4, epochs=2, shuffle=False, verbose=0)
    hf = f.fit(data, batch_size=4, epochs=2, shuffle=False, verbose=0)
    assert sorted(hf.history) == sorted(hk.history) == ["accuracy", "loss"]
    for key in hk.history:
        np.testing.assert_allclose(hf.history[key], hk.history[key], rtol=1e-5, atol=1e-6)
    ek, ef = k.evaluate(data, verbose=0, return_dict=True), f.evaluate(data, verbose=0, return_dict=True)
    assert ek.keys() == ef.keys()
    for key in ek:
        assert ef[key] == pytest.approx(ek[key], rel=1e-5)


def test_subclassed_model_fed_a_dict_calls_layers_by_keyword():
    """Keras's ``LogReg(keras.Model)``: ``call(self, inputs)`` reads ``inputs["inputs"]`` and calls the endpoint
    layer with keywords only (``logits=...``)."""
    def build(K):
        Endpoint = _endpoint_layer(K)

        class LogReg(K.Model):
            def __init__(self):
                super().__init__()
                self.dense = K.layers.Dense(1)
                self.logistic_endpoint = Endpoint()

            def call(self, inputs):
                logits = self.dense(inputs["inputs"])
                return self.logistic_endpoint(logits=logits, targets=inputs["targets"],
                                              sample_weight=inputs["sample_weight"])

        model = LogReg()
        model.compile(K.optimizers.SGD(0.1))
        return model

    data = _endpoint_data()
    k, f = build(keras), build(fkeras)
    k.fit(data, batch_size=12, epochs=1, verbose=0)     # builds Keras's weights
    f.fit(data, batch_size=12, epochs=1, verbose=0)
    f.set_weights(k.get_weights())
    hk = k.fit(data, batch_size=4, epochs=1, shuffle=False, verbose=0)
    hf = f.fit(data, batch_size=4, epochs=1, shuffle=False, verbose=0)
    for key in ("loss", "accuracy"):
        np.testing.assert_allclose(hf.history[key], hk.history[key], rtol=1e-5, atol=1e-6)
    assert [t.name for t in f.inputs] == ["inputs", "sample_weight", "targets"]


def test_merging_an_unknown_size_with_a_known_one_gives_keras_shapes():
    for K in (keras, fkeras):
        a, b = K.Input((None, 4)), K.Input((3, 1))
        assert tuple(K.layers.Add()([a, b]).shape) == (None, None, 4), K
        assert tuple(K.layers.Multiply()([K.Input((None, 1)), K.Input((1, 4))]).shape) == (None, None, 4), K


# --------------------------------------------------------------------------- call(**kwargs) and training
def _kwargs_dense(K, seen):
    class BiasedDense(K.layers.Dense):   # keras.io "Save, serialize and export": call(inputs, *args, **kwargs)
        def call(self, inputs, *args, **kwargs):
            seen.append(sorted(kwargs))
            return super().call(inputs, *args, **kwargs) + 1.0

    return BiasedDense


def test_a_call_taking_only_kwargs_never_gets_training_as_in_keras():
    x = RNG.normal(size=(4, 3)).astype("float32")
    y = RNG.normal(size=(4, 2)).astype("float32")
    runs = {}
    for name, K in (("keras", keras), ("onnxforge", fkeras)):
        seen = []
        model = K.Sequential([K.Input((3,)), _kwargs_dense(K, seen)(2)])
        model.set_weights([np.full((3, 2), 0.1, "float32"), np.zeros(2, "float32")])
        model.compile(K.optimizers.SGD(0.1), "mse")
        loss = model.fit(x, y, epochs=2, verbose=0).history["loss"]
        out = K.ops.convert_to_numpy(model(x))
        layer = _kwargs_dense(K, seen)(2)
        layer(x, training=True)
        runs[name] = (loss, out, seen[-1])
    np.testing.assert_allclose(runs["onnxforge"][0], runs["keras"][0], rtol=1e-5)
    np.testing.assert_allclose(runs["onnxforge"][1], runs["keras"][1], rtol=1e-5, atol=1e-6)
    assert runs["onnxforge"][2] == runs["keras"][2] == []   # Keras never hands training to **kwargs


# --------------------------------------------------------------------------- call() without `training`
def _graph_classifier(K, features, edges):
    class GraphClassifier(K.Model):
        """keras.io's GNN shape: the graph held as attributes, a call() that takes node ids only."""

        def __init__(self):
            super().__init__()
            self.node_features, self.edges = features, edges
            self.norm = K.layers.BatchNormalization()
            self.drop = K.layers.Dropout(0.5)
            self.dense = K.layers.Dense(3)

        def call(self, node_ids):
            x = self.drop(self.norm(K.ops.convert_to_tensor(self.node_features)))
            x = x + K.ops.segment_sum(K.ops.take(x, self.edges[1], axis=0), self.edges[0], num_segments=6)
            return self.dense(K.ops.take(x, node_ids, axis=0))

    return GraphClassifier()


def test_fit_calls_a_model_whose_call_takes_no_training_flag_without_one():
    # Keras 3's train step calls such a model as self(x): BatchNormalization normalizes with its moving
    # statistics and leaves them alone, Dropout passes everything; tf.keras 2 trained them.
    features = RNG.normal(size=(6, 4)).astype("float32")
    edges = np.array([[0, 1, 2, 3, 4, 5, 0], [1, 2, 3, 4, 5, 0, 3]])
    ids, labels = np.arange(6), np.array([0, 1, 2, 0, 1, 2])
    k, f = _graph_classifier(keras, features, edges), _graph_classifier(fkeras, features, edges)
    for m, K in ((k, keras), (f, fkeras)):
        m(ids)
        m.compile(optimizer=K.optimizers.SGD(0.1), loss=K.losses.SparseCategoricalCrossentropy(from_logits=True))
    random_weights(k)
    k.set_weights([np.abs(w) + 0.5 if i == 3 else w for i, w in enumerate(k.get_weights())])   # variances
    copy_weights(k, f)
    for _ in range(3):
        assert f.train_on_batch(ids, labels) == pytest.approx(k.train_on_batch(ids, labels), rel=1e-5)
    assert max_diff(k.get_weights(), f.get_weights()) < 1e-5   # moving statistics unchanged in both
    # called with training=True, the flag reaches its layers in both (only the Dropout draws differ)
    f.drop.rate = k.drop.rate = 0.0
    np.testing.assert_allclose(f(ids, training=True), keras.ops.convert_to_numpy(k(ids, training=True)),
                               rtol=1e-5, atol=1e-6)
