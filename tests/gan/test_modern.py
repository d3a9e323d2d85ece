"""The modern GAN pattern: a Model subclass's train_step with two tapes and two optimizers, traced once into
one ONNX training graph, equals the same eager steps in PyTorch with copied weights."""
from __future__ import annotations

import json

import numpy as np
import pytest

import onnxforge as of
from onnxforge import layers, losses, optimizers

from .common import (NoiseGAN, TorchDense, assert_dense_equal, dense_pair, keras_adam_eps, torch,
                     torch_gan_step)

F = torch.nn.functional


def _data(seed=1, n=6, latent=3):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(n, 2)).astype(np.float32) + 1.0, rng.normal(size=(n, latent)).astype(np.float32),
            rng.normal(size=(n, latent)).astype(np.float32)]


def test_two_steps_with_adam_and_sgd_equal_pytorch(checked):
    g, d = dense_pair()
    G, D = TorchDense(g), TorchDense(d)
    gan = NoiseGAN(d, g)
    gan.compile(d_optimizer=optimizers.Adam(0.01), g_optimizer=optimizers.SGD(0.05, momentum=0.5),
                loss_fn=losses.BinaryCrossentropy(from_logits=True), device="cpu")
    d_opt = torch.optim.Adam(D.parameters(), lr=0.01, betas=(0.9, 0.999))
    g_opt = torch.optim.SGD(G.parameters(), lr=0.05, momentum=0.5)
    for step in range(1, 3):
        batch = _data(seed=step)
        logs = gan.train_on_batch(batch, return_dict=True)
        gan.reset_metrics()
        d_opt.param_groups[0]["eps"] = keras_adam_eps(step)
        t_d, t_g = torch_gan_step(G, D, d_opt, g_opt, *batch)
        assert logs["d_loss"] == pytest.approx(t_d, rel=1e-5)
        assert logs["g_loss"] == pytest.approx(t_g, rel=1e-5)
        assert_dense_equal(d, D)
        assert_dense_equal(g, G)
    assert int(gan.d_optimizer.iterations.numpy()) == 2 and int(gan.g_optimizer.iterations.numpy()) == 2
    program = gan.compiled_programs["train_step"].model
    checked(program)
    names = {i.name for i in program.graph.input}
    assert {"learning_rate/d_optimizer", "learning_rate/g_optimizer", "x/0", "x/1", "x/2"} <= names
    pairs = dict(json.loads(next(p.value for p in program.metadata_props if p.key == "onnxforge.state")))
    # Both updates live in the one graph: every weight, every slot, both step counters.
    for w in g.weights + d.weights:
        assert pairs[w.path] == f"{w.path}:new"
    assert {gan.d_optimizer.iterations.path, gan.g_optimizer.iterations.path} <= set(pairs)


def _conv_pair(seed=0):
    g = of.Sequential([of.Input((3,)), layers.Dense(2 * 2 * 4, name="g_dense"), layers.Reshape((2, 2, 4)),
                       layers.Conv2DTranspose(3, 2, strides=2, name="g_up"),
                       layers.BatchNormalization(momentum=0.9, epsilon=1e-3, name="g_bn"),
                       layers.LeakyReLU(0.2), layers.UpSampling2D(2),
                       layers.Conv2D(1, 3, padding="same", activation="tanh", name="g_out")], name="conv_generator")
    d = of.Sequential([of.Input((8, 8, 1)), layers.Conv2D(4, 2, strides=2, name="d_conv"), layers.LeakyReLU(0.2),
                       layers.Flatten(), layers.Dropout(0.0), layers.Dense(1, name="d_out")], name="conv_discriminator")
    rng = np.random.default_rng(seed)
    for w in g.weights + d.weights:
        if "moving_variance" in w.name:
            w.assign(rng.uniform(0.5, 1.5, w.shape))
        else:
            w.assign(rng.normal(0, 0.5, w.shape))
    return g, d


