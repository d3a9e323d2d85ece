"""keras.io's "Making new layers and models via subclassing": weights created in ``__init__`` or ``build``,
non-trainable state updated in ``call``, nested layers, ``add_loss`` and the ``losses`` property (reset on each
top-level call, regularization penalties included), ``fit`` with and without a compiled loss, ``get_config``,
the ``training`` argument, and the end-to-end VAE subclass.
"""
from __future__ import annotations

import numpy as np

from tests.keras_examples.harness import assert_close, fkeras, run_both, to_numpy

RNG = np.random.default_rng(0)


def layer_state(keras_api, data, init):
    ops = keras_api.ops

    class Linear(keras_api.layers.Layer):
        def __init__(self, units=32, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="random_normal")
            self.b = self.add_weight(shape=(self.units,), initializer="random_normal")

        def call(self, inputs):
            return ops.matmul(inputs, self.w) + self.b

        def get_config(self):
            config = super().get_config()
            config.update({"units": self.units})
            return config

    class ComputeSum(keras_api.layers.Layer):
        def __init__(self, input_dim):
            super().__init__()
            self.total = self.add_weight(initializer="zeros", shape=(input_dim,), trainable=False)

        def call(self, inputs):
            self.total.assign_add(ops.sum(inputs, axis=0))
            return self.total

    class MLPBlock(keras_api.layers.Layer):
        def __init__(self):
            super().__init__()
            self.linear_1, self.linear_2, self.linear_3 = Linear(8), Linear(8), Linear(1)

        def call(self, inputs):
            x = ops.relu(self.linear_1(inputs))
            return self.linear_3(ops.relu(self.linear_2(x)))

    out = {}
    my_sum = ComputeSum(2)
    for i in range(2):
        out.update({f"sum{i}_{j}": float(v) for j, v in enumerate(to_numpy(my_sum(np.ones((2, 2), "float32"))))})
    out.update(weights=float(len(my_sum.weights)), non_trainable=float(len(my_sum.non_trainable_weights)),
               trainable=float(len(my_sum.trainable_weights)))
    mlp = MLPBlock()
    y = mlp(np.ones((3, 6), "float32"))
    out.update(mlp_weights=float(len(mlp.weights)), mlp_trainable=float(len(mlp.trainable_weights)),
               mlp_out=float(np.prod(y.shape)))
    layer = Linear(5, name="lin")
    config = layer.get_config()
    again = Linear.from_config(config)
    out.update(units=float(again.units), same_name=float(again.name == "lin"))
    return out


def test_layer_weights_and_state_match_keras():
    want, got = run_both(layer_state, None, copy_weights=False)
    assert_close(want, got, rtol=0)


def losses_property(keras_api, data, init):
    ops = keras_api.ops

    class ActivityRegularizationLayer(keras_api.layers.Layer):
        def __init__(self, rate=1e-2):
            super().__init__()
            self.rate = rate

        def call(self, inputs):
            self.add_loss(self.rate * ops.mean(inputs))
            return inputs

    class OuterLayer(keras_api.layers.Layer):
        def __init__(self):
            super().__init__()
            self.activity_reg = ActivityRegularizationLayer(1e-2)

        def call(self, inputs):
            return self.activity_reg(inputs)

    class OuterLayerWithKernelRegularizer(keras_api.layers.Layer):
        def __init__(self):
            super().__init__()
            self.dense = keras_api.layers.Dense(4, kernel_regularizer=keras_api.regularizers.l2(1e-3),
                                                kernel_initializer="ones")

        def call(self, inputs):
            return self.dense(inputs)

    layer = OuterLayer()
    out = {"before": float(len(layer.losses))}
    layer(np.zeros((1, 1), "float32"))
    out["after_one"] = float(len(layer.losses))
    layer(np.full((1, 1), 3.0, "float32"))
    out["after_two"] = float(len(layer.losses))
    out["value"] = float(to_numpy(layer.losses[0]))
    regularized = OuterLayerWithKernelRegularizer()
    regularized(np.zeros((1, 3), "float32"))
    out["penalty"] = float(sum(float(to_numpy(v)) for v in regularized.losses))

    inputs = keras_api.Input(shape=(3,))
    model = keras_api.Model(inputs, ActivityRegularizationLayer()(keras_api.layers.Dense(3)(inputs)))
    init(model)
    model.compile(optimizer="adam", loss="mse")
    out["with_loss"] = model.fit(data[0], data[1], batch_size=2, shuffle=False, verbose=0).history["loss"][0]
    return out


def test_losses_property_and_fit_with_added_losses_match_keras():
    data = (RNG.random((4, 3)).astype("float32"), RNG.random((4, 3)).astype("float32"))
    want, got = run_both(losses_property, data, copy_weights=True)
    assert_close(want, got, rtol=1e-5, atol=1e-7)


