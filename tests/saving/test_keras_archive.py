""".keras archives both ways against real Keras 3 (torch backend): Keras's files load into onnxforge with
Keras's predictions, compile config and optimizer state; onnxforge's files have Keras's exact layout and
load into Keras with the same predictions and optimizer state; training continues from either file as it
would from Keras's own."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from tests.saving.keras_oracle import archive_weights, h5_layout, inputs_for, keras, max_diff, randomize

import onnxforge as of  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
L = keras.layers


# ------------------------------------------------------------------------------------------ models
def seq_cnn():
    return keras.Sequential([keras.Input((8, 8, 2)), L.Conv2D(3, 3, padding="same", activation="relu"),
                             L.BatchNormalization(), L.MaxPooling2D(), L.Flatten(), L.Dense(4, activation="relu"),
                             L.Dense(2)], name="cnn")


def functional_multi_io():
    a = keras.Input((5,), name="a")
    b = keras.Input((3, 4), name="b")
    h = L.Concatenate()([L.Dense(4, activation="tanh")(a), L.Flatten()(L.Conv1D(2, 2)(b))])
    return keras.Model([a, b], [L.Dense(1, name="value")(h), L.Dense(3, activation="softmax", name="policy")(h)])


def nested():
    inner_seq = keras.Sequential([keras.Input((4,)), L.Dense(5, activation="relu"), L.BatchNormalization()],
                                 name="inner_seq")
    x = keras.Input((5,))
    inner_fn = keras.Model(x, L.Dense(3)(x), name="inner_fn")
    z = keras.Input((4,))
    return keras.Model(z, L.Dense(2)(inner_fn(inner_seq(z))))


def rnn():
    return keras.Sequential([keras.Input((6,), dtype="int32"), L.Embedding(12, 4, mask_zero=True),
                             L.Bidirectional(L.LSTM(3, return_sequences=True)), L.GRU(3, return_sequences=True),
                             L.TimeDistributed(L.Dense(2)), L.SimpleRNN(2), L.Dense(1)])


MODELS = {"seq_cnn": seq_cnn, "functional_multi_io": functional_multi_io, "nested": nested, "rnn": rnn}


def _targets(model, batch=4, seed=2):
    rng = np.random.default_rng(seed)
    ys = [rng.normal(size=(batch, *o.shape[1:])).astype("float32") for o in model.outputs]
    return ys[0] if len(ys) == 1 else ys


def _keras_trained(factory, optimizer="adam", steps=2):
    """A Keras model with random weights, trained ``steps`` full-batch steps (so the optimizer has state)."""
    model = factory()
    randomize(model)
    loss = "mse" if len(model.outputs) == 1 else ["mse", "categorical_crossentropy"]
    model.compile(optimizer=optimizer, loss=loss, metrics=["mae"] if len(model.outputs) == 1 else None)
    x, y = inputs_for(model), _targets(model)
    model.fit(x, y, batch_size=4, epochs=steps, shuffle=False, verbose=0)
    return model, x, y


def _keras_state(kmodel) -> list[np.ndarray]:
    return [np.asarray(v) for v in kmodel.optimizer.variables]


# ------------------------------------------------------------------------------------------ Keras -> onnxforge
@pytest.mark.parametrize("name", sorted(MODELS))
def test_keras_archive_loads_with_keras_predictions_and_state(name, tmp_path):
    kmodel, x, _ = _keras_trained(MODELS[name])
    kmodel.save(tmp_path / "k.keras")
    model = of.load_model(tmp_path / "k.keras")
    assert max_diff(kmodel.predict(x, verbose=0), model.predict(x, verbose=0)) <= 1e-6
    assert model.compiled and type(model.optimizer).__name__ == "Adam"
    assert int(model.optimizer.iterations.numpy()) == 2
    # The optimizer state, written back in Keras's order, is Keras's state value for value.
    model.save(tmp_path / "o.keras")
    again = keras.saving.load_model(tmp_path / "o.keras")
    theirs, ours = _keras_state(kmodel), _keras_state(again)
    assert len(theirs) == len(ours) > 2
    for a, b in zip(theirs, ours):
        np.testing.assert_array_equal(a, b)
    assert max_diff(kmodel.predict(x, verbose=0), again.predict(x, verbose=0)) == 0.0


# ------------------------------------------------------------------------------------------ onnxforge -> Keras
def _onnxforge_twin(kmodel, folder):
    """The same architecture and weights as an onnxforge model (read from Keras's uncompiled file)."""
    kmodel.save(folder / "twin.keras")
    return of.load_model(folder / "twin.keras", compile=False)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_onnxforge_archive_has_keras_layout_and_loads_in_keras(name, tmp_path):
    kmodel, x, y = _keras_trained(MODELS[name], steps=0)
    model = _onnxforge_twin(kmodel, tmp_path)
    loss = "mse" if len(model.outputs) == 1 else ["mse", "categorical_crossentropy"]
    model.compile(optimizer=of.optimizers.Adam(0.01), loss=loss, device="cpu")
    model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    path = model.save(tmp_path / "ours.keras")
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist() == ["metadata.json", "config.json", "model.weights.h5"]
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())
        assert "keras_version" in json.loads(zf.read("metadata.json"))
    loaded = keras.saving.load_model(path)
    assert max_diff(model.predict(x, verbose=0), loaded.predict(x, verbose=0)) <= 1e-6
    # Keras writes exactly the same groups, names and shapes for the model it just loaded.
    loaded.save(tmp_path / "keras.keras")
    assert h5_layout(archive_weights(path)) == h5_layout(archive_weights(tmp_path / "keras.keras"))
    assert int(np.asarray(loaded.optimizer.iterations)) == 2
    assert float(np.asarray(loaded.optimizer.learning_rate)) == pytest.approx(0.01)


