"""Activations against torch.nn.functional; initializers and regularizers against Keras's formulas."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from onnxforge import activations, initializers, regularizers
from onnxforge import layers as L
from tests.layers.helpers import run

TORCH = {
    "relu": F.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "softmax": lambda t: F.softmax(t, -1),
    "log_softmax": lambda t: F.log_softmax(t, -1), "gelu": F.gelu, "silu": F.silu, "swish": F.silu,
    "elu": F.elu, "selu": F.selu, "softplus": F.softplus, "softsign": F.softsign,
    "leaky_relu": lambda t: F.leaky_relu(t, 0.2), "linear": lambda t: t, "exponential": torch.exp,
    "hard_sigmoid": F.hardsigmoid, "relu6": F.relu6, "hard_silu": F.hardswish, "mish": F.mish,
}


def test_every_activation_matches_torch():
    x = np.linspace(-4, 4, 24, dtype=np.float32).reshape(2, 12)
    inp = L.Input(shape=(12,))
    from onnxforge.models import Model

    names = sorted(TORCH)
    model = Model(inp, [L.Activation(n)(inp) for n in names])
    outs = run(model, x)
    for name, y in zip(names, outs):
        expected = TORCH[name](torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6, err_msg=name)


def test_gelu_approximate_and_relu_options():
    from onnxforge.layers.base import Layer

    class Fn(Layer):
        def __init__(self, fn, **kw):
            super().__init__(**kw)
            self.fn = fn

        def call(self, x):
            return self.fn(x)

    x = np.linspace(-3, 9, 24, dtype=np.float32).reshape(2, 12)
    t = torch.from_numpy(x)
    np.testing.assert_allclose(run(Fn(lambda v: activations.gelu(v, approximate=True)), x),
                               F.gelu(t, approximate="tanh").numpy(), rtol=1e-5, atol=1e-6)
    y = run(Fn(lambda v: activations.relu(v, negative_slope=0.1, max_value=5.0, threshold=1.0)), x)
    expected = np.where(x > 1.0, np.minimum(x, 5.0), 0.0) - 0.1 * np.maximum(1.0 - x, 0.0)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def test_activation_get_and_serialize():
    assert activations.get(None) is activations.linear
    assert activations.get("swish") is activations.silu
    assert activations.serialize(activations.relu) == "relu"
    assert activations.deserialize("gelu") is activations.gelu
    with pytest.raises(ValueError, match="Could not interpret"):
        activations.get(3)


# ------------------------------------------------------------------ initializers
def test_compute_fans():
    assert initializers.compute_fans((3, 4)) == (3, 4)
    assert initializers.compute_fans((3, 3, 4, 8)) == (36, 72)
    assert initializers.compute_fans((5,)) == (5, 5)


@pytest.mark.parametrize("name,std", [
    ("glorot_uniform", np.sqrt(2 / (200 + 300))), ("glorot_normal", np.sqrt(2 / (200 + 300))),
    ("he_uniform", np.sqrt(2 / 200)), ("he_normal", np.sqrt(2 / 200)),
    ("lecun_uniform", np.sqrt(1 / 200)), ("lecun_normal", np.sqrt(1 / 200)),
])
def test_variance_scaling_family_has_keras_variance(name, std):
    w = initializers.get(name)((200, 300))
    assert w.dtype == np.float32 and w.shape == (200, 300)
    assert abs(w.std() / std - 1) < 0.03 and abs(w.mean()) < 0.01 * std * 10
    if name.endswith("uniform"):
        assert np.abs(w).max() <= np.sqrt(3) * std + 1e-6
    else:  # truncated at two (pre-correction) standard deviations
        assert np.abs(w).max() <= 2 * std / 0.87962566103423978 + 1e-6


def test_basic_initializers():
    assert (initializers.get("zeros")((2, 3)) == 0).all()
    assert (initializers.get("ones")((2,)) == 1).all()
    assert (initializers.Constant(2.5)((2, 2)) == 2.5).all()
    n = initializers.RandomNormal(mean=1.0, stddev=0.5, seed=1)((100, 100))
    assert abs(n.mean() - 1) < 0.02 and abs(n.std() - 0.5) < 0.02
    u = initializers.get("uniform")((1000,))
    assert isinstance(initializers.get("uniform"), initializers.RandomUniform)
    assert u.min() >= -0.05 and u.max() < 0.05
    t = initializers.TruncatedNormal(stddev=1.0, seed=3)((10000,))
    assert np.abs(t).max() <= 2.0
    np.testing.assert_array_equal(initializers.Identity(gain=2.0)((2, 3)), 2 * np.eye(2, 3))
    with pytest.raises(ValueError, match="2D"):
        initializers.Identity()((2, 2, 2))


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (3, 2, 8)])
def test_orthogonal(shape):
    w = initializers.Orthogonal(gain=1.5, seed=0)(shape).reshape(-1, shape[-1]).astype(np.float64)
    gram = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
    np.testing.assert_allclose(gram, 1.5 ** 2 * np.eye(gram.shape[0]), atol=1e-5)


def test_seeding_follows_keras():
    a, b = initializers.GlorotUniform(seed=7), initializers.GlorotUniform(seed=7)
    np.testing.assert_array_equal(a((3, 4)), b((3, 4)))
    np.testing.assert_array_equal(a((3, 4)), a((3, 4)))  # a seeded instance repeats itself
    assert not np.array_equal(initializers.GlorotUniform()((3, 4)), initializers.GlorotUniform()((3, 4)))
    initializers.set_random_seed(42)
    first = L.Dense(3)
    first.build((None, 4))
    initializers.set_random_seed(42)
    second = L.Dense(3)
    second.build((None, 4))
    np.testing.assert_array_equal(first.get_weights()[0], second.get_weights()[0])


def test_initializer_serialization():
    init = initializers.VarianceScaling(scale=2.0, mode="fan_out", distribution="uniform", seed=3)
    config = initializers.serialize(init)
    assert config["class_name"] == "VarianceScaling" and config["config"]["mode"] == "fan_out"
    clone = initializers.deserialize(config)
    np.testing.assert_array_equal(clone((4, 5)), init((4, 5)))
    assert isinstance(initializers.get({"class_name": "HeNormal", "config": {"seed": 1}}), initializers.HeNormal)
    with pytest.raises(ValueError, match="Could not interpret initializer"):
        initializers.get("nope")
    with pytest.raises(ValueError, match="mode=fan_middle"):
        initializers.VarianceScaling(mode="fan_middle")


# ------------------------------------------------------------------ regularizers
def test_regularizer_formulas_and_config():
    w = np.array([[1.0, -2.0], [3.0, 0.5]])
    assert regularizers.L1(0.1)(w) == pytest.approx(0.1 * 6.5)
    assert regularizers.l2(0.01)(w) == pytest.approx(0.01 * 14.25)
    assert regularizers.L1L2(l1=0.1, l2=0.2)(w) == pytest.approx(0.65 + 0.2 * 14.25)
    assert isinstance(regularizers.get("l1_l2"), regularizers.L1L2)
    reg = regularizers.get(regularizers.serialize(regularizers.L2(0.3)))
    assert isinstance(reg, regularizers.L2) and reg.l2 == pytest.approx(0.3)
    with pytest.raises(ValueError, match="l2=-1"):
        regularizers.L2(-1)
