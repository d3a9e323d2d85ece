"""keras.io's "Save, serialize, and export models": ``.keras`` round trips with registered custom objects,
``custom_objects`` and ``custom_object_scope``, configs of layers, Sequential and functional models, JSON,
``serialize_keras_object``, weight transfer between functional and subclassed models, and the appendix's
custom layers whose ``get_config`` returns the objects they hold.
"""
from __future__ import annotations

import numpy as np
import pytest

from tests.keras_examples.harness import fkeras, keras, to_numpy, workdir

APIS = pytest.mark.parametrize("api", [keras, fkeras], ids=["keras", "onnxforge"])


def _my_dense(api, suffix):
    """The guide's ``MyDense``: a ``get_config`` that returns its regularizer and nested layer as they are."""

    @api.saving.register_keras_serializable(package=f"Guide{suffix}", name="KernelMult")
    class MyDense(api.layers.Layer):
        def __init__(self, units, *, kernel_regularizer=None, kernel_initializer=None, nested_model=None, **kwargs):
            super().__init__(**kwargs)
            self.hidden_units = units
            self.kernel_regularizer = kernel_regularizer
            self.kernel_initializer = kernel_initializer
            self.nested_model = nested_model

        def get_config(self):
            config = super().get_config()
            config.update({"units": self.hidden_units, "kernel_regularizer": self.kernel_regularizer,
                           "kernel_initializer": self.kernel_initializer, "nested_model": self.nested_model})
            return config

        def build(self, input_shape):
            self.kernel = self.add_weight(name="kernel", shape=(input_shape[-1], self.hidden_units),
                                          regularizer=self.kernel_regularizer, initializer=self.kernel_initializer)

        def call(self, inputs):
            return api.ops.matmul(inputs, self.kernel)

    return MyDense


def test_layer_serialize_writes_the_objects_a_custom_config_holds_as_keras_does():
    """The regression: ``keras.layers.serialize`` left the nested layer and regularizer as Python objects."""
    configs = {}
    for api, suffix in ((keras, "K"), (fkeras, "F")):
        MyDense = _my_dense(api, suffix)
        inner = MyDense(units=16, kernel_regularizer=api.regularizers.L1L2(l1=1e-5, l2=1e-4),
                        kernel_initializer="ones")
        configs[suffix] = api.layers.serialize(MyDense(units=64, nested_model=inner))
    want, got = configs["K"], configs["F"]
    assert got["registered_name"] == "GuideF>KernelMult" and want["registered_name"] == "GuideK>KernelMult"
    nested_want, nested_got = want["config"]["nested_model"], got["config"]["nested_model"]
    assert isinstance(nested_got, dict) and nested_got["class_name"] == nested_want["class_name"] == "MyDense"
    assert nested_got["registered_name"] == "GuideF>KernelMult"
    assert nested_got["config"]["units"] == nested_want["config"]["units"] == 16
    assert nested_got["config"]["kernel_regularizer"] == nested_want["config"]["kernel_regularizer"] == {
        "module": "keras.regularizers", "class_name": "L1L2", "config": {"l1": 1e-05, "l2": 0.0001},
        "registered_name": None}


@APIS
def test_functional_model_with_a_layer_holding_layers_rebuilds_from_its_config(api):
    """The guide's ``CustomModel`` layer whose ``from_config`` calls ``keras.layers.deserialize`` on the
    layers its config holds (onnxforge's functional config handed it the layer objects themselves)."""
    suffix = "K2" if api is keras else "F2"
    MyDense = _my_dense(api, suffix)

    @api.saving.register_keras_serializable(package=f"Complex{suffix}")
    class CustomModel(api.layers.Layer):
        def __init__(self, first_layer, second_layer=None, **kwargs):
            super().__init__(**kwargs)
            self.first_layer = first_layer
            self.second_layer = second_layer if second_layer is not None else api.layers.Dense(8)

        def get_config(self):
            config = super().get_config()
            config.update({"first_layer": self.first_layer, "second_layer": self.second_layer})
            return config

        @classmethod
        def from_config(cls, config):
            config["first_layer"] = api.layers.deserialize(config["first_layer"])
            config["second_layer"] = api.layers.deserialize(config["second_layer"])
            return cls(**config)

        def call(self, inputs):
            return self.first_layer(self.second_layer(inputs))

    inputs = api.Input((32,))
    model = api.Model(inputs, CustomModel(first_layer=MyDense(units=16, kernel_initializer="ones"))(inputs))
    again = api.Model.from_config(model.get_config())
    assert tuple(again.output_shape) == (None, 16)
    assert len(again.weights) == 3


