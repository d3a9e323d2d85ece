"""keras.io "Conditional GAN", on digits: the class's one-hot labels concatenated to the latent vector
(generator input) and, repeated to image size with ``ops.repeat`` / ``ops.reshape`` as on the page, to the
images as extra channels (discriminator input); a ``ConditionalGAN(keras.Model)`` whose ``compile`` takes two
optimizers and a ``BinaryCrossentropy(from_logits=True)``, whose ``train_step`` takes one gradient per
network (``GradientTape`` under onnxforge, ``backward()`` under Keras on torch, see harness.py), with two
``Mean`` trackers; then the page's class interpolation with the trained generator, saved to ``.keras`` and
loaded back (in onnxforge and in real Keras).

The page draws its latent vectors with ``keras.random.normal`` inside ``train_step``; those draws differ
between frameworks, so here they come from ``sample_latent``, the page's draw, which the deterministic run
replaces with two fixed arrays (one per draw of a step). From Keras's initial weights, the losses of each
step, the generator after training, the interpolation and the reloaded generator then agree with Keras to
float32 order (the losses within 1e-4 relative, images within 1e-4 absolute). A run with the page's own draws is checked to train
(finite losses, images in [0, 1]).
"""
from __future__ import annotations

import numpy as np

from .equal_weights import load_in_keras
from .harness import (apply_gradients, fkeras, mnist, run_both, to_numpy, value_and_grad, workdir)

LATENT, CLASSES, SIZE, BATCH = 16, 10, 28, 16