# ------------------------------------------------------------------------------------------ training continues
def test_keras_continues_from_our_file_as_from_its_own(tmp_path):
    """Keras's file -> onnxforge -> our file: Keras trains on from ours exactly as from its own, and
    onnxforge's next step matches Keras's (the slots are in the right places)."""
    kmodel, x, y = _keras_trained(seq_cnn, optimizer=keras.optimizers.Adam(0.01), steps=3)
    kmodel.save(tmp_path / "theirs.keras")
    model = of.load_model(tmp_path / "theirs.keras")
    model.save(tmp_path / "ours.keras")
    from_theirs = keras.saving.load_model(tmp_path / "theirs.keras")
    from_ours = keras.saving.load_model(tmp_path / "ours.keras")
    for a, b in zip(_keras_state(from_theirs), _keras_state(from_ours)):
        np.testing.assert_array_equal(a, b)
    for model_k in (from_theirs, from_ours):
        model_k.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(from_theirs.get_weights(), from_ours.get_weights()):
        np.testing.assert_array_equal(a, b)
    model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(from_theirs.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, atol=2e-5)
    assert int(model.optimizer.iterations.numpy()) == int(np.asarray(from_theirs.optimizer.iterations)) == 5


OPTIMIZERS = {
    "rmsprop_centered_momentum": (lambda: keras.optimizers.RMSprop(0.01, momentum=0.5, centered=True)),
    "sgd_momentum": (lambda: keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True)),
    "adagrad": (lambda: keras.optimizers.Adagrad(0.05)),
    "adam_amsgrad": (lambda: keras.optimizers.Adam(0.01, amsgrad=True)),
    "adamw": (lambda: keras.optimizers.AdamW(0.01, weight_decay=0.01)),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_each_optimizer_state_maps_to_keras_order(name, tmp_path):
    """Slot order differs per optimizer (Adam interleaves m and v; RMSprop groups by kind): a next step in
    onnxforge from Keras's state must equal Keras's next step."""
    kmodel, x, y = _keras_trained(functional_multi_io, optimizer=OPTIMIZERS[name](), steps=2)
    kmodel.save(tmp_path / "k.keras")
    model = of.load_model(tmp_path / "k.keras")
    model.save(tmp_path / "o.keras")
    for a, b in zip(_keras_state(kmodel), _keras_state(keras.saving.load_model(tmp_path / "o.keras"))):
        np.testing.assert_array_equal(a, b)
    kmodel.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(kmodel.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, atol=2e-5)


def test_onnxforge_training_continues_in_keras(tmp_path):
    """Trained in onnxforge, saved as .keras: Keras's next steps equal onnxforge's next steps."""
    kmodel, x, y = _keras_trained(nested, steps=0)
    model = _onnxforge_twin(kmodel, tmp_path)
    model.compile(optimizer=of.optimizers.RMSprop(0.01, momentum=0.3), loss="mse", device="cpu")
    model.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0)
    model.save(tmp_path / "ours.keras")
    loaded = keras.saving.load_model(tmp_path / "ours.keras")
    loaded.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, atol=2e-5)


# ------------------------------------------------------------------------------------------ compile config
def test_compile_config_round_trips_both_ways(tmp_path):
    kmodel = functional_multi_io()
    kmodel.compile(optimizer=keras.optimizers.SGD(0.02, momentum=0.5),
                   loss={"value": "mse", "policy": keras.losses.CategoricalCrossentropy(label_smoothing=0.2)},
                   loss_weights={"value": 0.5, "policy": 2.0}, metrics={"value": ["mae"], "policy": ["accuracy"]})
    kmodel.save(tmp_path / "k.keras")
    with pytest.warns(UserWarning, match="Skipping variable loading for optimizer"):   # Keras warns the same
        model = of.load_model(tmp_path / "k.keras")
    config = model.get_compile_config()
    assert config["optimizer"]["class_name"] == "SGD" and config["optimizer"]["config"]["momentum"] == 0.5
    policy = config["loss"]["policy"]
    assert policy["class_name"] == "CategoricalCrossentropy" and policy["config"]["label_smoothing"] == 0.2
    assert config["loss_weights"] == {"value": 0.5, "policy": 2.0}
    x, y = inputs_for(kmodel), _targets(kmodel)
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    theirs = kmodel.evaluate(x, y, verbose=0, return_dict=True)
    for key in ("loss", "value_mae", "policy_accuracy"):
        assert logs[key] == pytest.approx(theirs[key], abs=1e-5), key
    assert getattr(of.load_model(tmp_path / "k.keras", compile=False), "compiled", False) is False
    model.save(tmp_path / "o.keras")
    back = keras.saving.load_model(tmp_path / "o.keras")
    assert back.evaluate(x, y, verbose=0, return_dict=True)["loss"] == pytest.approx(theirs["loss"], abs=1e-5)


