"""Functional models: several inputs/outputs, shared layers, nested models, config, tracing, errors."""
from __future__ import annotations

import numpy as np
import pytest

from onnxforge import layers as L
from onnxforge.graph import GraphBuilder
from onnxforge.models import Input, Model, Sequential
from onnxforge.tracing import TraceContext
from tests.layers.helpers import run, trace


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _two_tower():
    a, b = Input(shape=(4,), name="a"), Input(shape=(3,), name="b")
    shared = L.Dense(5, activation="relu", name="shared")
    ha = shared(L.Dense(4, name="proj_a")(a))
    hb = shared(L.Dense(4, name="proj_b")(b))
    merged = L.Concatenate(name="cat")([ha, hb])
    out1 = L.Dense(2, name="head1")(merged)
    out2 = L.Dense(1, activation="sigmoid", name="head2")(hb)
    return Model([a, b], [out1, out2], name="towers")


def test_multi_io_attributes_and_layer_order():
    model = _two_tower()
    assert model.input_names == ["a", "b"] and model.output_names == ["head1", "head2"]
    assert [t.shape for t in model.inputs] == [(None, 4), (None, 3)]
    assert [t.shape for t in model.outputs] == [(None, 2), (None, 1)]
    assert model.outputs[0].dtype == "float32"
    names = [layer.name for layer in model.layers]
    assert set(names) == {"a", "b", "proj_a", "proj_b", "shared", "cat", "head1", "head2"}
    assert names.index("a") < names.index("proj_a") < names.index("shared") < names.index("cat")
    assert model.get_layer("shared") is model.get_layer(index=names.index("shared"))
    with pytest.raises(ValueError, match="No such layer: nope"):
        model.get_layer("nope")
    with pytest.raises(ValueError, match="only has"):
        model.get_layer(index=99)



def test_input_and_output_shape_and_compiled_like_keras():
    """Keras's ``model.input_shape`` / ``output_shape``: one tuple, or a list for several (values checked
    against Keras 3.15); ``compiled`` is False until compile()."""
    model = _two_tower()
    assert model.input_shape == [(None, 4), (None, 3)] and model.output_shape == [(None, 2), (None, 1)]
    seq = Sequential([Input(shape=(8,)), L.Dense(2)])
    assert seq.input_shape == (None, 8) and seq.output_shape == (None, 2)
    a = Input(shape=(2,), name="a")
    one = Model([a], {"x": L.Dense(1)(a)})
    assert one.input_shape == (None, 2) and one.output_shape == (None, 1)
    assert not hasattr(Sequential([L.Dense(1)]), "input_shape")    # unbuilt: an AttributeError, as in Keras
    assert seq.compiled is False
    seq.compile(optimizer="sgd", loss="mse")
    assert seq.compiled is True

def test_shared_layer_weights_are_counted_once():
    model = _two_tower()
    names = [w.path for w in model.weights]
    assert len(names) == len(set(names)) == 2 * 5  # proj_a, proj_b, shared, head1, head2
    assert model.count_params() == (4 * 4 + 4) + (3 * 4 + 4) + (4 * 5 + 5) + (10 * 2 + 2) + (5 + 1)
    weights = model.get_weights()
    model.set_weights([w + 1 for w in weights])
    np.testing.assert_allclose(model.get_layer("shared").get_weights()[0], weights[names.index("shared/kernel")] + 1)


def test_multi_io_trace_matches_numpy():
    model = _two_tower()
    w = {layer.name: layer.get_weights() for layer in model.layers if layer.weights}
    xa, xb = _x(3, 4, seed=1), _x(3, 3, seed=2)

    def dense(name, x):
        k, b = w[name]
        return x @ k + b

    ha = np.maximum(dense("shared", dense("proj_a", xa)), 0)
    hb = np.maximum(dense("shared", dense("proj_b", xb)), 0)
    y1 = dense("head1", np.concatenate([ha, hb], -1))
    y2 = 1 / (1 + np.exp(-dense("head2", hb)))
    out1, out2 = run(model, xa, xb)
    np.testing.assert_allclose(out1, y1, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out2, y2, rtol=1e-5, atol=1e-5)


