"""Models exported by ``torch.onnx.export`` made differentiable by ``gradient_model``: gradients of
every parameter match torch.autograd's, on one gradient graph at two batch sizes."""
from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from onnxforge.autodiff import gradient_model
from tests.conftest import check_full

torch = pytest.importorskip("torch")
nn, F = torch.nn, torch.nn.functional


class MLP(nn.Module):
    """Linear -> LayerNorm -> GELU -> Linear, with the cross-entropy loss inside the module."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        self.fc1, self.ln, self.fc2 = nn.Linear(6, 8), nn.LayerNorm(8), nn.Linear(8, 3)
        self.approximate = approximate

    def forward(self, x, y):
        return F.cross_entropy(self.fc2(F.gelu(self.ln(self.fc1(x)), approximate=self.approximate)), y)


class ConvNet(nn.Module):
    """Conv -> ReLU -> BatchNorm -> MaxPool -> Flatten -> Linear, with a mean squared error loss.

    BatchNorm follows the ReLU so the exporter cannot fold it into the convolution."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn, self.fc = nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Linear(16, 3)

    def forward(self, x, t):
        h = F.max_pool2d(self.bn(torch.relu(self.conv(x))), 2)
        return ((self.fc(h.flatten(1)) - t) ** 2).mean()


def _export(module: nn.Module, args: tuple, names: list[str], opset: int, training=None) -> onnx.ModelProto:
    f = io.BytesIO()
    kwargs = {} if training is None else {"training": training, "do_constant_folding": False}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        # dynamo=False: the new exporter needs onnxscript, which is not installed.
        torch.onnx.export(module, args, f, input_names=names, output_names=["loss"], opset_version=opset,
                          dynamic_axes={n: {0: "batch"} for n in names}, dynamo=False, **kwargs)
    return onnx.load_from_string(f.getvalue())


def _inputs(kind: str, batch: int, rng: np.random.Generator) -> tuple:
    if kind == "mlp":
        return (torch.tensor(rng.standard_normal((batch, 6)), dtype=torch.float32),
                torch.tensor(rng.integers(0, 3, batch)))
    return (torch.tensor(rng.standard_normal((batch, 2, 4, 4)), dtype=torch.float32),
            torch.tensor(rng.standard_normal((batch, 3)), dtype=torch.float32))


def _check(module: nn.Module, kind: str, model: onnx.ModelProto, names: list[str]) -> None:
    params = dict(module.named_parameters())
    inits = {t.name for t in model.graph.initializer}
    wrt = [p for p in params if p in inits]
    assert wrt == list(params), f"the exporter renamed parameters: {sorted(inits)}"
    grad = check_full(gradient_model(model, "loss", wrt))
    session = ort.InferenceSession(grad.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for batch in (4, 7):
        args = _inputs(kind, batch, rng)
        module.zero_grad()
        loss = module(*args)
        loss.backward()
        got = session.run(["loss"] + [f"{w}_grad" for w in wrt], {n: a.numpy() for n, a in zip(names, args)})
        np.testing.assert_allclose(got[0], loss.item(), rtol=1e-5, atol=1e-6)
        for w, g in zip(wrt, got[1:]):
            np.testing.assert_allclose(g, params[w].grad.numpy(), rtol=1e-4, atol=1e-5,
                                       err_msg=f"{kind}: gradient of {w} (batch {batch})")


@pytest.mark.parametrize("opset,approximate", [(18, "none"), (20, "tanh")], ids=["erf_gelu", "gelu_op"])
def test_mlp_with_layer_norm_and_gelu(opset, approximate):
    torch.manual_seed(0)
    module = MLP(approximate)
    names = ["x", "y"]
    model = _export(module, _inputs("mlp", 4, np.random.default_rng(1)), names, opset)
    assert "LayerNormalization" in {n.op_type for n in model.graph.node}
    _check(module, "mlp", model, names)


def test_conv_net_with_batch_norm_in_eval_mode():
    torch.manual_seed(0)
    module = ConvNet()
    with torch.no_grad():  # non-trivial running statistics
        module.bn.running_mean.uniform_(-0.5, 0.5)
        module.bn.running_var.uniform_(0.5, 2.0)
    module.eval()
    names = ["x", "t"]
    model = _export(module, _inputs("conv", 4, np.random.default_rng(1)), names, 18)
    assert "BatchNormalization" in {n.op_type for n in model.graph.node}
    _check(module, "conv", model, names)


def test_conv_net_with_batch_norm_in_training_mode():
    # Exported with training=TRAINING: BatchNormalization with training_mode=1 and batch statistics.
    torch.manual_seed(0)
    module = ConvNet().train()
    names = ["x", "t"]
    model = _export(module, _inputs("conv", 4, np.random.default_rng(1)), names, 18,
                    training=torch.onnx.TrainingMode.TRAINING)
    bn = [n for n in model.graph.node if n.op_type == "BatchNormalization"]
    assert bn and any(a.name == "training_mode" and a.i == 1 for a in bn[0].attribute)
    _check(module, "conv", model, names)


def test_dynamo_export_of_a_training_mode_conv_net_uses_batch_statistics():
    # torch's dynamo exporter writes a training-mode BatchNorm in inference form (and, optimized, folds it
    # into the Conv); export_torch keeps it unfolded and in training mode, as the module computes.
    pytest.importorskip("onnxscript")
    from exporters.torch_exporter import export_torch

    torch.manual_seed(0)
    module = ConvNet().train()
    model = export_torch(module, _inputs("conv", 4, np.random.default_rng(1)), input_names=["x", "t"],
                         output_names=["loss"])
    bn = [n for n in model.graph.node if n.op_type == "BatchNormalization"]
    assert bn and any(a.name == "training_mode" and a.i == 1 for a in bn[0].attribute)
    _check(module, "conv", model, ["x", "t"])
