"""Keras metric trackers in a custom ``train_step`` / ``test_step`` (the keras.io VAE pattern): traced into the
step, reset by ``fit`` at each epoch, reported in History as Keras reports them."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as of
import onnxforge.keras as fkeras

from .keras_oracle import copy_weights, keras

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
torch = pytest.importorskip("torch")
DATA = np.random.default_rng(2).uniform(size=(24, 6)).astype("float32")


def _coders(api, sampling):
    inp = api.Input((6,))
    h = api.layers.Dense(5, activation="relu")(inp)
    z_mean = api.layers.Dense(2, name="z_mean")(h)
    z_log_var = api.layers.Dense(2, name="z_log_var")(h)
    encoder = api.Model(inp, [z_mean, z_log_var, sampling()([z_mean, z_log_var])], name="encoder")
    lat = api.Input((2,))
    decoder = api.Model(lat, api.layers.Dense(6, activation="sigmoid")(api.layers.Dense(5, activation="relu")(lat)),
                        name="decoder")
    return encoder, decoder


def _vae_class(api, step):
    ops = api.ops

    class VAE(api.Model):
        def __init__(self, encoder, decoder, **kwargs):
            super().__init__(**kwargs)
            self.encoder = encoder
            self.decoder = decoder
            self.total_loss_tracker = api.metrics.Mean(name="total_loss")
            self.reconstruction_loss_tracker = api.metrics.Mean(name="reconstruction_loss")
            self.kl_loss_tracker = api.metrics.Mean(name="kl_loss")

        @property
        def metrics(self):
            return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

        def losses_of(self, data):
            z_mean, z_log_var, z = self.encoder(data)
            reconstruction = self.decoder(z)
            reconstruction_loss = ops.mean(ops.sum(api.losses.binary_crossentropy(
                ops.expand_dims(data, -1), ops.expand_dims(reconstruction, -1)), axis=1))
            kl_loss = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
            kl_loss = ops.mean(ops.sum(kl_loss, axis=1))
            return reconstruction_loss + kl_loss, reconstruction_loss, kl_loss

        def train_step(self, data):
            total_loss, reconstruction_loss, kl_loss = step(self, data)
            self.total_loss_tracker.update_state(total_loss)
            self.reconstruction_loss_tracker.update_state(reconstruction_loss)
            self.kl_loss_tracker.update_state(kl_loss)
            return {
                "loss": self.total_loss_tracker.result(),
                "reconstruction_loss": self.reconstruction_loss_tracker.result(),
                "kl_loss": self.kl_loss_tracker.result(),
            }

        def test_step(self, data):
            total_loss, reconstruction_loss, kl_loss = self.losses_of(data)
            self.total_loss_tracker.update_state(total_loss)
            return {"loss": self.total_loss_tracker.result()}

    return VAE


def _onnxforge_step(model, data):
    with of.GradientTape() as tape:
        total_loss, reconstruction_loss, kl_loss = model.losses_of(data)
    grads = tape.gradient(total_loss, model.trainable_weights)
    model.optimizer.apply_gradients(zip(grads, model.trainable_weights))
    return total_loss, reconstruction_loss, kl_loss


def _keras_torch_step(model, data):
    # Keras 3's custom train_step on the torch backend (keras.io "customizing fit() with PyTorch").
    model.zero_grad()
    total_loss, reconstruction_loss, kl_loss = model.losses_of(data)
    total_loss.backward()
    weights = list(model.trainable_weights)
    with torch.no_grad():
        model.optimizer.apply([v.value.grad for v in weights], weights)
    return total_loss, reconstruction_loss, kl_loss


def _fixed_sampling(api):
    class Sampling(api.layers.Layer):   # the noise fixed, so both frameworks see the same numbers
        def call(self, inputs):
            z_mean, z_log_var = inputs
            return z_mean + api.ops.exp(0.5 * z_log_var) * 0.3

    return Sampling


def test_vae_trackers_give_keras_history_on_the_same_weights_and_data():
    histories = []
    for api, step in ((keras, _keras_torch_step), (fkeras, _onnxforge_step)):
        encoder, decoder = _coders(api, _fixed_sampling(api))
        vae = _vae_class(api, step)(encoder, decoder)
        vae.compile(optimizer=api.optimizers.SGD(learning_rate=0.1))
        vae.built = True   # Keras would otherwise try to call() the model to build it (a VAE has no call)
        histories.append((vae, encoder, decoder))
    (kvae, kenc, kdec), (fvae, fenc, fdec) = histories
    copy_weights(kenc, fenc, seed=1)
    copy_weights(kdec, fdec, seed=2)
    want = kvae.fit(DATA, epochs=3, batch_size=8, shuffle=False, verbose=0).history
    got = fvae.fit(DATA, epochs=3, batch_size=8, shuffle=False, verbose=0).history
    assert sorted(got) == sorted(want) == ["kl_loss", "loss", "reconstruction_loss"]
    for key in want:   # (a tracker not reset per epoch, or reset per step, is off by far more)
        np.testing.assert_allclose(got[key], want[key], rtol=5e-4, err_msg=key)
    np.testing.assert_allclose(np.add(got["reconstruction_loss"], got["kl_loss"]), got["loss"], rtol=1e-5)
    for kw, fw in zip(kvae.weights, fvae.weights):
        np.testing.assert_allclose(fw.numpy(), keras.ops.convert_to_numpy(kw.value), rtol=5e-4, atol=5e-5)
    # evaluate() runs the custom test_step; Keras resets the trackers first.
    np.testing.assert_allclose(fvae.evaluate(DATA, batch_size=8, verbose=0),
                               kvae.evaluate(DATA, batch_size=8, verbose=0), rtol=5e-4)


class Sampling(of.layers.Layer):
    """keras.io's VAE sampling layer: draws from its own SeedGenerator."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = fkeras.random.SeedGenerator(1337)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        batch = fkeras.ops.shape(z_mean)[0]
        dim = fkeras.ops.shape(z_mean)[1]
        epsilon = fkeras.random.normal(shape=(batch, dim), seed=self.seed_generator)
        return z_mean + fkeras.ops.exp(0.5 * z_log_var) * epsilon


