"""``keras.saving.serialize_keras_object`` / ``deserialize_keras_object`` against Keras 3's own: the same dict
shape both ways, nested objects in custom layers' configs, and clear errors."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
import onnxforge as tf  # noqa: E402
from onnxforge.saving import deserialize_keras_object, serialize_keras_object  # noqa: E402

keras = pytest.importorskip("keras")

PAIRS = {
    "dense": lambda m: m.layers.Dense(3, activation="relu", kernel_regularizer=m.regularizers.L2(0.01)),
    "huber": lambda m: m.losses.Huber(delta=2.0),
    "adam": lambda m: m.optimizers.Adam(learning_rate=0.01, beta_1=0.8),
    "auc": lambda m: m.metrics.AUC(num_thresholds=50),
    "glorot": lambda m: m.initializers.GlorotUniform(seed=3),
    "l2": lambda m: m.regularizers.L2(0.1),
}
KEYS = ("module", "class_name", "registered_name")


@pytest.mark.parametrize("name", list(PAIRS))
def test_same_entry_as_keras_both_ways(name):
    ours, theirs = PAIRS[name](tf.keras), PAIRS[name](keras)
    mine, kera = serialize_keras_object(ours), keras.saving.serialize_keras_object(theirs)
    # Keras writes its backend's optimizer classes under their backend module
    # ("keras.src.backend.torch.optimizers.torch_adam", registered "Adam"); the public ones match exactly.
    keys = ("class_name",) if kera["module"].startswith("keras.src.backend.") else KEYS
    assert {k: mine[k] for k in keys} == {k: kera[k] for k in keys}
    back, kback = deserialize_keras_object(kera), keras.saving.deserialize_keras_object(mine)
    assert type(back).__name__ == type(theirs).__name__ and type(kback).__name__ == type(ours).__name__
    # Every argument both sides know survives the trip through the other side.
    got, want = back.get_config(), theirs.get_config()
    for key in set(got) & set(want) - {"name", "dtype", "kernel_regularizer", "kernel_initializer",
                                         "bias_initializer"}:
        g, w = got[key], want[key]
        if isinstance(w, float):
            assert g == pytest.approx(w, rel=1e-6), key
        else:
            assert g == w, key


def test_functions_are_written_by_name_and_read_back_as_functions():
    entry = serialize_keras_object(tf.keras.activations.relu)
    assert entry == keras.saving.serialize_keras_object(keras.activations.relu)
    assert deserialize_keras_object(entry) is tf.keras.activations.relu
    loss_entry = keras.saving.serialize_keras_object(keras.losses.mean_squared_error)
    fn = deserialize_keras_object(loss_entry)
    assert callable(fn) and not isinstance(fn, type) and fn.__name__ == "mean_squared_error"


def test_plain_values_containers_and_keras_tuples():
    data = [1, 2.5, "s", None, True, (1, 2), {"a": [np.float32(1.5), np.int64(3)]}]
    out = serialize_keras_object(data)
    assert out == [1, 2.5, "s", None, True, (1, 2), {"a": [1.5, 3]}]
    assert isinstance(out[6]["a"][0], float) and isinstance(out[6]["a"][1], int)
    assert deserialize_keras_object({"class_name": "__tuple__", "config": {"value": [1, 2]}}) == (1, 2)
    assert deserialize_keras_object({"units": 3, "nested": [1]}) == {"units": 3, "nested": [1]}


@tf.keras.saving.register_keras_serializable(package="SerializationTest")
class Residual(tf.keras.layers.Layer):
    """The Keras serialization guide's pattern: a layer that owns another layer and a loss."""

    def __init__(self, inner, loss=None, **kwargs):
        super().__init__(**kwargs)
        self.inner, self.loss_fn = inner, loss

    def call(self, x):
        return x + self.inner(x)

    def get_config(self):
        return {**super().get_config(), "inner": serialize_keras_object(self.inner),
                "loss": serialize_keras_object(self.loss_fn)}

    @classmethod
    def from_config(cls, config):
        config["inner"] = deserialize_keras_object(config["inner"])
        config["loss"] = deserialize_keras_object(config["loss"])
        return cls(**config)


def test_custom_layer_with_nested_objects_round_trips_and_trains():
    layer = Residual(tf.keras.layers.Dense(4, activation="tanh"), loss=tf.keras.losses.Huber(0.5))
    clone = deserialize_keras_object(serialize_keras_object(layer))
    assert isinstance(clone, Residual) and clone.inner.units == 4 and clone.loss_fn.delta == 0.5
    model = tf.keras.Sequential([tf.keras.Input((4,)), clone, tf.keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss=clone.loss_fn)
    x = np.random.default_rng(0).standard_normal((16, 4)).astype(np.float32)
    history = model.fit(x, x[:, :1], epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_errors_name_what_is_wrong():
    with pytest.raises(ValueError, match="NoSuchThing"):
        deserialize_keras_object({"module": "keras.losses", "class_name": "NoSuchThing", "config": {},
                                  "registered_name": None})
    with pytest.raises(ValueError, match="Could not locate class 'Mystery'"):
        deserialize_keras_object({"module": "my.module", "class_name": "Mystery", "config": {},
                                  "registered_name": None})
    with pytest.raises(ValueError, match="no_such_fn"):
        deserialize_keras_object({"module": "builtins", "class_name": "function", "config": "no_such_fn",
                                  "registered_name": "function"})
    with pytest.raises(TypeError, match="lambda"):
        serialize_keras_object(lambda x: x)
    with pytest.raises(TypeError, match="not a Keras object"):
        serialize_keras_object(object())
