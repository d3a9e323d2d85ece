"""Forward + backward of exported PyTorch models: ``onnxforge.autodiff.gradient_model`` in onnxruntime against
``torch.autograd`` on the same thread count.

Models, random weights, written here so nothing is downloaded (the torchvision layouts): ResNet-18 (basic
blocks, BatchNorm, max-pool stem) and EfficientNet-B0 (MBConv with depthwise convs, squeeze-and-excitation,
SiLU, BatchNorm). Each is exported with the TorchScript exporter in training mode (BatchNorm on batch
statistics, as in a training step; in eval mode the exporter folds BatchNorm into the convs), a sum of the logits times a fixed random tensor is the loss,
and ``gradient_model`` adds the gradients of every weight and of the input. onnxruntime runs it with its
default optimizations on ``--threads`` intra-op threads; torch computes the same gradients with
``torch.autograd.grad``. Before timing, both sides' gradients are compared with torch's in float64 (largest error
relative to each gradient's largest entry; see ``float64_gradients`` for why not float32 against float32); times
are medians of interleaved runs, with the process CPU time per run beside them.

Usage: ``python bench/grad_zoo.py [--models resnet18,efficientnet_b0] [--batch 4] [--size 224]
[--threads 1] [--runs 10] [--session default|onnxforge]``
"""
from __future__ import annotations

import argparse
import copy
import io
import warnings
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from onnxforge.autodiff import gradient_model  # noqa: E402
from onnxforge.runtime.session import DISABLED_OPTIMIZERS  # noqa: E402


# ------------------------------------------------------------------------------------------ models
class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.down = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x):
        h = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(h)) + self.down(x))


def resnet18(classes: int = 1000) -> nn.Module:
    layers = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
        cin = cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, classes))


class MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, expand: int, kernel: int, stride: int):
        super().__init__()
        mid = cin * expand
        self.expand = (nn.Sequential(nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.SiLU())
                       if expand != 1 else nn.Identity())
        self.depthwise = nn.Sequential(nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False),
                                       nn.BatchNorm2d(mid), nn.SiLU())
        squeeze = max(1, cin // 4)
        self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(mid, squeeze, 1), nn.SiLU(),
                                nn.Conv2d(squeeze, mid, 1), nn.Sigmoid())
        self.project = nn.Sequential(nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        h = self.depthwise(self.expand(x))
        h = self.project(h * self.se(h))
        return h + x if self.residual else h


def efficientnet_b0(classes: int = 1000) -> nn.Module:
    layers = [nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.SiLU()]
    cin = 32
    for expand, cout, repeats, stride, kernel in ((1, 16, 1, 1, 3), (6, 24, 2, 2, 3), (6, 40, 2, 2, 5),
                                                  (6, 80, 3, 2, 3), (6, 112, 3, 1, 5), (6, 192, 4, 2, 5),
                                                  (6, 320, 1, 1, 3)):
        for r in range(repeats):
            layers.append(MBConv(cin, cout, expand, kernel, stride if r == 0 else 1))
            cin = cout
    layers += [nn.Conv2d(cin, 1280, 1, bias=False), nn.BatchNorm2d(1280), nn.SiLU(), nn.AdaptiveAvgPool2d(1),
               nn.Flatten(), nn.Linear(1280, classes)]
    return nn.Sequential(*layers)


MODELS = {"resnet18": resnet18, "efficientnet_b0": efficientnet_b0}


# ------------------------------------------------------------------------------------------ timing
def export(net: nn.Module, x: torch.Tensor) -> tuple[onnx.ModelProto, list[str]]:
    buf = io.BytesIO()
    warnings.filterwarnings("ignore", module="torch")
    torch.onnx.export(net, (x,), buf, input_names=["x"], output_names=["logits"], dynamo=False,
                      training=torch.onnx.TrainingMode.TRAINING,
                      do_constant_folding=False, opset_version=18)
    model = onnx.load_from_string(buf.getvalue())
    params = [i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT and len(i.dims) > 0
              and any(i.name == n for n, _ in net.named_parameters())]
    return model, params


def with_loss(model: onnx.ModelProto, classes: int) -> onnx.ModelProto:
    """Appends ``loss = sum(logits * u)`` with ``u`` a graph input (a random upstream gradient)."""
    g = model.graph
    g.input.append(onnx.helper.make_tensor_value_info("u", onnx.TensorProto.FLOAT, ["n", classes]))
    g.node.append(onnx.helper.make_node("Mul", ["logits", "u"], ["weighted"]))
    g.node.append(onnx.helper.make_node("ReduceSum", ["weighted"], ["loss"], keepdims=0))
    g.output.append(onnx.helper.make_tensor_value_info("loss", onnx.TensorProto.FLOAT, []))
    return model


def median_cpu(fn, runs: int) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return 1e3 * statistics.median(walls), 1e3 * statistics.median(cpus)


def float64_gradients(net: nn.Module, x: torch.Tensor, u: torch.Tensor, params: list[str]) -> list[np.ndarray]:
    """The reference: torch.autograd on a float64 copy of the network.

    Any float32 computation of a deep ReLU network's gradients (torch's own included) can differ from another
    by several percent in a few entries: a pre-activation within rounding of 0 goes to the other side of the
    ReLU's kink, and the gradient through that one element switches on or off (ResNet-18, batch 4, 224px: torch
    float32 is 9.4e-2 off float64 in one conv's weight gradient). Comparing float32 against float32 then says
    nothing; both are measured against float64."""
    net64 = copy.deepcopy(net).double()
    x64 = x.double().requires_grad_(True)
    ps = dict(net64.named_parameters())
    grads = torch.autograd.grad((net64(x64) * u.double()).sum(), [x64] + [ps[p] for p in params])
    return [g.numpy() for g in grads]


def worst_error(got: list[np.ndarray], exact: list[np.ndarray]) -> float:
    """The largest error of any gradient relative to its largest entry, floored at 1e-4 of the largest of all:
    gradients that are zero in exact arithmetic (a BatchNorm bias followed by another BatchNorm) hold only
    rounding noise."""
    scale = max(float(np.abs(b).max()) for b in exact)
    return max(float(np.abs(a - b).max()) / max(float(np.abs(b).max()), 1e-4 * scale) for a, b in zip(got, exact))


def compare(name: str, args) -> None:
    torch.manual_seed(0)
    net = MODELS[name]().train()
    x = torch.randn(args.batch, 3, args.size, args.size)
    u = torch.randn(args.batch, 1000)
    model, params = export(net, x)
    grads = gradient_model(with_loss(model, 1000), "loss", ["x"] + params)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    opts.log_severity_level = 3
    disabled = list(DISABLED_OPTIMIZERS) if args.session == "onnxforge" else None
    sess = ort.InferenceSession(grads.SerializeToString(), opts, providers=["CPUExecutionProvider"],
                                disabled_optimizers=disabled)
    wanted = ["x_grad"] + [f"{p}_grad" for p in params]
    feeds = {"x": x.numpy(), "u": u.numpy()}
    torch.set_num_threads(args.threads)
    xt = x.clone().requires_grad_(True)
    ps = dict(net.named_parameters())

    def torch_step():
        return torch.autograd.grad((net(xt) * u).sum(), [xt] + [ps[p] for p in params])

    ours = sess.run(wanted, feeds)
    theirs = [t.numpy() for t in torch_step()]
    exact = float64_gradients(net, x, u, params)
    err, torch_err = worst_error(ours, exact), worst_error(theirs, exact)
    ort_times, torch_times = [], []
    for r in range(args.runs):
        for which in ((0, 1) if r % 2 == 0 else (1, 0)):
            if which == 0:
                ort_times.append(median_cpu(lambda: sess.run(wanted, feeds), 1))
            else:
                torch_times.append(median_cpu(torch_step, 1))
    (ow, oc), (tw, tc) = ([statistics.median(v[i] for v in times) for i in (0, 1)]
                          for times in (ort_times, torch_times))
    print(f"{name:16s} batch {args.batch} {args.size}px, {args.threads} thread(s), {args.session} session: "
          f"onnxforge+onnxruntime "
          f"{ow:7.1f} ms (CPU {oc:7.1f}), torch {tw:7.1f} ms (CPU {tc:7.1f}); time ratio {ow / tw:.2f}, CPU ratio "
          f"{oc / tc:.2f} (below 1: faster); {len(grads.graph.node)} nodes; largest gradient error against torch "
          f"in float64: onnxforge {err:.1e}, torch float32 {torch_err:.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="resnet18,efficientnet_b0")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--session", choices=("default", "onnxforge"), default="default",
                        help="onnxruntime's default graph transformers, or onnxforge's (no NCHWc layouts)")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}")
    for name in args.models.split(","):
        compare(name.strip(), args)


if __name__ == "__main__":
    main()