def test_nested_models_gan_style():
    generator = Sequential([Input(shape=(2,)), L.Dense(4, activation="relu"), L.Dense(3)], name="generator")
    x = Input(shape=(3,))
    discriminator = Model(x, L.Dense(1, activation="sigmoid")(L.Dense(4, activation="relu")(x)),
                          name="discriminator")
    z = Input(shape=(2,))
    gan = Model(z, discriminator(generator(z)), name="gan")
    assert [layer.name for layer in gan.layers][1:] == ["generator", "discriminator"]
    assert len(gan.weights) == 8 and gan.count_params() == generator.count_params() + discriminator.count_params()
    discriminator.trainable = False
    assert len(gan.trainable_weights) == 4 and len(gan.non_trainable_weights) == 4
    discriminator.trainable = True
    zs = _x(5, 2)
    np.testing.assert_allclose(run(gan, zs), run(discriminator, run(generator, zs)), rtol=1e-5, atol=1e-6)
    # The same discriminator also serves on real samples in another model: one set of weights.
    real = Input(shape=(3,))
    both = Model([z, real], [discriminator(generator(z)), discriminator(real)])
    assert len(both.weights) == 8


def test_nested_model_called_twice_and_traced_in_training():
    inner = Sequential([Input(shape=(3,)), L.Dense(3), L.BatchNormalization(), L.Dropout(0.5)], name="inner")
    a, b = Input(shape=(3,)), Input(shape=(3,))
    outer = Model([a, b], L.Add()([inner(a), inner(b)]))
    traced = trace(outer, [((3,), np.float32), ((3,), np.float32)], training=True, weights="inputs")
    assert len(traced.noise_names) == 2  # each call draws its own dropout mask
    assert len(traced.update_names) == 2  # BN statistics: the last call's update wins, one per variable
    assert {i.name for i in traced.model.graph.input} >= {w.path for w in outer.weights}


def test_explicit_training_kwarg_on_a_node_yields_to_the_models_own_flag():
    # Keras 3: a node's recorded `training=True` holds while the model is called without `training`, and the
    # model's own flag replaces it when given (predict runs with training=False: no dropout then).
    x = Input(shape=(4,))
    y = L.Dropout(0.5)(x, training=True)
    model = Model(x, y)
    assert trace(model, ((4,), np.float32), training=False).noise_names == []
    assert trace(model, ((4,), np.float32), training=True).noise_names == ["noise_0"]


def test_functional_config_round_trip_with_shared_and_nested():
    inner = Sequential([Input(shape=(3,)), L.Dense(2, name="inner_dense")], name="inner_seq")
    a = Input(shape=(3,), name="a")
    shared = L.Dense(3, name="sh")
    y = inner(shared(shared(a)))
    model = Model(a, [y, L.Dense(1, name="lin")(y)], name="cfg")
    config = model.get_config()
    assert config["input_layers"] == ["a", 0, 0]
    assert config["output_layers"] == [["inner_seq", 0, 0], ["lin", 0, 0]]
    sh_entry = next(e for e in config["layers"] if e["name"] == "sh")
    assert sh_entry["inbound_nodes"][1]["args"][0]["config"]["keras_history"] == ["sh", 0, 0]
    clone = Model.from_config(config)
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]
    assert clone.get_config() == config
    clone.set_weights(model.get_weights())
    x = _x(4, 3)
    for got, want in zip(run(clone, x), run(model, x)):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_nested_functional_model_outputs_count_its_own_node_as_keras_does():
    # Keras 3 writes a nested functional model's first call as node 1 in output_layers (node 0 is the model's
    # own inputs-to-outputs node) but as node 0 in the inbound_nodes of the layers after it; Sequential counts
    # from 0. keras.io's end-to-end text model (TextVectorization, then the trained model) is saved that way.
    i = Input(shape=(3,), name="i")
    inner = Model(i, L.Dense(2, name="d")(i), name="inner")
    seq = Sequential([Input(shape=(2,)), L.Dense(2, name="s")], name="seq")
    x = Input(shape=(3,), name="x")
    h1, h2 = inner(x), inner(L.Dense(3, name="pre")(x))
    model = Model(x, [h1, seq(h2), L.Dense(1, name="post")(h2)], name="outer")
    config = model.get_config()
    assert config["output_layers"] == [["inner", 1, 0], ["seq", 0, 0], ["post", 0, 0]]
    post = next(e for e in config["layers"] if e["name"] == "post")
    assert post["inbound_nodes"][0]["args"][0]["config"]["keras_history"] == ["inner", 1, 0]
    clone = Model.from_config(config)
    assert clone.get_config() == config
    clone.set_weights(model.get_weights())
    x = _x(4, 3)
    for got, want in zip(run(clone, x), run(model, x)):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_construction_errors():
    a, b = Input(shape=(3,)), Input(shape=(3,))
    y = L.Add()([a, b])
    with pytest.raises(ValueError, match="Graph disconnected"):
        Model(a, y)
    with pytest.raises(ValueError, match='The name "dup" is used 2 times'):
        Model(a, L.Dense(1, name="dup")(L.Dense(1, name="dup")(a)))
    with pytest.raises(TypeError, match="KerasTensors"):
        Model(a, np.zeros(3))
    with pytest.raises(ValueError, match="both `inputs` and `outputs`"):
        Model(inputs=a)


