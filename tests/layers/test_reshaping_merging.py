"""Reshaping, merging, regularization (Dropout / GaussianNoise) and activation layers."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from onnxforge import layers as L
from onnxforge.models import Model, Sequential
from tests.layers.helpers import run, trace


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# ------------------------------------------------------------------ reshaping
def test_flatten_keras_order():
    x = _x(2, 3, 4, 5)
    assert L.Flatten()(L.Input(shape=(3, 4, 5))).shape == (None, 60)
    np.testing.assert_array_equal(run(L.Flatten(), x), x.reshape(2, -1))
    # channels_first moves channels last first, so the next layer's weights match channels_last models.
    np.testing.assert_array_equal(run(L.Flatten(data_format="channels_first"), x),
                                  x.transpose(0, 2, 3, 1).reshape(2, -1))
    np.testing.assert_array_equal(run(L.Flatten(), x[:, 0, 0]), x[:, 0, 0].reshape(2, 5))
    assert L.Flatten()(L.Input(shape=(None, 3))).shape == (None, None)


def test_flatten_after_conv_is_channels_last_order():
    model = Sequential([L.Input(shape=(3, 3, 2)), L.Conv2D(4, 1, use_bias=False), L.Flatten()])
    k = model.layers[0].get_weights()[0]
    x = _x(2, 3, 3, 2)
    np.testing.assert_allclose(run(model, x), (x @ k[0, 0]).reshape(2, -1), rtol=1e-5, atol=1e-6)


def test_flatten_keeps_integer_dtype():
    inp = L.Input(shape=(2, 3), dtype="int64")
    assert L.Flatten()(inp).dtype == "int64"
    ids = np.arange(12).reshape(2, 2, 3)
    np.testing.assert_array_equal(run(L.Flatten(), ids), ids.reshape(2, 6))


def test_reshape_and_permute():
    x = _x(2, 3, 4)
    np.testing.assert_array_equal(run(L.Reshape((4, -1)), x), x.reshape(2, 4, 3))
    assert L.Reshape((-1, 2))(L.Input(shape=(3, 4))).shape == (None, 6, 2)
    assert L.Reshape((2, 6)).get_config()["target_shape"] == (2, 6)   # a tuple, as Keras 3
    with pytest.raises(ValueError, match=r"total size.*\(None, 3, 4\).*\(5, 2\)"):
        L.Reshape((5, 2))(L.Input(shape=(3, 4)))
    with pytest.raises(ValueError, match="at most one unknown"):
        L.Reshape((-1, -1))
    np.testing.assert_array_equal(run(L.Permute((2, 1)), x), x.transpose(0, 2, 1))
    assert L.Permute((3, 1, 2))(L.Input(shape=(2, 3, 4))).shape == (None, 4, 2, 3)
    with pytest.raises(ValueError, match="dims=\\(1, 3\\)"):
        L.Permute((1, 3))


def test_zero_padding_and_upsampling():
    x = _x(2, 3, 4, 2)
    pad = L.ZeroPadding2D(((1, 2), (0, 1)))
    np.testing.assert_array_equal(run(pad, x), np.pad(x, ((0, 0), (1, 2), (0, 1), (0, 0))))
    assert pad(L.Input(shape=(3, 4, 2))).shape == (None, 6, 5, 2)
    np.testing.assert_array_equal(run(L.ZeroPadding2D(1, data_format="channels_first"), x),
                                  np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))))
    with pytest.raises(ValueError, match="padding="):
        L.ZeroPadding2D((1, 2, 3))
    up = L.UpSampling2D((2, 3))
    np.testing.assert_array_equal(run(up, x), x.repeat(2, axis=1).repeat(3, axis=2))
    assert up(L.Input(shape=(3, 4, 2))).shape == (None, 6, 12, 2)
    np.testing.assert_array_equal(run(L.UpSampling2D(data_format="channels_first"), x),
                                  x.repeat(2, axis=2).repeat(2, axis=3))
    bilinear = run(L.UpSampling2D(2, interpolation="bilinear"), x)
    expected = F.interpolate(torch.from_numpy(x).permute(0, 3, 1, 2), scale_factor=2, mode="bilinear",
                             align_corners=False).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(bilinear, expected, rtol=1e-5, atol=1e-5)


def test_padding_and_upsampling_between_convs_keep_nchw():
    model = Sequential([L.Input(shape=(4, 4, 2)), L.Conv2D(2, 1, use_bias=False), L.ZeroPadding2D(1),
                        L.UpSampling2D(), L.Conv2D(2, 1, use_bias=False)])
    k1, k2 = (layer.get_weights()[0][0, 0] for layer in (model.layers[0], model.layers[3]))
    x = _x(2, 4, 4, 2)
    mid = np.pad(x @ k1, ((0, 0), (1, 1), (1, 1), (0, 0))).repeat(2, 1).repeat(2, 2)
    traced = trace(model, ((4, 4, 2), np.float32))
    np.testing.assert_allclose(traced(x), mid @ k2, rtol=1e-5, atol=1e-5)
    data = [n for n in traced.model.graph.node if n.op_type == "Transpose" and not any("kernel" in i for i in n.input)]
    assert len(data) == 2  # in and out only


# ------------------------------------------------------------------ merging
def test_add_multiply_concatenate_and_friends():
    a, b = L.Input(shape=(3,)), L.Input(shape=(3,))
    outs = [L.Add()([a, b]), L.Multiply()([a, b]), L.Concatenate()([a, b]), L.Subtract()([a, b]),
            L.Average()([a, b]), L.Maximum()([a, b]), L.Minimum()([a, b]), a + b, a * b]
    model = Model([a, b], outs)
    assert [o.shape for o in outs][:3] == [(None, 3), (None, 3), (None, 6)]
    xa, xb = _x(4, 3, seed=1), _x(4, 3, seed=2)
    got = run(model, xa, xb)
    expected = [xa + xb, xa * xb, np.concatenate([xa, xb], -1), xa - xb, (xa + xb) / 2, np.maximum(xa, xb),
                np.minimum(xa, xb), xa + xb, xa * xb]
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-6)


def test_merge_broadcasts_like_keras():
    seq, vec = L.Input(shape=(5, 3)), L.Input(shape=(3,))
    out = L.Add()([seq, vec])  # the lower-rank input is expanded at axis 1
    assert out.shape == (None, 5, 3)
    xs, xv = _x(2, 5, 3), _x(2, 3)
    np.testing.assert_allclose(run(Model([seq, vec], out), xs, xv), xs + xv[:, None, :], rtol=1e-6)
    with pytest.raises(ValueError, match="incompatible shapes"):
        L.Add()([L.Input(shape=(3,)), L.Input(shape=(4,))])
    with pytest.raises(ValueError, match="list of inputs"):
        L.Add()(L.Input(shape=(3,)))
    with pytest.raises(ValueError, match="matching shapes except for the concatenation axis"):
        L.Concatenate(axis=1)([L.Input(shape=(2, 3)), L.Input(shape=(2, 4))])
    assert L.Concatenate(axis=1)([L.Input(shape=(2, 3)), L.Input(shape=(4, 3))]).shape == (None, 6, 3)


def test_residual_block_adds_and_concats_in_nchw():
    inp = L.Input(shape=(4, 4, 2))
    c1 = L.Conv2D(2, 1, use_bias=False)(inp)
    c2 = L.Conv2D(2, 1, use_bias=False)(c1)
    out = L.Concatenate()([L.Add()([c1, c2]), c2])
    model = Model(inp, out)
    k1, k2 = (model.get_layer(index=i).get_weights()[0][0, 0] for i in (1, 2))
    x = _x(2, 4, 4, 2)
    y1 = x @ k1
    y2 = y1 @ k2
    traced = trace(model, ((4, 4, 2), np.float32))
    np.testing.assert_allclose(traced(x), np.concatenate([y1 + y2, y2], -1), rtol=1e-5, atol=1e-5)
    assert traced.count("Transpose") == 2 + 2  # data in and out, plus two kernel layouts


# ------------------------------------------------------------------ regularization
def test_dropout_inference_identity_training_mask():
    layer = L.Dropout(0.25)
    x = _x(3, 8)
    np.testing.assert_array_equal(run(layer, x), x)
    traced = trace(layer, ((8,), np.float32), training=True)
    u = np.random.default_rng(1).uniform(size=(3, 8)).astype(np.float32)
    np.testing.assert_allclose(traced(x, noise=[u]), np.where(u >= 0.25, x / 0.75, 0.0), rtol=1e-6)
    assert L.Dropout.from_config(layer.get_config()).rate == 0.25
    with pytest.raises(ValueError, match="rate=1.5"):
        L.Dropout(1.5)


def test_dropout_noise_shape_broadcasts_the_mask():
    layer = L.Dropout(0.5, noise_shape=(None, 1, 4))
    traced = trace(layer, ((3, 4), np.float32), training=True)
    x = _x(2, 3, 4)
    u = np.random.default_rng(2).uniform(size=(2, 1, 4)).astype(np.float32)
    np.testing.assert_allclose(traced(x, noise=[u]), x * (u >= 0.5) * 2.0, rtol=1e-6)


def test_gaussian_noise():
    layer = L.GaussianNoise(0.5)
    x = _x(3, 4)
    np.testing.assert_array_equal(run(layer, x), x)
    traced = trace(layer, ((4,), np.float32), training=True)
    rng = np.random.default_rng(3)
    u1, u2 = rng.uniform(size=(3, 4)), rng.uniform(size=(3, 4))
    normal = np.sqrt(-2 * np.log(1 - u1)) * np.cos(2 * np.pi * u2)  # Box-Muller
    np.testing.assert_allclose(traced(x, noise=[u1, u2]), x + 0.5 * normal, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ activation layers
def test_activation_layers():
    x = np.linspace(-3, 8, 24, dtype=np.float32).reshape(2, 12)
    np.testing.assert_allclose(run(L.ReLU(), x), np.maximum(x, 0))
    np.testing.assert_allclose(run(L.ReLU(max_value=6.0), x), np.clip(x, 0, 6))
    np.testing.assert_allclose(run(L.ReLU(negative_slope=0.1, threshold=1.0), x),
                               np.where(x > 1.0, x, 0.0) - 0.1 * np.maximum(1.0 - x, 0.0), rtol=1e-6, atol=1e-6)
    leaky = L.LeakyReLU()
    assert leaky.negative_slope == 0.3 and L.LeakyReLU(alpha=0.1).negative_slope == 0.1
    np.testing.assert_allclose(run(leaky, x), np.where(x >= 0, x, 0.3 * x), rtol=1e-6)
    np.testing.assert_allclose(run(L.ELU(), x), F.elu(torch.from_numpy(x)).numpy(), rtol=1e-5, atol=1e-6)
    x3 = _x(2, 3, 4)
    np.testing.assert_allclose(run(L.Softmax(axis=1), x3), F.softmax(torch.from_numpy(x3), 1).numpy(), rtol=1e-5)
    with pytest.raises(ValueError, match="max_value=-1"):
        L.ReLU(max_value=-1)
    assert L.ReLU.from_config(L.ReLU(max_value=6.0).get_config()).max_value == 6.0


def test_softmax_after_conv_uses_channel_axis():
    model = Sequential([L.Input(shape=(3, 3, 2)), L.Conv2D(4, 1, use_bias=False), L.Softmax()])
    k = model.layers[0].get_weights()[0][0, 0]
    x = _x(2, 3, 3, 2)
    np.testing.assert_allclose(run(model, x), F.softmax(torch.from_numpy(x @ k), -1).numpy(), rtol=1e-5, atol=1e-6)
