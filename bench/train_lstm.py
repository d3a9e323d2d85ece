"""One LSTM(128): training throughput and inference latency, onnxforge in onnxruntime vs PyTorch.

Setup: input (batch 64, length 50, features 32) -> ``LSTM(128)`` -> last output; loss = mean squared error
against a target (64, 128); plain SGD (lr 0.01).

* **Training**: onnxforge traces the layer in a training program (the ONNX ``Scan`` form), differentiates
  it with ``onnxforge.autodiff.backward`` (the Scan gradient rule: a reverse Scan over saved residuals),
  and appends the SGD update, so one onnxruntime session runs forward + backward + update with the
  weights as inputs and the new weights as outputs; IOBinding keeps both on the device and swaps them
  between steps. PyTorch: ``nn.LSTM`` with the same weights, ``loss.backward()`` and ``optim.SGD``.
* **Inference**: onnxforge's exported inference graph (the fused ONNX ``LSTM`` node, weights baked in as
  initializers) vs ``nn.LSTM`` under ``torch.inference_mode()``; the Scan form is timed too.

Both sides use 2 threads (``torch.set_num_threads(2)``, ``intra_op_num_threads=2``). Before timing, one
training step is checked to give the same new weights as PyTorch, and the fused graph the same outputs.
Times are medians of interleaved runs. Targets: training >= 0.8x torch, inference faster than torch.

Usage: ``python bench/train_lstm.py [--batch 64] [--length 50] [--steps 30] [--threads 2]``

Measured (2-core CPU shared with other jobs, so absolute times move with the load average; the ratio is
what each run prints):

    threads 1, load 2.2: training 1335 vs torch 1140 samples/s (1.17x); inference batch 64: fused 11.9 ms,
                         scan 15.9 ms, torch 15.6 ms (1.31x); batch 1: fused 0.66 ms, torch 1.51 ms (2.3x)
    threads 2, load 2.2: training 1431 vs torch 771 samples/s (1.86x); inference batch 64: fused 17.8 ms,
                         torch 29.9 ms (1.68x); batch 1: fused 0.75 ms, torch 1.59 ms (2.1x)

Under heavy oversubscription (load > 5 on 2 cores) both sides slow down several-fold and torch's OpenMP
pool suffers most, so compare runs made at a low load. What made the training step fast: the input
projection of all steps is one MatMul outside the loop, and the Scan body keeps the symbolic batch dim
so the backward body is 26 plain nodes (no run-time unbroadcast of the gate additions).
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import onnx
import onnxruntime as ort
import torch

from onnxforge.autodiff import backward
from onnxforge.graph import GraphBuilder
from onnxforge.layers.recurrent import LSTM
from onnxforge.tracing import TraceContext

F32 = onnx.TensorProto.FLOAT
THREADS = 2  # --threads


def session(model: onnx.ModelProto) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = THREADS
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def train_step_model(layer: LSTM, features: int, units: int) -> tuple[onnx.ModelProto, list[tuple[str, str]]]:
    """Forward + MSE + backward + SGD in one graph; returns the model and (weight input, new weight) names."""
    b = GraphBuilder()
    ctx = TraceContext(b, training=True, weights="inputs")
    with ctx.active():
        x = b.input("x", F32, ("batch", "time", features))
        target = b.input("target", F32, ("batch", units))
        lr = b.input("lr", F32, ())
        h = layer(x)
        diff = h - target
        loss = b.op("ReduceMean", [diff * diff], keepdims=0, shape=())
        params = [(var, v) for var, v in ctx.reads.values()]
        grads = backward(b, loss, [v for _, v in params])
        b.output(loss, "loss")
        pairs = []
        for var, v in params:
            new = v - grads[v.name] * lr
            new.dtype, new.shape = v.dtype, v.shape
            out_name = "new_" + v.name.replace("/", "_")
            b.output(new, out_name)
            pairs.append((v.name, out_name))
    return b.to_model(), pairs


def inference_model(layer: LSTM, features: int) -> onnx.ModelProto:
    b = GraphBuilder()
    ctx = TraceContext(b, training=False, weights="initializers")
    with ctx.active():
        x = b.input("x", F32, ("batch", "time", features))
        b.output(layer(x), "h")
    return b.to_model()


def torch_lstm(layer: LSTM, features: int, units: int) -> torch.nn.LSTM:
    """nn.LSTM with the layer's weights (torch gates i, f, g, o == Keras i, f, c, o)."""
    cell = layer.cell
    mod = torch.nn.LSTM(features, units, batch_first=True)
    with torch.no_grad():
        mod.weight_ih_l0.copy_(torch.tensor(cell.kernel.numpy().T))
        mod.weight_hh_l0.copy_(torch.tensor(cell.recurrent_kernel.numpy().T))
        mod.bias_ih_l0.copy_(torch.tensor(cell.bias.numpy()))
        mod.bias_hh_l0.zero_()
    # Keras has one bias; torch's second must stay zero (training it would double the bias update).
    mod.bias_hh_l0.requires_grad_(False)
    return mod


