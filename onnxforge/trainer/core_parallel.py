"""Data parallelism across the cores of one machine: on the CPU, ``fit`` cuts each training batch into one
shard per core, runs the shards side by side in one-thread onnxruntime sessions, and applies the summed
gradients once; ``predict`` and ``evaluate`` run their batches in shards the same way (``ShardedProgram``).

Why: one session with ``n`` intra-op threads splits every operator across the cores, so each operator hands
its output from core to core, and the operators onnxruntime runs on one thread (Slice, Pad, Transpose, Cast,
MaxUnpool) leave the other cores waiting. Shards keep each core on its own samples from the first layer to the
last; only the gradients meet. Seed CNN step (batch 128, 2 vCPUs, AVX-512): one 2-thread session 39 ms (82 ms
in the phases when the hypervisor places the two vCPUs far apart, which hurts the hand-overs), two 1-thread
sessions on 64 samples each 30-32 ms in both phases.

When (``CoreShards.for_model``): the model trains on the CPU with the step ``compile()`` builds (no custom
``train_step``), built-in losses, every trained variable in float32, no ``LossScaleOptimizer``, no metrics
updated inside layers and no state computed from the whole batch (BatchNormalization's statistics);
``graph.row_independence`` proves that each output row of the training forward pass depends on its own input
row only (random draws, which depend on positions and the seed, excepted) and that added losses do not depend
on the batch, so the shards' gradients sum to the batch's (up to the order of float32 additions); the model
uses each weight at least ``MIN_WEIGHT_REUSE`` times per sample; and every shard gets at least ``MIN_SHARD``
samples. Otherwise the one-session step runs. The gradient of each shard is that of its share of the batch's
loss (``compiler.replicated``), so uneven shards are exact too. The update that follows runs as element ranges
on every core where the optimizer's update is elementwise and the weights are many (``segment_update``), else
as one program.

What differs from the one-session step: the order of float32 sums, and random draws (Dropout masks): each
shard draws from its own stream (the model's, its seed moved by the shard's index), so the masks differ
while their distribution does not.

Cores: ``set_intra_op_threads`` / ``$ONNXFORGE_INTRA_OP_THREADS`` if set, else the physical cores this
process may run on. ``$ONNXFORGE_CORE_SHARDS=1`` turns sharding off; ``=n`` asks for ``n`` shards.

Example:
    >>> plan_shards(128, cores=2), plan_shards(40, cores=2), plan_shards(128, cores=1)
    (2, 1, 1)
"""
from __future__ import annotations

__all__ = ["CoreShards", "ShardedProgram", "MIN_SHARD", "MIN_WEIGHT_REUSE", "available_cores", "plan_shards",
           "shardable", "weight_reuse"]

import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import onnx

from ..autodiff.tuning import session_threads
from ..compiler.replicated import (GLOBAL_BATCH, ReplicaGrads, build_apply_step, build_replica_grads,
                                   replica_seed, shard_bounds, shard_bucket_name)
from ..graph.row_independence import analyze, analyze_values
from ..runtime import ProgramRunner
from ..runtime.session import intra_op_threads, physical_cores
from .segment_update import SegmentUpdate

#: Fewest samples per shard: each shard pays a run's fixed cost and the update reads every shard's gradients,
#: so small batches stay whole (seed CNN, 2 cores, batch 64 as two shards of 32: 18.0 vs 19.9 ms per step).
MIN_SHARD = 32
SHARDS_ENV = "ONNXFORGE_CORE_SHARDS"
#: Fewest multiply-adds per sample per trained weight for sharding to pay. Each shard makes a whole set of
#: gradients and the update sums them, a cost that grows with the weights; what sharding saves grows with the
#: work per sample. A Dense-only MLP uses each weight once per sample and loses (784-512-512-10, batch 128,
#: 2 cores: 6.3 vs 6.1 ms; batch 64: 5.3 vs 3.4); convolutions reuse each weight at every position (seed CNN:
#: ~10 times; 32 vs 41 ms), sequence layers at every step.
MIN_WEIGHT_REUSE = 4.0
_SEQUENTIAL_OPS = frozenset({"LSTM", "GRU", "RNN", "Scan", "Loop"})
_LAYOUT_OPS = frozenset({"Transpose", "Reshape", "Cast", "Identity", "Squeeze", "Unsqueeze", "Flatten"})