def test_trackers_reset_each_epoch_and_sampling_draws_in_training_and_predict():
    encoder, decoder = _coders(fkeras, Sampling)

    def step(model, data):
        out = _onnxforge_step(model, data)
        model.raw = out[0]
        return out

    vae_cls = _vae_class(fkeras, step)

    class Logged(vae_cls):
        def train_step(self, data):
            logs = super().train_step(data)
            return {**logs, "raw_loss": self.raw}   # a plain value: fit reports the last step's (Keras 3)

    class Raws(fkeras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            raws.append([])

        def on_train_batch_end(self, batch, logs=None):
            raws[-1].append(logs["raw_loss"])

    raws: list = []
    vae = Logged(encoder, decoder)
    vae.compile(optimizer=fkeras.optimizers.Adam())
    history = vae.fit(DATA, epochs=3, batch_size=8, verbose=0, callbacks=[Raws()]).history
    # Each epoch's tracker result is that epoch's mean: fit reset the trackers at its start.
    np.testing.assert_allclose(history["loss"], [np.mean(r) for r in raws], rtol=1e-5)
    np.testing.assert_allclose(history["raw_loss"], [r[-1] for r in raws], rtol=1e-6)
    assert len(set(np.round(history["loss"], 6))) == 3
    assert vae.total_loss_tracker.result() == pytest.approx(history["loss"][-1], rel=1e-6)
    vae.reset_metrics()
    assert vae.total_loss_tracker.result() == 0.0
    z1 = encoder.predict(DATA, verbose=0)[2]
    z2 = encoder.predict(DATA, verbose=0)[2]
    z_mean = encoder.predict(DATA, verbose=0)[0]
    assert not np.allclose(z1, z2) and np.abs(z1 - z_mean).max() > 0.1   # predict samples, and advances the stream
    assert encoder(DATA[:4])[2].shape == (4, 2)                          # and so does an eager call


def test_a_tracker_result_where_no_metric_state_is_kept_names_the_tracker():
    # update_state inside call() is Keras's endpoint-layer pattern (tests/trainer/test_layer_metrics.py);
    # a result() there has no value to give.
    tracker = of.metrics.Mean(name="my_tracker")

    class Bad(of.layers.Layer):
        def call(self, x):
            tracker.update_state(x)
            return x * tracker.result()

    with pytest.raises(TypeError, match=r"Metric 'my_tracker' \(Mean\)\.result\(\).*train_step"):
        Bad()(of.Input((3,)))


def test_a_tracker_updated_in_a_layer_call_is_reported_by_compiled_steps():
    """As in Keras (the endpoint-layer pattern), a layer may update a metric in call(): building the model
    is fine, and fit / evaluate report the metric under its name."""
    class Tracked(of.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.tracker = of.metrics.Mean(name="my_tracker")

        def call(self, x):
            self.tracker.update_state(x)
            return x

    inp = of.Input((3,))
    model = of.Model(inp, of.layers.Dense(1)(Tracked()(inp)))
    model.compile(optimizer="sgd", loss="mse")
    x = np.arange(12, dtype="float32").reshape(4, 3)
    logs = model.evaluate(x, np.zeros((4, 1)), verbose=0, return_dict=True)
    assert logs["my_tracker"] == pytest.approx(x.mean())
