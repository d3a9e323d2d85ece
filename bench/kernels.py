"""Per-core throughput of the kernels a training step rests on, in each peer's own library, at one thread.

Usage: ``python bench/kernels.py [--rounds 10] [--markdown]``. Times, in one process with every case
interleaved round by round (so all meet the machine's phases alike), the median GFLOP/s of:

* ``sgemm 1024^3``: onnxruntime's MatMul (MLAS), ``torch.mm``, ``tf.linalg.matmul``;
* ``conv2 forward``: the seed CNN's second convolution (batch 64, 32 -> 64 channels, 14x14, 3x3 'same'):
  onnxruntime's Conv with the weights fed as an input (as onnxforge's training programs run it, im2col +
  MLAS GEMM), the same Conv with constant weights (onnxruntime then rewrites it to its blocked NCHWc kernel,
  which only constant weights reach: what an exported model gets when served), ``torch.conv2d``,
  ``tf.nn.conv2d`` (channels-last, as tf.keras runs it);
* ``conv2 input gradient``: onnxruntime's ConvTranspose, ``torch.nn.grad.conv2d_input``,
  ``tf.nn.conv2d_transpose``.

These bound what a formulation in standard ONNX ops can reach against the peers' oneDNN/MKL kernels;
``bench/train_cnn.py`` measures whole training steps.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from harness import machine  # noqa: E402

BATCH, CIN, COUT, SIDE, K = 64, 32, 64, 14, 3
CONV_FLOPS = 2 * BATCH * SIDE * SIDE * COUT * CIN * K * K
GEMM = 1024


def _onnxruntime_cases(rng: np.random.Generator) -> dict[tuple[str, str], Callable[[], object]]:
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    def session(node, feeds: dict, constants: dict | None = None) -> Callable[[], object]:
        constants = constants or {}
        graph = helper.make_graph(
            [node], "kernel", [helper.make_tensor_value_info(k, TensorProto.FLOAT, v.shape) for k, v in feeds.items()],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
            [numpy_helper.from_array(v, k) for k, v in constants.items()])
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        sess = ort.InferenceSession(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
                                    .SerializeToString(), options, providers=["CPUExecutionProvider"])
        binding = sess.io_binding()
        for name, value in feeds.items():
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(value))
        binding.bind_output("y")
        sess.run_with_iobinding(binding)
        out = binding.get_outputs()[0]  # bound again as the output, so no step allocates
        binding.bind_ortvalue_output("y", out)
        return lambda: sess.run_with_iobinding(binding)

    a, b = (rng.random((GEMM, GEMM), dtype=np.float32) for _ in range(2))
    x, w, dy = _conv_tensors(rng)
    pads = {"pads": [1, 1, 1, 1]}
    return {
        ("sgemm 1024^3", "onnxruntime"): session(helper.make_node("MatMul", ["a", "b"], ["y"]), {"a": a, "b": b}),
        ("conv2 forward", "onnxruntime (fed weights)"):
            session(helper.make_node("Conv", ["x", "w"], ["y"], **pads), {"x": x, "w": w}),
        ("conv2 forward", "onnxruntime (constant weights, NCHWc)"):
            session(helper.make_node("Conv", ["x", "w"], ["y"], **pads), {"x": x}, {"w": w}),
        ("conv2 input gradient", "onnxruntime (fed weights)"):
            session(helper.make_node("ConvTranspose", ["dy", "w"], ["y"], **pads), {"dy": dy, "w": w}),
    }


def _conv_tensors(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (rng.random((BATCH, CIN, SIDE, SIDE), dtype=np.float32), rng.random((COUT, CIN, K, K), dtype=np.float32),
            rng.random((BATCH, COUT, SIDE, SIDE), dtype=np.float32))


def _torch_cases(rng: np.random.Generator) -> dict[tuple[str, str], Callable[[], object]]:
    try:
        import torch
    except ImportError:
        return {}
    torch.set_num_threads(1)
    a, b = (torch.from_numpy(rng.random((GEMM, GEMM), dtype=np.float32)) for _ in range(2))
    x, w, dy = map(torch.from_numpy, _conv_tensors(rng))
    return {
        ("sgemm 1024^3", "torch"): lambda: torch.mm(a, b),
        ("conv2 forward", "torch"): lambda: torch.nn.functional.conv2d(x, w, padding=1),
        ("conv2 input gradient", "torch"): lambda: torch.nn.grad.conv2d_input(x.shape, w, dy, padding=1),
    }


def _tf_cases(rng: np.random.Generator) -> dict[tuple[str, str], Callable[[], object]]:
    try:
        import tensorflow as tf
    except ImportError:
        return {}
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    a, b = (tf.constant(rng.random((GEMM, GEMM), dtype=np.float32)) for _ in range(2))
    x, w, dy = _conv_tensors(rng)
    # Channels-last, as tf.keras lays them out.
    x, dy = tf.constant(x.transpose(0, 2, 3, 1)), tf.constant(dy.transpose(0, 2, 3, 1))
    w = tf.constant(w.transpose(2, 3, 1, 0))
    x_shape = x.shape
    # .numpy() waits for the result (eager ops may run asynchronously).
    return {
        ("sgemm 1024^3", "tf"): lambda: tf.linalg.matmul(a, b).numpy(),
        ("conv2 forward", "tf"): lambda: tf.nn.conv2d(x, w, 1, "SAME").numpy(),
        ("conv2 input gradient", "tf"): lambda: tf.nn.conv2d_transpose(dy, w, x_shape, 1, "SAME").numpy(),
    }


FLOPS = {"sgemm 1024^3": 2 * GEMM ** 3, "conv2 forward": CONV_FLOPS, "conv2 input gradient": CONV_FLOPS}


def measure(rounds: int, repeats: int = 5) -> dict[tuple[str, str], float]:
    """Median GFLOP/s of every case, the cases interleaved in each round."""
    rng = np.random.default_rng(0)
    cases = {**_onnxruntime_cases(rng), **_torch_cases(rng), **_tf_cases(rng)}
    seconds: dict[tuple[str, str], list[float]] = {key: [] for key in cases}
    for _ in range(rounds):
        for key, run in cases.items():
            run()  # warm: caches and the peer's own workspace
            start = time.perf_counter()
            for _ in range(repeats):
                run()
            seconds[key].append((time.perf_counter() - start) / repeats)
    return {key: FLOPS[key[0]] / statistics.median(values) / 1e9 for key, values in seconds.items()}


def table(rates: dict[tuple[str, str], float], markdown: bool) -> str:
    """One row per kernel and peer, with the ratio of onnxforge's formulation (fed weights) to that peer."""
    lines = ["| kernel | peer | GFLOP/s per core | onnxruntime (fed) / peer |", "|---|---|---|---|"] if markdown else []
    for (kernel, peer), rate in rates.items():
        fed = rates.get((kernel, "onnxruntime (fed weights)"), rates.get((kernel, "onnxruntime")))
        ratio = f"{fed / rate:.2f}x" if fed and not peer.startswith("onnxruntime") else ""
        if markdown:
            lines.append(f"| {kernel} | {peer} | {rate:.0f} | {ratio} |")
        else:
            lines.append(f"{kernel:22s} {peer:40s} {rate:6.0f} GFLOP/s  {ratio}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--markdown", action="store_true", help="print the README table")
    args = parser.parse_args()
    info = machine()
    rates = measure(args.rounds)
    load = f"{info['load_before'][0]:.1f} -> {os.getloadavg()[0]:.1f}"
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    print(f"{info['cpu']}, {info['cpus']} logical CPUs, SIMD: {' '.join(info['simd']) or 'none'}; load average "
          f"{load}; {versions}. One thread, medians of {args.rounds} interleaved rounds.\n")
    print(table(rates, args.markdown))


if __name__ == "__main__":
    main()