def median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--length", type=int, default=50)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--units", type=int, default=128)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    global THREADS
    THREADS = args.threads
    torch.set_num_threads(THREADS)
    B, T, F, U = args.batch, args.length, args.features, args.units
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, F)).astype(np.float32)
    target = rng.standard_normal((B, U)).astype(np.float32) * 0.5
    lr = np.asarray(0.01, np.float32)

    layer = LSTM(U)
    layer.build((None, None, F))
    model, pairs = train_step_model(layer, F, U)
    sess = session(model)
    by_name = {v.name: v for v in layer.weights}
    # Device-resident weights: two buffers per weight, swapped after every step.
    cur = {name: ort.OrtValue.ortvalue_from_numpy(by_name[name].numpy().copy()) for name, _ in pairs}
    nxt = {name: ort.OrtValue.ortvalue_from_numpy(np.zeros_like(by_name[name].numpy())) for name, _ in pairs}
    binding = sess.io_binding()
    binding.bind_ortvalue_input("x", ort.OrtValue.ortvalue_from_numpy(x))
    binding.bind_ortvalue_input("target", ort.OrtValue.ortvalue_from_numpy(target))
    binding.bind_ortvalue_input("lr", ort.OrtValue.ortvalue_from_numpy(lr))
    binding.bind_output("loss")

    def ort_step() -> None:
        nonlocal cur, nxt
        for name, out in pairs:
            binding.bind_ortvalue_input(name, cur[name])
            binding.bind_ortvalue_output(out, nxt[name])
        sess.run_with_iobinding(binding)
        cur, nxt = nxt, cur

    mod = torch_lstm(layer, F, U)
    opt = torch.optim.SGD([p for p in mod.parameters() if p.requires_grad], lr=float(lr))
    xt, tt = torch.tensor(x), torch.tensor(target)

    def torch_step() -> None:
        opt.zero_grad(set_to_none=True)
        out, _ = mod(xt)
        loss = torch.mean((out[:, -1] - tt) ** 2)
        loss.backward()
        opt.step()

    # Check one step: the same new weights.
    ort_step()
    torch_step()
    kernel_name = layer.cell.kernel.name
    new_kernel = cur[kernel_name].numpy()
    err = np.abs(new_kernel - mod.weight_ih_l0.detach().numpy().T).max()
    assert err < 1e-5, f"onnxforge and torch disagree after one step: max |dkernel| = {err}"

    ort_times, torch_times = [], []
    for _ in range(args.steps):  # interleaved, so both see the same machine load
        ort_times.append(median_time(ort_step, 1))
        torch_times.append(median_time(torch_step, 1))
    t_ort, t_torch = statistics.median(ort_times), statistics.median(torch_times)
    import os

    print(f"LSTM({U}) batch {B} length {T} input {F}, {THREADS} threads, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"training   onnxforge {B / t_ort:9.0f} samples/s ({t_ort * 1e3:6.1f} ms/step)   "
          f"torch {B / t_torch:9.0f} samples/s ({t_torch * 1e3:6.1f} ms/step)   "
          f"ratio {t_torch / t_ort:.2f}x torch (target >= 0.8)")

    # Inference: fused export vs the Scan form vs torch.
    fused_model = inference_model(layer_with_weights(layer, cur), F)
    assert any(n.op_type == "LSTM" for n in fused_model.graph.node)
    layer.fused = False
    scan_model = inference_model(layer, F)
    layer.fused = None
    fused, scanned = session(fused_model), session(scan_model)
    with torch.inference_mode():
        ref = mod(xt)[0][:, -1].numpy()
    got = fused.run(None, {"x": x})[0]
    assert np.abs(got - ref).max() < 1e-4, "fused graph and torch disagree"
    assert np.abs(scanned.run(None, {"x": x})[0] - got).max() < 1e-4, "fused and Scan forms disagree"
    for batch in (B, 1):
        xb = x[:batch]
        xbt = torch.tensor(xb)

        def torch_infer() -> None:
            with torch.inference_mode():
                mod(xbt)
        f_t, s_t, t_t = [], [], []
        for _ in range(max(args.steps, 30)):
            f_t.append(median_time(lambda: fused.run(None, {"x": xb}), 1))
            s_t.append(median_time(lambda: scanned.run(None, {"x": xb}), 1))
            t_t.append(median_time(torch_infer, 1))
        f, s, t = statistics.median(f_t), statistics.median(s_t), statistics.median(t_t)
        print(f"inference batch {batch:3d}: fused {f * 1e3:6.2f} ms   scan {s * 1e3:6.2f} ms   torch {t * 1e3:6.2f} ms"
              f"   fused is {t / f:.2f}x torch (target > 1)")


def layer_with_weights(layer: LSTM, values: dict[str, ort.OrtValue]) -> LSTM:
    """``layer`` with the trained weights copied back from the device buffers."""
    for w in layer.weights:
        w.assign(values[w.name].numpy())
    return layer


if __name__ == "__main__":
    main()