def test_a_model_may_start_from_intermediate_tensors_like_keras():
    """Keras 3 (``clone_graph_nodes``): an intermediate input gets a fresh Input named ``<tensor>CLONE``
    and the model holds only the layers after it (keras.io's FeatureSpace training model)."""
    a = Input(shape=(3,))
    hidden = L.Dense(2, name="first")(a)
    head = L.Dense(1, name="head")
    model = Model(hidden, head(hidden))
    assert [layer.name for layer in model.layers] == [f"{hidden.name}CLONE", "head"]
    assert model.inputs[0].shape == (None, 2)
    x = np.random.default_rng(0).normal(size=(4, 2)).astype("float32")
    kernel, bias = head.get_weights()
    np.testing.assert_allclose(model.predict(x, verbose=0), x @ kernel + bias, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="Graph disconnected"):
        Model(hidden, L.Add()([hidden, L.Dense(2)(Input(shape=(3,)))]))


def test_trace_errors_name_the_layer_and_shape():
    model = Model(*(lambda x: (x, L.Dense(2, name="fc")(x)))(Input(shape=(3,))))
    b = GraphBuilder()
    with TraceContext(b, training=False).active():
        bad = b.input("x", 1, ("batch", 5))
        with pytest.raises(ValueError, match=r"expected shape=\(None, 3\), found shape=\(None, 5\)"):
            model.trace([bad], training=False)
        with pytest.raises(ValueError, match="expects 1 input"):
            model.trace([bad, bad], training=False)
    with pytest.raises(RuntimeError, match="No active trace"):
        model.trace([bad], training=False)


def test_trace_sets_static_output_shapes():
    model = _two_tower()
    b = GraphBuilder()
    with TraceContext(b, training=False, weights="initializers").active():
        outs = model.trace([b.input("a", 1, ("batch", 4)), b.input("b", 1, ("batch", 3))], training=False)
    assert [o.shape for o in outs] == [("batch", 2), ("batch", 1)]


def test_output_names_are_unique():
    x = Input(shape=(4,))
    d = L.Dense(2, name="twice")
    model = Model(x, [d(x), d(x)])
    assert model.output_names == ["twice", "twice_1"]


def test_unknown_time_axis_runs_at_any_length():
    model = Sequential([Input(shape=(None, 3)), L.Conv1D(4, 3, padding="same", activation="relu"),
                        L.MaxPooling1D(2, padding="same"), L.Conv1D(2, 2, strides=2, padding="same"),
                        L.GlobalAveragePooling1D(), L.Dense(2)])
    assert model.outputs[0].shape == (None, 2)
    assert [layer.output.shape for layer in model.layers[:3]] == [(None, None, 4), (None, None, 4), (None, None, 2)]
    traced = trace(model, ((None, 3), np.float32))
    import torch
    import torch.nn.functional as F

    c1, c2, d = model.layers[0], model.layers[2], model.layers[4]
    for steps in (5, 8):
        x = _x(2, steps, 3, seed=steps)
        t = torch.from_numpy(x).permute(0, 2, 1)
        k1, b1 = (torch.from_numpy(w) for w in c1.get_weights())
        h = F.relu(F.conv1d(F.pad(t, (1, 1)), k1.permute(2, 1, 0), b1))
        n = h.shape[-1]
        h = F.max_pool1d(F.pad(h, (0, n % 2), value=-float("inf")), 2)
        k2, b2 = (torch.from_numpy(w) for w in c2.get_weights())
        n = h.shape[-1]
        total = max((-(-n // 2) - 1) * 2 + 2 - n, 0)  # TF "same": the odd pad at the end
        h = F.conv1d(F.pad(h, (total // 2, total - total // 2)), k2.permute(2, 1, 0), b2, stride=2)
        k3, b3 = d.get_weights()
        expected = h.mean(-1).numpy() @ k3 + b3
        np.testing.assert_allclose(traced(x), expected, rtol=1e-4, atol=1e-5)
