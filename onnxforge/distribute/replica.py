"""One rank's part of data-parallel ``fit`` / ``evaluate`` / ``predict``: shard, compute, all-reduce, update.

Every rank receives the same GLOBAL batch from the loop (the same data, the same shuffle), checks all of it
(a bad label raises the same error on every rank instead of leaving the others waiting) and takes its shard:
``np.array_split`` order, so with ``n`` samples and ``p`` ranks the first ``n % p`` ranks get one sample
more. The last, partial batch of an epoch is split the same way; a rank left with no sample (a batch
smaller than the number of ranks) skips the programs and contributes zeros. Because each rank's loss is
weighted by ``n_local / n`` (``compiler.replicated``), the summed gradients are those of the global batch
whatever the split.

Training step: the gradient program (in stages, with exchanges between, for synchronized BatchNorm) writes
the gradient buckets; one in-flight ``Iallreduce`` per bucket, plus one small float64 vector with the metric
sums, the BatchNorm moving statistics and a "has samples" count, sums them over the ranks; the update
program applies the optimizer to the summed gradients on every rank alike, and sets the moving statistics
to the mean over the ranks that had samples (Keras's per-replica statistics, read as their mean).

Example:
    >>> driver = ReplicaDriver(model, strategy)               # doctest: +SKIP
    >>> sums = driver.train_batch([x], [y], None)             # doctest: +SKIP
"""
from __future__ import annotations

__all__ = ["ReplicaDriver", "shard_bounds"]

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..compiler.replicated import GLOBAL_BATCH, STATE_MEAN, STATE_UPDATE, replica_seed, shard_bounds
from ..runtime import ProgramRunner
from ..trainer.mixin import _BUILD_LOCK
from ..variables import Variable, unique_variables
from .program_split import ReplicaPrograms, build_replica_programs
from .stage_runner import StageRunner

_MAX_DIMS = 8


