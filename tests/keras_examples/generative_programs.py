"""keras.io's TensorFlow-flavoured generative examples as ``program(tf, keras) -> {name: array}``.

These pages write their training steps with ``tf.GradientTape`` and ``tf.random`` (WGAN-GP's critic loss
takes a gradient inside the tape), so they run as written under TensorFlow (``tf_oracle.py``, Keras 3 on
its TensorFlow backend) and under ``import onnxforge as tf``. Sizes are shrunk (few filters, a few dozen
images, a few steps); weights are seeded from NumPy so both frameworks start from the same point.
"""
from __future__ import annotations

import os
import tempfile

import numpy as np


def seeded_weights(model, seed):
    """The same starting weights in both frameworks (Glorot-sized normals; BatchNorm's moving variance 1)."""
    rng = np.random.default_rng(seed)
    values = []
    for w in model.weights:
        shape = tuple(w.shape)
        if "moving_variance" in w.name or "gamma" in w.name:
            values.append(np.ones(shape, "float32"))
        elif len(shape) <= 1:
            values.append(np.zeros(shape, "float32"))
        else:
            fan = np.prod(shape[:-1]) + shape[-1]
            values.append(rng.normal(0, np.sqrt(2.0 / fan), shape).astype("float32"))
    model.set_weights(values)


