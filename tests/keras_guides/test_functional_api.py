"""keras.io's "The Functional API" guide: multi-input / multi-output models trained with dict losses and
loss weights, shared layers, nested and ensembled models, feature extraction through ``layer.output``,
``get_config`` / ``from_config`` with a custom layer, a custom RNN layer inside a functional model, and
``plot_model``. Every model starts from Keras's weights, so the numbers must agree.
"""
from __future__ import annotations

import numpy as np

from tests.keras_examples.harness import assert_close, fkeras, keras, run_both, to_numpy

RNG = np.random.default_rng(0)


def _flat(prefix: str, arrays) -> dict:
    if isinstance(arrays, dict):
        arrays = [arrays[k] for k in sorted(arrays)]
    if not isinstance(arrays, (list, tuple)):
        arrays = [arrays]
    return {f"{prefix}{i}_{j}": float(v) for i, a in enumerate(arrays) for j, v in enumerate(to_numpy(a).ravel())}


def ticket_model(keras_api, data, init):
    """Title, body and tags in; priority and department out; dict losses with loss weights."""
    layers = keras_api.layers
    title = keras_api.Input(shape=(None,), name="title")
    body = keras_api.Input(shape=(None,), name="body")
    tags = keras_api.Input(shape=(6,), name="tags")
    title_features = layers.LSTM(8)(layers.Embedding(50, 4)(title))
    body_features = layers.LSTM(4)(layers.Embedding(50, 4)(body))
    x = layers.concatenate([title_features, body_features, tags])
    model = keras_api.Model(inputs=[title, body, tags],
                            outputs=[layers.Dense(1, name="priority")(x), layers.Dense(3, name="department")(x)])
    init(model)
    model.compile(optimizer=keras_api.optimizers.RMSprop(1e-2),
                  loss={"priority": keras_api.losses.BinaryCrossentropy(from_logits=True),
                        "department": keras_api.losses.CategoricalCrossentropy(from_logits=True)},
                  loss_weights={"priority": 1.0, "department": 0.2})
    x_data = {"title": data["title"], "body": data["body"], "tags": data["tags"]}
    y_data = {"priority": data["priority"], "department": data["department"]}
    history = model.fit(x_data, y_data, epochs=2, batch_size=16, shuffle=False, verbose=0)
    out = {f"{k}_{i}": float(v) for k, vs in history.history.items() for i, v in enumerate(vs)}
    # The same arrays as lists, in the order of the model's inputs and outputs.
    lists = model.evaluate([data["title"], data["body"], data["tags"]], [data["priority"], data["department"]],
                           batch_size=16, verbose=0)
    out.update({f"eval_{i}": float(v) for i, v in enumerate(lists)})
    return out


def test_multi_input_multi_output_model_trains_like_keras():
    data = {"title": RNG.integers(0, 50, (32, 5)), "body": RNG.integers(0, 50, (32, 7)),
            "tags": RNG.integers(0, 2, (32, 6)).astype("float32"), "priority": RNG.random((32, 1)),
            "department": RNG.integers(0, 2, (32, 3)).astype("float32")}
    want, got = run_both(ticket_model, data, copy_weights=True)
    assert_close(want, got, rtol=2e-4, atol=1e-6)


def graph_reuse(keras_api, data, init):
    """Feature extraction from every layer, a shared embedding, nested models and an ensemble."""
    layers = keras_api.layers
    inputs = keras_api.Input((8, 8, 3))
    x = layers.Conv2D(4, 3, activation="relu")(inputs)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    base = keras_api.Model(inputs, layers.Dense(3)(x))
    init(base)
    features = keras_api.Model(inputs=base.input, outputs=[layer.output for layer in base.layers])
    out = _flat("feat", features(data["images"]))

    shared = layers.Embedding(20, 3)
    a = keras_api.Input(shape=(None,), dtype="int32")
    b = keras_api.Input(shape=(None,), dtype="int32")
    pair = keras_api.Model([a, b], [shared(a), shared(b)])
    init(pair)
    out.update(_flat("shared", pair([data["ids"], data["ids"][:, ::-1]])))

    encoder_in = keras_api.Input(shape=(6,))
    encoder = keras_api.Model(encoder_in, layers.Dense(4, activation="relu")(encoder_in), name="encoder")
    decoder_in = keras_api.Input(shape=(4,))
    decoder = keras_api.Model(decoder_in, layers.Dense(6)(decoder_in), name="decoder")
    auto_in = keras_api.Input(shape=(6,))
    autoencoder = keras_api.Model(auto_in, decoder(encoder(auto_in)))
    init(autoencoder)
    out.update(_flat("auto", autoencoder.predict(data["vectors"], verbose=0)))

    def member():
        member_in = keras_api.Input(shape=(6,))
        return keras_api.Model(member_in, layers.Dense(1)(member_in))

    members = [member() for _ in range(3)]
    ensemble_in = keras_api.Input(shape=(6,))
    ensemble = keras_api.Model(ensemble_in, layers.average([m(ensemble_in) for m in members]))
    init(ensemble)
    out.update(_flat("ensemble", ensemble(data["vectors"])))
    out["n_layers"] = float(len(autoencoder.layers))
    return out


