"""Whole-step tests: training steps of a real Conv2D + BatchNormalization + Dense model equal the same steps
in PyTorch with copied weights (parameters and statistics after each step, to ~1e-5)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from onnxforge import losses, optimizers
from onnxforge.layers import BatchNormalization, Conv2D, Dense, Flatten, Input
from onnxforge.models import Sequential

torch = pytest.importorskip("torch")
BETA_2 = 0.999


def _keras_model(seed=0):
    model = Sequential([Input(shape=(6, 5, 2)), Conv2D(4, 3, activation="relu", name="conv"),
                        BatchNormalization(momentum=0.9, epsilon=1e-3, name="bn"), Flatten(name="flat"),
                        Dense(3, name="logits")], name="net")
    rng = np.random.default_rng(seed)
    for w in model.weights:   # non-trivial values everywhere (BN gamma/beta and statistics too)
        if "moving_variance" in w.name:
            w.assign(rng.uniform(0.5, 1.5, w.shape))
        else:
            w.assign(rng.normal(0, 0.4, w.shape))
    return model


class TorchNet(torch.nn.Module):
    """The same network in PyTorch (NCHW), Keras weights copied in."""

    def __init__(self, model):
        super().__init__()
        conv, bn, dense = model.get_layer("conv"), model.get_layer("bn"), model.get_layer("logits")
        self.conv = torch.nn.Conv2d(2, 4, 3)
        self.bn = torch.nn.BatchNorm2d(4, eps=1e-3, momentum=0.1)
        self.dense = torch.nn.Linear(4 * 4 * 3, 3)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor(conv.kernel.numpy().transpose(3, 2, 0, 1)))
            self.conv.bias.copy_(torch.tensor(conv.bias.numpy()))
            self.bn.weight.copy_(torch.tensor(bn.gamma.numpy()))
            self.bn.bias.copy_(torch.tensor(bn.beta.numpy()))
            self.bn.running_mean.copy_(torch.tensor(bn.moving_mean.numpy()))
            self.bn.running_var.copy_(torch.tensor(bn.moving_variance.numpy()))
            self.dense.weight.copy_(torch.tensor(dense.kernel.numpy().T))
            self.dense.bias.copy_(torch.tensor(dense.bias.numpy()))
        self.batch_var = None

    def forward(self, x_nhwc):
        h = torch.relu(self.conv(x_nhwc.permute(0, 3, 1, 2)))
        self.batch_var = h.detach().var(dim=(0, 2, 3), unbiased=False)   # Keras's moving variance uses it
        h = self.bn(h)
        return self.dense(h.permute(0, 2, 3, 1).reshape(len(h), -1))     # Keras flattens NHWC


def _compare(model, net, expected_var, atol=1e-5):
    conv, bn, dense = model.get_layer("conv"), model.get_layer("bn"), model.get_layer("logits")
    pairs = [(conv.kernel.numpy().transpose(3, 2, 0, 1), net.conv.weight), (conv.bias.numpy(), net.conv.bias),
             (bn.gamma.numpy(), net.bn.weight), (bn.beta.numpy(), net.bn.bias),
             (dense.kernel.numpy().T, net.dense.weight), (dense.bias.numpy(), net.dense.bias),
             (bn.moving_mean.numpy(), net.bn.running_mean)]
    for mine, theirs in pairs:
        np.testing.assert_allclose(mine, theirs.detach().numpy(), rtol=1e-4, atol=atol)
    np.testing.assert_allclose(bn.moving_variance.numpy(), expected_var, rtol=1e-4, atol=atol)


def _data(seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(8, 6, 5, 2)).astype(np.float32), rng.integers(0, 3, 8)


def test_three_adam_steps_equal_pytorch(checked):
    model = _keras_model()
    net = TorchNet(model)
    model.compile(optimizer=optimizers.Adam(learning_rate=0.01),
                  loss=losses.SparseCategoricalCrossentropy(from_logits=True), device="cpu")
    for program in model.compiled_programs.values():
        checked(program.model)
    opt = torch.optim.Adam([p for n, p in net.named_parameters()], lr=0.01, betas=(0.9, BETA_2))
    x, y = _data()
    expected_var = model.get_layer("bn").moving_variance.numpy().astype(np.float64)
    for t in range(1, 4):
        loss = model.train_on_batch(x, y)
        model.reset_metrics()
        # Keras adds epsilon to sqrt(v) before bias correction, torch after: the same update when torch's
        # epsilon is Keras's divided by sqrt(1 - beta_2^t).
        opt.param_groups[0]["eps"] = 1e-7 / math.sqrt(1 - BETA_2 ** t)
        opt.zero_grad()
        t_loss = torch.nn.functional.cross_entropy(net(torch.tensor(x)), torch.tensor(y))
        t_loss.backward()
        opt.step()
        expected_var = expected_var * 0.9 + net.batch_var.numpy() * 0.1
        assert loss == pytest.approx(t_loss.item(), rel=1e-5)
        _compare(model, net, expected_var)


def test_one_sgd_step_checks_gradient_magnitudes(checked):
    model = _keras_model(seed=3)
    net = TorchNet(model)
    model.compile(optimizer=optimizers.SGD(learning_rate=0.5), metrics=["accuracy"],
                  loss=losses.SparseCategoricalCrossentropy(from_logits=True), device="cpu")
    x, y = _data(seed=4)
    old_var = model.get_layer("bn").moving_variance.numpy().copy()
    sw = np.linspace(0.5, 1.5, 8).astype(np.float32)
    loss, _ = model.train_on_batch(x, y, sample_weight=sw)
    per = torch.nn.functional.cross_entropy(net(torch.tensor(x)), torch.tensor(y), reduction="none")
    t_loss = (per * torch.tensor(sw)).sum() / len(sw)
    t_loss.backward()
    with torch.no_grad():
        for p in net.parameters():
            p -= 0.5 * p.grad
    assert loss == pytest.approx(t_loss.item(), rel=1e-5)
    conv = model.get_layer("conv")
    np.testing.assert_allclose(conv.kernel.numpy().transpose(3, 2, 0, 1), net.conv.weight.detach().numpy(),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.get_layer("logits").kernel.numpy().T, net.dense.weight.detach().numpy(),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.get_layer("bn").moving_variance.numpy(),
                               old_var * 0.9 + net.batch_var.numpy() * 0.1, rtol=1e-4, atol=1e-6)