def conditional_gan(keras, data, init, tmp_path, fixed_noise=None):
    images, labels = data
    layers, ops = keras.layers, keras.ops
    keras.utils.set_random_seed(9)
    all_digits = np.reshape(images.astype("float32") / 255.0, (-1, SIZE, SIZE, 1))
    all_labels = keras.utils.to_categorical(labels, CLASSES)
    generator_in_channels = LATENT + CLASSES
    discriminator_in_channels = 1 + CLASSES

    discriminator = keras.Sequential([
        keras.layers.InputLayer((SIZE, SIZE, discriminator_in_channels)),
        layers.Conv2D(16, (3, 3), strides=(2, 2), padding="same"),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Conv2D(32, (3, 3), strides=(2, 2), padding="same"),
        layers.LeakyReLU(negative_slope=0.2),
        layers.GlobalMaxPooling2D(),
        layers.Dense(1),
    ], name="discriminator")
    generator = keras.Sequential([
        keras.layers.InputLayer((generator_in_channels,)),
        layers.Dense(7 * 7 * generator_in_channels),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Reshape((7, 7, generator_in_channels)),
        layers.Conv2DTranspose(32, (4, 4), strides=(2, 2), padding="same"),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Conv2DTranspose(32, (4, 4), strides=(2, 2), padding="same"),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Conv2D(1, (7, 7), padding="same", activation="sigmoid"),
    ], name="generator")
    init(discriminator)
    init(generator)

    class ConditionalGAN(keras.Model):
        def __init__(self, discriminator, generator, latent_dim):
            super().__init__()
            self.discriminator = discriminator
            self.generator = generator
            self.latent_dim = latent_dim
            self.seed_generator = keras.random.SeedGenerator(1337)
            self.gen_loss_tracker = keras.metrics.Mean(name="generator_loss")
            self.disc_loss_tracker = keras.metrics.Mean(name="discriminator_loss")

        @property
        def metrics(self):
            return [self.gen_loss_tracker, self.disc_loss_tracker]

        def compile(self, d_optimizer, g_optimizer, loss_fn):
            super().compile()
            self.d_optimizer = d_optimizer
            self.g_optimizer = g_optimizer
            self.loss_fn = loss_fn

        def sample_latent(self, batch_size, which):
            if fixed_noise is not None:   # the deterministic run: the same latent vectors in both frameworks
                # Indexed by the draw's place in the step, not by a counter: onnxforge traces train_step
                # once (as tf.function would), so Python state changed inside it would not change per step.
                return ops.convert_to_tensor(fixed_noise[which])
            return keras.random.normal(shape=(batch_size, self.latent_dim), seed=self.seed_generator)

        def train_step(self, data):
            real_images, one_hot_labels = data
            # Add dummy dimensions to the labels so that they can be concatenated with the images.
            image_one_hot_labels = one_hot_labels[:, :, None, None]
            # The page passes repeats=[SIZE * SIZE] (TensorFlow backend); Keras on torch refuses a list there.
            image_one_hot_labels = ops.repeat(image_one_hot_labels, repeats=SIZE * SIZE)
            image_one_hot_labels = ops.reshape(image_one_hot_labels, (-1, SIZE, SIZE, CLASSES))

            batch_size = ops.shape(real_images)[0]
            random_latent_vectors = self.sample_latent(batch_size, 0)
            random_vector_labels = ops.concatenate([random_latent_vectors, one_hot_labels], axis=1)
            generated_images = self.generator(random_vector_labels)
            fake_image_and_labels = ops.concatenate([generated_images, image_one_hot_labels], -1)
            real_image_and_labels = ops.concatenate([real_images, image_one_hot_labels], -1)
            combined_images = ops.concatenate([fake_image_and_labels, real_image_and_labels], axis=0)
            labels = ops.concatenate([ops.ones((batch_size, 1)), ops.zeros((batch_size, 1))], axis=0)

            d_loss, grads = value_and_grad(keras, lambda: self.loss_fn(labels, self.discriminator(combined_images)),
                                           self.discriminator.trainable_weights)
            apply_gradients(keras, self.d_optimizer, grads, self.discriminator.trainable_weights)

            random_latent_vectors = self.sample_latent(batch_size, 1)
            random_vector_labels = ops.concatenate([random_latent_vectors, one_hot_labels], axis=1)
            misleading_labels = ops.zeros((batch_size, 1))

            def generator_loss():
                fake_images = self.generator(random_vector_labels)
                fake_image_and_labels = ops.concatenate([fake_images, image_one_hot_labels], -1)
                return self.loss_fn(misleading_labels, self.discriminator(fake_image_and_labels))

            g_loss, grads = value_and_grad(keras, generator_loss, self.generator.trainable_weights)
            apply_gradients(keras, self.g_optimizer, grads, self.generator.trainable_weights)

            self.gen_loss_tracker.update_state(g_loss)
            self.disc_loss_tracker.update_state(d_loss)
            return {"g_loss": self.gen_loss_tracker.result(), "d_loss": self.disc_loss_tracker.result()}

    class StepLosses(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seen = []

        def on_train_batch_end(self, batch, logs=None):
            self.seen.append((float(logs["g_loss"]), float(logs["d_loss"])))

    cond_gan = ConditionalGAN(discriminator=discriminator, generator=generator, latent_dim=LATENT)
    cond_gan.built = True   # no call(): Keras on torch would try to call the model to build it
    cond_gan.compile(d_optimizer=keras.optimizers.Adam(learning_rate=0.0003),
                     g_optimizer=keras.optimizers.Adam(learning_rate=0.0003),
                     loss_fn=keras.losses.BinaryCrossentropy(from_logits=True))
    steps = StepLosses()
    cond_gan.fit(all_digits, all_labels, batch_size=BATCH, epochs=1, shuffle=False, callbacks=[steps], verbose=0)

    # Interpolating between classes with the trained generator.
    trained_gen = cond_gan.generator
    num_interpolation = 5
    interpolation_noise = np.linspace(-1, 1, LATENT, dtype="float32")[None]   # the page draws this one
    interpolation_noise = ops.repeat(interpolation_noise, repeats=num_interpolation)
    interpolation_noise = ops.reshape(interpolation_noise, (num_interpolation, LATENT))
    first_label = keras.utils.to_categorical([1], CLASSES)
    second_label = keras.utils.to_categorical([8], CLASSES)
    first_label = ops.cast(first_label, "float32")
    second_label = ops.cast(second_label, "float32")
    percent_second_label = ops.linspace(0, 1, num_interpolation)[:, None]
    percent_second_label = ops.cast(percent_second_label, "float32")
    interpolation_labels = first_label * (1 - percent_second_label) + second_label * percent_second_label
    noise_and_labels = ops.concatenate([interpolation_noise, interpolation_labels], 1)
    fake = trained_gen.predict(noise_and_labels, verbose=0)

    path = str(workdir(keras, tmp_path) / "generator.keras")
    trained_gen.save(path)
    reloaded = keras.models.load_model(path)
    out = {f"step{i}_{name}": v for i, pair in enumerate(steps.seen) for name, v in zip(("g_loss", "d_loss"), pair)}
    out["fake"] = np.asarray(to_numpy(fake))
    out["reloaded"] = np.asarray(to_numpy(reloaded.predict(noise_and_labels, verbose=0)))
    out["path"], out["noise_and_labels"] = path, np.asarray(to_numpy(noise_and_labels))
    return out


def test_conditional_gan_from_equal_weights_and_noise(tmp_path):
    data = mnist(48, 0)[0]
    noise = np.random.default_rng(6).normal(size=(2, BATCH, LATENT)).astype("float32")
    want, got = run_both(conditional_gan, data, copy_weights=True, tmp_path=tmp_path, fixed_noise=noise)
    for key in sorted(k for k in want if k.startswith("step")):
        assert abs(got[key] - want[key]) <= 1e-4 * abs(want[key]) + 1e-5, (key, got[key], want[key])
    assert got["fake"].shape == (5, SIZE, SIZE, 1)
    np.testing.assert_allclose(got["fake"], want["fake"], atol=1e-4)
    np.testing.assert_array_equal(got["reloaded"], got["fake"])
    load_in_keras(got["path"], got["noise_and_labels"], got["fake"])


def test_conditional_gan_with_the_pages_draws(tmp_path):
    out = conditional_gan(fkeras, mnist(32, 0)[0], init=lambda model: None, tmp_path=tmp_path)
    losses = [v for k, v in out.items() if k.startswith("step")]
    assert len(losses) == 4 and np.isfinite(losses).all()
    assert 0 <= out["fake"].min() and out["fake"].max() <= 1