def test_untrained_compiled_model_loads_in_keras_without_skipping_state(tmp_path):
    """onnxforge builds the optimizer at compile, so even before a step its slots are stored, in the order
    Keras's compile_from_config builds them: Keras loads them instead of warning and starting fresh."""
    import warnings

    model = of.Sequential([of.layers.Input((3,)), of.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse", device="cpu")
    path = model.save(tmp_path / "m.keras")
    layout = h5_layout(archive_weights(path))
    assert layout["optimizer/vars"] == ("adam", [(), (), (3, 2), (3, 2), (2,), (2,)])
    assert layout["layers/dense/vars"] == (model.layers[0].name, [(3, 2), (2,)])
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*Skipping variable loading.*")
        loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(np.asarray(loaded.layers[0].kernel), model.get_weights()[0])
    again = of.load_model(path)
    np.testing.assert_array_equal(again.get_weights()[0], model.get_weights()[0])


# ------------------------------------------------------------------------------------------ custom layers
def _block_class(ns, base, register):
    """The same custom layer written against Keras and against onnxforge: sub-layers in a public attribute,
    a private one, a list and a nested Sequential, plus a weight of its own."""

    @register(package="kerasfile_tests")
    class Block(base):
        def __init__(self, units=4, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.proj = ns.layers.Dense(units)
            self.ffn = ns.Sequential([ns.layers.Dense(units, activation="relu"), ns.layers.Dense(units)])
            self.norms = [ns.layers.LayerNormalization(), ns.layers.LayerNormalization()]
            self._gate = ns.layers.Dense(units, activation="sigmoid")

        def build(self, input_shape):
            self.scale = self.add_weight(shape=(self.units,), initializer="ones", name="scale")
            super().build(input_shape)

        def call(self, x):
            h = self.norms[0](ns.ops.multiply(self.proj(x), self.scale))
            return self.norms[1](ns.ops.add(h, ns.ops.multiply(self.ffn(h), self._gate(h))))

        def get_config(self):
            return {**super().get_config(), "units": self.units}

    return Block


def test_custom_layer_with_sublayers_both_ways(tmp_path):
    k_block = _block_class(keras, keras.layers.Layer, keras.saving.register_keras_serializable)
    _block_class(of, of.layers.Layer, of.saving.register_keras_serializable)
    kmodel = keras.Sequential([keras.Input((4,)), k_block(4), L.Dense(1)])
    randomize(kmodel)
    kmodel.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    kmodel.fit(x, np.ones((8, 1), np.float32), batch_size=8, verbose=0)
    kmodel.save(tmp_path / "k.keras")
    model = of.load_model(tmp_path / "k.keras")
    assert max_diff(kmodel.predict(x, verbose=0), model.predict(x, verbose=0)) <= 1e-6
    model.save(tmp_path / "o.keras")
    # Sub-layers made in __init__ get fresh auto names on every rebuild (Keras's too), so the groups' `name`
    # attributes may differ; paths and shapes may not.
    layout = {k: v[1] for k, v in h5_layout(archive_weights(tmp_path / "o.keras")).items()}
    assert layout == {k: v[1] for k, v in h5_layout(archive_weights(tmp_path / "k.keras")).items()}
    assert {"layers/block/_gate/vars", "layers/block/norms/layer_normalization_1/vars",
            "layers/block/ffn/layers/dense_1/vars"} <= set(layout)
    back = keras.saving.load_model(tmp_path / "o.keras")
    assert max_diff(back.predict(x, verbose=0), kmodel.predict(x, verbose=0)) == 0.0


def test_learning_rate_schedule_both_ways(tmp_path):
    """A schedule is config, not a variable: Keras stores no learning-rate tensor for it, and neither do we."""
    kmodel = keras.Sequential([keras.Input((3,)), L.Dense(2)])
    kmodel.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)),
                   loss="mse")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 3)).astype("float32"), rng.normal(size=(8, 2)).astype("float32")
    kmodel.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    kmodel.save(tmp_path / "k.keras")
    model = of.load_model(tmp_path / "k.keras")
    assert model.optimizer.learning_rate == pytest.approx(float(kmodel.optimizer.learning_rate), rel=1e-6)
    model.save(tmp_path / "o.keras")
    assert h5_layout(archive_weights(tmp_path / "o.keras"))["optimizer/vars"][1] == [(), (3, 2), (3, 2), (2,), (2,)]
    back = keras.saving.load_model(tmp_path / "o.keras")
    kmodel.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    back.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    for a, b, c in zip(kmodel.get_weights(), model.get_weights(), back.get_weights()):
        np.testing.assert_allclose(a, b, atol=2e-6)
        np.testing.assert_array_equal(a, c)
