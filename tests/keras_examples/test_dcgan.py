"""keras.io "DCGAN to generate face images" (overriding ``train_step``), on digits: a ``GAN(keras.Model)``
with its own ``compile(d_optimizer, g_optimizer, loss_fn)``, two ``keras.metrics.Mean`` trackers, noise
from a ``SeedGenerator`` and label noise from ``keras.random.uniform`` inside the step, and a
``GANMonitor`` callback that calls the generator eagerly on random latent vectors after each epoch.

Tolerance: Keras's initial weights copied into both networks, but every noise draw (latent vectors, label
noise, Dropout) differs between the frameworks. Averaged over an epoch's ten steps that matters little
this early: over four seeds, each framework's epoch losses moved by at most 0.003 and the two
frameworks' by at most 0.003 from each other. Bounds: each epoch's d_loss and g_loss within 0.03 of
Keras's, the monitor's images shaped (4, 28, 28, 1) in [0, 255] with a mean intensity within 0.02 of
Keras's, and the generator called eagerly after training within 0.02 too.
"""
from __future__ import annotations

import numpy as np

from .harness import apply_gradients, assert_band, mnist, run_both, to_numpy, value_and_grad

LATENT_DIM = 16


def dcgan(keras, data, init):
    (x_train, _), _ = data
    layers, ops = keras.layers, keras.ops
    keras.utils.set_random_seed(5)
    images = np.expand_dims(x_train.astype("float32") / 255.0, -1)

    discriminator = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(16, kernel_size=4, strides=2, padding="same"),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Conv2D(32, kernel_size=4, strides=2, padding="same"),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Flatten(),
        layers.Dropout(0.2),
        layers.Dense(1, activation="sigmoid"),
    ], name="discriminator")
    generator = keras.Sequential([
        keras.Input(shape=(LATENT_DIM,)),
        layers.Dense(7 * 7 * 32),
        layers.Reshape((7, 7, 32)),
        layers.Conv2DTranspose(32, kernel_size=4, strides=2, padding="same"),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Conv2DTranspose(16, kernel_size=4, strides=2, padding="same"),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Conv2D(1, kernel_size=5, padding="same", activation="sigmoid"),
    ], name="generator")
    init(discriminator)
    init(generator)

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
            random_latent_vectors = keras.random.normal(shape=(batch_size, self.latent_dim),
                                                        seed=self.seed_generator)
            generated_images = self.generator(random_latent_vectors)
            combined_images = ops.concatenate([generated_images, real_images], axis=0)
            labels = ops.concatenate([ops.ones((batch_size, 1)), ops.zeros((batch_size, 1))], axis=0)
            # Label noise (the tutorial adds it on top; Keras's torch backend refuses targets above 1).
            labels = 0.95 * labels + 0.05 * keras.random.uniform(ops.shape(labels), seed=self.seed_generator)

            d_loss, grads = value_and_grad(
                keras, lambda: self.loss_fn(labels, self.discriminator(combined_images)),
                self.discriminator.trainable_weights)
            apply_gradients(keras, self.d_optimizer, grads, self.discriminator.trainable_weights)

            random_latent_vectors = keras.random.normal(shape=(batch_size, self.latent_dim),
                                                        seed=self.seed_generator)
            misleading_labels = ops.zeros((batch_size, 1))
            g_loss, grads = value_and_grad(
                keras, lambda: self.loss_fn(misleading_labels,
                                            self.discriminator(self.generator(random_latent_vectors))),
                self.generator.trainable_weights)
            apply_gradients(keras, self.g_optimizer, grads, self.generator.trainable_weights)

            self.d_loss_metric.update_state(d_loss)
            self.g_loss_metric.update_state(g_loss)
            return {"d_loss": self.d_loss_metric.result(), "g_loss": self.g_loss_metric.result()}

    class GANMonitor(keras.callbacks.Callback):
        def __init__(self, num_img=4, latent_dim=LATENT_DIM):
            super().__init__()
            self.num_img = num_img
            self.latent_dim = latent_dim
            self.seed_generator = keras.random.SeedGenerator(42)
            self.samples = []

        def on_epoch_end(self, epoch, logs=None):
            random_latent_vectors = keras.random.normal(shape=(self.num_img, self.latent_dim),
                                                        seed=self.seed_generator)
            generated_images = self.model.generator(random_latent_vectors)
            generated_images *= 255
            self.samples.append(keras.ops.convert_to_numpy(generated_images))

    gan = GAN(discriminator=discriminator, generator=generator, latent_dim=LATENT_DIM)
    gan.built = True   # no call(): Keras on torch would try to call the model to build it
    gan.compile(d_optimizer=keras.optimizers.Adam(learning_rate=0.0002, beta_1=0.5),
                g_optimizer=keras.optimizers.Adam(learning_rate=0.0002, beta_1=0.5),
                loss_fn=keras.losses.BinaryCrossentropy())
    monitor = GANMonitor()
    history = gan.fit(images, epochs=2, batch_size=64, callbacks=[monitor], verbose=0)

    samples = np.stack(monitor.samples)
    assert samples.shape == (2, 4, 28, 28, 1), samples.shape
    assert 0 <= samples.min() and samples.max() <= 255
    metrics = {f"{key}_epoch{i}": float(v) for key in ("d_loss", "g_loss")
               for i, v in enumerate(history.history[key])}
    metrics["sample_mean"] = float(samples[-1].mean() / 255)
    metrics["eager_mean"] = float(to_numpy(generator(np.zeros((2, LATENT_DIM), "float32"))).mean())
    return metrics


def test_dcgan():
    want, got = run_both(dcgan, mnist(640, 10), copy_weights=True)
    assert_band(want, got, 0.03, ["d_loss_epoch0", "d_loss_epoch1", "g_loss_epoch0", "g_loss_epoch1"])
    assert_band(want, got, 0.02, ["sample_mean", "eager_mean"])
