"""Exporter sweep: real architectures exported by torch's default (dynamo) exporter, differentiated by
onnxforge's ``gradient_model``, every parameter gradient matched against torch.autograd, and
forward+backward timed against torch on one thread.

Each model gets its loss inside the exported module (cross-entropy on classes or tokens, mean squared
error on pixels), is exported in training mode (BatchNorm on batch statistics) with every parameter kept
as a named initializer (``exporters.torch_exporter.export_torch``), and is differentiated with respect to
all of them. The table gives, per model: whether the gradients match (the worst error against torch's
float64 gradients, relative to the largest gradient of the model), the graph sizes, and the median seconds per forward+backward step of
onnxruntime (one intra-op thread, CPU) and of torch (``torch.set_num_threads(1)``), measured in the same
process, interleaved.

Gradients are checked against torch in float64, not float32: where an activation lies within float32
rounding of a kink (ReLU's 0, hardswish's +-3), any float32 evaluation may land on either side of it, and
the gradient through that element switches on or off. onnxruntime's default session and a session without
its NCHWc layouts run the same graph with different summation orders; when the two disagree by more than
the tolerance, the input is that ill-conditioned (status ``kink``, counted as a match when the NCHW session
matches float64; MobileNetV3-Small at batch 8 has one such element, a BatchNorm output of 3.1e-7 in
float64 that NCHWc's rounding makes -7e-8 before a ReLU). ``err`` is the default session's, ``nchw err``
the other's, ``torch err`` torch float32's own distance from float64.

Run: ``python bench/exporter_sweep.py [--models resnet18,gpt2] [--batch 8] [--repeats 10] [--opset 20]``
(several minutes: exports dominate). Timings on a loaded machine are indicative only.
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import time
import traceback
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402

from bench.sweep_models import MODELS  # noqa: E402
from exporters.torch_exporter import export_torch  # noqa: E402
from onnxforge.autodiff import gradient_model  # noqa: E402


class WithLoss(torch.nn.Module):
    def __init__(self, model: torch.nn.Module, kind: str):
        super().__init__()
        self.model, self.kind = model, kind

    def forward(self, x, target):
        out = self.model(x)
        if self.kind == "pixel":
            return ((out - target) ** 2).mean()
        return torch.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), target.reshape(-1))


def _target(kind: str, x: torch.Tensor, out: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    if kind == "pixel":
        return torch.randn(out.shape, generator=g)
    return torch.randint(0, out.shape[-1], out.shape[:-1], generator=g)


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _float64_gradients(net: torch.nn.Module, state: dict, x: torch.Tensor, target: torch.Tensor,
                       wrt: list[str]) -> tuple[list[np.ndarray], float]:
    """torch's gradients of the loss in float64, from the same weights and BatchNorm statistics."""
    net64 = copy.deepcopy(net).double()
    net64.load_state_dict({k: v.double() if v.is_floating_point() else v for k, v in state.items()})
    net64.zero_grad()
    loss = net64(x.double() if x.is_floating_point() else x, target.double() if target.is_floating_point()
                 else target)
    loss.backward()
    params = dict(net64.named_parameters())
    return [np.zeros(tuple(params[w].shape)) if params[w].grad is None else params[w].grad.numpy()
            for w in wrt], float(loss.item())


