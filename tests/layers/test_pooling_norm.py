"""Pooling (Keras "same" semantics) and normalization layers against numpy / torch."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F

from onnxforge import layers as L
from onnxforge.models import Sequential
from tests.layers.helpers import run, trace


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _numpy_pool2d(x, k, s, padding, reduce):
    """NHWC pooling; "same" windows are clipped to the input (TF: the pad is never averaged)."""
    n, h, w, c = x.shape
    if padding == "valid":
        oh, ow, top, left = (h - k) // s + 1, (w - k) // s + 1, 0, 0
    else:
        oh, ow = -(-h // s), -(-w // s)
        top = max((oh - 1) * s + k - h, 0) // 2
        left = max((ow - 1) * s + k - w, 0) // 2
    out = np.zeros((n, oh, ow, c), np.float32)
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * s - top, j * s - left
            window = x[:, max(r0, 0):r0 + k, max(c0, 0):c0 + k, :]
            out[:, i, j] = reduce(window.reshape(n, -1, c), axis=1)
    return out


@pytest.mark.parametrize("cls,reduce", [(L.MaxPooling2D, np.max), (L.AveragePooling2D, np.mean)])
@pytest.mark.parametrize("pool,strides,padding", [(2, None, "valid"), (3, 2, "same"), (2, 2, "same"),
                                                  (3, 1, "same")])
def test_pool2d(cls, reduce, pool, strides, padding):
    layer = cls(pool, strides=strides, padding=padding)
    x = _x(2, 5, 5, 3)
    expected = _numpy_pool2d(x, pool, strides or pool, padding, reduce)
    assert layer.compute_output_shape((None, 5, 5, 3)) == (None, *expected.shape[1:])
    np.testing.assert_allclose(run(layer, x), expected, rtol=1e-5, atol=1e-6)


def test_pool1d_and_channels_first():
    x = _x(2, 7, 3)
    y = run(L.AveragePooling1D(3, strides=2, padding="same"), x)
    expected = _numpy_pool2d(x[:, :, None, :], 3, 2, "same", np.mean)  # a 1-wide image: same as 1-D
    assert y.shape == (2, 4, 3)
    np.testing.assert_allclose(y, expected[:, :, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(run(L.MaxPooling1D(), x), np.maximum(x[:, 0:6:2], x[:, 1:7:2]))
    xc = _x(2, 3, 4, 4)
    y = run(L.MaxPooling2D(data_format="channels_first"), xc)
    np.testing.assert_allclose(y, F.max_pool2d(torch.from_numpy(xc), 2).numpy())
    config = L.MaxPooling2D(3, padding="same").get_config()
    assert config["pool_size"] == (3, 3) and config["strides"] == (3, 3)   # tuples, as Keras 3
    with pytest.raises(ValueError, match="negative"):
        L.MaxPooling2D(4)(L.Input(shape=(3, 3, 1)))


def test_global_pooling():
    x = _x(2, 4, 5, 3)
    np.testing.assert_allclose(run(L.GlobalAveragePooling2D(), x), x.mean((1, 2)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(run(L.GlobalMaxPooling2D(keepdims=True), x), x.max((1, 2), keepdims=True))
    np.testing.assert_allclose(run(L.GlobalAveragePooling1D(), x[:, 0]), x[:, 0].mean(1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(run(L.GlobalAveragePooling2D(data_format="channels_first"), x), x.mean((2, 3)),
                               rtol=1e-5, atol=1e-6)
    assert L.GlobalAveragePooling2D()(L.Input(shape=(4, 5, 3))).shape == (None, 3)


def test_global_pooling_after_conv_reads_nchw_with_and_without_keepdims():
    for keepdims in (False, True):
        model = Sequential([L.Input(shape=(5, 5, 2)), L.Conv2D(3, 3, padding="same"),
                            L.GlobalMaxPooling2D(keepdims=keepdims)])
        x = _x(2, 5, 5, 2)
        conv = model.layers[0]
        k, b = conv.get_weights()
        y_conv = F.conv2d(torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(k).permute(3, 2, 0, 1),
                          torch.from_numpy(b), padding=1).permute(0, 2, 3, 1).numpy()
        np.testing.assert_allclose(run(model, x), y_conv.max((1, 2), keepdims=keepdims), rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ BatchNormalization
def _bn(axis=-1, **kwargs):
    layer = L.BatchNormalization(axis=axis, **kwargs)
    return layer


def test_batchnorm_weights_config_and_inference():
    layer = _bn(name="bn")
    layer.build((None, 4, 3))
    assert [w.path for w in layer.weights] == ["bn/gamma", "bn/beta", "bn/moving_mean", "bn/moving_variance"]
    assert [w.path for w in layer.non_trainable_weights] == ["bn/moving_mean", "bn/moving_variance"]
    gamma, beta, mean, var = _x(3, seed=1), _x(3, seed=2), _x(3, seed=3), np.abs(_x(3, seed=4)) + 0.5
    layer.set_weights([gamma, beta, mean, var])
    x = _x(2, 4, 3)
    expected = (x - mean) / np.sqrt(var + 1e-3) * gamma + beta
    np.testing.assert_allclose(run(layer, x), expected, rtol=1e-5, atol=1e-5)
    config = layer.get_config()
    assert config["momentum"] == 0.99 and config["epsilon"] == 1e-3
    assert L.BatchNormalization.from_config(config).get_config() == config


@pytest.mark.parametrize("axis,shape", [(-1, (4, 3, 3, 2)), (1, (4, 2, 3, 3))])
def test_batchnorm_training_uses_batch_stats_and_updates(axis, shape):
    layer = _bn(axis=axis, momentum=0.9)
    layer.build((None, *shape[1:]))
    c = shape[axis]
    mean0, var0 = _x(c, seed=5), np.abs(_x(c, seed=6)) + 0.5
    layer.set_weights([np.full(c, 2.0, np.float32), np.full(c, 0.5, np.float32), mean0, var0])
    traced = trace(layer, ((*shape[1:],), np.float32), training=True)
    x = _x(*shape) * 3 + 1
    out = traced.run(x)
    red = tuple(i for i in range(len(shape)) if i != axis % len(shape))
    mu, var = x.mean(red, keepdims=True), x.var(red, keepdims=True)
    np.testing.assert_allclose(out["out_0"], (x - mu) / np.sqrt(var + 1e-3) * 2.0 + 0.5, rtol=1e-4, atol=1e-4)
    updates = {name.split("/")[1]: out[o] for name, o in traced.update_names.items()}
    np.testing.assert_allclose(updates["moving_mean"], mean0 * 0.9 + mu.reshape(-1) * 0.1, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(updates["moving_variance"], var0 * 0.9 + var.reshape(-1) * 0.1, rtol=1e-4, atol=1e-5)


def test_frozen_batchnorm_runs_in_inference_mode_even_when_training():
    layer = _bn(center=False, scale=False, trainable=False)
    layer.build((None, 3))
    assert len(layer.weights) == 2 and layer.trainable_weights == []
    traced = trace(layer, ((3,), np.float32), training=True)
    assert traced.update_names == {}
    x = _x(5, 3)
    np.testing.assert_allclose(traced(x), x / np.sqrt(1 + 1e-3), rtol=1e-5)


def test_batchnorm_after_conv_stays_nchw_and_matches():
    model = Sequential([L.Input(shape=(4, 4, 2)), L.Conv2D(3, 3, padding="same"), L.BatchNormalization()])
    conv, bn = model.layers
    bn.set_weights([_x(3, seed=1), _x(3, seed=2), _x(3, seed=3), np.abs(_x(3, seed=4)) + 0.5])
    x = _x(2, 4, 4, 2)
    k, b = conv.get_weights()
    y_conv = F.conv2d(torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(k).permute(3, 2, 0, 1),
                      torch.from_numpy(b), padding=1).permute(0, 2, 3, 1).numpy()
    g, be, m, v = bn.get_weights()
    traced = trace(model, ((4, 4, 2), np.float32))
    np.testing.assert_allclose(traced(x), (y_conv - m) / np.sqrt(v + 1e-3) * g + be, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("center,scale", [(True, True), (False, False)])
def test_batchnorm_inference_is_one_op_that_onnxruntime_folds_into_the_conv(tmp_path, center, scale):
    """Inference on a conv's channels-first output is one ONNX BatchNormalization, so that onnxruntime folds
    it into the Conv of an exported file; without gamma / beta it normalizes with ones and zeros."""
    import onnx
    import onnxruntime as ort

    model = Sequential([L.Input(shape=(5, 5, 2)), L.Conv2D(4, 3, padding="same"),
                        L.BatchNormalization(center=center, scale=scale), L.ReLU()])
    bn = model.layers[1]
    stats = [_x(4, seed=3), np.abs(_x(4, seed=4)) + 0.5]
    bn.set_weights(([_x(4, seed=1)] if scale else []) + ([_x(4, seed=2)] if center else []) + stats)
    x = _x(3, 5, 5, 2)
    k, b = model.layers[0].get_weights()
    y_conv = F.conv2d(torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(k).permute(3, 2, 0, 1),
                      torch.from_numpy(b), padding=1).permute(0, 2, 3, 1).numpy()
    gamma = bn.gamma.numpy() if scale else 1.0
    beta = bn.beta.numpy() if center else 0.0
    expected = np.maximum((y_conv - stats[0]) / np.sqrt(stats[1] + 1e-3) * gamma + beta, 0)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-5)
    path = model.export(tmp_path / "m.onnx")
    ops = [n.op_type for n in onnx.load(path).graph.node]
    assert ops.count("BatchNormalization") == 1 and "Sub" not in ops and "Div" not in ops
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    assert [n.op_type for n in onnx.load(tmp_path / "optimized.onnx").graph.node].count("BatchNormalization") == 0
    np.testing.assert_allclose(session.run(None, {session.get_inputs()[0].name: x})[0], expected,
                               rtol=1e-4, atol=1e-5)


def test_batchnorm_float64_inference_keeps_a_float64_epsilon():
    """float64 stays arithmetic: ONNX BatchNormalization's epsilon is a float32 attribute."""
    layer = _bn(dtype="float64")
    layer.build((None, 3))
    gamma, beta, mean, var = (v.astype(np.float64) for v in (_x(3, seed=1), _x(3, seed=2), _x(3, seed=3),
                                                                 np.abs(_x(3, seed=4)) + 0.5))
    layer.set_weights([gamma, beta, mean, var])
    x = _x(4, 3).astype(np.float64)
    np.testing.assert_allclose(run(layer, x), (x - mean) / np.sqrt(var + 1e-3) * gamma + beta, rtol=1e-13)


