"""The classic GAN pattern: compile the discriminator, freeze it, compile the combined model, alternate
train_on_batch. Weights are shared Variables; `trainable` is captured at compile time (tf.keras 2)."""
from __future__ import annotations

import json

import numpy as np
import pytest

import onnxforge as of
from onnxforge import layers, losses, optimizers

from .common import TorchDense, assert_dense_equal, dense_pair, keras_adam_eps, torch

F = torch.nn.functional


def _classic(g, d, latent=3):
    d.compile(optimizer=optimizers.Adam(0.01), loss=losses.BinaryCrossentropy(from_logits=True), device="cpu")
    d.trainable = False
    z = of.Input((latent,), name="z")
    gan = of.Model(z, d(g(z)), name="gan")
    gan.compile(optimizer=optimizers.Adam(0.02), loss=losses.BinaryCrossentropy(from_logits=True), device="cpu")
    return gan


def _state_names(model):
    program = model.compiled_programs["train_step"].model
    return {i for i, _ in json.loads(next(p.value for p in program.metadata_props if p.key == "onnxforge.state"))}


def test_alternating_steps_equal_pytorch_and_frozen_weights_stay_frozen(checked):
    g, d = dense_pair()
    G, D = TorchDense(g), TorchDense(d)
    gan = _classic(g, d)
    for model in (d, gan):
        for program in model.compiled_programs.values():
            checked(program.model)
    # The combined model trains the generator only; the discriminator's weights are read-only inputs.
    assert _state_names(gan) >= {w.path for w in g.weights}
    assert not _state_names(gan) & {w.path for w in d.weights}
    assert _state_names(d) >= {w.path for w in d.weights}

    d_opt = torch.optim.Adam(D.parameters(), lr=0.01)
    g_opt = torch.optim.Adam(G.parameters(), lr=0.02)
    rng = np.random.default_rng(3)
    for step in range(1, 3):
        real = rng.normal(size=(6, 2)).astype(np.float32) + 1.0
        z1, z2 = rng.normal(size=(2, 6, 3)).astype(np.float32)
        fake = g.predict(z1, verbose=0)
        with torch.no_grad():
            np.testing.assert_allclose(fake, G(torch.tensor(z1)).numpy(), rtol=1e-5, atol=1e-6)
        labels = np.concatenate([np.ones((6, 1)), np.zeros((6, 1))]).astype(np.float32)
        before = [w.numpy().copy() for w in d.weights]
        d_loss = d.train_on_batch(np.concatenate([fake, real]), labels)
        d.reset_metrics()
        assert any(not np.allclose(b, w.numpy()) for b, w in zip(before, d.weights)), "d did not train"

        d_opt.param_groups[0]["eps"] = keras_adam_eps(step)
        t_d = F.binary_cross_entropy_with_logits(D(torch.cat([torch.tensor(fake), torch.tensor(real)])),
                                                 torch.tensor(labels))
        d_opt.zero_grad()
        t_d.backward()
        d_opt.step()
        assert d_loss == pytest.approx(t_d.item(), rel=1e-5)
        assert_dense_equal(d, D)

        after_d = [w.numpy().copy() for w in d.weights]
        g_loss = gan.train_on_batch(z2, np.zeros((6, 1), np.float32))
        gan.reset_metrics()
        for b, w in zip(after_d, d.weights):
            np.testing.assert_array_equal(b, w.numpy())   # the gan step leaves the discriminator alone

        g_opt.param_groups[0]["eps"] = keras_adam_eps(step)
        t_g = F.binary_cross_entropy_with_logits(D(G(torch.tensor(z2))), torch.zeros(6, 1))
        g_opt.zero_grad()
        t_g.backward()
        g_opt.step()
        assert g_loss == pytest.approx(t_g.item(), rel=1e-5)
        assert_dense_equal(g, G)


def test_unbuilt_discriminator_captures_trainable_at_compile():
    """compile() before the weights exist: the flags of that moment decide, not the later freeze."""
    g = of.Sequential([of.Input((3,)), layers.Dense(2)], name="g_unbuilt")
    d = of.Sequential([layers.Dense(4), layers.LeakyReLU(0.2), layers.Dense(1)], name="d_unbuilt")
    d.compile(optimizer=optimizers.SGD(0.1), loss=losses.BinaryCrossentropy(from_logits=True), device="cpu")
    d.trainable = False
    z = of.Input((3,))
    gan = of.Model(z, d(g(z)))          # builds d while it is frozen
    gan.compile(optimizer=optimizers.SGD(0.1), loss=losses.BinaryCrossentropy(from_logits=True), device="cpu")
    assert d.trainable_weights == [] and len(gan.trainable_weights) == 2
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 2)).astype(np.float32), (rng.random((8, 1)) > 0.5).astype(np.float32)
    before = [w.numpy().copy() for w in d.weights]
    d.train_on_batch(x, y)
    assert all(not np.allclose(b, w.numpy()) for b, w in zip(before, d.weights))
    assert d.trainable is False and all(not w.trainable for w in d.weights)   # the freeze itself stays
    frozen = [w.numpy().copy() for w in d.weights]
    gan.train_on_batch(rng.normal(size=(8, 3)).astype(np.float32), y)
    for b, w in zip(frozen, d.weights):
        np.testing.assert_array_equal(b, w.numpy())


def test_frozen_batchnorm_runs_in_inference_mode_inside_the_combined_model():
    g = of.Sequential([of.Input((3,)), layers.Dense(4)], name="g_bn")
    d = of.Sequential([of.Input((4,)), layers.Dense(4), layers.BatchNormalization(name="d_bn"), layers.Dense(1)],
                      name="d_bn_model")
    gan = _classic(g, d)
    bn = d.get_layer("d_bn")
    rng = np.random.default_rng(1)
    stats = [bn.moving_mean.numpy().copy(), bn.moving_variance.numpy().copy()]
    gan.train_on_batch(rng.normal(size=(8, 3)).astype(np.float32), np.ones((8, 1), np.float32))
    np.testing.assert_array_equal(stats[0], bn.moving_mean.numpy())
    np.testing.assert_array_equal(stats[1], bn.moving_variance.numpy())
    d.train_on_batch(rng.normal(size=(8, 4)).astype(np.float32), np.ones((8, 1), np.float32))
    assert not np.allclose(stats[0], bn.moving_mean.numpy())   # its own program updates them