class TorchConvG(torch.nn.Module):
    def __init__(self, g):
        super().__init__()
        dense, up, bn, out = (g.get_layer(n) for n in ("g_dense", "g_up", "g_bn", "g_out"))
        self.dense = torch.nn.Linear(3, 16)
        self.up = torch.nn.ConvTranspose2d(4, 3, 2, stride=2)
        self.bn = torch.nn.BatchNorm2d(3, eps=1e-3, momentum=0.1)
        self.out = torch.nn.Conv2d(3, 1, 3, padding=1)
        with torch.no_grad():
            self.dense.weight.copy_(torch.tensor(dense.kernel.numpy().T))
            self.dense.bias.copy_(torch.tensor(dense.bias.numpy()))
            self.up.weight.copy_(torch.tensor(up.kernel.numpy().transpose(3, 2, 0, 1)))
            self.up.bias.copy_(torch.tensor(up.bias.numpy()))
            self.bn.weight.copy_(torch.tensor(bn.gamma.numpy()))
            self.bn.bias.copy_(torch.tensor(bn.beta.numpy()))
            self.bn.running_mean.copy_(torch.tensor(bn.moving_mean.numpy()))
            self.out.weight.copy_(torch.tensor(out.kernel.numpy().transpose(3, 2, 0, 1)))
            self.out.bias.copy_(torch.tensor(out.bias.numpy()))

    def forward(self, z):
        h = self.dense(z).reshape(-1, 2, 2, 4).permute(0, 3, 1, 2)   # Keras reshapes NHWC
        h = F.interpolate(F.leaky_relu(self.bn(self.up(h)), 0.2), scale_factor=2, mode="nearest")
        return torch.tanh(self.out(h)).permute(0, 2, 3, 1)


class TorchConvD(torch.nn.Module):
    def __init__(self, d):
        super().__init__()
        conv, out = d.get_layer("d_conv"), d.get_layer("d_out")
        self.conv = torch.nn.Conv2d(1, 4, 2, stride=2)
        self.out = torch.nn.Linear(64, 1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor(conv.kernel.numpy().transpose(3, 2, 0, 1)))
            self.conv.bias.copy_(torch.tensor(conv.bias.numpy()))
            self.out.weight.copy_(torch.tensor(out.kernel.numpy().T))
            self.out.bias.copy_(torch.tensor(out.bias.numpy()))

    def forward(self, x):
        h = F.leaky_relu(self.conv(x.permute(0, 3, 1, 2)), 0.2)
        return self.out(h.permute(0, 2, 3, 1).reshape(len(h), -1))



def test_conv_transpose_batchnorm_upsampling_gan_step_equals_pytorch(checked):
    g, d = _conv_pair()
    G, D = TorchConvG(g), TorchConvD(d)
    gan = NoiseGAN(d, g, gen_training=True)
    gan.compile(d_optimizer=optimizers.Adam(0.02), g_optimizer=optimizers.Adam(0.01),
                loss_fn=losses.BinaryCrossentropy(from_logits=True), device="cpu")
    d_opt = torch.optim.Adam(D.parameters(), lr=0.02, eps=keras_adam_eps(1))
    g_opt = torch.optim.Adam(G.parameters(), lr=0.01, eps=keras_adam_eps(1))
    rng = np.random.default_rng(5)
    real = np.tanh(rng.normal(size=(4, 8, 8, 1))).astype(np.float32)
    z1, z2 = rng.normal(size=(2, 4, 3)).astype(np.float32)
    logs = gan.train_on_batch([real, z1, z2], return_dict=True)
    t_d, t_g = torch_gan_step(G, D, d_opt, g_opt, real, z1, z2)
    assert logs["d_loss"] == pytest.approx(t_d, rel=1e-5)
    assert logs["g_loss"] == pytest.approx(t_g, rel=1e-5)
    pairs = [(g.get_layer("g_dense").kernel.numpy(), G.dense.weight.detach().numpy().T),
             (g.get_layer("g_up").kernel.numpy(), G.up.weight.detach().numpy().transpose(2, 3, 1, 0)),
             (g.get_layer("g_bn").gamma.numpy(), G.bn.weight.detach().numpy()),
             (g.get_layer("g_bn").beta.numpy(), G.bn.bias.detach().numpy()),
             (g.get_layer("g_out").kernel.numpy(), G.out.weight.detach().numpy().transpose(2, 3, 1, 0)),
             (d.get_layer("d_conv").kernel.numpy(), D.conv.weight.detach().numpy().transpose(2, 3, 1, 0)),
             (d.get_layer("d_out").kernel.numpy(), D.out.weight.detach().numpy().T),
             # Both generator calls ran BatchNormalization in training mode: two chained statistic updates.
             (g.get_layer("g_bn").moving_mean.numpy(), G.bn.running_mean.numpy())]
    for mine, theirs in pairs:
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-5)
    checked(gan.compiled_programs["train_step"].model)