def test_batchnorm_errors():
    with pytest.raises(ValueError, match="momentum"):
        L.BatchNormalization(momentum=2.0)
    with pytest.raises(ValueError, match=r"Axis -1.*defined dimension.*\(None, None\)"):
        L.BatchNormalization()(L.Input(shape=(None,)))


# ------------------------------------------------------------------ LayerNormalization
def test_layernorm_matches_torch():
    layer = L.LayerNormalization()
    layer.build((None, 3, 4))
    gamma, beta = _x(4, seed=1), _x(4, seed=2)
    layer.set_weights([gamma, beta])
    x = _x(2, 3, 4)
    expected = F.layer_norm(torch.from_numpy(x), (4,), torch.from_numpy(gamma), torch.from_numpy(beta), eps=1e-3)
    np.testing.assert_allclose(run(layer, x), expected.numpy(), rtol=1e-5, atol=1e-5)
    assert L.LayerNormalization.from_config(layer.get_config()).get_config() == layer.get_config()


def _weighted_sum_grads(traced, x, weights) -> dict[str, np.ndarray]:
    """Gradients of ``sum(out * weights)`` w.r.t. the input and the gamma / beta initializers of a traced layer,
    by onnxforge's autodiff, run in onnxruntime."""
    import onnx
    import onnxruntime as ort
    from onnx import helper

    from onnxforge.autodiff import gradient_model

    model = onnx.ModelProto()
    model.CopyFrom(traced.model)
    graph = model.graph
    graph.initializer.append(onnx.numpy_helper.from_array(weights, "sum_weights"))
    graph.node.append(helper.make_node("Mul", [traced.output_names[0], "sum_weights"], ["weighted"]))
    graph.value_info.append(helper.make_tensor_value_info("weighted", onnx.TensorProto.FLOAT, None))
    names = {key: next(i.name for i in graph.initializer if i.name.endswith(key)) for key in ("gamma", "beta")}
    grad = gradient_model(model, "weighted", [traced.input_names[0], *names.values()])
    session = ort.InferenceSession(grad.SerializeToString(), providers=["CPUExecutionProvider"])
    outs = session.run([f"{traced.input_names[0]}_grad", *(f"{n}_grad" for n in names.values())],
                       {traced.input_names[0]: x})
    return dict(zip(["x", *names], outs))


