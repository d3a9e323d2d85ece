"""``keras.saving.custom_object_scope`` / ``get_custom_objects`` against Keras 3: names of the program's own
activations and layers resolve inside a scope or from the global dict, and registration lists the class."""
from __future__ import annotations

import numpy as np
import pytest

from tests.keras_oracle.common import LIBS, fkeras


def test_activation_name_from_global_custom_objects():
    """tf.keras 2 programs register activations by name (``get_custom_objects().update(...)``) and use the
    name in layers; Keras 3 resolves such names only in saved configs, onnxforge in both places."""
    x = np.linspace(-2, 2, 12, dtype="float32").reshape(4, 3)

    def half_relu(v):
        return fkeras.ops.relu(v) * 0.5

    fkeras.saving.get_custom_objects()["half_relu"] = half_relu
    try:
        model = fkeras.Sequential([fkeras.Input((3,)), fkeras.layers.Dense(2, activation="half_relu",
                                                                           kernel_initializer="ones")])
        out = np.asarray(model.predict(x, verbose=0))
    finally:
        del fkeras.saving.get_custom_objects()["half_relu"]
    np.testing.assert_allclose(out, np.maximum(x.sum(1, keepdims=True), 0) * 0.5 * np.ones((1, 2)), rtol=1e-6)
    with pytest.raises(ValueError, match="half_relu"):
        fkeras.layers.Dense(2, activation="half_relu")
    with fkeras.saving.custom_object_scope({"half_relu": half_relu}):
        assert fkeras.layers.Dense(2, activation="half_relu").activation is half_relu


def test_scope_resolves_a_custom_layer_when_loading(tmp_path):
    class Doubler(fkeras.layers.Layer):
        def call(self, x):
            return x * 2.0

    model = fkeras.Sequential([fkeras.Input((3,)), Doubler(name="doubler"), fkeras.layers.Dense(1)])
    path = tmp_path / "m.keras"
    model.save(path)
    with pytest.raises(Exception, match="Doubler"):   # Keras: TypeError "Could not locate class"
        fkeras.saving.load_model(path)
    with fkeras.utils.custom_object_scope({"Doubler": Doubler}):
        loaded = fkeras.saving.load_model(path)
    x = np.ones((2, 3), "float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert fkeras.saving.custom_object_scope is fkeras.saving.CustomObjectScope


def test_registration_is_listed_like_keras():
    for lib, k in LIBS.items():
        @k.saving.register_keras_serializable(package="surface_test")
        class Tagged(k.layers.Layer):
            pass

        assert k.saving.get_custom_objects()["surface_test>Tagged"] is Tagged, lib
