"""Keras ``fit`` against PyTorch and tf.keras, side by side in one run: samples/s, CPU ms per step, peak RSS.

Usage: ``python bench/train_cnn.py [--models cnn,mlp,resbn] [--samples N] [--epochs 1] [--rounds 2]
[--threads 2] [--task fit|predict] [--markdown]``; ``--task predict`` times inference instead (Keras's
``predict`` after a short ``fit``, PyTorch in eval mode under ``inference_mode``). ``--markdown`` prints the README table (machine, SIMD flags, load average,
versions, then one row per model, peer and allocator); ``--profile`` prints onnxruntime's per-op profile of
onnxforge's compiled ``train_step`` instead. The models (the seed CNN, an MLP 784-512-512-10, a residual CNN
with BatchNormalization on 32x32x3) are in ``bench/models.py``, the harness (one subprocess per peer and
malloc setting, best of ``--rounds``) in ``bench/harness.py``; tf.keras runs whenever TensorFlow imports
(``pip install -e .[bench]`` installs it and PyTorch). ``bench/train_dcgan.py`` times the DCGAN step
against Keras on torch, ``bench/grad_zoo.py`` ResNet-18 / EfficientNet-B0 gradients against torch.

What was measured while choosing the formulations (2 vCPUs, AMD EPYC with AVX-512, shared with up to 9 other
jobs, load 2-11: every figure is CPU time of 1-thread sessions, interleaved A/B, several repeats; wall times
there mean nothing, and the final side-by-side table is for a quiet machine):

* Where the seed CNN's step goes (batch 128, 1 thread, ~92 CPU-ms at the start): conv2's three GEMMs
  (forward 13.5, input gradient 15.2, weight gradient 16 + its patches 8.7), MaxPool asking for Indices
  (~21 for both pools; the plain MaxPool is ~4x cheaper), conv1 ~6, Dense ~5, Adam ~3, loss/metrics < 1.
  onnxruntime's MLAS SGEMM does ~94 GFLOP/s per core here (1024^3) and ~75 on the conv shapes.
* Conv input gradient: ConvTranspose 12.3 vs the stride-1 Conv with reversed taps 15.2 (seed conv2),
  depthwise 13.9 vs 14.7; a strided depthwise gradient by zero insertion + Conv 28 vs 7.0. Kept:
  ConvTranspose everywhere (whole step -1.3 CPU-ms, paired median).
* Max-pool gradient without Indices for tiling windows (pool == strides, Keras's default): first pool,
  forward + backward: MaxPool with Indices + MaxUnpool 15.4; strided Slices + Where-chain indices 26.9;
  SpaceToDepth + ArgMax 19.9; per-tap masks + DepthToSpace 26.2; onnxruntime's Where costs 6.8 ms on 800k
  elements (30x a Mul), DepthToSpace 9.2, Resize 3.2, a strided Slice 1.2. Kept: the plain MaxPool, each
  tap tested by Equal against Y, float arithmetic for the first maximum's offset, MaxUnpool: the whole
  step -5.6 CPU-ms (paired median of 60 interleaved steps), ties still go to the first maximum. The taps
  were strided Slices first; a MaxPool over the box from the window's start to the tap (kernel 1x1, 1x2,
  2x1 for 2x2 windows) does the same test in 2.7 vs 3.5 CPU-ms and runs on all of onnxruntime's threads
  (Slice runs on one); no difference within noise on the whole step at one thread.
* Weight gradient: one-hot patches Conv + batched MatMul + ReduceSum 15.9 vs Einsum 25.9 vs two
  Transposes + one big GEMM 20.2; the textbook batch/channel-swapped Conv loses on every shape tried
  (16 ch at 32x32 62 vs 34, seed conv2 44 vs 30, conv1 6.2 vs 3.0). Patches: one-hot Conv 8.7 vs
  Pad + 9 Slices + Concat 9.4 (tap-major) / 13.2 (channel-major). Kept as it was.
* Later rounds (seed CNN train_step, 1 thread unless said, paired medians of 30-40 interleaved steps, load
  4-5): conv2's input gradient as a Conv over dY with the transposed, flipped kernel (pads extent-1-p)
  instead of ConvTranspose: +3.0 and +3.4 CPU-ms at 1 thread; at 2 threads with spinning -13.6 CPU-ms /
  -4.8 ms wall (ConvTranspose runs one parallel section per image, which an oversubscribed machine
  punishes), without spinning +2.8 CPU-ms / +4.1 wall: ConvTranspose kept (alone, 2 threads with spinning:
  36 vs 24 ms wall on this loaded machine; 12.0 vs 15.1 at 1 thread). The max-pool gradient as a first-hit
  mask on the [N*C*H/2, 2, W/2, 2] view (Equal against the broadcast Y, tap weights 8/4/2/1, ReduceMax,
  Equal, Cast, Mul by the broadcast dY), ties exact: 74-77 vs 8.0-8.7 CPU-ms for pool 1 forward + backward
  (onnxruntime's broadcast Equal and Mul over these inner unit axes cost 16-18 ms each). The weight
  gradient's centre tap of a 'same' conv reads the unpadded X instead of a Slice of the padded one (one
  0.43 ms copy less in the profile, bit-identical): -1.1 and +0.1 CPU-ms, within noise; kept.
* Session options: without the NCHWc layout transformer -4.5 CPU-ms (it only reaches pools and
  constant-kernel convs, programs take weights as inputs, and its reorders cost more);
  ORT_ENABLE_EXTENDED -3.8, ORT_ENABLE_BASIC +3.5. Without the memory pattern peak RSS 761 -> 449 MB
  (residual BN CNN; PyTorch 539) and 246 -> 197 MB (seed CNN), CPU time unchanged. Threads and spinning
  are left to onnxruntime (ONNXFORGE_INTRA_OP_THREADS / ONNXFORGE_ALLOW_SPINNING override them; this
  bench passes --threads to every peer).
* Reading the loss and metric sums back every step: MLP step 8.96 vs 8.67 CPU-ms with
  ``steps_per_execution=40`` (3%, mostly the per-step Python logs); fit's other Python work (shuffled
  gather, checks, binding) is ~1% of a step (cProfile).
* All of the above together, seed CNN train_step as compiled before and after, each in the session the
  runtime gives it: -5.9 CPU-ms (75.9 -> 70.4, paired median of 40 interleaved steps, 1 thread, load 7).
* The peers on one thread of this machine, seed CNN step: onnxforge ~85 CPU-ms after the changes above,
  PyTorch 85-93, tf.keras 46-51. TensorFlow's oneDNN convolutions run about twice as fast per core as any
  formulation found here in standard ONNX ops on MLAS (im2col materialized by a Conv or Slices, then GEMMs),
  so the issue's >= 1.0x tf.keras is not reached on this model; PyTorch is matched on one thread, and the
  2-thread comparison depends on each runtime's parallel efficiency, which only a quiet machine shows.
* Residual BN CNN (1 thread): the conv machinery is ~65% of onnxforge's step (16-channel layers at 32x32
  materialize 9x their input as patches: memory-bound), BatchNorm's arithmetic ~25-30% (forward 5
  full-size passes, backward ~11, against ~13 in all for a fused formulation). tf.keras is ~2.5x faster.
  BatchNormalization's training step as one ONNX ``BatchNormalization(training_mode=1)`` (statistics,
  normalization and moving statistics in one kernel; the gradient rule recomputes xhat with a second one and
  folds dX into a * dy + b * xhat + c per channel): -34 CPU-ms (286 -> 252, paired median of 20) when first
  written, -24 (262 -> 238, 20 interleaved steps, load 2.6) as merged. Only in CPU programs this process runs
  (``runtime.fused_training_ops``): onnxruntime's CUDA provider refuses training_mode=1 from opset 14, so
  CUDA compiles and every file (export_training, export_eval, export) keep the arithmetic formulation.
  MLP: at parity with tf.keras, ahead of PyTorch. DCGAN step (``bench/train_dcgan.py``, 1 thread):
  78 vs 109 CPU-ms for Keras 3 on torch.
* Two threads on this VM (2026-12-05, quiet): the seed CNN's one-session step runs 38-40 ms in some phases
  and 75-85 ms in others, switching within a process every few seconds to minutes, while a compute-bound
  2-thread MatMul stays put (1.3 ms) and steal time stays 0. The slow phases hit what hands data from core to
  core: conv2's weight-gradient subgraph alone (Pad, 8 Slices on one thread, 9 GEMMs on two) runs 12 ms in
  one phase and 34 ms in the other, its Slices 0.3 ms each at 1 thread and 0.8 (fast phase) or 2.2 (slow
  phase) beside a 2-thread GEMM. Most likely the hypervisor placing the two vCPUs near or far apart; PyTorch
  (OpenMP, static partitions: each core keeps its half of every tensor) suffers far less. Hence the
  sharded step (``onnxforge/trainer/core_parallel.py``): one shard of the batch per core, one-thread
  sessions side by side, the summed gradients applied once: 30-32 ms in both phases (two 64-sample shards
  ~29.7 ms of kernels each, the update 1.2-1.9 ms, Python ~0.5). Dense-only models keep one session (MLP
  batch 128: 6.3 sharded vs 6.1; batch 64: 5.3 vs 3.4), and so do BatchNorm models: sharding the residual
  BN CNN with the whole batch's moments summed between its 15 stages took it from 180 to 152-167 ms but to
  1.5 GB of peak RSS (30 sessions); one arena shared by the stages brought that to 580 MB and the step to
  204-216 ms, slower than one session, so it was reverted.
* Later the same day, A/B inside one process (two models compiled side by side, their epochs interleaved, so
  both meet the VM's phases alike; medians of 8): the sharded step's update as two element ranges, one per
  core (``onnxforge/trainer/segment_update.py``): 1.75 -> ~1.1 ms per step (ranges 0.9 ms each, binding
  0.08); cutting a range into cache-sized chunks was slower (335k elements: 1.01 -> 1.17-1.38 ms). In
  programs for 2-thread sessions: conv weight gradients by patches below 128 channels, the residual BN CNN
  183 -> 162 ms (whole steps of Conv-pool-Dense, 2 threads: 16 -> 16 ch at 32x32 25.6 -> 20.7, 32 -> 64 at
  14x14 21.9 -> 19.7, 128 -> 128 at 14x14 28.9 vs 32.1 kept as taps; at 1 thread the taps win: 31.9 vs 39.2,
  28.5 vs 35.7); fed-weight input gradients as reversed Convs, 163 -> 152 (245 -> 190 in slow phases), seed
  CNN as one session 40.0 vs 39.9 (58 -> 54 slow). Measured on seed conv2 (batch 64, 1 thread) and dropped:
  NHWC im2col + one GEMM (the GEMM [12544, 288] x [288, 64] runs at 103 GFLOP/s, 4.5 ms, but Pad + Slices +
  Concat of the patches cost 3.4: forward 8.5 vs the Conv's 6.0), the input gradient from dY's patches (10.5
  vs ConvTranspose 5.7) or GEMM + col2im by padded shifted slices (9.3), row-shifted GEMMs on the
  width-flattened image (K=32 at 86 GFLOP/s: nine of them as slow as the Conv, before their slices), the batch
  stacked into one tall image (5.9-6.3 vs 5.75 ms). Not built: Winograd F(2x2, 3x3), whose 16 strided tile
  slices and ~56 transform passes in ONNX ops were estimated to cost more than its GEMMs save. Interleaving
  max-pool tap planes by Concat (1.17 ms vs MaxUnpool's 0.46), DepthToSpace 3.0; onnxruntime's parallel
  executor (residual BN CNN 349 vs 178 ms); pinning the session threads to cores (MLP 4.6-6.4 vs 4.1-4.7).
  Kept after that: the patches' per-sample GEMM with dY as the packed (second) operand where dY is the
  smaller one (residual BN CNN 149 -> 143 ms at 2 threads, 248 -> 241 at 1 thread); BatchNormalization's fused
  training kernel beats the arithmetic form at 2 threads too (235 vs 270 ms, slow phase); splitting the MLP's
  one-session step into gradients + a ranged update lost (5.8 vs 4.1 ms); spinning stays on (MLP 4.0 vs 4.8).
* On the Intel Xeon VM (AVX-512, AMX; 2026-12-05 evening), one thread, kernels interleaved in one process
  (``bench/kernels.py``): MLAS's SGEMM 142 GFLOP/s against torch 167 and TensorFlow 152, but the seed conv2 as
  onnxruntime's Conv with fed weights 88 against 150 / 141 (its input gradient 102 vs 147 / 152). With constant
  weights the same Conv reaches 140 (NCHWc), which is why ``predict`` now runs with constant weights
  (``runtime/frozen.py``) and why no training formulation here catches up on this CPU. Measured and dropped
  on it: Relu after MaxPool instead of before (exact for values and gradients; 47.25 vs 47.13 ms per step);
  the pool gradient's box MaxPools replaced by reductions over the [N*C*H/2, 2, W/2, 2] view (ReduceMax over the
  row pair is cheap, 0.40 ms, but over the inner pair of columns 1.73 ms, slower than the 1x2 MaxPool's 1.2).
* Back on an AMD EPYC VM (Zen 4, AVX-512, 2026-12-06, quiet, load 0.2-1.3): MLAS's fed-weight conv2 77 GFLOP/s
  against TensorFlow's 99 and torch's 89 (``bench/kernels.py``); a 64-sample shard's step 30.2 ms at one thread
  (conv2 forward 6.1, input gradient 5.9, weight gradient 6.4 of which 1.7 is the tap slices and pad, pools
  with their gradients ~5, Dense 2.0 at ~40 GFLOP/s). Measured there and dropped: conv2's forward and weight
  gradient sharing one im2col (9 tap slices + Concat, then one GEMM each way): 16.3 ms (CNHW patches) and
  19.6 (NHWC) against 13.2 for the Conv plus the tap GEMMs; the weight gradient's taps sliced from NHWC (long
  contiguous runs, transposed GEMMs): 14.1-14.6 vs 12.9. ReLU gradients at 2 threads: Where 33 ms vs
  Greater+Cast+Mul 8.3 on 2M elements, and the latter swings 2.8-13.4 ms run to run at 2 threads against a
  steady 1.86 at one thread (the cross-core phases again). Residual BN CNN at one thread: 251 ms against torch
  184 and TensorFlow 174 (its 16-channel 32x32 convs run MLAS at ~55 GFLOP/s), and 1.43x from the second
  thread against torch's 1.7x.
* A non-MLAS provider inside stock onnxruntime (Intel Xeon VM, AVX-512 + AMX, 2026-12-06, load 3-4 from other
  jobs, so only 1-thread CPU-ms compared within one process): the OpenVINO plugin EP (``onnxruntime-ep-openvino``
  1.8.1, registered with ``register_execution_provider_library``; 165 MB unpacked). Its ``precision`` and
  ``num_of_threads`` options are ignored by the plugin: only ``load_config`` ``{"CPU": {"INFERENCE_PRECISION_HINT":
  "f32", "INFERENCE_NUM_THREADS": "1"}}`` holds it to float32 (left alone it runs bfloat16 on AMX, 2.6e-3 relative
  error, which the exact-gradient contract rules out). Fed-weight kernels at batch 128: conv2 forward 9.1-9.7 ms
  (95-102 GFLOP/s) vs MLAS 13.3 (69); its input gradient as ConvTranspose 9.9-10.5 vs 11.3-11.6; the weight
  gradient as 9 tap GEMMs 20.8 vs 16.3 on MLAS (batch/channel-swapped Conv 34.5 vs 26.8, NHWC im2col + one GEMM
  24.2 vs 30.5). Whole train_step: OpenVINO cannot convert MaxUnpool (and mis-types its output as a scalar without
  a value_info), so the graph splits into three partitions and ties MLAS (79-83 vs 75-82 CPU-ms); with each
  MaxUnpool rewritten as a ScatterElements into a flat zero tensor, one partition runs the whole step in 62-69
  against 78-84 CPU-ms: 1.2x, with outputs within 3.4e-7, but only with every input's batch dimension fixed
  (left dynamic, the same graph runs 89-93 against MLAS's 84-88). That is short of the 1.4-1.6x the seed CNN needs to
  reach tf.keras, costs a 52 MB wheel and a session per batch size, so it was not adopted. Rerun on the same VM
  quiet (23:12 UTC, load 0.6-0.7), the same static-batch graph against the CPU provider: 1 thread 54.7-56.8 vs
  70.2-71.2 ms (1.27x); 2 threads 30.3-31.0 vs 44.7-47.3 ms wall (1.5x). The bench run minutes earlier had
  tf.keras's fit step at 24.5 ms and onnxforge's (sharded over the cores) at 34.4, so the OpenVINO step alone
  would sit near 0.8x tf.keras: better than today's 0.71x, still short of the issue's 1.0x.
* Residual BN CNN on an AMD EPYC with AVX2 only (2026-12-07, 2 vCPUs shared with 3 other jobs, load 5-9, so
  only CPU time of 1-thread sessions counts; whole steps A/B in one process, paired medians; single layers'
  gradients at batch 128 interleaved, medians of 15-21). Kept: BatchNormalization's backward no longer
  recomputes the batch statistics. The forward op runs with momentum 0, so its running-statistics outputs are
  the batch mean and biased variance (the moving statistics are blended per channel after it, from fresh
  input buffers: onnxruntime writes the running statistics in place over its inputs), and the backward's xhat
  is one inference-mode BatchNormalization with them (1.06 vs 2.14 CPU-ms for the training-mode recompute on
  128x16x32x32); the backward's ``b * xhat + c`` is an inference-mode BatchNormalization too (mean 0, variance
  1, epsilon 0: 1.06 vs 2.03 for Mul + Add): ~2 CPU-ms saved per 2M elements, ~11 over the model's nine
  BatchNormalizations. Whole step, paired medians of 100 interleaved steps, load 7-8.5: -16.0 CPU-ms with the
  old step compiled first, -0.2 with the new one first (30 steps: -19.4 and -10.0). In this harness the model
  compiled second runs ~8 CPU-ms faster whichever it is, so the change is about -8 CPU-ms of ~320 (2.5%),
  as the kernels predict; at 2 threads (one session, wall time, load 7.5, 24 steps) it was not slower
  (-169 ms paired median of ~1.4 s steps on the oversubscribed machine). Measured and dropped (CPU-ms,
  current -> alternative): the input gradient
  as the reversed-taps Conv for each of the model's shapes at one thread (16 ch at 32x32 16.1 -> 15.9, 32 at
  16x16 11.7 -> 12.6, 64 at 8x8 11.4 -> 11.2, the stride-2 convs equal): within noise, ConvTranspose kept;
  the patches weight gradient for the 16-64 channel 3x3 convs (31.5 -> 29.2, 22.3 -> 26.2, 14.9 -> 17.5);
  row-shifted weight gradients in NCHW (Pad, three whole-row slices of X, three column-shifted pads of dY,
  one per-sample ``[3M, H*Wp] x [H*Wp, 3C]`` MatMul: 32.6 -> 33.3, 23.2 -> 28.7, 18.4 -> 26.0, the 3-channel
  stem 6.9 -> 16.4; the batched MatMul ran at ~28 GFLOP/s); the same with batch and channels swapped, three
  GEMMs ``[3M, N*H*Wp] x [N*H*Wp, C]`` over the whole batch, one per kernel row (a lone GEMM of that shape is
  faster: 3 x 3.4 vs 9 x 1.7 for the taps' ``[16, 131072]`` ones, but the three Pads and the Concat of dY eat
  it: 30.0 -> 29.6, 20.0 -> 21.1, 14.0 -> 17.0, seed conv2 20.1 -> 29.5); the stride-2 convs' patches as Pad +
  nine strided Slices + Concat instead of the one-hot Conv (18.1 -> 28.4, 9.2 -> 14.5); the stride-2 convs'
  weight gradients by taps (strided Slices of the padded, batch/channel-swapped X and one GEMM per tap: 3x3
  12.9 -> 17.8 and 8.5 -> 12.3, the 1x1 projections 2.8 -> 4.5 and 1.6 -> 2.2); taps for the 3-channel stem
  and the seed's 1-channel conv1 (6.5 -> 13.0, 5.0 -> 15.5, as documented in rules/conv.py); Relu's mask taken
  from its output instead of its input (same values; frees the BatchNormalization output earlier): -10.6 and
  +7.3 in the two compile orders, nothing; per-channel sums over (N, H, W) as two ReduceSums (0.46 vs 0.56 on
  2M elements) or a MatMul by ones (0.95): too small to matter.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from collections import Counter, defaultdict

# This checkout's onnxforge (not an installed copy), and the harness beside this file.
sys.path[:0] = [os.path.dirname(os.path.dirname(os.path.abspath(__file__))), os.path.dirname(os.path.abspath(__file__))]

from harness import RUNNERS, compare, report, run_peer  # noqa: E402
from models import MODELS, keras_model, make_data  # noqa: E402


# ------------------------------------------------------------------------------------------ profile
def profile(args, warm: int = 5, runs: int = 30) -> None:
    """onnxruntime's profile of onnxforge's compiled train_step: median ms per op type and per node."""
    import onnx
    import onnxruntime as ort

    import onnxforge as tf
    from onnxforge.runtime.session import DISABLED_OPTIMIZERS, session_options

    x, y = make_data(args.model, args.batch * 2)
    model = keras_model(args.model, tf)
    model.fit(x, y, batch_size=args.batch, epochs=1, verbose=0)
    program = model.compiled_programs["train_step"]
    graph = program.model.graph
    counts = Counter(n.op_type for n in graph.node)
    print(f"train_step: {len(graph.node)} nodes: " + ", ".join(f"{op} {c}" for op, c in counts.most_common()))
    inferred = onnx.shape_inference.infer_shapes(program.model).graph
    shapes = {vi.name: [d.dim_value or d.dim_param for d in vi.type.tensor_type.shape.dim]
              for vi in list(inferred.value_info) + list(inferred.input) + list(inferred.output)}
    for node in graph.node:
        if node.op_type == "Transpose":
            perm = next(list(a.ints) for a in node.attribute if a.name == "perm")
            print(f"  Transpose {node.input[0]} {shapes.get(node.input[0], '?')} perm={perm}")

    runner = model._runners["train_step"]
    with tempfile.TemporaryDirectory() as tmp:
        opts = session_options()
        if args.threads:
            opts.intra_op_num_threads = args.threads
        opts.enable_profiling = True
        opts.profile_file_prefix = os.path.join(tmp, "train_cnn")
        runner._session = ort.InferenceSession(program.model.SerializeToString(), opts,
                                               providers=["CPUExecutionProvider"],
                                               disabled_optimizers=list(DISABLED_OPTIMIZERS))
        runner._bindings = []
        feeds = model._feeds([x[:args.batch]], [y[:args.batch]], None, "fit")
        for _ in range(warm + runs):
            runner.run(feeds, learning_rate=1e-3)
        path = runner._session.end_profiling()
        with open(path) as fh:
            events = json.load(fh)
    spans = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name") == "model_run")[warm:]
    per_op: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(spans))
    per_node: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(spans))
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time"):
            continue
        k = next((i for i, (a, b) in enumerate(spans) if a <= e["ts"] <= b), None)
        if k is None:
            continue
        op = e["args"]["op_name"]
        per_op[op][k] += e["dur"] / 1e3
        shape = e["args"].get("output_type_shape", "")
        per_node[f"{op:14s} {e['name'][:-len('_kernel_time')]} {shape}"][k] += e["dur"] / 1e3
    step = statistics.median((b - a) / 1e3 for a, b in spans)
    print(f"onnxruntime profile of {args.model}, batch {args.batch}, {args.threads or 'default'} threads: "
          f"{step:.2f} ms per step (median of {len(spans)}; "
          f"load average {os.getloadavg()[0]:.1f})")
    for op, ms in sorted(per_op.items(), key=lambda kv: -statistics.median(kv[1])):
        med = statistics.median(ms)
        print(f"  {op:22s} {med:7.2f} ms  {100 * med / step:5.1f}%")
    print("  costliest nodes:")
    for name, ms in sorted(per_node.items(), key=lambda kv: -statistics.median(kv[1]))[:15]:
        print(f"    {statistics.median(ms):7.2f} ms  {name[:150]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="cnn", help=f"comma-separated, from {sorted(MODELS)} (default cnn)")
    parser.add_argument("--samples", type=int, default=0, help="per epoch (default: the model's own)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads of every peer (0: its default)")
    parser.add_argument("--task", default="fit", choices=["fit", "predict"],
                        help="time training (fit) or inference (predict) of each peer")
    parser.add_argument("--markdown", action="store_true", help="print the README table")
    parser.add_argument("--profile", action="store_true", help="profile onnxforge's compiled train_step")
    parser.add_argument("--model", default="cnn", choices=sorted(MODELS), help=argparse.SUPPRESS)
    parser.add_argument("--worker", choices=sorted(RUNNERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_peer(args)
        return
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {sorted(MODELS)}")
    if args.profile:
        for args.model in models:
            profile(args)
        return
    best, info = compare(os.path.abspath(__file__), models, args)
    print(report(best, info, args, markdown=args.markdown))


if __name__ == "__main__":
    main()