def _fashion_like(n, seed=0):
    """``n`` 28x28x1 images in [-1, 1]: blurred blobs standing in for Fashion-MNIST, same in both runs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28]
    images = np.empty((n, 28, 28, 1), "float32")
    for i in range(n):
        cy, cx = rng.uniform(8, 20, 2)
        ry, rx = rng.uniform(4, 9, 2)
        blob = np.exp(-(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2))
        images[i, ..., 0] = blob * 255
    return ((images - 127.5) / 127.5).astype("float32")


def wgan_gp(tf, keras, epochs=2, n=64, batch_size=16, seed=0):
    """keras.io "WGAN-GP overriding Model.train_step", with 8-64 filters instead of 64-512 and 16 images a batch.

    Returns each batch's d_loss / g_loss, the monitor's images (saved as PNGs the way the page does) and the
    critic's gradient norm on fixed interpolations before and after training.
    """
    layers = keras.layers
    IMG_SHAPE = (28, 28, 1)
    noise_dim = 16
    tf.random.set_seed(seed)
    train_images = _fashion_like(n)

    def conv_block(x, filters, activation, kernel_size=(3, 3), strides=(1, 1), padding="same", use_bias=True,
                   use_bn=False, use_dropout=False, drop_value=0.5):
        x = layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=use_bias)(x)
        if use_bn:
            x = layers.BatchNormalization()(x)
        x = activation(x)
        if use_dropout:
            x = layers.Dropout(drop_value)(x)
        return x

    def get_discriminator_model():
        img_input = layers.Input(shape=IMG_SHAPE)
        x = layers.ZeroPadding2D((2, 2))(img_input)
        x = conv_block(x, 8, kernel_size=(5, 5), strides=(2, 2), use_bn=False, use_bias=True,
                       activation=layers.LeakyReLU(0.2), use_dropout=False, drop_value=0.3)
        x = conv_block(x, 16, kernel_size=(5, 5), strides=(2, 2), use_bn=False, activation=layers.LeakyReLU(0.2),
                       use_bias=True, use_dropout=True, drop_value=0.3)
        x = conv_block(x, 32, kernel_size=(5, 5), strides=(2, 2), use_bn=False, activation=layers.LeakyReLU(0.2),
                       use_bias=True, use_dropout=True, drop_value=0.3)
        x = conv_block(x, 64, kernel_size=(5, 5), strides=(2, 2), use_bn=False, activation=layers.LeakyReLU(0.2),
                       use_bias=True, use_dropout=False, drop_value=0.3)
        x = layers.Flatten()(x)
        x = layers.Dropout(0.2)(x)
        x = layers.Dense(1)(x)
        return keras.models.Model(img_input, x, name="discriminator")

    def upsample_block(x, filters, activation, kernel_size=(3, 3), strides=(1, 1), up_size=(2, 2), padding="same",
                       use_bn=False, use_bias=True, use_dropout=False, drop_value=0.3):
        x = layers.UpSampling2D(up_size)(x)
        x = layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=use_bias)(x)
        if use_bn:
            x = layers.BatchNormalization()(x)
        if activation:
            x = activation(x)
        if use_dropout:
            x = layers.Dropout(drop_value)(x)
        return x

    def get_generator_model():
        noise = layers.Input(shape=(noise_dim,))
        x = layers.Dense(4 * 4 * 32, use_bias=False)(noise)
        x = layers.BatchNormalization()(x)
        x = layers.LeakyReLU(0.2)(x)
        x = layers.Reshape((4, 4, 32))(x)
        x = upsample_block(x, 16, layers.LeakyReLU(0.2), strides=(1, 1), use_bias=False, use_bn=True,
                           padding="same", use_dropout=False)
        x = upsample_block(x, 8, layers.LeakyReLU(0.2), strides=(1, 1), use_bias=False, use_bn=True,
                           padding="same", use_dropout=False)
        x = upsample_block(x, 1, layers.Activation("tanh"), strides=(1, 1), use_bias=False, use_bn=True)
        x = layers.Cropping2D((2, 2))(x)
        return keras.models.Model(noise, x, name="generator")

    d_model = get_discriminator_model()
    g_model = get_generator_model()
    seeded_weights(d_model, 1)
    seeded_weights(g_model, 2)

    class WGAN(keras.Model):
        def __init__(self, discriminator, generator, latent_dim, discriminator_extra_steps=3, gp_weight=10.0):
            super().__init__()
            self.discriminator = discriminator
            self.generator = generator
            self.latent_dim = latent_dim
            self.d_steps = discriminator_extra_steps
            self.gp_weight = gp_weight

        def compile(self, d_optimizer, g_optimizer, d_loss_fn, g_loss_fn):
            super().compile()
            self.d_optimizer = d_optimizer
            self.g_optimizer = g_optimizer
            self.d_loss_fn = d_loss_fn
            self.g_loss_fn = g_loss_fn

        def gradient_penalty(self, batch_size, real_images, fake_images):
            alpha = tf.random.normal([batch_size, 1, 1, 1], 0.0, 1.0)
            diff = fake_images - real_images
            interpolated = real_images + alpha * diff
            with tf.GradientTape() as gp_tape:
                gp_tape.watch(interpolated)
                pred = self.discriminator(interpolated, training=True)
            grads = gp_tape.gradient(pred, [interpolated])[0]
            norm = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=[1, 2, 3]))
            gp = tf.reduce_mean((norm - 1.0) ** 2)
            return gp

        def train_step(self, real_images):
            if isinstance(real_images, tuple):
                real_images = real_images[0]
            batch_size = tf.shape(real_images)[0]
            for i in range(self.d_steps):
                random_latent_vectors = tf.random.normal(shape=(batch_size, self.latent_dim))
                with tf.GradientTape() as tape:
                    fake_images = self.generator(random_latent_vectors, training=True)
                    fake_logits = self.discriminator(fake_images, training=True)
                    real_logits = self.discriminator(real_images, training=True)
                    d_cost = self.d_loss_fn(real_img=real_logits, fake_img=fake_logits)
                    gp = self.gradient_penalty(batch_size, real_images, fake_images)
                    d_loss = d_cost + gp * self.gp_weight
                d_gradient = tape.gradient(d_loss, self.discriminator.trainable_variables)
                self.d_optimizer.apply_gradients(zip(d_gradient, self.discriminator.trainable_variables))

            random_latent_vectors = tf.random.normal(shape=(batch_size, self.latent_dim))
            with tf.GradientTape() as tape:
                generated_images = self.generator(random_latent_vectors, training=True)
                gen_img_logits = self.discriminator(generated_images, training=True)
                g_loss = self.g_loss_fn(gen_img_logits)
            gen_gradient = tape.gradient(g_loss, self.generator.trainable_variables)
            self.g_optimizer.apply_gradients(zip(gen_gradient, self.generator.trainable_variables))
            return {"d_loss": d_loss, "g_loss": g_loss}

    folder = tempfile.mkdtemp()

    class GANMonitor(keras.callbacks.Callback):
        def __init__(self, num_img=6, latent_dim=128):
            self.num_img = num_img
            self.latent_dim = latent_dim
            self.images = []

        def on_epoch_end(self, epoch, logs=None):
            random_latent_vectors = tf.random.normal(shape=(self.num_img, self.latent_dim))
            generated_images = self.model.generator(random_latent_vectors)
            generated_images = (generated_images * 127.5) + 127.5
            for i in range(self.num_img):
                img = generated_images[i].numpy()
                img = keras.preprocessing.image.array_to_img(img)
                img.save(os.path.join(folder, "generated_img_{i}_{epoch}.png".format(i=i, epoch=epoch)))
            self.images.append(generated_images.numpy())

    class BatchLosses(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.d_loss, self.g_loss = [], []

        def on_train_batch_end(self, batch, logs=None):
            self.d_loss.append(float(logs["d_loss"]))
            self.g_loss.append(float(logs["g_loss"]))

    generator_optimizer = keras.optimizers.Adam(learning_rate=0.0002, beta_1=0.5, beta_2=0.9)
    discriminator_optimizer = keras.optimizers.Adam(learning_rate=0.0002, beta_1=0.5, beta_2=0.9)

    def discriminator_loss(real_img, fake_img):
        real_loss = tf.reduce_mean(real_img)
        fake_loss = tf.reduce_mean(fake_img)
        return fake_loss - real_loss

    def generator_loss(fake_img):
        return -tf.reduce_mean(fake_img)

    # The critic's input-gradient norm on fixed interpolations (training=False: no Dropout), the quantity
    # the penalty drives towards 1.
    probe = tf.constant(0.5 * train_images[:8] + 0.5 * train_images[8:16])

    def critic_grad_norm():
        with tf.GradientTape() as t:
            t.watch(probe)
            out = d_model(probe, training=False)
        return tf.sqrt(tf.reduce_sum(tf.square(t.gradient(out, probe)), axis=[1, 2, 3])).numpy()

    norm_before = critic_grad_norm()
    cbk = GANMonitor(num_img=3, latent_dim=noise_dim)
    losses = BatchLosses()
    wgan = WGAN(discriminator=d_model, generator=g_model, latent_dim=noise_dim, discriminator_extra_steps=3)
    wgan.compile(d_optimizer=discriminator_optimizer, g_optimizer=generator_optimizer,
                 g_loss_fn=generator_loss, d_loss_fn=discriminator_loss)
    history = wgan.fit(train_images, batch_size=batch_size, epochs=epochs, callbacks=[cbk, losses], verbose=0)
    pngs = sorted(f for f in os.listdir(folder) if f.endswith(".png"))
    return {"d_loss": np.array(losses.d_loss), "g_loss": np.array(losses.g_loss),
            "epoch_d_loss": np.array(history.history["d_loss"], "float64"),
            "images": np.stack(cbk.images), "pngs": np.array(len(pngs)),
            "norm_before": norm_before, "norm_after": critic_grad_norm(),
            "eval_mean": np.array(float(np.mean(g_model(np.zeros((2, noise_dim), "float32")).numpy())))}