def test_layer_graph_reuse_matches_keras():
    data = {"images": RNG.random((2, 8, 8, 3)).astype("float32"), "ids": RNG.integers(0, 20, (2, 4)),
            "vectors": RNG.random((3, 6)).astype("float32")}
    want, got = run_both(graph_reuse, data, copy_weights=True)
    assert_close(want, got, rtol=1e-5, atol=1e-6)


def custom_layers(keras_api, data, init):
    """``CustomDense`` through ``get_config`` / ``from_config``, and the guide's ``CustomRNN`` that loops over
    the time axis with a static batch size inside a functional model."""
    layers, ops = keras_api.layers, keras_api.ops

    class CustomDense(layers.Layer):
        def __init__(self, units=32):
            super().__init__()
            self.units = units

        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="random_normal")
            self.b = self.add_weight(shape=(self.units,), initializer="random_normal")

        def call(self, inputs):
            return ops.matmul(inputs, self.w) + self.b

        def get_config(self):
            return {"units": self.units}

    inputs = keras_api.Input((4,))
    model = keras_api.Model(inputs, CustomDense(10)(inputs))
    init(model)
    again = keras_api.Model.from_config(model.get_config(), custom_objects={"CustomDense": CustomDense})
    again.set_weights(model.get_weights())
    out = _flat("dense", again(data["vectors"]))

    class CustomRNN(layers.Layer):
        def __init__(self):
            super().__init__()
            self.units = 5
            self.projection_1 = layers.Dense(units=5, activation="tanh")
            self.projection_2 = layers.Dense(units=5, activation="tanh")
            self.classifier = layers.Dense(1)

        def call(self, inputs):
            outputs = []
            state = ops.zeros(shape=(inputs.shape[0], self.units))
            for t in range(inputs.shape[1]):
                h = self.projection_1(inputs[:, t, :])
                state = h + self.projection_2(state)
                outputs.append(state)
            return self.classifier(ops.stack(outputs, axis=1))

    seq_in = keras_api.Input(batch_shape=(2, 6, 3))
    rnn_model = keras_api.Model(seq_in, CustomRNN()(layers.Conv1D(4, 3)(seq_in)))
    init(rnn_model)
    out.update(_flat("rnn", rnn_model.predict(data["sequences"], verbose=0)))
    out["rnn_shape"] = float(np.prod(rnn_model.output_shape))
    return out


def test_custom_layers_in_functional_models_match_keras():
    data = {"vectors": RNG.random((2, 4)).astype("float32"), "sequences": RNG.random((2, 6, 3)).astype("float32")}
    want, got = run_both(custom_layers, data, copy_weights=True)
    assert_close(want, got, rtol=1e-5, atol=1e-6)


def test_plot_model_writes_a_dot_file_and_names_what_a_png_needs(tmp_path):
    """Without Graphviz, Keras's ``plot_model`` to ``.png`` raises ImportError; onnxforge does too (naming the
    ``.dot`` alternative), and writes the graph itself as a ``.dot`` file."""
    import shutil

    import pytest

    inputs = fkeras.Input(shape=(4,), name="title")
    model = fkeras.Model(inputs, fkeras.layers.Dense(2, name="priority")(inputs))
    dot = tmp_path / "model.dot"
    fkeras.utils.plot_model(model, str(dot), show_shapes=True)
    text = dot.read_text()
    assert "title" in text and "priority" in text
    if shutil.which("dot") is None:
        with pytest.raises(ImportError):
            keras.utils.plot_model(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]),
                                   str(tmp_path / "k.png"))
        with pytest.raises(ImportError, match=r"\.dot"):
            fkeras.utils.plot_model(model, str(tmp_path / "model.png"), show_shapes=True)