def test_compile_without_a_loss_trains_on_the_added_losses():
    """The guide's ``model.compile(optimizer="adam")`` then ``fit``: the loss is the ``add_loss`` term alone
    (Keras 3 keeps the previous compile's loss when recompiled without one; tf.keras and the guide do not)."""
    ops = fkeras.ops

    class ActivityRegularizationLayer(fkeras.layers.Layer):
        def call(self, inputs):
            self.add_loss(1e-2 * ops.mean(inputs))
            return inputs

    inputs = fkeras.Input(shape=(3,))
    model = fkeras.Model(inputs, ActivityRegularizationLayer()(inputs))
    model.compile(optimizer="adam", loss="mse")
    model.compile(optimizer="adam")
    x = RNG.random((2, 3)).astype("float32")
    loss = model.fit(x, RNG.random((2, 3)), verbose=0).history["loss"][0]
    assert loss == np.float32(1e-2 * x.mean()).item() or abs(loss - 1e-2 * x.mean()) < 1e-7


def training_argument(keras_api, data, init):
    class CustomDropout(keras_api.layers.Layer):
        def __init__(self, rate, **kwargs):
            super().__init__(**kwargs)
            self.rate = rate

        def call(self, inputs, training=None):
            if training:
                return keras_api.random.dropout(inputs, rate=self.rate)
            return inputs

    inputs = keras_api.Input((50,))
    model = keras_api.Model(inputs, CustomDropout(0.5)(inputs))
    ones = np.ones((40, 50), "float32")
    dropped = to_numpy(model(ones, training=True))
    return {"inference_sum": float(to_numpy(model(ones)).sum()),
            "predict_sum": float(model.predict(ones, verbose=0).sum()),
            "train_zero_fraction_band": float(0.4 < (dropped == 0).mean() < 0.6),
            "train_scale": float(dropped.max())}


def test_training_argument_switches_custom_dropout_like_keras():
    want, got = run_both(training_argument, None, copy_weights=False)
    assert_close(want, got, rtol=1e-6)


def vae(keras_api, data, init):
    """The guide's VAE with its sampling noise set to zero, so both frameworks compute the same numbers."""
    layers, ops = keras_api.layers, keras_api.ops

    class Sampling(layers.Layer):
        def call(self, inputs):
            z_mean, z_log_var = inputs
            epsilon = ops.zeros((ops.shape(z_mean)[0], ops.shape(z_mean)[1]))
            return z_mean + ops.exp(0.5 * z_log_var) * epsilon

    class Encoder(layers.Layer):
        def __init__(self, latent_dim=4, intermediate_dim=8, name="encoder", **kwargs):
            super().__init__(name=name, **kwargs)
            self.dense_proj = layers.Dense(intermediate_dim, activation="relu")
            self.dense_mean = layers.Dense(latent_dim)
            self.dense_log_var = layers.Dense(latent_dim)
            self.sampling = Sampling()

        def call(self, inputs):
            x = self.dense_proj(inputs)
            z_mean, z_log_var = self.dense_mean(x), self.dense_log_var(x)
            return z_mean, z_log_var, self.sampling((z_mean, z_log_var))

    class Decoder(layers.Layer):
        def __init__(self, original_dim, intermediate_dim=8, name="decoder", **kwargs):
            super().__init__(name=name, **kwargs)
            self.dense_proj = layers.Dense(intermediate_dim, activation="relu")
            self.dense_output = layers.Dense(original_dim, activation="sigmoid")

        def call(self, inputs):
            return self.dense_output(self.dense_proj(inputs))

    class VariationalAutoEncoder(keras_api.Model):
        def __init__(self, original_dim, intermediate_dim=8, latent_dim=4, name="autoencoder", **kwargs):
            super().__init__(name=name, **kwargs)
            self.encoder = Encoder(latent_dim=latent_dim, intermediate_dim=intermediate_dim)
            self.decoder = Decoder(original_dim, intermediate_dim=intermediate_dim)

        def call(self, inputs):
            z_mean, z_log_var, z = self.encoder(inputs)
            reconstructed = self.decoder(z)
            self.add_loss(-0.5 * ops.mean(z_log_var - ops.square(z_mean) - ops.exp(z_log_var) + 1))
            return reconstructed

    model = VariationalAutoEncoder(12)
    model(data[:2])
    init(model)
    model.compile(keras_api.optimizers.Adam(learning_rate=1e-2), loss=keras_api.losses.MeanSquaredError())
    history = model.fit(data, data, epochs=2, batch_size=8, shuffle=False, verbose=0)
    out = {f"loss_{i}": float(v) for i, v in enumerate(history.history["loss"])}
    out["n_losses"] = float(len(model.losses))
    return out


def test_end_to_end_vae_subclass_trains_like_keras():
    want, got = run_both(vae, RNG.random((32, 12)).astype("float32"), copy_weights=True)
    assert_close(want, got, rtol=2e-4)
