"""A batch of one broadcast against the traced batch, as keras.io's Perceiver does: a ``(1, latent, dim)``
latent weight fed with a batch of images into a functional model built on a dict of Inputs whose keys are
not the Inputs' names, through ``Attention`` and ``Add``. The static shapes must carry the batch (training
checks targets against them) and the dict must be taken by key, as Keras 3 does."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge.keras as keras

layers, ops = keras.layers, keras.ops
pytestmark = pytest.mark.filterwarnings("ignore:When providing `inputs` as a dict")


def _cross_attention_model():
    inputs = {"latent_array": layers.Input(shape=(4, 8)), "data_array": layers.Input(shape=(6, 8))}
    query = layers.Dense(8)(inputs["latent_array"])
    key = layers.Dense(8)(inputs["data_array"])
    attended = layers.Attention(use_scale=True)([query, key, key])
    return keras.Model(inputs, layers.Add()([attended, inputs["latent_array"]]))


def test_dict_inputs_are_taken_by_key():
    model = _cross_attention_model()
    assert sorted(spec.name for spec in model.input_spec) == ["data_array", "latent_array"]
    rng = np.random.default_rng(0)
    latent, data = rng.normal(size=(2, 4, 8)).astype("float32"), rng.normal(size=(2, 6, 8)).astype("float32")
    by_key = model.predict({"data_array": data, "latent_array": latent}, verbose=0)
    assert by_key.shape == (2, 4, 8)


def test_latent_batch_of_one_broadcasts_in_training():
    cross = _cross_attention_model()

    class Latent(keras.Model):
        def build(self, input_shape):
            self.latent = self.add_weight(shape=(4, 8), initializer="random_normal")
            self.project = layers.Dense(8)
            self.pool = layers.GlobalAveragePooling1D()
            super().build(input_shape)

        def call(self, x):
            out = cross({"latent_array": ops.expand_dims(self.latent, 0), "data_array": self.project(x)})
            assert out.shape[0] != 1, out.shape   # the batch, not the latent array's 1
            return self.pool(out)

    model = Latent()
    model.build((None, 6, 3))
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(1).normal(size=(5, 6, 3)).astype("float32")
    y = np.zeros((5, 8), "float32")
    predicted = model.predict(x, verbose=0)
    assert predicted.shape == (5, 8)
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0), np.mean(predicted ** 2), rtol=1e-5)
    assert np.isfinite(model.fit(x, y, epochs=1, verbose=0).history["loss"]).all()


def test_merge_shapes_broadcast_a_batch_of_one():
    add = layers.Add()
    assert add.compute_output_shape([(1, 4, 8), ("batch", 4, 8)]) == ("batch", 4, 8)
    assert add.compute_output_shape([(1, 4, 8), (None, 4, 8)]) == (None, 4, 8)
    assert add.compute_output_shape([(1, 4, 8), (1, 4, 8)]) == (1, 4, 8)
    attention = layers.Attention()
    assert attention.compute_output_shape([(1, 4, 8), ("batch", 6, 8), ("batch", 6, 8)]) == ("batch", 4, 8)
