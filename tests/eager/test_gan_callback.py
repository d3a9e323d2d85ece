"""keras.io's DCGAN, as written for Keras 3: metric trackers in ``train_step`` and a callback that draws
samples by calling the generator on the latent vectors of ``keras.random.normal``."""
from __future__ import annotations

import numpy as np

import onnxforge as of
import onnxforge.keras as keras
from onnxforge.eager_tensor import EagerTensor
from onnxforge.keras import layers, ops

LATENT = 3


class GAN(keras.Model):
    def __init__(self, discriminator, generator, latent_dim):
        super().__init__()
        self.discriminator = discriminator
        self.generator = generator
        self.latent_dim = latent_dim
        self.seed_generator = keras.random.SeedGenerator(1337)

    def compile(self, d_optimizer, g_optimizer, loss_fn):
        super().compile()
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss_fn = loss_fn
        self.d_loss_metric = keras.metrics.Mean(name="d_loss")
        self.g_loss_metric = keras.metrics.Mean(name="g_loss")

    @property
    def metrics(self):
        return [self.d_loss_metric, self.g_loss_metric]

    def train_step(self, real_images):
        batch_size = ops.shape(real_images)[0]
        random_latent_vectors = keras.random.normal(shape=(batch_size, self.latent_dim), seed=self.seed_generator)
        generated_images = self.generator(random_latent_vectors)
        combined_images = ops.concatenate([generated_images, real_images], axis=0)
        labels = ops.concatenate([ops.ones((batch_size, 1)), ops.zeros((batch_size, 1))], axis=0)
        labels += 0.05 * keras.random.uniform(ops.shape(labels), seed=self.seed_generator)
        with of.GradientTape() as tape:
            predictions = self.discriminator(combined_images)
            d_loss = self.loss_fn(labels, predictions)
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))
        random_latent_vectors = keras.random.normal(shape=(batch_size, self.latent_dim), seed=self.seed_generator)
        misleading_labels = ops.zeros((batch_size, 1))
        with of.GradientTape() as tape:
            predictions = self.discriminator(self.generator(random_latent_vectors))
            g_loss = self.loss_fn(misleading_labels, predictions)
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))
        self.d_loss_metric.update_state(d_loss)
        self.g_loss_metric.update_state(g_loss)
        return {"d_loss": self.d_loss_metric.result(), "g_loss": self.g_loss_metric.result()}


class GANMonitor(keras.callbacks.Callback):
    def __init__(self, num_img=3, latent_dim=128):
        self.num_img = num_img
        self.latent_dim = latent_dim
        self.seed_generator = keras.random.SeedGenerator(42)
        self.samples = []

    def on_epoch_end(self, epoch, logs=None):
        random_latent_vectors = keras.random.normal(shape=(self.num_img, self.latent_dim), seed=self.seed_generator)
        generated_images = self.model.generator(random_latent_vectors)
        generated_images *= 255
        generated_images.numpy()
        self.samples.append((np.asarray(random_latent_vectors), generated_images))


def test_dcgan_with_trackers_and_a_sampling_callback():
    discriminator = keras.Sequential([keras.Input(shape=(4, 4, 1)), layers.Conv2D(2, 3, strides=2, padding="same"),
                                      layers.LeakyReLU(negative_slope=0.2), layers.Flatten(), layers.Dropout(0.2),
                                      layers.Dense(1, activation="sigmoid")], name="discriminator")
    generator = keras.Sequential([keras.Input(shape=(LATENT,)), layers.Dense(2 * 2 * 4), layers.Reshape((2, 2, 4)),
                                  layers.Conv2DTranspose(4, 3, strides=2, padding="same"),
                                  layers.LeakyReLU(negative_slope=0.2),
                                  layers.Conv2D(1, 3, padding="same", activation="sigmoid")], name="generator")
    gan = GAN(discriminator=discriminator, generator=generator, latent_dim=LATENT)
    gan.compile(d_optimizer=keras.optimizers.Adam(learning_rate=0.001),
                g_optimizer=keras.optimizers.Adam(learning_rate=0.001), loss_fn=keras.losses.BinaryCrossentropy())
    monitor = GANMonitor(num_img=3, latent_dim=LATENT)
    real = np.random.default_rng(0).uniform(size=(24, 4, 4, 1)).astype("float32")
    history = gan.fit(real, epochs=2, batch_size=8, callbacks=[monitor], verbose=0).history
    assert sorted(history) == ["d_loss", "g_loss"] and all(np.isfinite(v).all() for v in history.values())
    assert len(monitor.samples) == 2
    (z0, img0), (z1, img1) = monitor.samples
    assert isinstance(img0, EagerTensor) and img0.shape == (3, 4, 4, 1)
    assert 0 <= float(img0.min()) and float(img0.max()) <= 255 and float(img0.max()) > 1   # scaled in place
    assert not np.allclose(z0, z1)                       # the callback's SeedGenerator advances
    # The samples are the trained generator's outputs (the weights fit left on the device).
    np.testing.assert_allclose(img1, generator.predict(z1, verbose=0) * 255, rtol=1e-5, atol=1e-4)
