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


def _flowers(n, seed=0):
    """``n`` uint8 RGB "flowers" 20x24 (not square, so the page's center crop crops): petals round a centre."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:20, 0:24]
    out = np.empty((n, 20, 24, 3), "uint8")
    for i in range(n):
        cy, cx = rng.uniform(7, 13), rng.uniform(9, 15)
        angle = np.arctan2(yy - cy, xx - cx)
        radius = np.hypot(yy - cy, xx - cx) / (4 + 2 * np.cos(rng.integers(3, 7) * angle))
        petal = np.clip(1.5 - radius, 0, 1)[..., None] * rng.uniform(0.3, 1.0, 3)
        out[i] = np.clip(255 * (petal + 0.15 * rng.uniform(size=(20, 24, 3))), 0, 255).astype("uint8")
    return out


def ddim(tf, keras, seed=0):
    """keras.io "Denoising Diffusion Implicit Models" at 16x16 with widths [8, 16, 24] and one block a level.

    Kept: the tf.data pipeline (center crop, antialiased resize, cache / repeat / shuffle / batch / prefetch),
    ``Normalization.adapt`` on it, the sinusoidal embedding Lambda, the U-Net, the custom ``train_step`` /
    ``test_step``, AdamW, EMA weights written with ``assign``, the KID metric's polynomial-kernel MMD, a
    per-epoch image callback, ``ModelCheckpoint(save_weights_only, save_best_only)`` on ``val_kid`` and
    ``load_weights``. Changed: KID's encoder is a small seeded conv net, not an ImageNet InceptionV3 (weights
    we cannot download, and seconds per call), the images are synthetic, and the callback keeps the images
    instead of plotting them.
    """
    import math

    layers = keras.layers
    tf.random.set_seed(seed)
    dataset_repetitions = 2
    num_epochs = 2
    image_size = 16
    kid_image_size = 20
    kid_diffusion_steps = 2
    plot_diffusion_steps = 4
    min_signal_rate = 0.02
    max_signal_rate = 0.95
    embedding_dims = 8
    embedding_max_frequency = 1000.0
    widths = [8, 16, 24]
    block_depth = 1
    batch_size = 8
    ema = 0.999
    learning_rate = 1e-3
    weight_decay = 1e-4
    folder = tempfile.mkdtemp()

    def preprocess_image(data):
        height = tf.shape(data["image"])[0]
        width = tf.shape(data["image"])[1]
        crop_size = tf.minimum(height, width)
        image = tf.image.crop_to_bounding_box(data["image"], (height - crop_size) // 2, (width - crop_size) // 2,
                                              crop_size, crop_size)
        image = tf.image.resize(image, size=[image_size, image_size], antialias=True)
        return tf.clip_by_value(image / 255.0, 0.0, 1.0)

    flowers = _flowers(32)

    def prepare_dataset(images):
        return (tf.data.Dataset.from_tensor_slices({"image": images})
                .map(preprocess_image, num_parallel_calls=tf.data.AUTOTUNE)
                .cache()
                .repeat(dataset_repetitions)
                .shuffle(10 * batch_size)
                .batch(batch_size, drop_remainder=True)
                .prefetch(buffer_size=tf.data.AUTOTUNE))

    train_dataset = prepare_dataset(flowers[:24])
    val_dataset = prepare_dataset(flowers[24:])

    class KID(keras.metrics.Metric):
        def __init__(self, name, **kwargs):
            super().__init__(name=name, **kwargs)
            self.kid_tracker = keras.metrics.Mean(name="kid_tracker")
            self.encoder = keras.Sequential([
                keras.Input(shape=(image_size, image_size, 3)),
                layers.Rescaling(255.0),
                layers.Resizing(height=kid_image_size, width=kid_image_size),
                layers.Rescaling(1.0 / 127.5, offset=-1.0),
                layers.Conv2D(8, 3, strides=2, activation="relu"),
                layers.Conv2D(16, 3, strides=2, activation="relu"),
                layers.GlobalAveragePooling2D(),
            ], name="inception_encoder")
            seeded_weights(self.encoder, 11)

        def polynomial_kernel(self, features_1, features_2):
            feature_dimensions = tf.cast(tf.shape(features_1)[1], dtype=tf.float32)
            return (features_1 @ tf.transpose(features_2) / feature_dimensions + 1.0) ** 3.0

        def update_state(self, real_images, generated_images, sample_weight=None):
            real_features = self.encoder(real_images, training=False)
            generated_features = self.encoder(generated_images, training=False)
            kernel_real = self.polynomial_kernel(real_features, real_features)
            kernel_generated = self.polynomial_kernel(generated_features, generated_features)
            kernel_cross = self.polynomial_kernel(real_features, generated_features)
            batch_size = tf.shape(real_features)[0]
            batch_size_f = tf.cast(batch_size, dtype=tf.float32)
            mean_kernel_real = tf.reduce_sum(kernel_real * (1.0 - tf.eye(batch_size))) / (
                batch_size_f * (batch_size_f - 1.0))
            mean_kernel_generated = tf.reduce_sum(kernel_generated * (1.0 - tf.eye(batch_size))) / (
                batch_size_f * (batch_size_f - 1.0))
            mean_kernel_cross = tf.reduce_mean(kernel_cross)
            kid = mean_kernel_real + mean_kernel_generated - 2.0 * mean_kernel_cross
            self.kid_tracker.update_state(kid)

        def result(self):
            return self.kid_tracker.result()

        def reset_state(self):
            self.kid_tracker.reset_state()

    @keras.saving.register_keras_serializable()   # clone_model re-creates the Lambda from its config
    def sinusoidal_embedding(x):
        embedding_min_frequency = 1.0
        frequencies = tf.exp(tf.linspace(tf.math.log(embedding_min_frequency), tf.math.log(embedding_max_frequency),
                                         embedding_dims // 2))
        angular_speeds = 2.0 * math.pi * frequencies
        embeddings = tf.concat([tf.sin(angular_speeds * x), tf.cos(angular_speeds * x)], axis=3)
        return embeddings

    def ResidualBlock(width):
        def apply(x):
            input_width = x.shape[3]
            if input_width == width:
                residual = x
            else:
                residual = layers.Conv2D(width, kernel_size=1)(x)
            x = layers.BatchNormalization(center=False, scale=False)(x)
            x = layers.Conv2D(width, kernel_size=3, padding="same", activation=keras.activations.swish)(x)
            x = layers.Conv2D(width, kernel_size=3, padding="same")(x)
            x = layers.Add()([x, residual])
            return x
        return apply

    def DownBlock(width, block_depth):
        def apply(x):
            x, skips = x
            for _ in range(block_depth):
                x = ResidualBlock(width)(x)
                skips.append(x)
            x = layers.AveragePooling2D(pool_size=2)(x)
            return x
        return apply

    def UpBlock(width, block_depth):
        def apply(x):
            x, skips = x
            x = layers.UpSampling2D(size=2, interpolation="bilinear")(x)
            for _ in range(block_depth):
                x = layers.Concatenate()([x, skips.pop()])
                x = ResidualBlock(width)(x)
            return x
        return apply

    def get_network(image_size, widths, block_depth):
        noisy_images = keras.Input(shape=(image_size, image_size, 3))
        noise_variances = keras.Input(shape=(1, 1, 1))
        e = layers.Lambda(sinusoidal_embedding)(noise_variances)
        e = layers.UpSampling2D(size=image_size, interpolation="nearest")(e)
        x = layers.Conv2D(widths[0], kernel_size=1)(noisy_images)
        x = layers.Concatenate()([x, e])
        skips = []
        for width in widths[:-1]:
            x = DownBlock(width, block_depth)([x, skips])
        for _ in range(block_depth):
            x = ResidualBlock(widths[-1])(x)
        for width in reversed(widths[:-1]):
            x = UpBlock(width, block_depth)([x, skips])
        x = layers.Conv2D(3, kernel_size=1, kernel_initializer="zeros")(x)
        return keras.Model([noisy_images, noise_variances], x, name="residual_unet")

    class DiffusionModel(keras.Model):
        def __init__(self, image_size, widths, block_depth):
            super().__init__()
            self.normalizer = layers.Normalization()
            self.network = get_network(image_size, widths, block_depth)
            self.ema_network = keras.models.clone_model(self.network)

        def compile(self, **kwargs):
            super().compile(**kwargs)
            self.noise_loss_tracker = keras.metrics.Mean(name="n_loss")
            self.image_loss_tracker = keras.metrics.Mean(name="i_loss")
            self.kid = KID(name="kid")

        @property
        def metrics(self):
            return [self.noise_loss_tracker, self.image_loss_tracker, self.kid]

        def denormalize(self, images):
            images = self.normalizer.mean + images * self.normalizer.variance**0.5
            return tf.clip_by_value(images, 0.0, 1.0)

        def diffusion_schedule(self, diffusion_times):
            start_angle = tf.acos(max_signal_rate)
            end_angle = tf.acos(min_signal_rate)
            diffusion_angles = start_angle + diffusion_times * (end_angle - start_angle)
            signal_rates = tf.cos(diffusion_angles)
            noise_rates = tf.sin(diffusion_angles)
            return noise_rates, signal_rates

        def denoise(self, noisy_images, noise_rates, signal_rates, training):
            if training:
                network = self.network
            else:
                network = self.ema_network
            pred_noises = network([noisy_images, noise_rates**2], training=training)
            pred_images = (noisy_images - noise_rates * pred_noises) / signal_rates
            return pred_noises, pred_images

        def reverse_diffusion(self, initial_noise, diffusion_steps):
            num_images = initial_noise.shape[0]
            step_size = 1.0 / diffusion_steps
            next_noisy_images = initial_noise
            for step in range(diffusion_steps):
                noisy_images = next_noisy_images
                diffusion_times = tf.ones((num_images, 1, 1, 1)) - step * step_size
                noise_rates, signal_rates = self.diffusion_schedule(diffusion_times)
                pred_noises, pred_images = self.denoise(noisy_images, noise_rates, signal_rates, training=False)
                next_diffusion_times = diffusion_times - step_size
                next_noise_rates, next_signal_rates = self.diffusion_schedule(next_diffusion_times)
                next_noisy_images = next_signal_rates * pred_images + next_noise_rates * pred_noises
            return pred_images

        def generate(self, num_images, diffusion_steps):
            initial_noise = tf.random.normal(shape=(num_images, image_size, image_size, 3))
            generated_images = self.reverse_diffusion(initial_noise, diffusion_steps)
            generated_images = self.denormalize(generated_images)
            return generated_images

        def train_step(self, images):
            images = self.normalizer(images, training=True)
            noises = tf.random.normal(shape=(batch_size, image_size, image_size, 3))
            diffusion_times = tf.random.uniform(shape=(batch_size, 1, 1, 1), minval=0.0, maxval=1.0)
            noise_rates, signal_rates = self.diffusion_schedule(diffusion_times)
            noisy_images = signal_rates * images + noise_rates * noises
            with tf.GradientTape() as tape:
                pred_noises, pred_images = self.denoise(noisy_images, noise_rates, signal_rates, training=True)
                noise_loss = self.loss(noises, pred_noises)
                image_loss = self.loss(images, pred_images)
            gradients = tape.gradient(noise_loss, self.network.trainable_weights)
            self.optimizer.apply_gradients(zip(gradients, self.network.trainable_weights))
            self.noise_loss_tracker.update_state(noise_loss)
            self.image_loss_tracker.update_state(image_loss)
            for weight, ema_weight in zip(self.network.weights, self.ema_network.weights):
                ema_weight.assign(ema * ema_weight + (1 - ema) * weight)
            return {m.name: m.result() for m in self.metrics[:-1]}

        def test_step(self, images):
            images = self.normalizer(images, training=False)
            noises = tf.random.normal(shape=(batch_size, image_size, image_size, 3))
            diffusion_times = tf.random.uniform(shape=(batch_size, 1, 1, 1), minval=0.0, maxval=1.0)
            noise_rates, signal_rates = self.diffusion_schedule(diffusion_times)
            noisy_images = signal_rates * images + noise_rates * noises
            pred_noises, pred_images = self.denoise(noisy_images, noise_rates, signal_rates, training=False)
            noise_loss = self.loss(noises, pred_noises)
            image_loss = self.loss(images, pred_images)
            self.image_loss_tracker.update_state(image_loss)
            self.noise_loss_tracker.update_state(noise_loss)
            images = self.denormalize(images)
            generated_images = self.generate(num_images=batch_size, diffusion_steps=kid_diffusion_steps)
            self.kid.update_state(images, generated_images)
            return {m.name: m.result() for m in self.metrics}

        def plot_images(self, epoch=None, logs=None, num_rows=2, num_cols=3):
            generated_images = self.generate(num_images=num_rows * num_cols, diffusion_steps=plot_diffusion_steps)
            plotted.append(np.asarray(generated_images))

    plotted = []
    model = DiffusionModel(image_size, widths, block_depth)
    seeded_weights(model.network, 21)
    seeded_weights(model.ema_network, 22)
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=weight_decay),
                  loss=keras.losses.mean_absolute_error)
    checkpoint_path = os.path.join(folder, "diffusion_model.weights.h5")
    checkpoint_callback = keras.callbacks.ModelCheckpoint(filepath=checkpoint_path, save_weights_only=True,
                                                          monitor="val_kid", mode="min", save_best_only=True)
    model.normalizer.adapt(train_dataset)
    model.built = True   # no call(): Keras 3 refuses to save the weights of a model it thinks unbuilt

    # Deterministic from the seeded weights: the pipeline's first image, the networks on fixed inputs, and a
    # three-step reverse diffusion from fixed noise (the EMA network in inference mode).
    fixed = np.random.default_rng(5)
    noisy = fixed.normal(size=(2, image_size, image_size, 3)).astype("float32")
    variances = np.array([0.1, 0.8], "float32").reshape(2, 1, 1, 1)
    out = {"first_image": next(iter(tf.data.Dataset.from_tensor_slices({"image": flowers[:1]})
                                     .map(preprocess_image))).numpy(),
           "norm_mean": np.asarray(model.normalizer.mean), "norm_variance": np.asarray(model.normalizer.variance),
           "network": model.network([noisy, variances], training=False).numpy(),
           "embedding": np.asarray(sinusoidal_embedding(tf.constant(variances))),
           "reverse": model.reverse_diffusion(tf.constant(noisy), 3).numpy()}
    kid_check = KID(name="kid_check")
    real = np.clip(noisy * 0.2 + 0.5, 0, 1).astype("float32")
    kid_check.update_state(tf.constant(real), tf.constant(np.stack([out["first_image"], 0.5 * out["first_image"]])))
    out["kid_fixed"] = np.asarray(kid_check.result())

    ema_start = [w.numpy() for w in model.ema_network.weights]

    class Recorder(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.steps, self.epochs = [], []

        def on_train_batch_end(self, batch, logs=None):
            self.steps.append([w.numpy() for w in self.model.network.weights])

        def on_epoch_end(self, epoch, logs=None):
            self.epochs.append([w.numpy() for w in self.model.ema_network.weights])

    recorder = Recorder()
    history = model.fit(train_dataset, epochs=num_epochs, validation_data=val_dataset, verbose=0,
                        callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=model.plot_images),
                                   checkpoint_callback, recorder])

    # ema_k = ema^k ema_0 + (1 - ema) sum_j ema^(k-j) w_j, from the weights each step left behind
    expected = [np.asarray(w, "float64") for w in ema_start]
    for step in recorder.steps:
        expected = [ema * e + (1 - ema) * w for e, w in zip(expected, step)]
    ema_error = max(float(np.max(np.abs(e - w.numpy()))) for e, w in zip(expected, model.ema_network.weights))
    moved = max(float(np.max(np.abs(e - s))) for e, s in zip(expected, ema_start))

    for w in model.ema_network.weights:   # so that the check below sees what load_weights restores
        w.assign(np.zeros(tuple(w.shape), "float32"))
    model.load_weights(checkpoint_path)
    best = int(np.argmin(history.history["val_kid"]))
    loaded_error = max(float(np.max(np.abs(a - w.numpy())))
                       for a, w in zip(recorder.epochs[best], model.ema_network.weights))
    out.update({"n_loss": np.array(history.history["n_loss"]), "i_loss": np.array(history.history["i_loss"]),
                "val_n_loss": np.array(history.history["val_n_loss"]), "val_kid": np.array(history.history["val_kid"]),
                "steps": np.array(len(recorder.steps)), "ema_error": np.array(ema_error), "ema_moved": np.array(moved),
                "loaded_error": np.array(loaded_error), "plotted": np.stack(plotted)})
    return out


def _symmetric_scenes(n, seed):
    """``n`` uint8 RGB 16x16 images, mirror-symmetric left-right: the page's random flip leaves them as they are."""
    rng = np.random.default_rng(seed)
    half = rng.integers(0, 256, (n, 16, 8, 3))
    smooth = (half + np.roll(half, 1, axis=1) + np.roll(half, 1, axis=2)) // 3
    return np.concatenate([smooth, smooth[:, :, ::-1]], axis=2).astype("uint8")