class ReplicaDriver:
    """Runs one model's batches data-parallel on this rank (see the module docstring)."""

    def __init__(self, model: Any, strategy: Any):
        self.model = model
        self.comm = strategy.comm
        self.bucket_bytes = strategy.bucket_bytes
        self.programs: ReplicaPrograms | None = None
        self.steps = 0
        self.needs_sync = True     # weights from rank 0 before the next batch (first use, each fit())
        self._seeded = False
        self._stages: list[StageRunner] = []
        self._apply: ProgramRunner | None = None
        self._buckets: list[np.ndarray] = []     # host buffers MPI reduces in place
        self._bucket_values: list[Any] = []      # what the gradient program writes (the same memory on the CPU)

    # ------------------------------------------------------------------------------------ set-up
    def _prepare(self, xs: Sequence[np.ndarray], method: str) -> None:
        self.model._ensure_programs(xs, method)
        if self.needs_sync:
            self.sync_weights()

    def sync_weights(self) -> None:
        """Every rank takes rank 0's weights, BatchNorm statistics and optimizer state. The first time, the
        random streams too, then each rank > 0 moves its seeds by its rank (different Dropout masks per rank,
        the same on every run)."""
        model = self.model
        rng = model.rng_variables() if hasattr(model, "rng_variables") else []
        rng_ids = {v.uid for v in rng}
        variables = [v for v in unique_variables(list(model.weights) + _optimizer_variables(model)) if v.uid not in rng_ids]
        if not self._seeded:
            variables += rng
        _broadcast_variables(self.comm, variables, "the initial broadcast of weights from rank 0")
        if not self._seeded and self.comm.rank > 0:
            for var in rng:
                state = np.array(var.numpy(), copy=True)
                state.flat[0] = replica_seed(int(state.flat[0]), self.comm.rank)
                var.assign(state)
        self._seeded = True
        self.needs_sync = False

    def _ensure_train(self) -> ReplicaPrograms:
        if self.programs is not None:
            return self.programs
        import onnxruntime as ort

        model = self.model
        device = model._device
        with _BUILD_LOCK:   # tracing is process-global (one active trace): builds take turns across threads
            programs = build_replica_programs(model, model._compiled_config, model._compiled_trainable(),
                                              model._rng_stream(), self.bucket_bytes)
        grads = programs.grads.program
        self._buckets = [np.zeros(b.size, b.dtype) for b in programs.grads.buckets]
        if device.kind == "cpu":
            self._bucket_values = [ort.OrtValue.ortvalue_from_numpy(a) for a in self._buckets]
        else:   # host staging: the device buffer is copied to the host array before MPI
            self._bucket_values = [ort.OrtValue.ortvalue_from_shape_and_type(a.shape, a.dtype, device.ort_device,
                                                                             device.device_id) for a in self._buckets]
        preset = {b.name: v for b, v in zip(programs.grads.buckets, self._bucket_values)}
        params = {name: var for var, name in grads.params}
        state = {name: (var, out) for var, name, out in grads.state}
        fetch = [n for n in grads.outputs if n not in preset]
        whole_inputs = {i.name for i in grads.model.graph.input}
        carry = [i.name for m in programs.stages for i in m.graph.input if i.name not in whole_inputs]
        self._stages = [StageRunner(m, device, f"replica_grads (stage {s})" if len(programs.stages) > 1 else
                                    "replica_grads", params, state, preset, carry, fetch)
                        for s, m in enumerate(programs.stages)]
        apply = programs.apply
        self._apply = ProgramRunner(apply.model, device, apply.inputs, [], state=apply.state,
                                    learning_rate=apply.learning_rate, name="replica_apply")
        self._sum_shapes = _output_shapes(grads.model, [out for _, _, out in grads.sums])
        self.programs = programs
        return programs

    # ------------------------------------------------------------------------------------ batches
    def _shard(self, feeds: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int, int]:
        n = len(next(iter(feeds.values())))
        lo, hi = shard_bounds(n, self.comm.rank, self.comm.size)
        return {k: v[lo:hi] for k, v in feeds.items()}, hi - lo, n

    def train_batch(self, xs: Sequence[np.ndarray], ys: Any, sample_weight: Any) -> dict[str, np.ndarray]:
        model = self.model
        if model._has_custom_train_step():
            raise NotImplementedError(
                f"MPIStrategy trains the step compile() builds from the loss and optimizer; model "
                f"{model._model_name()!r} overrides train_step, which is not supported data-parallel yet. Train it "
                "in one process, or express the step as compile(loss=..., optimizer=...).")
        self._prepare(xs, "train_on_batch")
        model._step_runner("train_step", "train_on_batch")   # the no-loss error, if so
        programs = self._ensure_train()
        feeds = model._feeds(xs, ys, sample_weight, "train_on_batch")
        model._runners["train_step"].check_feeds(feeds)   # what the one-process step checks (a zero-length sequence)
        local, n_local, n = self._shard(feeds)
        local[GLOBAL_BATCH] = np.asarray(n, np.float32)
        self.steps += 1
        host = self._run_stages(programs, local, n_local)
        grads = programs.grads
        if n_local:
            if model._device.kind != "cpu":
                for array, value in zip(self._buckets, self._bucket_values):
                    array[...] = value.numpy()
        else:
            for array in self._buckets:
                array.fill(0)
        state_size = sum(size for _, _, size in grads.averaged)
        sums = [host.get(out) for _, _, out in grads.program.sums]
        small = _pack(sums, self._sum_shapes, n_local,
                      [host[STATE_UPDATE]] if state_size and n_local else [np.zeros(state_size)], state_size)
        self.comm.allreduce(self._buckets + [small], f"the gradient all-reduce of step {self.steps}")
        sums_out, rest = _unpack(small, grads.program.sums, self._sum_shapes)
        feeds_apply = {b.name: array for b, array in zip(grads.buckets, self._buckets)}
        if state_size:
            feeds_apply[STATE_MEAN] = (rest[:state_size] / rest[state_size]).astype(np.float32)
        self._apply.run(feeds_apply, learning_rate=model.optimizer.fed_learning_rate())
        model.optimizer._advance()
        return sums_out

    def _run_stages(self, programs: ReplicaPrograms, feeds: dict[str, np.ndarray], n_local: int) -> dict[str, Any]:
        host: dict[str, Any] = {}
        carried: dict[str, Any] = {}
        for stage, (runner, cuts) in enumerate(zip(self._stages, programs.rounds)):
            if n_local:
                out, kept = runner.run(feeds, carried)
                host.update(out)
                carried.update(kept)
            if cuts:
                buf = np.concatenate([np.asarray(host[c.source], np.float32).reshape(-1) if n_local else
                                      np.zeros(c.size, np.float32) for c in cuts])
                kind = "moments" if any(c.source.startswith("replica/local_") for c in cuts) else "gradients"
                self.comm.allreduce([buf], f"the synchronized BatchNormalization {kind} exchange after stage "
                                           f"{stage} of step {self.steps}")
                offset = 0
                for c in cuts:
                    feeds[c.result] = buf[offset:offset + c.size].reshape(c.shape)
                    offset += c.size
        return host

    def eval_batch(self, xs: Sequence[np.ndarray], ys: Any, sample_weight: Any) -> dict[str, np.ndarray]:
        model = self.model
        if model._has_custom_test_step():
            raise NotImplementedError(
                f"MPIStrategy evaluates with the compiled loss and metrics; model {model._model_name()!r} overrides "
                "test_step, which is not supported data-parallel yet.")
        self._prepare(xs, "test_on_batch")
        runner = model._step_runner("eval_step", "test_on_batch")
        program = model._programs["eval_step"]
        feeds = model._feeds(xs, ys, sample_weight, "test_on_batch")
        local, n_local, _ = self._shard(feeds)
        shapes = _output_shapes(program.model, [out for _, _, out in program.sums])
        sums = [None] * len(program.sums)
        if n_local:
            by_name = dict(zip(program.outputs, runner.run(local)))
            sums = [by_name[out] for _, _, out in program.sums]
        small = _pack(sums, shapes, n_local, [], 0)
        self.comm.allreduce([small], "the evaluation sums all-reduce")
        return _unpack(small, program.sums, shapes)[0]

    def predict_batch(self, xs: Sequence[np.ndarray]) -> list[np.ndarray]:
        model = self.model
        self._prepare(xs, "predict")
        feeds = model._input_feeds(xs, "predict")
        local, n_local, n = self._shard(feeds)
        outputs = model._runners["infer"].run(local) if n_local else None
        count = len(model._programs["infer"].outputs)
        header = np.zeros((count, 3 + _MAX_DIMS), np.int64)
        for i, out in enumerate(outputs or []):
            if out.ndim - 1 > _MAX_DIMS:
                raise NotImplementedError(f"MPIStrategy.predict gathers outputs of rank <= {_MAX_DIMS + 1}; output {i} "
                                          f"has shape {out.shape}.")
            header[i, :3] = (len(out), np.dtype(out.dtype).num, out.ndim - 1)
            header[i, 3:3 + out.ndim - 1] = out.shape[1:]
        headers = self.comm.allgather(header, "the prediction shapes all-gather")
        results = []
        for i in range(count):
            source = headers[0, i]   # rank 0 always has samples: the first shards get the extra ones
            trailing = tuple(int(d) for d in source[3:3 + int(source[2])])
            dtype = _dtype_of(int(source[1]))
            per = int(np.prod(trailing, dtype=np.int64))
            counts = [int(h[i, 0]) * per for h in headers]
            send = outputs[i].astype(dtype, copy=False) if outputs is not None else np.zeros(0, dtype)
            flat = self.comm.allgatherv(send, counts, f"the prediction all-gather of output {i}")
            results.append(flat.reshape((n,) + trailing))
        return results


