"""Forward + loss + backward of the seed CNN: onnxforge's gradient graph in onnxruntime vs PyTorch.

Model (NCHW, so both frameworks run the same layout and flatten order; a Keras NHWC input with one
channel is the same bytes): input (N, 1, 28, 28) -> Conv 32 3x3 same -> ReLU -> MaxPool 2 -> Conv 64 3x3
same -> ReLU -> MaxPool 2 -> Flatten -> Dense 128 -> ReLU -> Dense 10, mean softmax cross-entropy against
one-hot labels built from LogSoftmax, Mul and reductions. Batch 128. The ONNX graph is built with
GraphBuilder, its gradients come from ``onnxforge.autodiff.backward``; weights are graph inputs (as in a
training step). onnxruntime CPU: intra_op_num_threads=2, all graph optimizations, IOBinding with the
inputs bound once. PyTorch: ``torch.set_num_threads(2)``, the same weights, ``torch.autograd.grad``.
The gradients are checked to agree (relative error ~1e-4) before timing; each side's time is the median
of many interleaved runs. Usage: ``python bench/grad_cnn.py [--batch 128] [--runs 40] [--profile]``.

Findings recorded before the Conv input gradient became a ConvTranspose and tiling max-pools stopped asking
for Indices (``bench/train_cnn.py``'s docstring has the A/B figures of those changes)
(2 shared vCPUs, AMD EPYC; other jobs ran beside it, so numbers come from quiet windows;
``--profile`` prints onnxruntime's per-node profiler summed per op type and the costliest nodes):

* A quiet run: onnxforge + onnxruntime 74.0 ms/step (min 66.6), PyTorch 115.1 ms (min 82.1): ratio 1.56x
  on medians, 1.23x on minima. PyTorch's times scatter more under load than onnxruntime's.
* Where the ~75 ms go (ms/step): conv2 input gradient (reversed-tap Conv) 13.8, conv2 forward (Conv+Relu
  fused by onnxruntime) 11.2, conv2 weight gradient batched MatMul 11.2 + its one-hot patch Conv 7.0,
  MaxPool with Indices 9.9 + 4.9, MaxUnpool 3.3 + 1.6, dense Gemms 3.6, ReduceSum 1.7, conv1 forward 1.6,
  conv1 weight-gradient MatMul 1.5; everything else (loss, reshapes, masks) under 2 ms together.
* The three conv2 GEMMs (0.92 GFLOP each) run at ~80 GFLOP/s on this machine and take half the step.
  Weights as graph inputs keep onnxruntime off its NCHWc Conv kernels (they need constant weights), so
  every Conv is im2col + one GEMM per image.
* MaxPool with Indices runs ~3x a plain MaxPool (a scalar kernel): ~15 ms for both pools, the largest
  non-GEMM cost. Indices-free backward formulations for 2x2 windows (strided one-hot Conv + ArgMax or
  CumSum first-index masks + DepthToSpace; SpaceToDepth + Where chains; Transpose + ArgMax + MaxUnpool)
  all measured 15-60% more CPU time for the pool's forward + backward, so the rule keeps Indices.
* ``onnxforge.autodiff.passes.optimize`` moves each Relu mask onto the pooled gradient before MaxUnpool
  (removing two full-size Greater/Cast/Mul triples, ~10% of the step's CPU time) and sums bias gradients
  over the pooled gradient (ReduceSum 3.4 -> 1.7 ms). Without the passes the step costs ~12% more.
* Conv input gradient at unit stride: the reversed-tap Conv matched ConvTranspose when quiet and was
  ~12% faster under load. Weight gradient: patches + batched MatMul + ReduceSum beat one GEMM over the
  whole batch (needing Transposes of the patches: +25% CPU time; channels-last Slice patches: +15%) and
  the batch/channel-swapped Conv (+30%). Patches: the one-hot grouped Conv equals Pad + 9 Slices +
  Concat; Expand + a depthwise one-hot Conv is 3x slower.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections import defaultdict

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto

from onnxforge.autodiff import backward
from onnxforge.autodiff.passes import optimize
from onnxforge.graph import GraphBuilder

PARAMS = {  # name: shape (PyTorch / ONNX layouts: conv (out, in, kh, kw), dense (in, out))
    "conv1_w": (32, 1, 3, 3), "conv1_b": (32,),
    "conv2_w": (64, 32, 3, 3), "conv2_b": (64,),
    "dense1_w": (64 * 7 * 7, 128), "dense1_b": (128,),
    "dense2_w": (128, 10), "dense2_b": (10,),
}


def build_model(passes: bool = True) -> onnx.ModelProto:
    """The training-step graph: loss and one gradient output per parameter (``passes``: run
    ``onnxforge.autodiff.passes.optimize`` on it)."""
    b = GraphBuilder()
    f32 = TensorProto.FLOAT
    x = b.input("x", f32, ("N", 1, 28, 28))
    labels = b.input("labels", f32, ("N", 10))  # one-hot
    p = {name: b.input(name, f32, shape) for name, shape in PARAMS.items()}
    pool = dict(kernel_shape=[2, 2], strides=[2, 2])
    h = b.op("Conv", [x, p["conv1_w"], p["conv1_b"]], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    h = b.op("MaxPool", [b.op("Relu", [h])], **pool)
    h = b.op("Conv", [h, p["conv2_w"], p["conv2_b"]], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    h = b.op("MaxPool", [b.op("Relu", [h])], **pool)
    h = b.op("Flatten", [h], axis=1)
    h = b.op("Relu", [b.op("Gemm", [h, p["dense1_w"], p["dense1_b"]])])
    logits = b.op("Gemm", [h, p["dense2_w"], p["dense2_b"]])
    log_probs = b.op("LogSoftmax", [logits], axis=-1)
    per_sample = b.op("ReduceSum", [b.op("Mul", [labels, log_probs]), b.const([1], TensorProto.INT64)], keepdims=0)
    loss = b.op("Neg", [b.op("ReduceMean", [per_sample], keepdims=0)])
    grads = backward(b, loss, list(PARAMS))
    if passes:
        optimize(b)
    b.output(loss, "loss")
    for name in PARAMS:
        b.output(grads[name], f"{name}_grad")
    model = b.to_model()
    onnx.checker.check_model(model, full_check=True)
    return model


def make_data(batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {"x": rng.random((batch, 1, 28, 28), dtype=np.float32),
             "labels": np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]}
    for name, shape in PARAMS.items():
        fan_in = int(np.prod(shape[1:])) if len(shape) == 4 else shape[0]
        scale = np.sqrt(2.0 / fan_in) if name.endswith("_w") else 0.05
        feeds[name] = (rng.standard_normal(shape) * scale).astype(np.float32)
    return feeds


# ------------------------------------------------------------------ runners
def ort_runner(model: onnx.ModelProto, feeds: dict[str, np.ndarray], profile_dir: str | None = None,
               spinning: bool = True):
    so = ort.SessionOptions()
    if not spinning:  # idle threads sleep: process CPU time then counts work only
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.intra_op_num_threads = 2
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    if profile_dir:
        so.enable_profiling = True
        so.profile_file_prefix = os.path.join(profile_dir, "grad_cnn")
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    binding = sess.io_binding()
    for name, value in feeds.items():
        binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(value))
    names = [o.name for o in sess.get_outputs()]
    for name in names:
        binding.bind_output(name, "cpu")

    def step():
        sess.run_with_iobinding(binding)

    def results():
        step()
        return {name: v.numpy() for name, v in zip(names, binding.get_outputs())}
    return step, results, sess


def torch_runner(feeds: dict[str, np.ndarray]):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(2)
    x, labels = torch.from_numpy(feeds["x"]), torch.from_numpy(feeds["labels"])
    p = {name: torch.from_numpy(feeds[name].copy()).requires_grad_() for name in PARAMS}
    ordered = [p[name] for name in PARAMS]

    def loss_fn():
        h = F.max_pool2d(F.relu(F.conv2d(x, p["conv1_w"], p["conv1_b"], padding=1)), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, p["conv2_w"], p["conv2_b"], padding=1)), 2)
        h = F.relu(h.flatten(1) @ p["dense1_w"] + p["dense1_b"])
        logits = h @ p["dense2_w"] + p["dense2_b"]
        return -(labels * F.log_softmax(logits, dim=-1)).sum(dim=1).mean()

    def step():
        return torch.autograd.grad(loss_fn(), ordered)

    def results():
        loss = loss_fn()
        grads = torch.autograd.grad(loss, ordered)
        out = {"loss": loss.detach().numpy()}
        out.update({f"{name}_grad": g.numpy() for name, g in zip(PARAMS, grads)})
        return out
    return step, results


def check_agreement(ours: dict, theirs: dict, rtol: float = 1e-4) -> float:
    """The largest ``|a - b| / max|b|`` over all outputs; raises if above ``rtol``."""
    worst = 0.0
    for name, ref in theirs.items():
        err = float(np.max(np.abs(ours[name] - ref)) / max(np.max(np.abs(ref)), 1e-12))
        worst = max(worst, err)
        if err > rtol:
            raise AssertionError(f"{name}: onnxforge and PyTorch differ by {err:.2e} (relative to max |grad|)")
    return worst


def timed(step, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def profile_summary(sess: ort.InferenceSession, step, warm: int = 5, runs: int = 20):
    """Per op type: median ms per step and node count, from onnxruntime's profiler (warm-up runs dropped)."""
    for _ in range(warm + runs):
        step()
    path = sess.end_profiling()
    with open(path) as fh:
        events = json.load(fh)
    os.remove(path)
    spans = sorted((ev["ts"], ev["ts"] + ev["dur"]) for ev in events if ev.get("name") == "model_run")[warm:]
    per_run: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(spans))
    per_node: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(spans))
    nodes: dict[str, set] = defaultdict(set)
    for ev in events:
        if ev.get("cat") != "Node" or not ev["name"].endswith("_kernel_time"):
            continue
        k = next((i for i, (a, b) in enumerate(spans) if a <= ev["ts"] <= b), None)
        if k is not None:
            per_run[ev["args"]["op_name"]][k] += ev["dur"] / 1e3
            per_node[f'{ev["args"]["op_name"]} {ev["name"][:-len("_kernel_time")]}'][k] += ev["dur"] / 1e3
            nodes[ev["args"]["op_name"]].add(ev["name"])
    step_ms = statistics.median((b - a) / 1e3 for a, b in spans)
    rows = sorted(((op, statistics.median(ms), len(nodes[op])) for op, ms in per_run.items()), key=lambda r: -r[1])
    top = sorted(((n, statistics.median(ms)) for n, ms in per_node.items()), key=lambda r: -r[1])
    return step_ms, rows, top


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--profile", action="store_true", help="print onnxruntime's per-op-type times")
    args = parser.parse_args()

    model = build_model()
    feeds = make_data(args.batch)
    ort_step, ort_results, _ = ort_runner(model, feeds)
    torch_step, torch_results = torch_runner(feeds)
    err = check_agreement(ort_results(), torch_results())
    for _ in range(5):  # warm-up
        ort_step()
        torch_step()
    ort_ms, torch_ms = [], []
    for _ in range(args.runs // 5):  # interleave, so that load from other processes hits both alike
        ort_ms += timed(ort_step, 5)
        torch_ms += timed(torch_step, 5)
    ours, theirs = statistics.median(ort_ms), statistics.median(torch_ms)
    print(f"seed CNN, batch {args.batch}, 2 threads: gradients agree to {err:.1e} (relative)")
    print(f"  onnxforge + onnxruntime: {ours:7.2f} ms/step (median of {len(ort_ms)}; min {min(ort_ms):.2f})")
    print(f"  PyTorch:                 {theirs:7.2f} ms/step (median of {len(torch_ms)}; min {min(torch_ms):.2f})")
    print(f"  ratio PyTorch / onnxforge: {theirs / ours:.2f}x (medians), {min(torch_ms) / min(ort_ms):.2f}x (minima)")
    if args.profile:
        with tempfile.TemporaryDirectory() as tmp:
            step, _, sess = ort_runner(model, feeds, profile_dir=tmp)
            step_ms, rows, top = profile_summary(sess, step)
        print(f"  onnxruntime profile: {step_ms:.2f} ms per run; median ms per step by op type (node count):")
        for op, ms, count in rows:
            print(f"    {op:24s} {ms:7.2f}  x{count}")
        print("  costliest nodes (median ms per step):")
        for name, ms in top[:12]:
            print(f"    {name:60s} {ms:7.2f}")

if __name__ == "__main__":
    main()