@pytest.mark.parametrize("axis,ops", [(-1, 1), ([1, 2], 1), (1, 0), ([2, 1], 1)])
def test_layernorm_over_trailing_axes_is_one_op_and_trains_like_torch(axis, ops):
    """Trailing axes: one ONNX LayerNormalization; any other set of axes: the arithmetic form. Values and
    the gradients of a step (x, gamma, beta) match torch either way."""
    layer = L.LayerNormalization(axis=axis, epsilon=1e-4)
    layer.build((None, 3, 4))
    gamma, beta = _x(*layer.gamma.shape, seed=1), _x(*layer.beta.shape, seed=2)
    layer.set_weights([gamma, beta])
    traced = trace(layer, ((3, 4), np.float32), training=True)
    assert traced.count("LayerNormalization") == ops
    x = _x(2, 3, 4) * 3 + 1
    axes = [a % 3 for a in (axis if isinstance(axis, list) else [axis])]
    xt = torch.from_numpy(x).requires_grad_()
    mean = xt.mean(dim=axes, keepdim=True)
    var = ((xt - mean) ** 2).mean(dim=axes, keepdim=True)
    shape = [3 if 1 in axes else 1, 4 if 2 in axes else 1]
    gt = torch.from_numpy(gamma).reshape(shape).requires_grad_()
    bt = torch.from_numpy(beta).reshape(shape).requires_grad_()
    yt = (xt - mean) / torch.sqrt(var + 1e-4) * gt + bt
    np.testing.assert_allclose(traced(x), yt.detach().numpy(), rtol=1e-5, atol=1e-5)
    weights = _x(2, 3, 4, seed=7)
    (yt * torch.from_numpy(weights)).sum().backward()
    grads = _weighted_sum_grads(traced, x, weights)
    np.testing.assert_allclose(grads["x"], xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(grads["gamma"], gt.grad.numpy().reshape(gamma.shape), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(grads["beta"], bt.grad.numpy().reshape(beta.shape), rtol=1e-4, atol=1e-5)


def test_layernorm_multi_axis_and_rms():
    layer = L.LayerNormalization(axis=[1, 2], epsilon=1e-5)
    layer.build((None, 3, 4))
    assert layer.gamma.shape == (3, 4)
    x = _x(2, 3, 4)
    expected = F.layer_norm(torch.from_numpy(x), (3, 4), eps=1e-5).numpy()
    np.testing.assert_allclose(run(layer, x), expected, rtol=1e-5, atol=1e-5)



def _keras_rms_scaling(x, gamma, axes, epsilon):
    """Keras 3.15's ``rms_scaling=True``: the uncentered input over its (centered) deviation, times gamma."""
    return x / np.sqrt(x.var(axis=tuple(axes), keepdims=True) + epsilon) * gamma


@pytest.mark.parametrize("axis,scale", [(-1, True), ([1, 2], False)])
def test_layernorm_rms_scaling_is_keras_3_15s(axis, scale):
    with pytest.warns(UserWarning, match="rms_scaling=True.*deprecated"):
        rms = L.LayerNormalization(axis=axis, rms_scaling=True, scale=scale)
    rms.build((None, 3, 4))
    assert [w.path.split("/")[1] for w in rms.weights] == ["gamma"]   # gamma even with scale=False; no beta
    gamma = _x(*rms.gamma.shape, seed=1)
    rms.set_weights([gamma])
    x = _x(2, 3, 4) * 2 + 1
    axes = [a % 3 for a in (axis if isinstance(axis, list) else [axis])]
    shape = [3 if 1 in axes else 1, 4 if 2 in axes else 1]
    want = _keras_rms_scaling(x.astype(np.float64), gamma.reshape(shape), axes, 1e-3)
    np.testing.assert_allclose(run(rms, x), want, rtol=1e-5, atol=1e-5)
    keras = pytest.importorskip("keras")
    if keras.backend.backend() == "torch":
        with pytest.warns(UserWarning):
            reference = keras.layers.LayerNormalization(axis=axis, rms_scaling=True, scale=scale)
        reference.build((None, 3, 4))
        reference.set_weights([gamma])
        np.testing.assert_allclose(run(rms, x), keras.ops.convert_to_numpy(reference(x)), rtol=1e-5, atol=1e-5)


def test_layernorm_rms_scaling_gradients():
    """Gradients of a step (x, gamma) against torch autograd, and x's by finite differences in float64."""
    import onnxruntime as ort
    from onnx import helper

    from onnxforge.autodiff import gradient_model
    from onnxforge.autodiff.gradcheck import check_gradients

    with pytest.warns(UserWarning):
        layer = L.LayerNormalization(axis=[1, 2], rms_scaling=True, epsilon=1e-4)
    layer.build((None, 3, 4))
    gamma = _x(3, 4, seed=1)
    layer.set_weights([gamma])
    traced = trace(layer, ((3, 4), np.float32), training=True)
    x, weights = _x(2, 3, 4) * 3 + 1, _x(2, 3, 4, seed=7)
    model = traced.model
    model.graph.initializer.append(onnx.numpy_helper.from_array(weights, "sum_weights"))
    model.graph.node.append(helper.make_node("Mul", [traced.output_names[0], "sum_weights"], ["weighted"]))
    model.graph.value_info.append(helper.make_tensor_value_info("weighted", onnx.TensorProto.FLOAT, None))
    gamma_name = next(i.name for i in model.graph.initializer if i.name.endswith("gamma"))
    grad = gradient_model(model, "weighted", [traced.input_names[0], gamma_name])
    gx, gg = ort.InferenceSession(grad.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        [f"{traced.input_names[0]}_grad", f"{gamma_name}_grad"], {traced.input_names[0]: x})
    xt = torch.from_numpy(x.astype(np.float64)).requires_grad_()
    gt = torch.from_numpy(gamma.astype(np.float64)).requires_grad_()
    var = xt.var(dim=(1, 2), unbiased=False, keepdim=True)
    (xt / torch.sqrt(var + 1e-4) * gt * torch.from_numpy(weights.astype(np.float64))).sum().backward()
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gg, gt.grad.numpy(), rtol=1e-4, atol=1e-5)

    with pytest.warns(UserWarning):
        wide = L.LayerNormalization(axis=[1, 2], rms_scaling=True, epsilon=1e-4, dtype="float64")
    wide.build((None, 3, 4))
    wide.set_weights([gamma.astype(np.float64)])
    traced64 = trace(wide, ((3, 4), np.float64))
    check_gradients(traced64.model, {traced64.input_names[0]: x.astype(np.float64)}, [traced64.input_names[0]],
                    rtol=1e-5, atol=1e-7)