def cyclegan(tf, keras):
    """keras.io "CycleGAN" at 16x16 with 4 base filters and 2 residual blocks, on 4 + 4 synthetic images.

    As on the page: a random-flip / resize / random-crop training pipeline, ``ReflectionPadding2D`` with
    ``tf.pad(mode="REFLECT")``, instance normalization (Keras 3's ``GroupNormalization(groups=-1)``, the
    page's replacement for tfa's layer), two ResNet generators and two PatchGAN discriminators, a
    ``CycleGan(keras.Model)`` whose ``train_step`` takes four gradients from one persistent tape and applies
    them with four Adam optimizers, a PNG-saving monitor, ``ModelCheckpoint(save_weights_only=True)`` per
    epoch and ``load_weights`` into a new model. Made deterministic for the comparison: the images are
    mirror-symmetric (the random flip is a no-op), the "original" size equals the crop size (the random
    crop takes the whole image) and the shuffle buffer is 1.
    """
    layers = keras.layers
    tf.random.set_seed(0)
    autotune = tf.data.AUTOTUNE
    orig_img_size = (16, 16)
    input_img_size = (16, 16, 3)
    kernel_init = keras.initializers.RandomNormal(mean=0.0, stddev=0.02)
    gamma_init = keras.initializers.RandomNormal(mean=0.0, stddev=0.02)
    buffer_size = 1
    batch_size = 1
    folder = tempfile.mkdtemp()

    labels = np.zeros(4, "int64")
    train_horses = tf.data.Dataset.from_tensor_slices((_symmetric_scenes(4, 1), labels))
    train_zebras = tf.data.Dataset.from_tensor_slices((_symmetric_scenes(4, 2), labels))
    test_horses = tf.data.Dataset.from_tensor_slices((_symmetric_scenes(2, 3), labels[:2]))

    def normalize_img(img):
        img = tf.cast(img, dtype=tf.float32)
        return (img / 127.5) - 1.0

    def preprocess_train_image(img, label):
        img = tf.image.random_flip_left_right(img)
        img = tf.image.resize(img, [*orig_img_size])
        img = tf.image.random_crop(img, size=[*input_img_size])
        img = normalize_img(img)
        return img

    def preprocess_test_image(img, label):
        img = tf.image.resize(img, [input_img_size[0], input_img_size[1]])
        img = normalize_img(img)
        return img

    train_horses = (train_horses.map(preprocess_train_image, num_parallel_calls=autotune)
                    .cache().shuffle(buffer_size).batch(batch_size))
    train_zebras = (train_zebras.map(preprocess_train_image, num_parallel_calls=autotune)
                    .cache().shuffle(buffer_size).batch(batch_size))
    test_horses = (test_horses.map(preprocess_test_image, num_parallel_calls=autotune)
                   .cache().shuffle(buffer_size).batch(batch_size))

    class ReflectionPadding2D(layers.Layer):
        def __init__(self, padding=(1, 1), **kwargs):
            self.padding = tuple(padding)
            super().__init__(**kwargs)

        def call(self, input_tensor, mask=None):
            padding_width, padding_height = self.padding
            padding_tensor = [[0, 0], [padding_height, padding_height], [padding_width, padding_width], [0, 0]]
            return tf.pad(input_tensor, padding_tensor, mode="REFLECT")

    def residual_block(x, activation, kernel_initializer=kernel_init, kernel_size=(3, 3), strides=(1, 1),
                       padding="valid", gamma_initializer=gamma_init, use_bias=False):
        dim = x.shape[-1]
        input_tensor = x
        x = ReflectionPadding2D()(input_tensor)
        x = layers.Conv2D(dim, kernel_size, strides=strides, kernel_initializer=kernel_initializer, padding=padding,
                          use_bias=use_bias)(x)
        x = layers.GroupNormalization(groups=-1, gamma_initializer=gamma_initializer)(x)
        x = activation(x)
        x = ReflectionPadding2D()(x)
        x = layers.Conv2D(dim, kernel_size, strides=strides, kernel_initializer=kernel_initializer, padding=padding,
                          use_bias=use_bias)(x)
        x = layers.GroupNormalization(groups=-1, gamma_initializer=gamma_initializer)(x)
        x = layers.add([input_tensor, x])
        return x

    def downsample(x, filters, activation, kernel_initializer=kernel_init, kernel_size=(3, 3), strides=(2, 2),
                   padding="same", gamma_initializer=gamma_init, use_bias=False):
        x = layers.Conv2D(filters, kernel_size, strides=strides, kernel_initializer=kernel_initializer,
                          padding=padding, use_bias=use_bias)(x)
        x = layers.GroupNormalization(groups=-1, gamma_initializer=gamma_initializer)(x)
        if activation:
            x = activation(x)
        return x

    def upsample(x, filters, activation, kernel_size=(3, 3), strides=(2, 2), padding="same",
                 kernel_initializer=kernel_init, gamma_initializer=gamma_init, use_bias=False):
        x = layers.Conv2DTranspose(filters, kernel_size, strides=strides, padding=padding,
                                   kernel_initializer=kernel_initializer, use_bias=use_bias)(x)
        x = layers.GroupNormalization(groups=-1, gamma_initializer=gamma_initializer)(x)
        if activation:
            x = activation(x)
        return x

    def get_resnet_generator(filters=4, num_downsampling_blocks=2, num_residual_blocks=2, num_upsample_blocks=2,
                             gamma_initializer=gamma_init, name=None):
        img_input = layers.Input(shape=input_img_size, name=name + "_img_input")
        x = ReflectionPadding2D(padding=(3, 3))(img_input)
        x = layers.Conv2D(filters, (7, 7), kernel_initializer=kernel_init, use_bias=False)(x)
        x = layers.GroupNormalization(groups=-1, gamma_initializer=gamma_initializer)(x)
        x = layers.Activation("relu")(x)
        for _ in range(num_downsampling_blocks):
            filters *= 2
            x = downsample(x, filters=filters, activation=layers.Activation("relu"))
        for _ in range(num_residual_blocks):
            x = residual_block(x, activation=layers.Activation("relu"))
        for _ in range(num_upsample_blocks):
            filters //= 2
            x = upsample(x, filters, activation=layers.Activation("relu"))
        x = ReflectionPadding2D(padding=(3, 3))(x)
        x = layers.Conv2D(3, (7, 7), padding="valid")(x)
        x = layers.Activation("tanh")(x)
        return keras.models.Model(img_input, x, name=name)

    def get_discriminator(filters=4, kernel_initializer=kernel_init, num_downsampling=3, name=None):
        img_input = layers.Input(shape=input_img_size, name=name + "_img_input")
        x = layers.Conv2D(filters, (4, 4), strides=(2, 2), padding="same",
                          kernel_initializer=kernel_initializer)(img_input)
        x = layers.LeakyReLU(0.2)(x)
        num_filters = filters
        for num_downsample_block in range(3):
            num_filters *= 2
            if num_downsample_block < 2:
                x = downsample(x, filters=num_filters, activation=layers.LeakyReLU(0.2), kernel_size=(4, 4),
                               strides=(2, 2))
            else:
                x = downsample(x, filters=num_filters, activation=layers.LeakyReLU(0.2), kernel_size=(4, 4),
                               strides=(1, 1))
        x = layers.Conv2D(1, (4, 4), strides=(1, 1), padding="same", kernel_initializer=kernel_initializer)(x)
        return keras.models.Model(inputs=img_input, outputs=x, name=name)

    class CycleGan(keras.Model):
        def __init__(self, generator_G, generator_F, discriminator_X, discriminator_Y, lambda_cycle=10.0,
                     lambda_identity=0.5):
            super().__init__()
            self.gen_G = generator_G
            self.gen_F = generator_F
            self.disc_X = discriminator_X
            self.disc_Y = discriminator_Y
            self.lambda_cycle = lambda_cycle
            self.lambda_identity = lambda_identity

        def call(self, inputs):
            return (self.disc_X(inputs), self.disc_Y(inputs), self.gen_G(inputs), self.gen_F(inputs))

        def compile(self, gen_G_optimizer, gen_F_optimizer, disc_X_optimizer, disc_Y_optimizer, gen_loss_fn,
                    disc_loss_fn):
            super().compile()
            self.gen_G_optimizer = gen_G_optimizer
            self.gen_F_optimizer = gen_F_optimizer
            self.disc_X_optimizer = disc_X_optimizer
            self.disc_Y_optimizer = disc_Y_optimizer
            self.generator_loss_fn = gen_loss_fn
            self.discriminator_loss_fn = disc_loss_fn
            self.cycle_loss_fn = keras.losses.MeanAbsoluteError()
            self.identity_loss_fn = keras.losses.MeanAbsoluteError()

        def train_step(self, batch_data):
            real_x, real_y = batch_data
            with tf.GradientTape(persistent=True) as tape:
                fake_y = self.gen_G(real_x, training=True)
                fake_x = self.gen_F(real_y, training=True)
                cycled_x = self.gen_F(fake_y, training=True)
                cycled_y = self.gen_G(fake_x, training=True)
                same_x = self.gen_F(real_x, training=True)
                same_y = self.gen_G(real_y, training=True)
                disc_real_x = self.disc_X(real_x, training=True)
                disc_fake_x = self.disc_X(fake_x, training=True)
                disc_real_y = self.disc_Y(real_y, training=True)
                disc_fake_y = self.disc_Y(fake_y, training=True)
                gen_G_loss = self.generator_loss_fn(disc_fake_y)
                gen_F_loss = self.generator_loss_fn(disc_fake_x)
                cycle_loss_G = self.cycle_loss_fn(real_y, cycled_y) * self.lambda_cycle
                cycle_loss_F = self.cycle_loss_fn(real_x, cycled_x) * self.lambda_cycle
                id_loss_G = self.identity_loss_fn(real_y, same_y) * self.lambda_cycle * self.lambda_identity
                id_loss_F = self.identity_loss_fn(real_x, same_x) * self.lambda_cycle * self.lambda_identity
                total_loss_G = gen_G_loss + cycle_loss_G + id_loss_G
                total_loss_F = gen_F_loss + cycle_loss_F + id_loss_F
                disc_X_loss = self.discriminator_loss_fn(disc_real_x, disc_fake_x)
                disc_Y_loss = self.discriminator_loss_fn(disc_real_y, disc_fake_y)

            grads_G = tape.gradient(total_loss_G, self.gen_G.trainable_variables)
            grads_F = tape.gradient(total_loss_F, self.gen_F.trainable_variables)
            disc_X_grads = tape.gradient(disc_X_loss, self.disc_X.trainable_variables)
            disc_Y_grads = tape.gradient(disc_Y_loss, self.disc_Y.trainable_variables)
            self.gen_G_optimizer.apply_gradients(zip(grads_G, self.gen_G.trainable_variables))
            self.gen_F_optimizer.apply_gradients(zip(grads_F, self.gen_F.trainable_variables))
            self.disc_X_optimizer.apply_gradients(zip(disc_X_grads, self.disc_X.trainable_variables))
            self.disc_Y_optimizer.apply_gradients(zip(disc_Y_grads, self.disc_Y.trainable_variables))
            return {"G_loss": total_loss_G, "F_loss": total_loss_F, "D_X_loss": disc_X_loss, "D_Y_loss": disc_Y_loss}

    class GANMonitor(keras.callbacks.Callback):
        def __init__(self, num_img=4):
            self.num_img = num_img
            self.predictions = []

        def on_epoch_end(self, epoch, logs=None):
            for i, img in enumerate(test_horses.take(self.num_img)):
                prediction = self.model.gen_G(img)[0].numpy()
                self.predictions.append(prediction)
                prediction = (prediction * 127.5 + 127.5).astype(np.uint8)
                prediction = keras.preprocessing.image.array_to_img(prediction)
                prediction.save(os.path.join(folder, "generated_img_{i}_{epoch}.png".format(i=i, epoch=epoch + 1)))

    class BatchLosses(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seen = []

        def on_train_batch_end(self, batch, logs=None):
            self.seen.append([float(logs[k]) for k in ("G_loss", "F_loss", "D_X_loss", "D_Y_loss")])

    adv_loss_fn = keras.losses.MeanSquaredError()

    def generator_loss_fn(fake):
        fake_loss = adv_loss_fn(tf.ones_like(fake), fake)
        return fake_loss

    def discriminator_loss_fn(real, fake):
        real_loss = adv_loss_fn(tf.ones_like(real), real)
        fake_loss = adv_loss_fn(tf.zeros_like(fake), fake)
        return (real_loss + fake_loss) * 0.5

    def build_and_compile():
        gen_G = get_resnet_generator(name="generator_G")
        gen_F = get_resnet_generator(name="generator_F")
        disc_X = get_discriminator(name="discriminator_X")
        disc_Y = get_discriminator(name="discriminator_Y")
        for seed, net in enumerate([gen_G, gen_F, disc_X, disc_Y]):
            seeded_weights(net, 30 + seed)
        model = CycleGan(generator_G=gen_G, generator_F=gen_F, discriminator_X=disc_X, discriminator_Y=disc_Y)
        model.compile(gen_G_optimizer=keras.optimizers.Adam(learning_rate=2e-4, beta_1=0.5),
                      gen_F_optimizer=keras.optimizers.Adam(learning_rate=2e-4, beta_1=0.5),
                      disc_X_optimizer=keras.optimizers.Adam(learning_rate=2e-4, beta_1=0.5),
                      disc_Y_optimizer=keras.optimizers.Adam(learning_rate=2e-4, beta_1=0.5),
                      gen_loss_fn=generator_loss_fn, disc_loss_fn=discriminator_loss_fn)
        return model

    cycle_gan_model = build_and_compile()
    # all of it: TensorFlow can keep the one element a dropped iterator read as the whole cache (string_programs)
    first = list(test_horses)[0]
    before = cycle_gan_model.gen_G(first).numpy()
    cycle_gan_model(first)   # build it: Keras 3 saves the weights of built models only
    if tf.__name__ == "tensorflow":
        # The oracle's side only: TensorFlow takes over a minute to trace this step and 50 ms to run it
        # eagerly; the numbers are the same. onnxforge compiles the step as fit always does.
        cycle_gan_model.run_eagerly = True
    plotter = GANMonitor(num_img=2)
    losses = BatchLosses()
    checkpoint_filepath = os.path.join(folder, "cyclegan_checkpoints.{epoch:03d}.weights.h5")
    model_checkpoint_callback = keras.callbacks.ModelCheckpoint(filepath=checkpoint_filepath, save_weights_only=True)
    cycle_gan_model.fit(tf.data.Dataset.zip((train_horses, train_zebras)), epochs=2, verbose=0,
                        callbacks=[plotter, model_checkpoint_callback, losses])

    restored = build_and_compile()
    restored(first)   # build it: Keras 3 loads weights into a built model
    restored.load_weights(os.path.join(folder, "cyclegan_checkpoints.002.weights.h5"))
    pngs = sorted(f for f in os.listdir(folder) if f.endswith(".png"))
    return {"before": before, "losses": np.array(losses.seen), "monitor": np.stack(plotter.predictions),
            "after": cycle_gan_model.gen_G(first).numpy(), "restored": restored.gen_G(first).numpy(),
            "restored_disc": restored.disc_Y(first).numpy(), "disc": cycle_gan_model.disc_Y(first).numpy(),
            "pngs": np.array(len(pngs))}


def _tiny_vgg(keras, weights_seed):
    """VGG19's layer names and shape (blocks of 3x3 convs and 2x2 max pools, any image size) with 4-16
    filters and seeded weights, standing in for ``vgg19.VGG19(weights="imagenet", include_top=False)``."""
    layers = keras.layers
    inputs = keras.Input(shape=(None, None, 3))
    x = inputs
    for block, (filters, convs) in enumerate([(4, 2), (6, 2), (8, 2), (12, 2), (16, 2)], start=1):
        for conv in range(1, convs + 1):
            x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"block{block}_conv{conv}")(x)
        x = layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)
    model = keras.Model(inputs, x, name="vgg19")
    rng = np.random.default_rng(weights_seed)
    # He-scaled kernels, small positive biases: activations stay alive through five blocks of ReLUs
    model.set_weights([rng.normal(0, np.sqrt(2.0 / np.prod(w.shape[:-1])), tuple(w.shape)).astype("float32")
                       if len(w.shape) > 1 else np.full(tuple(w.shape), 0.5, "float32") for w in model.weights])
    return model


