"""The seed CNN's compiled training step (Conv-ReLU-MaxPool twice, Flatten, Dense-ReLU, Dense; Adam;
sparse crossentropy from logits; accuracy) equals the same steps in PyTorch with copied weights, and the
speed rewrites of the step graph really fire (they are checked by what the graph no longer contains).

The inputs have flat regions (zeros), so a conv output is constant over whole pooling windows: max-pool
ties, whose gradient must go to one pixel per window (the first), as in torch and TensorFlow.
"""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from onnxforge import losses, optimizers
from onnxforge.layers import Activation, Conv2D, Dense, Flatten, Input, MaxPooling2D
from onnxforge.models import Sequential

torch = pytest.importorskip("torch")
BETA_2 = 0.999
SIDE = 12


def _keras_model(seed=0):
    model = Sequential([Input(shape=(SIDE, SIDE, 1)), Conv2D(4, 3, padding="same", name="c1"), Activation("relu"),
                        MaxPooling2D(2), Conv2D(6, 3, padding="same", name="c2"), Activation("relu"),
                        MaxPooling2D(2), Flatten(), Dense(8, name="d1"), Activation("relu"), Dense(5, name="d2")])
    rng = np.random.default_rng(seed)
    for w in model.weights:
        # Positive biases: a flat input region gives equal, positive conv outputs (ties that survive ReLU).
        w.assign(rng.uniform(0.05, 0.3, w.shape) if "bias" in w.name else rng.normal(0, 0.5, w.shape))
    return model


def _torch_net(model):
    k = SIDE // 4
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                              torch.nn.Conv2d(4, 6, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                              torch.nn.Flatten(), torch.nn.Linear(6 * k * k, 8), torch.nn.ReLU(),
                              torch.nn.Linear(8, 5))
    with torch.no_grad():
        for i, name in ((0, "c1"), (3, "c2")):
            layer = model.get_layer(name)
            net[i].weight.copy_(torch.tensor(layer.kernel.numpy().transpose(3, 2, 0, 1)))
            net[i].bias.copy_(torch.tensor(layer.bias.numpy()))
        d1, d2 = model.get_layer("d1"), model.get_layer("d2")
        # Keras flattens NHWC; torch flattens NCHW: reorder the Dense kernel's rows.
        w1 = d1.kernel.numpy().reshape(k, k, 6, 8).transpose(2, 0, 1, 3).reshape(-1, 8)
        net[7].weight.copy_(torch.tensor(w1.T))
        net[7].bias.copy_(torch.tensor(d1.bias.numpy()))
        net[9].weight.copy_(torch.tensor(d2.kernel.numpy().T))
        net[9].bias.copy_(torch.tensor(d2.bias.numpy()))
    return net


def _data(n=6, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, size=(n, SIDE, SIDE, 1)).astype(np.float32)
    x[:, :, : SIDE // 2] = 0.0   # flat half: ties in every pooling window there
    x[0] = 0.0                   # one all-flat sample
    return x, rng.integers(0, 5, n)


def test_seed_cnn_adam_steps_equal_pytorch(checked):
    model = _keras_model()
    net = _torch_net(model)
    model.compile(optimizer=optimizers.Adam(learning_rate=0.01), metrics=["accuracy"],
                  loss=losses.SparseCategoricalCrossentropy(from_logits=True), device="cpu")
    for program in model.compiled_programs.values():
        checked(program.model)
    opt = torch.optim.Adam(net.parameters(), lr=0.01, betas=(0.9, BETA_2))
    x, y = _data()
    for t in range(1, 4):
        loss, acc = model.train_on_batch(x, y)
        model.reset_metrics()
        opt.param_groups[0]["eps"] = 1e-7 / math.sqrt(1 - BETA_2 ** t)  # Keras's epsilon placement
        opt.zero_grad()
        logits = net(torch.tensor(x).permute(0, 3, 1, 2))
        t_loss = torch.nn.functional.cross_entropy(logits, torch.tensor(y))
        t_loss.backward()
        opt.step()
        assert loss == pytest.approx(t_loss.item(), rel=1e-5)
        assert acc == pytest.approx(float((logits.argmax(1).numpy() == y).mean()))
        for i, name in ((0, "c1"), (3, "c2")):
            layer = model.get_layer(name)
            np.testing.assert_allclose(layer.kernel.numpy().transpose(3, 2, 0, 1), net[i].weight.detach().numpy(),
                                       rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(layer.bias.numpy(), net[i].bias.detach().numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(model.get_layer("d2").kernel.numpy().T, net[9].weight.detach().numpy(),
                                   rtol=1e-4, atol=1e-5)


def test_seed_cnn_step_graph_is_lean():
    """What the rewrites removed stays removed: no full-size ReLU masks (applied to the pooled gradient
    instead)."""
    model = _keras_model()
    model.compile(optimizer="adam", loss=losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], device="cpu")
    graph = model.compiled_programs["train_step"].model.graph
    shapes = {vi.name: [d.dim_value or d.dim_param for d in vi.type.tensor_type.shape.dim]
              for vi in list(graph.value_info) + list(graph.input)}
    producers = {o: n for n in graph.node for o in n.output}
    masks = [n for n in graph.node if n.op_type == "Greater"]
    # One ReLU mask per Relu: the Dense one and the two conv ones on the pooled (quarter-size) values.
    assert len(masks) == 3
    for node in masks:
        src = producers.get(node.input[0])
        assert src is not None and src.op_type in ("MaxPool", "Add", "MatMul", "Gemm"), (src, shapes.get(node.input[0]))
    counts = Counter(n.op_type for n in graph.node)
    # The two forward pools, without Indices (the max-pool rule rebuilds them from X and Y, testing each
    # window tap through a smaller MaxPool over the box up to it: 3 per 2x2 pool).
    pools = [n for n in graph.node if n.op_type == "MaxPool"]
    attrs = [{a.name: list(a.ints) for a in n.attribute} for n in pools]
    assert sum(a["kernel_shape"] == [2, 2] for a in attrs) == 2 and counts["MaxPool"] == 2 + 2 * 3
    assert all(len([o for o in n.output if o]) == 1 for n in pools)
    assert counts["MaxUnpool"] == 2
