"""Small GAN models shared by the GAN tests, with PyTorch twins that copy their weights."""
from __future__ import annotations

import math

import numpy as np
import pytest

import onnxforge as of
from onnxforge import layers, ops

torch = pytest.importorskip("torch")
F = torch.nn.functional
BETA_2 = 0.999


def dense_pair(latent: int = 3, features: int = 2, seed: int = 0):
    """A Dense generator and discriminator (logits) with non-trivial weights."""
    g = of.Sequential([of.Input((latent,)), layers.Dense(6, name="g1"), layers.LeakyReLU(0.2, name="g_act"),
                       layers.Dense(features, name="g2")], name="generator")
    d = of.Sequential([of.Input((features,)), layers.Dense(5, name="d1"), layers.LeakyReLU(0.2, name="d_act"),
                       layers.Dense(1, name="d2")], name="discriminator")
    rng = np.random.default_rng(seed)
    for w in g.weights + d.weights:
        w.assign(rng.normal(0, 0.5, w.shape))
    return g, d


class TorchDense(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        dense = [layer for layer in model.layers if isinstance(layer, layers.Dense)]
        self.fc = torch.nn.ModuleList()
        for layer in dense:
            lin = torch.nn.Linear(*layer.kernel.shape)
            with torch.no_grad():
                lin.weight.copy_(torch.tensor(layer.kernel.numpy().T))
                lin.bias.copy_(torch.tensor(layer.bias.numpy()))
            self.fc.append(lin)

    def forward(self, x):
        return self.fc[1](F.leaky_relu(self.fc[0](x), 0.2))


def assert_dense_equal(model, net, atol=1e-5):
    dense = [layer for layer in model.layers if isinstance(layer, layers.Dense)]
    for layer, lin in zip(dense, net.fc):
        np.testing.assert_allclose(layer.kernel.numpy(), lin.weight.detach().numpy().T, rtol=1e-4, atol=atol)
        np.testing.assert_allclose(layer.bias.numpy(), lin.bias.detach().numpy(), rtol=1e-4, atol=atol)


def keras_adam_eps(t: int, epsilon: float = 1e-7) -> float:
    """torch's eps that makes torch.optim.Adam take Keras's step t (Keras adds epsilon before bias correction)."""
    return epsilon / math.sqrt(1 - BETA_2 ** t)


class NoiseGAN(of.Model):
    """Keras's DCGAN train_step, with the two noise batches fed as data so PyTorch can replay them."""

    def __init__(self, discriminator, generator, gen_training=None, **kwargs):
        super().__init__(**kwargs)
        self.discriminator, self.generator = discriminator, generator
        self.gen_training = gen_training

    def compile(self, d_optimizer, g_optimizer, loss_fn, **kwargs):
        super().compile(**kwargs)
        self.d_optimizer, self.g_optimizer, self.loss_fn = d_optimizer, g_optimizer, loss_fn

    def train_step(self, data):
        real, z1, z2 = data
        batch = ops.shape(real)[0]
        fake = self.generator(z1, training=self.gen_training)
        combined = ops.concatenate([fake, real], axis=0)
        labels = ops.concatenate([ops.ones((batch, 1)), ops.zeros((batch, 1))], axis=0)
        with of.GradientTape() as tape:
            d_loss = self.loss_fn(labels, self.discriminator(combined))
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))
        with of.GradientTape() as tape:
            g_loss = self.loss_fn(ops.zeros((batch, 1)),
                                  self.discriminator(self.generator(z2, training=self.gen_training)))
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))
        return {"d_loss": d_loss, "g_loss": g_loss}


def torch_gan_step(G, D, d_opt, g_opt, real, z1, z2):
    """The same step, eagerly, in PyTorch (BCE on logits)."""
    real, z1, z2 = (torch.tensor(a) for a in (real, z1, z2))
    n = len(real)
    fake = G(z1).detach()
    labels = torch.cat([torch.ones(n, 1), torch.zeros(n, 1)])
    d_loss = F.binary_cross_entropy_with_logits(D(torch.cat([fake, real])), labels)
    d_opt.zero_grad()
    d_loss.backward()
    d_opt.step()
    g_loss = F.binary_cross_entropy_with_logits(D(G(z2)), torch.zeros(n, 1))
    g_opt.zero_grad()
    D.zero_grad()
    g_loss.backward()
    g_opt.step()
    return d_loss.item(), g_loss.item()