def run(name: str, batch: int, repeats: int, opset: int) -> dict:
    factory, make_input, kind = MODELS[name]
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    model = factory()
    x = make_input(batch, g)
    with torch.no_grad():
        out = model.eval()(x)
    target = _target(kind, x, out, g)
    net = WithLoss(model, kind).train()
    row = {"model": name}
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        proto = export_torch(net, (x, target), input_names=["x", "target"], output_names=["loss"], opset=opset,
                             dynamic_batch=False)
    row["export_s"] = time.perf_counter() - start
    params = dict(net.named_parameters())
    wrt = [p for p in params if p in {t.name for t in proto.graph.initializer}]
    start = time.perf_counter()
    grad = gradient_model(proto, "loss", wrt)
    row["grad_build_s"] = time.perf_counter() - start
    row["nodes"] = f"{len(proto.graph.node)}->{len(grad.graph.node)}"
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    session = ort.InferenceSession(grad.SerializeToString(), options, providers=["CPUExecutionProvider"])
    nchw = ort.InferenceSession(grad.SerializeToString(), options, providers=["CPUExecutionProvider"],
                                disabled_optimizers=["NchwcTransformer"])
    feeds = {"x": x.numpy(), "target": target.numpy()}
    names = ["loss"] + [f"{w}_grad" for w in wrt]
    got, got_nchw = session.run(names, feeds), nchw.run(names, feeds)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    net.zero_grad()
    loss = net(x, target)
    loss.backward()
    net.load_state_dict(state)  # BatchNorm statistics moved; the timed steps start from the same state
    exact, exact_loss = _float64_gradients(net, state, x, target, wrt)
    scale = max(float(np.abs(g).max()) for g in exact)

    def worst(grads) -> float:
        return max(float(np.max(np.abs(np.asarray(g) - e))) / scale for g, e in zip(grads, exact))

    theirs = [np.zeros_like(e) if params[w].grad is None else params[w].grad.numpy() for w, e in zip(wrt, exact)]
    missing = sorted(set(params) - set(wrt))
    row["loss_err"] = abs(float(got[0]) - exact_loss) / max(abs(exact_loss), 1e-12)
    row["worst_grad_err"], row["nchw_err"], row["torch_err"] = worst(got[1:]), worst(got_nchw[1:]), worst(theirs)
    if row["loss_err"] >= 1e-4 or missing:
        row["status"] = "MISMATCH"
    elif row["worst_grad_err"] < 1e-3:
        row["status"] = "match"
    else:  # two float32 evaluations of one graph that disagree: the input sits on a kink
        sessions_differ = max(float(np.max(np.abs(a - b))) / scale for a, b in zip(got[1:], got_nchw[1:])) >= 1e-3
        row["status"] = "kink" if sessions_differ and row["nchw_err"] < 1e-3 else "MISMATCH"
    if missing:
        row["status"] += f" (missing {missing[:3]})"

    torch.set_num_threads(1)

    def torch_step():
        net.zero_grad(set_to_none=True)
        net(x, target).backward()

    def ort_step():
        session.run(names, feeds)

    ort_step(), torch_step()  # warm up both
    ort_times, torch_times = [], []
    for _ in range(3):  # interleaved: the machine's load hits both alike
        ort_times.append(_median_time(ort_step, max(1, repeats // 3)))
        torch_times.append(_median_time(torch_step, max(1, repeats // 3)))
    row["ort_s"], row["torch_s"] = float(np.median(ort_times)), float(np.median(torch_times))
    row["ratio"] = row["ort_s"] / row["torch_s"]
    net.load_state_dict(state)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--opset", type=int, default=20)
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, onnxruntime {ort.__version__}, batch {args.batch}, opset {args.opset}, "
          f"1 thread each; cpu count {os.cpu_count()}")
    header = (f"{'model':22s} {'status':8s} {'err':>8s} {'nchw err':>8s} {'torch err':>9s} {'nodes':>12s} "
              f"{'ort s':>8s} {'torch s':>8s} {'ratio':>6s}")
    print(header)
    rows, failures = [], 0
    for name in args.models.split(","):
        try:
            row = run(name, args.batch, args.repeats, args.opset)
        except Exception as e:  # noqa: BLE001 (a sweep reports every model, whatever fails)
            failures += 1
            print(f"{name:22s} ERROR      {type(e).__name__}: {str(e).splitlines()[0][:150]}")
            traceback.print_exc(limit=3, file=sys.stderr)
            continue
        failures += row["status"] not in ("match", "kink")
        rows.append(row)
        print(f"{name:22s} {row['status']:8s} {row['worst_grad_err']:8.1e} {row['nchw_err']:8.1e} "
              f"{row['torch_err']:9.1e} {row['nodes']:>12s} {row['ort_s']:8.4f} {row['torch_s']:8.4f} "
              f"{row['ratio']:6.2f}", flush=True)
    matched = sum(r["status"] in ("match", "kink") for r in rows)
    print(f"{matched} of {len(args.models.split(','))} match torch in float64 "
          f"({sum(r['status'] == 'kink' for r in rows)} through an ill-conditioned kink, see the docstring)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
