"""Short GAN runs learn: the discriminator's loss on real-vs-noise falls and the generator's samples move
toward the data (their mean distance to the data mean, measured before and after)."""
from __future__ import annotations

import numpy as np

import onnxforge as of
from onnxforge import layers, losses, ops, optimizers

CENTER = np.array([2.5, -1.5], np.float32)


def _data(n=512, seed=0):
    return (np.random.default_rng(seed).normal(size=(n, 2)) * 0.3 + CENTER).astype(np.float32)


def _models(seed=0):
    g = of.Sequential([of.Input((4,)), layers.Dense(16), layers.LeakyReLU(0.2), layers.Dense(2)], name="lg")
    d = of.Sequential([of.Input((2,)), layers.Dense(16), layers.LeakyReLU(0.2), layers.Dense(1)], name="ld")
    rng = np.random.default_rng(seed)   # the same start whatever ran before (layer initializers draw globally)
    for w in g.weights + d.weights:
        w.assign(rng.normal(0, 0.4, w.shape) if w.name.endswith("kernel") else np.zeros(w.shape))
    return g, d


def _sample_gap(g, seed=1):
    z = np.random.default_rng(seed).normal(size=(512, 4)).astype(np.float32)
    return float(np.linalg.norm(g.predict(z, verbose=0).mean(axis=0) - CENTER))


def _d_loss_real_vs_noise(d, seed=2):
    """BCE of the discriminator telling real data (label 0) from N(0, 1) noise (label 1)."""
    real = _data(256, seed)
    noise = np.random.default_rng(seed).normal(size=(256, 2)).astype(np.float32)
    logits = d.predict(np.concatenate([real, noise]), verbose=0)[:, 0]
    labels = np.concatenate([np.zeros(256), np.ones(256)])
    return float(np.mean(np.maximum(logits, 0) - logits * labels + np.log1p(np.exp(-np.abs(logits)))))


class GAN(of.Model):
    def __init__(self, d, g, **kwargs):
        super().__init__(**kwargs)
        self.discriminator, self.generator = d, g

    def compile(self, d_optimizer, g_optimizer, loss_fn, **kwargs):
        super().compile(**kwargs)
        self.d_optimizer, self.g_optimizer, self.loss_fn = d_optimizer, g_optimizer, loss_fn

    def train_step(self, real):
        batch = ops.shape(real)[0]
        fake = self.generator(ops.random.normal((batch, 4)))
        labels = ops.concatenate([ops.ones((batch, 1)), ops.zeros((batch, 1))], axis=0)
        with of.GradientTape() as tape:
            d_loss = self.loss_fn(labels, self.discriminator(ops.concatenate([fake, real], axis=0)))
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))
        with of.GradientTape() as tape:
            fake = self.generator(ops.random.normal((batch, 4)))
            g_loss = self.loss_fn(ops.zeros((batch, 1)), self.discriminator(fake))
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))
        return {"d_loss": d_loss, "g_loss": g_loss}


def _check(before, early, after):
    (gap_before, d_before), (_, d_early), (gap_after, _) = before, early, after
    # Early on the discriminator learns to tell the data from noise; later the generator catches up.
    assert d_early < 0.75 * d_before, (d_before, d_early)
    assert gap_after < 0.25 * gap_before, (gap_before, gap_after)


def _measure(g, d):
    return _sample_gap(g), _d_loss_real_vs_noise(d)


def test_modern_gan_learns():
    g, d = _models()
    gan = GAN(d, g)
    gan.compile(optimizers.Adam(0.01, beta_1=0.5), optimizers.Adam(0.01, beta_1=0.5),
                losses.BinaryCrossentropy(from_logits=True), seed=0, device="cpu")
    before = _measure(g, d)
    gan.fit(_data(), batch_size=32, epochs=1, verbose=0)
    early = _measure(g, d)
    history = gan.fit(_data(), batch_size=32, epochs=11, verbose=0)
    _check(before, early, _measure(g, d))
    assert all(np.isfinite(history.history["g_loss"]))


def test_classic_gan_learns():
    g, d = _models()
    d.compile(optimizer=optimizers.Adam(0.01, beta_1=0.5), loss=losses.BinaryCrossentropy(from_logits=True),
              device="cpu")
    d.trainable = False
    z = of.Input((4,))
    gan = of.Model(z, d(g(z)))
    gan.compile(optimizer=optimizers.Adam(0.01, beta_1=0.5), loss=losses.BinaryCrossentropy(from_logits=True),
                device="cpu")
    before = _measure(g, d)
    data, rng = _data(), np.random.default_rng(3)
    labels = np.concatenate([np.ones((32, 1)), np.zeros((32, 1))]).astype(np.float32)
    for step in range(192):
        if step == 16:
            early = _measure(g, d)
        real = data[rng.integers(0, len(data), 32)]
        fake = g.predict_on_batch(rng.normal(size=(32, 4)).astype(np.float32))
        d.train_on_batch(np.concatenate([fake, real]), labels)
        gan.train_on_batch(rng.normal(size=(32, 4)).astype(np.float32), np.zeros((32, 1), np.float32))
    _check(before, early, _measure(g, d))
