"""Randomness inside compiled training graphs: reproducible for a seed, new noise every step, exact resumption
once the state Variables (weights, optimizer variables, RNG states) are restored."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as of
from onnxforge import layers, losses, ops, optimizers

from .common import dense_pair


class NoisyGAN(of.Model):
    """Noise from the program RNG (ops.random.normal), a SeedGenerator stream, an int-seeded stream, and a
    generator with GaussianNoise + Dropout run in training mode."""

    def __init__(self, discriminator, generator, **kwargs):
        super().__init__(**kwargs)
        self.discriminator, self.generator = discriminator, generator
        self.seed_generator = ops.random.SeedGenerator(1337)

    def compile(self, d_optimizer, g_optimizer, **kwargs):
        super().compile(**kwargs)
        self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer
        self.loss_fn = losses.BinaryCrossentropy(from_logits=True)

    def train_step(self, real):
        batch = ops.shape(real)[0]
        z = ops.random.normal((batch, 3))
        labels = ops.concatenate([ops.ones((batch, 1)), ops.zeros((batch, 1))], axis=0)
        labels = labels + 0.05 * ops.random.uniform(ops.shape(labels), seed=self.seed_generator)
        fixed = ops.random.uniform((4,), seed=42)
        with of.GradientTape() as tape:
            fake = self.generator(z, training=True)
            d_loss = self.loss_fn(labels, self.discriminator(ops.concatenate([fake, real], axis=0)))
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))
        z2 = ops.random.normal((batch, 3), seed=self.seed_generator)
        with of.GradientTape() as tape:
            g_loss = self.loss_fn(ops.zeros((batch, 1)), self.discriminator(self.generator(z2, training=True)))
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))
        return {"d_loss": d_loss, "g_loss": g_loss, "z_sum": ops.sum(z), "label_sum": ops.sum(labels),
                "fixed": ops.sum(fixed)}


def _noisy_pair():
    g, d = dense_pair()
    return _noisy_generator(g), d


def _noisy_generator(g):
    # The same Dense weights behind GaussianNoise and Dropout layers (Variables are shared).
    dense = [layer for layer in g.layers if isinstance(layer, layers.Dense)]
    return of.Sequential([of.Input((3,)), layers.GaussianNoise(0.1), dense[0], layers.LeakyReLU(0.2),
                          layers.Dropout(0.3), dense[1]], name="noisy_generator")


def _gan(seed):
    g, d = _noisy_pair()
    gan = NoisyGAN(d, g)
    gan.compile(d_optimizer=optimizers.Adam(0.01), g_optimizer=optimizers.Adam(0.01), seed=seed, device="cpu")
    return gan


def _run(gan, steps, data):
    logs = []
    for _ in range(steps):
        logs.append(gan.train_on_batch(data, return_dict=True))
        gan.reset_metrics()   # train_on_batch logs running means, as in Keras 3
    return logs


DATA = np.random.default_rng(0).normal(size=(8, 2)).astype(np.float32)


def test_same_seed_same_run_new_noise_every_step():
    a, b, c = _gan(7), _gan(7), _gan(8)
    logs_a, logs_b, logs_c = _run(a, 3, DATA), _run(b, 3, DATA), _run(c, 3, DATA)
    assert logs_a == logs_b
    for wa, wb in zip(a.weights, b.weights):
        np.testing.assert_array_equal(wa.numpy(), wb.numpy())
    assert [x["z_sum"] for x in logs_a] != [x["z_sum"] for x in logs_c]
    # Every step draws new noise from the program RNG and the SeedGenerator stream...
    assert len({x["z_sum"] for x in logs_a}) == 3 and len({x["label_sum"] for x in logs_a}) == 3
    # ... the SeedGenerator's stream is its own (seed 1337 in both models, whatever compile's seed) ...
    assert [x["label_sum"] for x in logs_a] == [x["label_sum"] for x in logs_c]
    # ... and an int seed is a fixed stream, as in Keras.
    assert len({x["fixed"] for x in logs_a}) == 1
    assert a.seed_generator.state.numpy().tolist() == [1337, 3]
    assert a._rng_state.numpy()[1] == 3


def _state(gan):
    variables = list(gan.weights) + [v for opt in gan.tracked_optimizers() for v in opt.variables] + \
        gan.rng_variables()
    return variables, [v.numpy().copy() for v in variables]


def test_restoring_every_state_variable_resumes_exactly():
    gan = _gan(3)
    _run(gan, 2, DATA)
    variables, saved = _state(gan)
    names = {v.path for v in variables}
    assert {"seed_generator/state", "seed_generator/state"} <= names and gan.seed_generator.state in variables
    assert gan.d_optimizer in gan.tracked_optimizers() and gan.g_optimizer in gan.tracked_optimizers()
    first = _run(gan, 2, DATA)
    for v, value in zip(variables, saved):
        v.assign(value)
    second = _run(gan, 2, DATA)
    assert first == second
    # Without the RNG states the continuation differs: they really are part of what must be saved.
    for v, value in zip(variables, saved):
        if v not in gan.rng_variables():
            v.assign(value)
    assert _run(gan, 1, DATA) != second[:1]


class SeededNoise(layers.Layer):
    """A custom layer drawing from its own SeedGenerator inside a standard compiled training program."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = ops.random.SeedGenerator(5)

    def call(self, x, training=False):
        if not training:
            return x
        return x + ops.random.normal(ops.shape(x), stddev=0.5, seed=self.seed_generator)

    def compute_output_shape(self, input_shape):
        return input_shape


def test_seed_generator_in_a_compiled_model_advances_and_is_found():
    model = of.Sequential([of.Input((4,)), SeededNoise(name="noise"), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", device="cpu")
    gen = model.get_layer("noise").seed_generator
    assert gen.state in model.rng_variables()
    x, y = np.ones((16, 4), np.float32), np.zeros((16, 1), np.float32)
    losses_seen = [model.train_on_batch(x, y) for _ in range(2)]
    assert gen.state.numpy().tolist() == [5, 2]
    assert losses_seen[0] != losses_seen[1]
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))   # no noise at inference


def test_eager_random_ops_follow_their_seeds():
    a = ops.random.normal((1000,), mean=2.0, stddev=0.5, seed=11)
    np.testing.assert_array_equal(a, ops.random.normal((1000,), mean=2.0, stddev=0.5, seed=11))
    assert abs(a.mean() - 2.0) < 0.05 and abs(a.std() - 0.5) < 0.05
    u = ops.random.uniform((2000,), minval=-1.0, maxval=3.0, seed=1)
    assert u.min() >= -1.0 and u.max() < 3.0 and abs(u.mean() - 1.0) < 0.1
    gen = ops.random.SeedGenerator(9)
    first, second = ops.random.uniform((5,), seed=gen), ops.random.uniform((5,), seed=gen)
    assert not np.array_equal(first, second) and gen.state.numpy().tolist() == [9, 2]
    kept = ops.random.dropout(np.ones(4000, np.float32), 0.25, seed=3)
    np.testing.assert_allclose(np.unique(kept), [0.0, 1 / 0.75], rtol=1e-6)
    assert abs((kept == 0).mean() - 0.25) < 0.03