def neural_style_transfer(tf, keras, iterations=20):
    """keras.io "Neural style transfer" on 32x40 images with a small VGG-shaped network (seeded weights).

    As on the page: ``load_img`` / ``img_to_array`` / ``vgg19.preprocess_input``, a feature extractor built
    from the base network's layer outputs as a dict, Gram-matrix style losses on five layers, a content
    loss and a total variation loss with ``tf.pow(..., 1.25)``, a ``@tf.function`` taking the gradient of the
    loss with respect to a ``tf.Variable`` image, SGD with an ``ExponentialDecay`` schedule applied with
    ``apply_gradients([(grads, combination_image)])``, and ``save_img`` of the deprocessed image.
    """
    from PIL import Image as PILImage

    vgg19 = keras.applications.vgg19
    folder = tempfile.mkdtemp()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:60]
    base = np.stack([128 + 100 * np.sin(xx / 6.0), 128 + 100 * np.cos(yy / 5.0), 60 + 2 * xx], -1)
    style = 127 + 127 * np.sin((xx + yy)[..., None] / np.array([2.0, 3.0, 4.5])) * rng.uniform(0.5, 1, (48, 60, 1))
    base_image_path = os.path.join(folder, "paris.png")
    style_reference_image_path = os.path.join(folder, "starry_night.png")
    PILImage.fromarray(np.clip(base, 0, 255).astype("uint8")).save(base_image_path)
    PILImage.fromarray(np.clip(style, 0, 255).astype("uint8")).save(style_reference_image_path)
    result_prefix = os.path.join(folder, "paris_generated")

    total_variation_weight = 1e-6
    style_weight = 1e-6
    content_weight = 2.5e-8
    width, height = keras.preprocessing.image.load_img(base_image_path).size
    img_nrows = 32
    img_ncols = int(width * img_nrows / height)

    def preprocess_image(image_path):
        img = keras.preprocessing.image.load_img(image_path, target_size=(img_nrows, img_ncols))
        img = keras.preprocessing.image.img_to_array(img)
        img = np.expand_dims(img, axis=0)
        img = vgg19.preprocess_input(img)
        return tf.convert_to_tensor(img)

    def deprocess_image(x):
        x = x.reshape((img_nrows, img_ncols, 3))
        x[:, :, 0] += 103.939
        x[:, :, 1] += 116.779
        x[:, :, 2] += 123.68
        x = x[:, :, ::-1]
        x = np.clip(x, 0, 255).astype("uint8")
        return x

    def gram_matrix(x):
        x = tf.transpose(x, (2, 0, 1))
        features = tf.reshape(x, (tf.shape(x)[0], -1))
        gram = tf.matmul(features, tf.transpose(features))
        return gram

    def style_loss(style, combination):
        S = gram_matrix(style)
        C = gram_matrix(combination)
        channels = 3
        size = img_nrows * img_ncols
        return tf.reduce_sum(tf.square(S - C)) / (4.0 * (channels**2) * (size**2))

    def content_loss(base, combination):
        return tf.reduce_sum(tf.square(combination - base))

    def total_variation_loss(x):
        a = tf.square(x[:, : img_nrows - 1, : img_ncols - 1, :] - x[:, 1:, : img_ncols - 1, :])
        b = tf.square(x[:, : img_nrows - 1, : img_ncols - 1, :] - x[:, : img_nrows - 1, 1:, :])
        return tf.reduce_sum(tf.pow(a + b, 1.25))

    model = _tiny_vgg(keras, 3)
    outputs_dict = dict([(layer.name, layer.output) for layer in model.layers])
    feature_extractor = keras.Model(inputs=model.inputs, outputs=outputs_dict)

    style_layer_names = ["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"]
    content_layer_name = "block5_conv2"

    def compute_loss(combination_image, base_image, style_reference_image):
        input_tensor = tf.concat([base_image, style_reference_image, combination_image], axis=0)
        features = feature_extractor(input_tensor)
        loss = tf.zeros(shape=())
        layer_features = features[content_layer_name]
        base_image_features = layer_features[0, :, :, :]
        combination_features = layer_features[2, :, :, :]
        loss = loss + content_weight * content_loss(base_image_features, combination_features)
        for layer_name in style_layer_names:
            layer_features = features[layer_name]
            style_reference_features = layer_features[1, :, :, :]
            combination_features = layer_features[2, :, :, :]
            sl = style_loss(style_reference_features, combination_features)
            loss += (style_weight / len(style_layer_names)) * sl
        loss += total_variation_weight * total_variation_loss(combination_image)
        return loss

    @tf.function
    def compute_loss_and_grads(combination_image, base_image, style_reference_image):
        with tf.GradientTape() as tape:
            loss = compute_loss(combination_image, base_image, style_reference_image)
        grads = tape.gradient(loss, combination_image)
        return loss, grads

    optimizer = keras.optimizers.SGD(
        keras.optimizers.schedules.ExponentialDecay(initial_learning_rate=100.0, decay_steps=5, decay_rate=0.96))
    base_image = preprocess_image(base_image_path)
    style_reference_image = preprocess_image(style_reference_image_path)
    combination_image = tf.Variable(preprocess_image(base_image_path))

    losses, first_grads = [], None
    for i in range(1, iterations + 1):
        loss, grads = compute_loss_and_grads(combination_image, base_image, style_reference_image)
        if first_grads is None:
            first_grads = np.array(grads)
        optimizer.apply_gradients([(grads, combination_image)])
        losses.append(float(loss))
        if i % 10 == 0:
            img = deprocess_image(combination_image.numpy())
            fname = result_prefix + "_at_iteration_%d.png" % i
            keras.preprocessing.image.save_img(fname, img)
    saved = np.asarray(PILImage.open(result_prefix + "_at_iteration_%d.png" % iterations))
    return {"base": np.asarray(base_image), "losses": np.array(losses), "first_grads": first_grads,
            "final": combination_image.numpy(), "saved": saved.astype("int64")}