def test_fit_logs_last_step_values_and_traces_once():
    """Plain returned losses are logged as the epoch's last step returned them (Keras 3), not averaged."""
    g, d = dense_pair()
    gan = NoiseGAN(d, g)
    gan.compile(d_optimizer=optimizers.Adam(0.01), g_optimizer=optimizers.Adam(0.01),
                loss_fn=losses.BinaryCrossentropy(from_logits=True), device="cpu")
    x = _data(n=40)
    history = gan.fit(x, batch_size=8, epochs=2, verbose=0, shuffle=False)
    assert set(history.history) == {"d_loss", "g_loss"} and len(history.history["d_loss"]) == 2
    assert len(gan._custom_steps) == 1            # one trace for every batch size
    assert gan.d_optimizer.iterations.numpy() == 10
    per_step = []
    g2, d2 = dense_pair()
    twin = NoiseGAN(d2, g2)
    twin.compile(d_optimizer=optimizers.Adam(0.01), g_optimizer=optimizers.Adam(0.01),
                 loss_fn=losses.BinaryCrossentropy(from_logits=True), device="cpu")
    for epoch in range(2):
        losses_epoch = []
        for start in range(0, 40, 8):
            logs = twin.train_on_batch([a[start:start + 8] for a in x], return_dict=True)
            twin.reset_metrics()
            losses_epoch.append(logs["d_loss"])
        per_step.append(losses_epoch[-1])
    np.testing.assert_allclose(history.history["d_loss"], per_step, rtol=1e-5)


def test_custom_step_on_x_y_and_sample_weight_with_compiled_optimizer():
    """A regression model's own train_step: data is (x, y, sample_weight); self.optimizer from compile()."""

    class Weighted(of.Model):
        def __init__(self):
            super().__init__()
            self.dense = layers.Dense(1, name="w_dense")

        def call(self, x):
            return self.dense(x)

        def train_step(self, data):
            x, y, sw = data
            with of.GradientTape() as tape:
                err = of.ops.mean(of.ops.square(self(x, training=True) - y), axis=-1)
                loss = of.ops.sum(err * sw) / of.ops.sum(sw)
            grads = tape.gradient(loss, self.trainable_weights)
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
            return {"loss": loss}

    model = Weighted()
    model.build((None, 3))
    model.compile(optimizer=optimizers.SGD(0.1), device="cpu")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 3)).astype(np.float32), rng.normal(size=(5, 1)).astype(np.float32)
    sw = np.array([1, 0, 2, 1, 0], np.float32)
    k0, b0 = (w.numpy().copy() for w in model.dense.weights)
    logs = model.train_on_batch(x, y, sample_weight=sw, return_dict=True)
    err = x @ k0 + b0 - y
    expected = float((err[:, 0] ** 2 * sw).sum() / sw.sum())
    assert logs["loss"] == pytest.approx(expected, rel=1e-5)
    grad_k = x.T @ (2 * err * sw[:, None]) / sw.sum()
    np.testing.assert_allclose(model.dense.kernel.numpy(), k0 - 0.1 * grad_k, rtol=1e-5, atol=1e-6)
    assert "learning_rate/optimizer" in {i.name for i in model.compiled_programs["train_step"].model.graph.input}