def available_cores() -> int:
    """The cores sharding spreads over (see the module docstring); read for every batch, so cheap."""
    raw = os.environ.get(SHARDS_ENV, "").strip()
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise ValueError(f"Environment variable {SHARDS_ENV} must be a positive integer (1: no sharding). "
                             f"Received: {SHARDS_ENV}={raw!r}")
        return int(raw)
    return intra_op_threads() or physical_cores()


def plan_shards(batch: int, cores: int | None = None) -> int:
    """How many shards a batch of ``batch`` samples is cut into (1: the one-session step)."""
    cores = available_cores() if cores is None else cores
    return max(1, min(cores, batch // MIN_SHARD))


def _losses_per_sample(model: Any) -> tuple[bool, str]:
    """Whether the compiled losses are built-in ones (per-sample values reduced over the batch), else why."""
    config = model._compiled_config
    if config is None or config.custom_loss:
        return False, "a custom compute_loss"
    for out in config.outputs:
        if out.loss is not None and not _built_in(out.loss):
            return False, f"the loss {type(out.loss).__name__} of output {out.name!r} is not a built-in loss"
    return True, ""


def shardable(model: Any) -> tuple[bool, str]:
    """Whether the model's compiled step may run in shards, and if not, why (checks that need no tracing)."""
    if model._device.kind != "cpu":
        return False, "not on the CPU"
    if model._has_custom_train_step():
        return False, "a custom train_step"
    ok, why = _losses_per_sample(model)
    if not ok:
        return False, why
    if hasattr(model.optimizer, "dynamic_scale"):   # its skip-on-overflow and scale updates live in apply_graph
        return False, "dynamic loss scaling (LossScaleOptimizer)"
    trainable = model._compiled_trainable()
    if not trainable:
        return False, "no trainable weights"
    if any(np.dtype(v.dtype) != np.float32 for v in trainable):
        return False, "trained variables that are not float32"
    return True, ""


def _built_in(loss: Any) -> bool:
    """A loss of this package (a wrapped function too, if the function is), whose per-sample values depend on
    their own sample only; a user's may mix samples, which no check here could see."""
    module = type(loss).__module__ or ""
    fn = getattr(loss, "fn", None)
    if fn is not None:
        module = getattr(fn, "__module__", "") or ""
    return module.startswith("onnxforge.losses")


def weight_reuse(model: onnx.ModelProto, forward: Sequence[str], params: Sequence[str]) -> float:
    """Multiply-adds per sample of the forward pass's Conv / MatMul / Gemm nodes that read a weight, divided by
    the number of weights (``inf`` for a recurrent op or loop: it applies its weights at every step).

    Example:
        >>> from onnxforge.graph import GraphBuilder
        >>> b = GraphBuilder()
        >>> x, w = b.input("x", onnx.TensorProto.FLOAT, ("N", 5, 8)), b.input("w", onnx.TensorProto.FLOAT, (8, 3))
        >>> b.output(b.op("MatMul", [x, w]), "y")
        >>> weight_reuse(b.to_model(), ["y"], ["w"])   # each weight once per row, five rows per sample
        5.0
    """
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    shapes = {}
    for vi in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    sizes = {vi.name: int(np.prod([d or 0 for d in shapes[vi.name]])) for vi in model.graph.input
             if vi.name in set(params)}
    weights = set(sizes)   # a weight, or one only laid out anew (a Keras kernel transposed for Conv)
    for node in model.graph.node:
        if node.op_type in _LAYOUT_OPS and node.input and node.input[0] in weights:
            weights.add(node.output[0])
    producer = {out: node for node in model.graph.node for out in node.output}
    seen, stack, macs = set(), list(forward), 0
    while stack:
        node = producer.get(stack.pop())
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        stack.extend(node.input)
        if node.op_type in _SEQUENTIAL_OPS:
            return float("inf")
        weight = next((i for i in node.input[1:2] if i in weights), None)
        out = shapes.get(node.output[0])
        if node.op_type not in ("Conv", "ConvTranspose", "MatMul", "Gemm") or weight is None or not out \
                or None in out[1:]:
            continue
        w = shapes.get(weight)
        if not w or None in w:
            continue
        if node.op_type == "Conv":
            depth = int(np.prod(w[1:]))
        elif node.op_type == "ConvTranspose":
            depth = int(np.prod(w[2:])) * w[0] // max(1, out[1])
        elif node.op_type == "Gemm" and any(a.name == "transB" and a.i for a in node.attribute):
            depth = w[-1]
        else:
            depth = w[-2] if len(w) >= 2 else 1
        macs += int(np.prod(out[1:])) * depth
    total = sum(sizes.values())
    return macs / total if total else 0.0


class _Workers:
    """Threads for shards 1..n-1 (shard 0 runs on the caller's thread), made again in a forked child, where
    the parent's threads do not exist."""

    def __init__(self, count: int):
        self.count = count
        self._pid = -1
        self._pool: ThreadPoolExecutor | None = None

    def map(self, fn: Any, items: Sequence[Any]) -> list[Any]:
        """``fn`` on every item, the first on this thread, the others side by side on the workers."""
        if self._pid != os.getpid():
            self._pool = ThreadPoolExecutor(max_workers=self.count, thread_name_prefix="onnxforge-shard")
            self._pid = os.getpid()
        futures = [self._pool.submit(fn, item) for item in items[1:]]
        return [fn(items[0])] + [f.result() for f in futures]


def _slices(feeds: Mapping[str, np.ndarray], shards: int) -> list[dict[str, np.ndarray]]:
    """The feeds of each shard: views of consecutive rows (``shard_bounds`` order)."""
    n = len(next(iter(feeds.values())))
    return [{name: value[lo:hi] for name, value in feeds.items()}
            for lo, hi in (shard_bounds(n, r, shards) for r in range(shards))]


class CoreShards:
    """The sharded training step of one compiled model (see the module docstring); built by ``for_model``."""

    def __init__(self, model: Any, grads: ReplicaGrads, shards: int):
        self.grads = grads
        self.shards = shards
        program = grads.program
        device = model._device
        self._bucket_index = [program.outputs.index(b.name) for b in grads.buckets]
        self._sum_index = [(f"{tracker}/{state}", program.outputs.index(out)) for tracker, state, out in program.sums]
        random_names = {var.uid: (name, out) for var, name, out in program.state
                        if var.uid in {v.uid for v in grads.random_state}}
        self._random = [(var, *random_names[var.uid]) for var in grads.random_state]
        # Shard 0 reads and advances the model's own random state; shard r > 0 is fed the same state with its
        # seed moved by r (every shard runs every step, so their counters stay equal).
        self._runners = [ProgramRunner(program.model, device, program.inputs, program.outputs, params=program.params,
                                       state=program.state, name="train_step (shard 0)", threads=1)]
        for r in range(1, shards):
            self._runners.append(ProgramRunner(
                program.model, device, program.inputs + [name for _, name, _ in self._random], program.outputs,
                params=program.params, name=f"train_step (shard {r})", threads=1))
        self._pool = _Workers(shards - 1)
        # The update in element ranges on every core where the optimizer allows it (one bucket: all float32).
        self._ranged = SegmentUpdate.for_optimizer(model.optimizer, grads.buckets[0], shards, device,
                                                   self._pool.map) if len(grads.buckets) == 1 else None
        self._apply: ProgramRunner | None = None
        if self._ranged is None:
            apply = build_apply_step(model.optimizer, grads.trained, grads.buckets, [], shards=shards)
            self._apply = ProgramRunner(apply.model, device, apply.inputs, [], state=apply.state,
                                        learning_rate=apply.learning_rate, name="train_step (update)", threads=1)
        self._bucket_names = [[shard_bucket_name(b.name, r) for r in range(shards)] for b in grads.buckets]
        # One step at a time: two callers' shards must not meet in one update.
        self._lock = threading.Lock()

    @classmethod
    def for_model(cls, model: Any, shards: int) -> tuple[CoreShards | None, str]:
        """The sharded step, or ``None`` and the reason it would not be exact."""
        ok, why = shardable(model)
        if not ok:
            return None, why
        if getattr(model._programs.get("train_step"), "layer_metrics", None):
            return None, "metrics updated inside layers' call()"
        if getattr(model._programs.get("train_step"), "reassigned", None):
            return None, "weights their layer assigns in the step (SpectralNormalization)"
        with session_threads(1):  # each shard runs in a one-thread session
            grads = build_replica_grads(model, model._compiled_config, model._compiled_trainable(),
                                        model._rng_stream(), lambda variables: [list(range(len(variables)))])
        if grads.averaged or grads.cuts:
            return None, "state computed from the whole batch (BatchNormalization's statistics)"
        stateful = {v.uid for v, _, _ in grads.program.state} - {v.uid for v in grads.random_state}
        if stateful:
            return None, "layer state the step updates"
        rows = grads.rows
        ok, why = analyze_values(grads.program.model, rows.forward, rows.penalties, rows.batch_inputs, rows.noise)
        if not ok:
            return None, why
        reuse = weight_reuse(grads.program.model, rows.forward, [name for _, name in grads.program.params])
        if reuse < MIN_WEIGHT_REUSE:
            return None, (f"each weight is used {reuse:.1f} times per sample (< {MIN_WEIGHT_REUSE}): the shards' "
                          "gradient sums would cost more than they save")
        return cls(model, grads, shards), ""

    def train_batch(self, feeds: Mapping[str, np.ndarray], learning_rate: Any) -> dict[str, np.ndarray]:
        """One step on the batch ``feeds`` (checked host arrays by input name): the metric sums."""
        with self._lock:
            return self._step(feeds, learning_rate)

    def shard_feeds(self, feeds: Mapping[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
        """Each shard's feeds: its slice of the batch, the batch's size, and for shard r > 0 the random
        state with its seed moved by r."""
        local = _slices(feeds, self.shards)
        total = np.asarray(len(next(iter(feeds.values()))), np.float32)
        for part in local:
            part[GLOBAL_BATCH] = total
        for var, name, _ in self._random:
            state = np.array(self._runners[0].device_value(var).numpy(), copy=True)
            for r in range(1, self.shards):
                moved = state.copy()
                moved.flat[0] = replica_seed(int(state.flat[0]), r)
                local[r][name] = moved
        return local

    def _step(self, feeds: Mapping[str, np.ndarray], learning_rate: Any) -> dict[str, np.ndarray]:
        local = self.shard_feeds(feeds)
        first = self._runners[0]
        for var, _ in first.params:   # uploaded once here, not by each shard at the same moment
            first.device_value(var)
        outputs = self._pool.map(lambda r: self._runners[r].run(local[r], fetch=False), range(self.shards))
        if self._ranged is not None:
            self._ranged.run([values[self._bucket_index[0]] for values in outputs], learning_rate)
        else:
            apply_feeds = {}
            for names, index in zip(self._bucket_names, self._bucket_index):
                for name, values in zip(names, outputs):
                    apply_feeds[name] = values[index]
            self._apply.run(apply_feeds, learning_rate=learning_rate)
        sums = {}
        for key, index in self._sum_index:
            sums[key] = sum(np.asarray(values[index].numpy(), np.float64) for values in outputs)
        return sums


class ShardedProgram:
    """A program without gradients (``predict``'s infer, ``evaluate``'s eval_step) run in shards: each shard's
    rows in a one-thread session, side by side; predictions are concatenated, metric sums added. Exact where
    ``graph.row_independence`` proves the inference pass row by row (see ``for_model``)."""

    def __init__(self, program: Any, device: Any, shards: int):
        self.shards = shards
        self._runners = [ProgramRunner(program.model, device, program.inputs, program.outputs, params=program.params,
                                       name=f"{program.kind} (shard {r})", threads=1) for r in range(shards)]
        self._pool = _Workers(shards - 1)

    @classmethod
    def for_model(cls, model: Any, kind: str, shards: int) -> tuple[ShardedProgram | None, str]:
        """``kind`` (``"infer"`` or ``"eval_step"``) of ``model`` in shards, or ``None`` and why not."""
        if model._device.kind != "cpu":
            return None, "not on the CPU"
        program = model._programs[kind]
        if program.state or getattr(program, "layer_metrics", None):
            return None, "state or metrics the program updates"
        if kind == "eval_step":
            if model._has_custom_test_step():
                return None, "a custom test_step"
            ok, why = _losses_per_sample(model)
            if not ok:
                return None, why
        infer = model._programs["infer"]
        ok, why = analyze(infer.model, list(infer.inputs))
        return (cls(program, model._device, shards), "") if ok else (None, why)

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[list[Any]]:
        """Each shard's outputs, in shard order."""
        parts = _slices(feeds, self.shards)
        return self._pool.map(lambda r: self._runners[r].run(parts[r]), range(self.shards))

    def predict(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """The outputs of the whole batch."""
        return [np.concatenate(outs, axis=0) for outs in zip(*self.run(feeds))]

    def sums(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """The outputs (metric sums) added over the shards, in the program's output order."""
        return [np.sum([np.asarray(o, np.float64) for o in outs], axis=0) for outs in zip(*self.run(feeds))]