def _tiny_inception(keras, weights_seed):
    """An any-size network whose ``mixed4`` ... ``mixed7`` layers concatenate two conv branches, as
    InceptionV3's mixed blocks do (seeded weights, a few filters), for ``InceptionV3(include_top=False)``."""
    layers = keras.layers
    inputs = keras.Input(shape=(None, None, 3))
    x = layers.Conv2D(6, 3, strides=2, activation="relu", name="stem")(inputs)
    for block in range(8):
        a = layers.Conv2D(4, 1, activation="relu")(x)
        b = layers.Conv2D(4, 3, padding="same", activation="relu")(x)
        x = layers.Concatenate(name=f"mixed{block}")([a, b])
        if block in (1, 5):
            x = layers.MaxPooling2D(3, strides=1, padding="same")(x)
    model = keras.Model(inputs, x, name="inception_v3")
    rng = np.random.default_rng(weights_seed)
    model.set_weights([rng.normal(0, np.sqrt(2.0 / np.prod(w.shape[:-1])), tuple(w.shape)).astype("float32")
                       if len(w.shape) > 1 else np.full(tuple(w.shape), 0.1, "float32") for w in model.weights])
    return model


def deep_dream(tf, keras):
    """keras.io "Deep Dream" on a 40x52 image, 3 octaves of 5 ascent steps, with a small Inception-named net.

    As on the page: ``load_img`` / ``inception_v3.preprocess_input``, a feature extractor over ``get_layer``
    outputs as a dict, a loss on the activations' interior scaled by ``reduce_prod(cast(shape))``, a
    ``@tf.function`` gradient-ascent step that watches the image tensor and normalizes its gradient, called
    on three image sizes (one trace each), ``tf.image.resize`` between octaves with the lost detail added
    back, and ``save_img`` of the deprocessed result.
    """
    from PIL import Image as PILImage

    inception_v3 = keras.applications.inception_v3
    folder = tempfile.mkdtemp()
    yy, xx = np.mgrid[0:40, 0:52]
    sky = np.stack([90 + 60 * np.sin(xx / 7.0) * np.cos(yy / 9.0), 120 + 3 * yy, 200 - xx], -1)
    base_image_path = os.path.join(folder, "sky.png")
    PILImage.fromarray(np.clip(sky, 0, 255).astype("uint8")).save(base_image_path)
    result_prefix = os.path.join(folder, "sky_dream")

    layer_settings = {"mixed4": 1.0, "mixed5": 1.5, "mixed6": 2.0, "mixed7": 2.5}
    step = 0.01
    num_octave = 3
    octave_scale = 1.4
    iterations = 5
    max_loss = 15.0

    def preprocess_image(image_path):
        img = keras.preprocessing.image.load_img(image_path)
        img = keras.preprocessing.image.img_to_array(img)
        img = np.expand_dims(img, axis=0)
        img = inception_v3.preprocess_input(img)
        return img

    def deprocess_image(x):
        x = x.reshape((x.shape[1], x.shape[2], 3))
        x /= 2.0
        x += 0.5
        x *= 255.0
        x = np.clip(x, 0, 255).astype("uint8")
        return x

    model = _tiny_inception(keras, 4)
    outputs_dict = dict([(layer.name, layer.output)
                         for layer in [model.get_layer(name) for name in layer_settings.keys()]])
    feature_extractor = keras.Model(inputs=model.inputs, outputs=outputs_dict)

    def compute_loss(input_image):
        features = feature_extractor(input_image)
        loss = tf.zeros(shape=())
        for name in features.keys():
            coeff = layer_settings[name]
            activation = features[name]
            scaling = tf.reduce_prod(tf.cast(tf.shape(activation), "float32"))
            loss += coeff * tf.reduce_sum(tf.square(activation[:, 2:-2, 2:-2, :])) / scaling
        return loss

    @tf.function
    def gradient_ascent_step(img, learning_rate):
        with tf.GradientTape() as tape:
            tape.watch(img)
            loss = compute_loss(img)
        grads = tape.gradient(loss, img)
        grads /= tf.maximum(tf.reduce_mean(tf.abs(grads)), 1e-6)
        img += learning_rate * grads
        return loss, img

    losses = []

    def gradient_ascent_loop(img, iterations, learning_rate, max_loss=None):
        for i in range(iterations):
            loss, img = gradient_ascent_step(img, learning_rate)
            if max_loss is not None and loss > max_loss:
                break
            losses.append(float(loss))
        return img

    original_img = preprocess_image(base_image_path)
    original_shape = original_img.shape[1:3]
    successive_shapes = [original_shape]
    for i in range(1, num_octave):
        shape = tuple([int(dim / (octave_scale**i)) for dim in original_shape])
        successive_shapes.append(shape)
    successive_shapes = successive_shapes[::-1]
    shrunk_original_img = tf.image.resize(original_img, successive_shapes[0])

    img = tf.identity(original_img)
    for i, shape in enumerate(successive_shapes):
        img = tf.image.resize(img, shape)
        img = gradient_ascent_loop(img, iterations=iterations, learning_rate=step, max_loss=max_loss)
        upscaled_shrunk_original_img = tf.image.resize(shrunk_original_img, shape)
        same_size_original = tf.image.resize(original_img, shape)
        lost_detail = same_size_original - upscaled_shrunk_original_img
        img += lost_detail
        shrunk_original_img = tf.image.resize(original_img, shape)

    keras.preprocessing.image.save_img(result_prefix + ".png", deprocess_image(img.numpy()))
    saved = np.asarray(PILImage.open(result_prefix + ".png")).astype("int64")
    return {"shapes": np.array(successive_shapes), "losses": np.array(losses), "dream": img.numpy(),
            "original": np.asarray(original_img), "saved": saved}
