"""Convolutions against torch.nn.functional (with TensorFlow's "same" padding written out) and numpy."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from onnxforge import layers as L
from onnxforge.models import Sequential
from tests.layers.helpers import run, trace


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _built(layer, shape, seed=1):
    layer.build(shape)
    layer.set_weights([_x(*w.shape, seed=seed + i) for i, w in enumerate(layer.weights)])
    return layer


def _torch_conv2d(x_nhwc, kernel, bias, stride=1, dilation=1, groups=1, pads=(0, 0, 0, 0)):
    """``pads`` = (left, right, top, bottom) as F.pad takes them."""
    x = F.pad(torch.from_numpy(x_nhwc).permute(0, 3, 1, 2), pads)
    w = torch.from_numpy(kernel).permute(3, 2, 0, 1)
    y = F.conv2d(x, w, None if bias is None else torch.from_numpy(bias), stride=stride, dilation=dilation,
                 groups=groups)
    return y.permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("kwargs,pads", [
    ({}, (0, 0, 0, 0)),
    ({"padding": "same"}, (1, 1, 1, 1)),
    # 6 rows, k=3, stride 2 -> 3 rows: TF pads 1 in total, at the end.
    ({"padding": "same", "strides": 2}, (0, 1, 0, 1)),
    ({"padding": "same", "dilation_rate": 2}, (2, 2, 2, 2)),
    ({"strides": (2, 1)}, (0, 0, 0, 0)),
    ({"groups": 2, "padding": "same"}, (1, 1, 1, 1)),
])
def test_conv2d_matches_torch(kwargs, pads):
    layer = _built(L.Conv2D(4, 3, **kwargs), (None, 6, 6, 4))
    x = _x(2, 6, 6, 4)
    k, b = layer.get_weights()
    stride = kwargs.get("strides", 1)
    expected = _torch_conv2d(x, k, b, stride=stride, dilation=kwargs.get("dilation_rate", 1),
                             groups=kwargs.get("groups", 1), pads=pads)
    y = run(layer, x)
    assert y.shape == (2, *layer.compute_output_shape((None, 6, 6, 4))[1:]) == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


def test_conv2d_channels_first_activation_and_weights():
    layer = L.Conv2D(3, (2, 3), data_format="channels_first", activation="relu", use_bias=False)
    y = layer(L.Input(shape=(2, 5, 6)))
    assert y.shape == (None, 3, 4, 4)
    assert layer.kernel.shape == (2, 3, 2, 3) and len(layer.weights) == 1
    x = _x(2, 2, 5, 6)
    expected = np.maximum(_torch_conv2d(x.transpose(0, 2, 3, 1), layer.get_weights()[0], None), 0)
    np.testing.assert_allclose(run(layer, x), expected.transpose(0, 3, 1, 2), rtol=1e-4, atol=1e-5)


def test_conv2d_config_and_errors():
    layer = L.Conv2D(8, 3, strides=2, padding="same", name="c")
    config = layer.get_config()
    assert config["kernel_size"] == (3, 3) and config["strides"] == (2, 2)   # tuples, as Keras 3
    assert L.Conv2D.from_config(config).get_config() == config
    with pytest.raises(ValueError, match="padding='full'"):
        L.Conv2D(2, 3, padding="full")
    with pytest.raises(ValueError, match="dilation_rate > 1"):
        L.Conv2D(2, 3, strides=2, dilation_rate=2)
    with pytest.raises(ValueError, match="groups=3, filters=4"):
        L.Conv2D(4, 3, groups=3)
    with pytest.raises(ValueError, match=r'"c2".*ndim=4.*ndim=3'):
        L.Conv2D(2, 3, name="c2")(L.Input(shape=(5, 5)))
    with pytest.raises(ValueError, match="negative"):
        L.Conv2D(2, 7)(L.Input(shape=(5, 5, 1)))
    with pytest.raises(ValueError, match="evenly divisible"):
        L.Conv2D(4, 3, groups=2)(L.Input(shape=(5, 5, 3)))


@pytest.mark.parametrize("kwargs,left,right", [
    ({"padding": "causal", "dilation_rate": 2}, 4, 0),
    ({"padding": "same", "strides": 2}, 1, 1),  # 7 steps, k=3, s=2 -> 4 steps: 2 pads in total
    ({"padding": "same", "strides": 2, "kernel_size": 2}, 0, 1),  # k=2: 1 pad, TF puts it at the end
    ({}, 0, 0),
])
def test_conv1d_matches_torch(kwargs, left, right):
    kwargs = {"kernel_size": 3, **kwargs}
    layer = _built(L.Conv1D(3, **kwargs), (None, 7, 2))
    x = _x(2, 7, 2)
    k, b = layer.get_weights()
    xt = F.pad(torch.from_numpy(x).permute(0, 2, 1), (left, right))
    y_ref = F.conv1d(xt, torch.from_numpy(k).permute(2, 1, 0), torch.from_numpy(b), stride=kwargs.get("strides", 1),
                     dilation=kwargs.get("dilation_rate", 1)).permute(0, 2, 1).numpy()
    y = run(layer, x)
    assert y.shape == (2, *layer.compute_output_shape((None, 7, 2))[1:])
    np.testing.assert_allclose(y, y_ref, rtol=1e-4, atol=1e-5)


def _numpy_depthwise(x, k, stride=1):
    """Valid depthwise convolution, NHWC, kernel (kh, kw, in, mult): output channel c * mult + m."""
    n, h, w, c = x.shape
    kh, kw, _, mult = k.shape
    oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
    out = np.zeros((n, oh, ow, c * mult), np.float64)
    for i in range(oh):
        for j in range(ow):
            patch = x[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]  # n, kh, kw, c
            out[:, i, j, :] = np.einsum("nabc,abcm->ncm", patch, k).reshape(n, c * mult)
    return out


def test_depthwise_conv2d():
    layer = _built(L.DepthwiseConv2D(3, depth_multiplier=2, strides=2), (None, 7, 7, 3))
    assert [w.shape for w in layer.weights] == [(3, 3, 3, 2), (6,)]
    x = _x(2, 7, 7, 3)
    k, b = layer.get_weights()
    np.testing.assert_allclose(run(layer, x), _numpy_depthwise(x, k, 2) + b, rtol=1e-4, atol=1e-5)
    config = layer.get_config()
    assert config["depth_multiplier"] == 2 and "filters" not in config
    assert L.DepthwiseConv2D.from_config(config).get_config() == config


def test_separable_conv2d():
    layer = _built(L.SeparableConv2D(4, 3, depth_multiplier=2, activation="relu"), (None, 6, 6, 3))
    assert [w.path.split("/")[1] for w in layer.weights] == ["depthwise_kernel", "pointwise_kernel", "bias"]
    dk, pk, b = layer.get_weights()
    assert pk.shape == (1, 1, 6, 4)
    x = _x(2, 6, 6, 3)
    expected = np.maximum(_numpy_depthwise(x, dk) @ pk[0, 0] + b, 0)
    np.testing.assert_allclose(run(layer, x), expected, rtol=1e-4, atol=1e-5)
    assert L.SeparableConv2D.from_config(layer.get_config()).get_config() == layer.get_config()


def _numpy_conv_transpose(x, k, stride, out_len, dk):
    """Scatter each input pixel through the kernel, then keep ``out_len`` with TF's crop: a forward "same"
    conv from ``out_len`` would pad ``max((n-1)*s + dk - out, 0)`` with the smaller half first."""
    n, h, w, _ = x.shape
    kh, kw, cout, _ = k.shape
    full = np.zeros((n, (h - 1) * stride + kh, (w - 1) * stride + kw, cout))
    for i in range(h):
        for j in range(w):
            full[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :] += np.einsum("nc,abdc->nabd",
                                                                                           x[:, i, j], k)
    begin = max((h - 1) * stride + dk - out_len, 0) // 2
    out = np.zeros((n, out_len, out_len, cout))
    avail = min(out_len, full.shape[1] - begin)
    out[:, :avail, :avail] = full[:, begin:begin + avail, begin:begin + avail]
    return out


@pytest.mark.parametrize("kernel,strides,padding,output_padding", [
    (3, 2, "same", None), (4, 2, "same", None), (3, 1, "same", None), (3, 2, "valid", None),
    (1, 2, "valid", None), (3, 2, "same", 1), (3, 2, "valid", 1), (2, 3, "same", None),
])
def test_conv2d_transpose(kernel, strides, padding, output_padding):
    layer = _built(L.Conv2DTranspose(2, kernel, strides=strides, padding=padding, output_padding=output_padding),
                   (None, 4, 4, 3))
    k, b = layer.get_weights()
    assert k.shape == (kernel, kernel, 2, 3)
    x = _x(2, 4, 4, 3)
    out_len = layer.compute_output_shape((None, 4, 4, 3))[1]
    y = run(layer, x)
    assert y.shape == (2, out_len, out_len, 2)
    np.testing.assert_allclose(y, _numpy_conv_transpose(x, k, strides, out_len, kernel) + b, rtol=1e-4, atol=1e-5)


def test_conv2d_transpose_keras_lengths_and_errors():
    assert L.Conv2DTranspose(1, 3, strides=2, padding="same").compute_output_shape((None, 5, 5, 1)) == (None, 10, 10, 1)
    assert L.Conv2DTranspose(1, 3, strides=2).compute_output_shape((None, 5, 5, 1)) == (None, 11, 11, 1)
    with pytest.raises(ValueError, match="greater than output padding"):
        L.Conv2DTranspose(1, 3, strides=2, output_padding=2)


def test_channels_last_stack_transposes_once_each_way():
    model = Sequential([L.Input(shape=(8, 8, 3)), L.Conv2D(4, 3, padding="same"), L.BatchNormalization(),
                        L.ReLU(), L.MaxPooling2D(), L.Conv2D(4, 3, padding="same", activation="relu"),
                        L.Dropout(0.5), L.Conv2D(4, 1), L.GlobalAveragePooling2D(), L.Dense(2)])
    for training in (False, True):
        traced = trace(model, ((8, 8, 3), np.float32), training=training, weights="inputs")
        data = [n for n in traced.model.graph.node if n.op_type == "Transpose"
                and not any(i.endswith("kernel") for i in n.input)]
        # One NHWC -> NCHW at the input; global pooling reads the NCHW value directly.
        assert len(data) == 1, [n.input for n in data]