# ------------------------------------------------------------------------------------------ helpers
def _optimizer_variables(model: Any) -> list[Variable]:
    opt = getattr(model, "optimizer", None)
    return list(getattr(opt, "variables", []) or [])


def _broadcast_variables(comm: Any, variables: list[Variable], what: str) -> None:
    """Rank 0's values of ``variables`` on every rank: one contiguous broadcast per dtype."""
    by_dtype: dict[np.dtype, list[Variable]] = {}
    for v in variables:
        by_dtype.setdefault(np.dtype(v.dtype), []).append(v)
    for dtype, group in sorted(by_dtype.items(), key=lambda item: item[0].str):
        buffer = np.concatenate([np.asarray(v.numpy(), dtype).reshape(-1) for v in group]) if group else None
        comm.broadcast(buffer, f"{what} ({dtype.name})")
        if comm.rank == 0:
            continue
        offset = 0
        for v in group:
            size = int(np.prod(v.shape, dtype=np.int64))
            v.assign(buffer[offset:offset + size].reshape(v.shape))
            offset += size


def _output_shapes(model: Any, output_names: list[str]) -> list[tuple[int, ...]]:
    """Static shapes of a program's metric-sum outputs (sized once: a rank with no samples sends zeros)."""
    types = {o.name: o.type.tensor_type for o in model.graph.output}
    shapes = []
    for name in output_names:
        t = types[name]
        dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim)
        if not t.HasField("shape") or None in dims:
            raise NotImplementedError(f"MPIStrategy sums metric state {name!r}, whose shape is not static "
                                      f"({dims if t.HasField('shape') else 'unknown'}).")
        shapes.append(dims)
    return shapes


def _pack(sums: list[Any], shapes: list[tuple[int, ...]], n_local: int, extra: list[np.ndarray],
          extra_size: int) -> np.ndarray:
    """One float64 vector: the metric sums (zeros without samples), ``extra`` (size ``extra_size``), then 1.0
    if this rank had samples (the count the state mean divides by)."""
    parts = [np.asarray(s, np.float64).reshape(-1) if s is not None and n_local else np.zeros(int(np.prod(shape)))
             for s, shape in zip(sums, shapes)]
    parts += [np.asarray(e, np.float64).reshape(-1) for e in extra] if extra_size else []
    parts.append(np.asarray([1.0 if n_local else 0.0]))
    return np.concatenate(parts)


def _unpack(small: np.ndarray, records: list[tuple[str, str, str]], shapes: list[tuple[int, ...]]
            ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    out, offset = {}, 0
    for (tracker, state, _), shape in zip(records, shapes):
        size = int(np.prod(shape))
        out[f"{tracker}/{state}"] = small[offset:offset + size].reshape(shape).copy()
        offset += size
    return out, small[offset:]


def _dtype_of(num: int) -> np.dtype:
    for code in np.typecodes["All"]:
        try:
            dt = np.dtype(code)
        except TypeError:
            continue
        if dt.num == num:
            return dt
    raise ValueError(f"Unknown numpy dtype number {num}.")
