"""Traced training graphs are differentiable by onnxforge's autodiff: gradients match finite differences.

The forward graph is traced with ``training=True`` and weights as graph inputs (what the compiler does),
the loss is a smooth function of the outputs plus the layers' regularization losses, and the directional
derivative along a random direction is compared with a central difference in onnxruntime (float32).
Max-pooling is left out: its kinks make a float32 stencil flaky (its rule has its own gradient cases).
"""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from onnxforge import layers as L
from onnxforge.autodiff import backward
from onnxforge.graph import GraphBuilder, onnx_dtype
from onnxforge.models import Input, Sequential
from onnxforge.tracing import TraceContext
from tests.conftest import check_full


def _gradient_session(model, x):
    b = GraphBuilder()
    noise: list[str] = []

    def random_uniform(like):
        noise.append(f"noise_{len(noise)}")
        return b.input(noise[-1], onnx.TensorProto.FLOAT, like.shape)

    ctx = TraceContext(b, training=True, weights="inputs", random_uniform=random_uniform)
    with ctx.active():
        xin = b.input("x", onnx_dtype(x.dtype), ("batch", *x.shape[1:]))
        (y,) = model.trace([xin], training=True)
        loss = b.op("ReduceSum", [b.op("Tanh", [y]) * y], keepdims=0)
        for extra in ctx.losses:
            loss = loss + extra
    wrt = [w.path for w in model.trainable_weights]
    grads = backward(b, loss, wrt)
    b.output(loss, "loss")
    for w in wrt:
        b.output(grads[w], f"grad:{w}")
    for k, (var, value) in enumerate(ctx.updates.values()):
        b.output(value, f"update_{k}")
    onnx_model = check_full(b.to_model())
    session = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session, wrt, noise, len(ctx.updates)


MODELS = {
    "mlp_bn_dropout_l2": lambda: Sequential([
        Input(shape=(5,)), L.Dense(6, activation="tanh", kernel_regularizer="l2"), L.BatchNormalization(),
        L.Dropout(0.3), L.Dense(3, activation="softmax")]),
    "cnn": lambda: Sequential([
        Input(shape=(6, 6, 2)), L.Conv2D(3, 3, padding="same", activation="tanh"), L.BatchNormalization(),
        L.AveragePooling2D(), L.DepthwiseConv2D(2, padding="same", depth_multiplier=2),
        L.SeparableConv2D(3, 2, activation="sigmoid"), L.GlobalAveragePooling2D(), L.Dense(2)]),
    "decoder": lambda: Sequential([
        Input(shape=(3, 3, 2)), L.Conv2DTranspose(2, 3, strides=2, padding="same", activation="gelu"),
        L.ZeroPadding2D(1), L.UpSampling2D(), L.AveragePooling2D(3, strides=2, padding="same"),
        L.Conv2D(2, 3, strides=2, padding="same"), L.Flatten(), L.Dense(2, activation="silu")]),
    "sequence": lambda: Sequential([
        Input(shape=(5,), dtype="int32"), L.Embedding(7, 4), L.LayerNormalization(),
        L.Conv1D(3, 2, padding="causal", activation="elu"), L.GlobalAveragePooling1D(),
        L.Dense(2, activation="softplus")]),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_training_graph_gradients_match_finite_differences(name):
    rng = np.random.default_rng(0)
    model = MODELS[name]()
    # Well-scaled weights keep every layer away from its flat or saturated regime for the float32 stencil.
    model.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.7
                       if w.trainable else np.abs(rng.standard_normal(w.shape)).astype(np.float32) + 0.5
                       for w in model.weights])
    first = model.inputs[0]
    x = (rng.integers(0, 7, (2, *first.shape[1:])).astype(np.int32) if first.dtype == "int32"
         else rng.standard_normal((2, *first.shape[1:])).astype(np.float32))
    session, wrt, noise, n_updates = _gradient_session(model, x)
    assert n_updates == 2 * sum(isinstance(layer, L.BatchNormalization) for layer in model.layers)
    feeds = {"x": x, **{w.path: w.numpy() for w in model.weights}}
    for inp in session.get_inputs():
        if inp.name in noise:
            feeds[inp.name] = rng.uniform(size=[2 if isinstance(d, str) else d for d in inp.shape]).astype(np.float32)
    outputs = session.run(None, feeds)
    names = [o.name for o in session.get_outputs()]
    grads = {w: outputs[names.index(f"grad:{w}")] for w in wrt}
    eps = 3e-3
    for w in wrt:  # one weight at a time: a failure names the weight whose gradient is wrong
        direction = rng.standard_normal(grads[w].shape).astype(np.float32)

        def loss_at(sign):
            return float(session.run(["loss"], {**feeds, w: feeds[w] + sign * eps * direction})[0])

        numeric = (loss_at(1) - loss_at(-1)) / (2 * eps)
        analytic = float((grads[w] * direction).sum())
        assert analytic == pytest.approx(numeric, rel=2e-2, abs=2e-3), w