@APIS
def test_keras_file_round_trips_with_each_way_of_naming_custom_objects(api, tmp_path):
    suffix = "K3" if api is keras else "F3"

    @api.saving.register_keras_serializable(package=f"MyLayers{suffix}")
    class CustomLayer(api.layers.Layer):
        def __init__(self, factor):
            super().__init__()
            self.factor = factor

        def call(self, x):
            return x * self.factor

        def get_config(self):
            return {"factor": self.factor}

    @api.saving.register_keras_serializable(package=f"my_package{suffix}", name="custom_fn")
    def custom_fn(x):
        return x ** 2

    inputs = api.Input(shape=(4,))
    outputs = api.layers.Dense(1, activation=custom_fn)(CustomLayer(0.5)(inputs))
    model = api.Model(inputs, outputs)
    model.compile(optimizer="rmsprop", loss="mean_squared_error")
    rng = np.random.default_rng(0)
    model.fit(rng.random((4, 4)), rng.random((4, 1)), verbose=0)
    path = str(workdir(api, tmp_path) / "custom_model.keras")
    model.save(path)
    x = rng.random((4, 4))
    want = model.predict(x, verbose=0)
    objects = {"CustomLayer": CustomLayer, "custom_fn": custom_fn}
    np.testing.assert_allclose(api.models.load_model(path).predict(x, verbose=0), want, rtol=1e-6)
    np.testing.assert_allclose(api.models.load_model(path, custom_objects=objects).predict(x, verbose=0), want,
                               rtol=1e-6)
    with api.saving.custom_object_scope(objects):
        np.testing.assert_allclose(api.models.load_model(path).predict(x, verbose=0), want, rtol=1e-6)


@APIS
def test_weights_move_from_a_functional_to_a_subclassed_model_and_into_an_extracted_sequential(api, tmp_path):
    def functional():
        inputs = api.Input(shape=(10,), name="digits")
        x = api.layers.Dense(6, activation="relu", name="dense_1")(inputs)
        x = api.layers.Dense(6, activation="relu", name="dense_2")(x)
        return api.Model(inputs, api.layers.Dense(3, name="predictions")(x), name="3_layer_mlp")

    class SubclassedModel(api.Model):
        def __init__(self, output_dim, name=None):
            super().__init__(name=name)
            self.dense_1 = api.layers.Dense(6, activation="relu", name="dense_1")
            self.dense_2 = api.layers.Dense(6, activation="relu", name="dense_2")
            self.dense_3 = api.layers.Dense(output_dim, name="predictions")

        def call(self, inputs):
            return self.dense_3(self.dense_2(self.dense_1(inputs)))

    source = functional()
    sub = SubclassedModel(3)
    sub(np.ones((1, 10), "float32"))
    sub.set_weights(source.get_weights())
    for a, b in zip(source.weights, sub.weights):
        np.testing.assert_allclose(to_numpy(a), to_numpy(b))
    path = str(workdir(api, tmp_path) / "pretrained.weights.h5")
    source.save_weights(path)
    pretrained = functional()
    pretrained.load_weights(path)
    extracted = pretrained.layers[:-1] + [api.layers.Dense(5, name="dense_3")]
    model = api.Sequential(extracted)
    assert tuple(model.output_shape) == (None, 5)
    assert [w.shape for w in model.get_weights()[:4]] == [w.shape for w in source.get_weights()[:4]]
    np.testing.assert_allclose(model.get_weights()[0], source.get_weights()[0])


def test_model_json_and_object_configs_read_like_keras():
    for api in (keras, fkeras):
        model = api.Sequential([api.Input((32,)), api.layers.Dense(1)])
        again = api.models.model_from_json(model.to_json())
        assert [type(layer).__name__ for layer in again.layers] == ["Dense"]
    got = fkeras.saving.serialize_keras_object(fkeras.regularizers.L1(0.005))
    want = keras.saving.serialize_keras_object(keras.regularizers.L1(0.005))
    assert {k: v for k, v in got.items() if k != "config"} == {k: v for k, v in want.items() if k != "config"}
    assert got["config"]["l1"] == pytest.approx(want["config"]["l1"])
    assert type(fkeras.saving.deserialize_keras_object(want)).__name__ == "L1"


def json_round_trip(keras_api, data, init):
    """``model.to_json()`` of a compiled model carries its ``compile_config`` and ``model_from_json`` compiles
    the rebuilt model, as in Keras (the regression: onnxforge wrote no compile_config, so ``fit`` on the rebuilt
    model asked for ``compile()``)."""
    import json

    model = keras_api.Sequential([keras_api.Input((4,)), keras_api.layers.Dense(2)])
    model.compile(optimizer=keras_api.optimizers.SGD(0.1), loss="mse", metrics=["mae"])
    text = model.to_json()
    again = keras_api.models.model_from_json(text)
    init(again)
    history = again.fit(data[0], data[1], batch_size=4, shuffle=False, verbose=0)
    out = {f"{k}": float(v[0]) for k, v in history.history.items()}
    out["has_compile_config"] = float("compile_config" in json.loads(text))
    return out


def test_json_round_trip_keeps_the_compile_config_like_keras():
    from tests.keras_examples.harness import assert_close, run_both

    rng = np.random.default_rng(0)
    data = (rng.random((8, 4)).astype("float32"), rng.random((8, 2)).astype("float32"))
    want, got = run_both(json_round_trip, data, copy_weights=True)
    assert got["has_compile_config"] == 1.0
    assert_close(want, got, rtol=1e-5)
