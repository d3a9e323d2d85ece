"""The training step of one replica in data-parallel training, as two programs: gradients, then the update.

``train_step`` does forward, loss, backward and the optimizer update in one graph. Data parallelism needs
the gradients summed over the replicas between backward and update, so the step is compiled as:

``replica_grads``
    this replica's shard of the global batch -> its share of the gradients of the GLOBAL loss, flattened
    into a few contiguous buckets (one ``Concat`` each, so an all-reduce moves few large messages), the
    metric sums, and the new values of averaged state (BatchNorm moving statistics) in one flat vector.
    The loss terms are scaled so that the replicas' gradients SUM to the gradient of the global batch's
    loss: a mean over the batch (every built-in reduction but ``"sum"``) is weighted by ``n_local /
    global_batch`` (fed), a ``"sum"`` reduction by 1, regularization losses by ``n_local / global_batch``
    (counted once in all). Synchronized BatchNormalization cuts the graph (``TraceContext.cross_replica_sum``):
    the local moments are outputs, their sums inputs, and the gradient reaching the sums comes back in the
    same way (``replica/sum_<j>_grad`` out, its all-reduced total ``replica/sum_<j>_grad_total`` in, added to
    the objective as ``sum(local * total)`` so the local backward carries every replica's share).
``replica_apply``
    the summed gradient buckets, the averaged state, the learning rate -> new parameters, optimizer slots,
    step counter: the optimizer's own ``update_graph``, exactly what ``train_step`` emits.

Example:
    >>> step = build_replica_grads(model, config, model.trainable_weights, rng, plan)   # doctest: +SKIP
    >>> apply = build_apply_step(config.optimizer, step.trained, step.buckets, step.averaged)  # doctest: +SKIP
"""
from __future__ import annotations

__all__ = ["GLOBAL_BATCH", "STATE_UPDATE", "STATE_MEAN", "Bucket", "Cut", "ReplicaGrads", "RowValues",
           "build_replica_grads", "build_apply_step", "replica_seed", "shard_bounds",
           "shard_bucket_name"]

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx

from ..autodiff import backward
from ..autodiff.passes import optimize as optimize_gradients
from ..graph import GraphBuilder, Value
from ..losses import batch_size
from ..optimizers import Optimizer
from ..optimizers.base import apply_constraints
from ..optimizers.ema import ema_graph
from ..optimizers.keras_style import is_keras_style
from ..ops.core import stopped_outputs
from ..variables import Variable
from ..graph import contract
from .cleanup import cleanup
from .config import CompileConfig
from .programs import CompileError, Program, _finish, _metric_sums, _scalar, _sum_outputs, _Tracer, _typed
from .program_trace import ProgramTrace, declare_input, release
from .overridden_apply import gradients_through_apply, overrides_apply

_FLOAT = onnx.TensorProto.FLOAT
#: float32 scalar input: the number of samples in the global batch this step (all replicas together).
GLOBAL_BATCH = "replica/global_batch"
#: Output of ``replica_grads``: the new local values of the averaged state, flattened and concatenated.
STATE_UPDATE = "replica/state_update"
#: Input of ``replica_apply``: ``STATE_UPDATE`` averaged over the replicas.
STATE_MEAN = "replica/state_mean"
#: Reductions whose value is a sum over the batch rather than a mean.
_SUM_REDUCTIONS = ("sum", None, "none")


#: Seeds of replica r > 0 are replica 0's moved by r times this (the golden ratio's 32-bit word).
_SEED_STRIDE = 0x9E3779B1
_SEED_MODULUS = 2 ** 31 - 1


def replica_seed(seed: int, replica: int) -> int:
    """The seed replica ``replica`` draws with when replica 0 draws with ``seed``: a different stream per
    replica, the same on every run.

    Example:
        >>> replica_seed(7, 0), replica_seed(7, 1) != 7
        (7, True)
    """
    return (seed + replica * _SEED_STRIDE) % _SEED_MODULUS if replica else seed


def shard_bounds(n: int, rank: int, size: int) -> tuple[int, int]:
    """``[lo, hi)`` of rank ``rank``'s shard of ``n`` samples (``np.array_split`` order).

    Example:
        >>> [shard_bounds(5, r, 2) for r in range(2)]
        [(0, 3), (3, 5)]
    """
    q, r = divmod(n, size)
    lo = rank * q + min(rank, r)
    return lo, lo + q + (1 if rank < r else 0)


def bucket_name(i: int) -> str:
    return f"replica/grads_{i}"


@dataclass
class Bucket:
    """One contiguous gradient buffer: ``members`` are ``(variable, offset, size)`` in elements."""

    name: str
    size: int
    dtype: np.dtype
    members: list[tuple[Variable, int, int]] = field(default_factory=list)


@dataclass
class Cut:
    """A cross-replica sum between stages: ``source`` (an output, this replica's part) summed into ``result``
    (an input of a later stage), both of ``shape`` and ``dtype``."""

    source: str
    result: str
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


@dataclass
class ReplicaGrads:
    """The ``replica_grads`` program and the layout of what it exchanges.

    Attributes:
        program: the whole program (``Program.outputs``: metric sums, buckets, ``STATE_UPDATE``, cut sources).
        trained: the trained variables, in gradient order.
        buckets: the gradient buckets, in output order.
        averaged: ``(variable, offset, size)`` of every state variable averaged over the replicas.
        cuts: the cross-replica sums (forward moments, then the gradients that go back through them).
        rows: what decides whether sharding the batch is exact (``graph.row_independence.analyze_values``):
            the batch inputs, the model's outputs in training mode, the added losses, the random draws.
        random_state: the random streams' state variables (each replica draws from its own).
    """

    program: Program
    trained: list[Variable]
    buckets: list[Bucket]
    averaged: list[tuple[Variable, int, int]]
    cuts: list[Cut]
    rows: RowValues = field(default_factory=lambda: RowValues([], [], [], {}))
    random_state: list[Variable] = field(default_factory=list)


@dataclass
class RowValues:
    """Value names of a replica's program that say whether its rows are independent: ``batch_inputs`` carry
    the batch; the model's outputs ``forward`` must keep rows apart; ``penalties`` (``add_loss`` terms) must not
    depend on the batch; ``noise`` maps each random draw to the value it was drawn like."""

    batch_inputs: list[str]
    forward: list[str]
    penalties: list[str]
    noise: dict[str, str]


def _share_objective(t: _Tracer, config: CompileConfig, global_batch: Value
                     ) -> tuple[Value, list[tuple[str, str, Value]]]:
    """This replica's part of the global loss, and the loss sums whose totals over the replicas are the
    single-process sums of the global batch (``loss/total`` = global loss x global batch)."""
    b = t.b
    if not config.has_loss:
        raise CompileError("No loss to compute. Provide a `loss` argument in `compile()`.")
    n = batch_size(t.preds[0])
    share = n * b.op("Reciprocal", [global_batch], shape=())
    terms, per_output = [], []
    for o in config.outputs:
        if o.loss is None:
            continue
        value = _scalar(b, o.loss(t.targets[o.name], t.preds[o.index], t.weights[o.name]))
        if getattr(o.loss, "reduction", "sum_over_batch_size") not in _SUM_REDUCTIONS:
            value = value * share
        per_output.append((o, value))
        terms.append(value if o.loss_weight == 1.0 else value * float(o.loss_weight))
    if t.ctx.losses:
        regularization = [_scalar(b, r) for r in t.ctx.losses]
        reg = regularization[0] if len(regularization) == 1 else b.op("Sum", regularization, dtype=_FLOAT, shape=())
        terms.append(reg * share)
    total = terms[0] if len(terms) == 1 else b.op("Sum", terms, dtype=_FLOAT, shape=())
    sums = [(contract.LOSS, "total", total * global_batch), (contract.LOSS, "count", n)]
    if config.per_output_losses:
        for o, value in per_output:
            sums += [(f"{o.name}_loss", "total", value * global_batch), (f"{o.name}_loss", "count", n)]
    return total, sums


def _static(v: Value, what: str) -> None:
    if v.shape is None or not all(isinstance(d, int) for d in v.shape) or v.dtype != _FLOAT:
        raise CompileError(f"{what} needs a float32 value of static shape (it is exchanged between replicas in "
                           f"buffers sized once). Received: dtype={v.dtype}, shape={v.shape}")


def _flat(b: GraphBuilder, v: Value) -> Value:
    return b.op("Reshape", [v, b.const(np.asarray([-1], np.int64))], dtype=v.dtype)


def _concat(b: GraphBuilder, parts: list[Value], size: int, dtype: int | None) -> Value:
    v = parts[0] if len(parts) == 1 else b.op("Concat", parts, axis=0, dtype=dtype)
    v.shape = (size,)
    return v


def _size(var: Variable) -> int:
    return int(np.prod(var.shape, dtype=np.int64))


def build_replica_grads(model, config: CompileConfig, trainable: Sequence[Variable], rng_state: Variable | None,
                        plan_buckets: Callable[[list[Variable]], list[list[int]]]) -> ReplicaGrads:
    """The ``replica_grads`` program (see the module docstring).

    Args:
        model: the model.
        config: its resolved compile configuration.
        trainable: the variables ``compile()`` captured as trainable.
        rng_state: the model's in-graph RNG state (each replica keeps its own stream).
        plan_buckets: groups the trained variables into buckets: lists of indices, each list one dtype.
    """
    opt = config.optimizer
    if opt is None:
        raise CompileError("No optimizer to train with. Provide an `optimizer` argument in `compile()`.")
    t = _Tracer(model, training=True, weights="inputs", config=config, rng_state=rng_state, replicated=True)
    b, ctx = t.b, t.ctx
    global_batch = declare_input(b, GLOBAL_BATCH, np.float32, ())
    t.extra_inputs.append(global_batch)
    total, loss_sums = _share_objective(t, config, global_batch)
    trained = [v for v in trainable if v.uid in ctx.reads]
    clash = [v.path for v in trained if v.uid in ctx.updates]
    if clash:
        raise CompileError(f"Variables {clash} are both trained and updated by their layer; a state variable "
                           "must be non-trainable.")
    params = [ctx.reads[v.uid][1] for v in trained]
    objective = total * float(opt.loss_scale_factor) if opt.loss_scale_factor is not None else total
    cuts: list[Cut] = []
    host_out: list[tuple[str, Value]] = []
    for j, (local, summed) in enumerate(ctx.replica_sums):
        t.extra_inputs.append(summed)
        _static(local, "cross_replica_sum")
        cuts.append(Cut(f"replica/local_{j}", summed.name, tuple(local.shape), np.dtype(np.float32)))
        host_out.append((f"replica/local_{j}", local))
        back = declare_input(b, f"replica/sum_{j}_grad_total", np.float32, local.shape)
        t.extra_inputs.append(back)
        objective = objective + b.op("ReduceSum", [local * back], keepdims=0, dtype=_FLOAT, shape=())
    wrt = params + [summed for _, summed in ctx.replica_sums]
    # stop_gradient holds in the sharded step as in the one-session one (its outputs are cut).
    grads_by_name = backward(b, objective, wrt, cut=stopped_outputs(b)) if wrt else {}
    optimize_gradients(b)
    for j, (local, summed) in enumerate(ctx.replica_sums):
        g = grads_by_name.get(summed.name)
        if g is None:   # nothing after the exchange depends on it: no gradient goes back through it
            g = b.const(np.zeros(local.shape, np.float32))
        g.shape = local.shape
        cuts.append(Cut(f"replica/sum_{j}_grad", f"replica/sum_{j}_grad_total", tuple(local.shape),
                        np.dtype(np.float32)))
        host_out.append((f"replica/sum_{j}_grad", g))

    buckets: list[Bucket] = []
    for i, indices in enumerate(plan_buckets(trained)):
        bucket = Bucket(bucket_name(i), 0, np.dtype(trained[indices[0]].dtype))
        parts = []
        for k in indices:
            var, g = trained[k], grads_by_name[params[k].name]
            g.dtype = g.dtype or params[k].dtype
            bucket.members.append((var, bucket.size, _size(var)))
            bucket.size += _size(var)
            parts.append(_flat(b, g))
        host_out.append((bucket.name, _concat(b, parts, bucket.size, params[indices[0]].dtype)))
        buckets.append(bucket)

    state: list[tuple[Variable, Value, Value]] = []
    averaged: list[tuple[Variable, int, int]] = []
    averaged_parts: list[Value] = []
    offset = 0
    for var, new_value in ctx.updates.values():
        old = ctx.read(var)
        # BatchNorm moving statistics: the replicas' mean (Keras ON_READ); a stateful RNN's states are each
        # replica's own rows.
        if np.dtype(var.dtype) == np.float32 and not getattr(var, "_replica_local", False):
            averaged.append((var, offset, _size(var)))
            averaged_parts.append(_flat(b, _typed(new_value, old)))
            offset += _size(var)
        else:
            state.append((var, old, _typed(new_value, old)))
    if averaged_parts:
        host_out.append((STATE_UPDATE, _concat(b, averaged_parts, offset, _FLOAT)))
    if t.rng is not None and t.rng.used:
        state.append((rng_state, ctx.read(rng_state), t.rng.new_state()))
    state += [(var, old, _typed(new, old)) for var, old, new in ctx.seed_streams.updates()]
    sum_out, records = _sum_outputs(loss_sums + _metric_sums(t, config))
    program = _finish(t, "replica_grads", sum_out + host_out, state, records, None, trained)
    noise = dict(t.rng.draws) if t.rng is not None else {}
    noise.update(ctx.seed_streams.draws())
    rows = RowValues([n for n in t.host_inputs() if n not in {v.name for v in t.extra_inputs}],
                     [p.name for p in t.preds], [v.name for v in ctx.losses if hasattr(v, "name")], noise)
    random_state = ([rng_state] if t.rng is not None and t.rng.used else []) + \
        ctx.seed_streams.variables()
    return ReplicaGrads(program, trained, buckets, averaged, cuts, rows, random_state)


def shard_bucket_name(bucket: str, shard: int) -> str:
    """The input of ``replica_apply`` that takes ``bucket`` as shard ``shard`` computed it."""
    return f"{bucket}/shard_{shard}"


def build_apply_step(optimizer: Optimizer, trained: Sequence[Variable], buckets: Sequence[Bucket],
                     averaged: Sequence[tuple[Variable, int, int]], shards: int = 1) -> Program:
    """The ``replica_apply`` program: summed gradient buckets (and averaged state) -> the optimizer update.

    Inputs are the bucket names and ``STATE_MEAN`` (host-fed, or bound from device buffers), the learning
    rate, and, as state pairs, the trained variables, their slots, ``iterations`` and the averaged state.
    With ``shards > 1`` each bucket comes in once per shard (``shard_bucket_name``) and the program sums them
    first: the shards of one process (``trainer.core_parallel``) hand their buffers over as they are.
    """
    b = GraphBuilder()
    ctx = ProgramTrace(b, training=True, weights="inputs")
    inputs: list[str] = []
    grads: dict[int, Value] = {}
    for bucket in buckets:
        if shards == 1:
            flat = declare_input(b, bucket.name, bucket.dtype, (bucket.size,))
            inputs.append(bucket.name)
        else:
            parts = [declare_input(b, shard_bucket_name(bucket.name, r), bucket.dtype, (bucket.size,))
                     for r in range(shards)]
            inputs += [p.name for p in parts]
            flat = b.op("Sum", parts, dtype=parts[0].dtype, shape=(bucket.size,))
        for var, offset, size in bucket.members:
            grads[var.uid] = _piece(b, flat, offset, size, var.shape)
    lr = declare_input(b, release(b, contract.LEARNING_RATE), np.float32, ())
    if overrides_apply(optimizer):   # the subclass's apply sees the summed gradients first, as in Keras's fit
        passed, through = gradients_through_apply(optimizer, ctx, trained, [grads[v.uid] for v in trained])
        grads = {**grads, **{v.uid: g for v, g in zip(passed, through)}}
    params = [ctx.read(v) for v in trained]
    state: list[tuple[Variable, Value, Value]] = []
    # A user's Keras 3 update_step, or gradient accumulation: apply_graph emits it, its writes are the state.
    if is_keras_style(optimizer) or getattr(optimizer, "gradient_accumulation_steps", None):
        updates = optimizer.apply_graph(b, ctx.read, trained, params, [grads[v.uid] for v in trained], lr)
        state += [(var, ctx.read(var), _typed(new, ctx.read(var))) for var, new in updates]
    else:
        state += _update_state(optimizer, b, ctx, trained, params, grads, lr)
    if averaged:
        mean = declare_input(b, STATE_MEAN, np.float32, (sum(size for _, _, size in averaged),))
        inputs.append(STATE_MEAN)
        for var, offset, size in averaged:
            old = ctx.read(var)
            state.append((var, old, _typed(_piece(b, mean, offset, size, var.shape), old)))
    state_names = []
    for var, v_in, v_out in state:
        out = contract.new_state(v_in.name)
        b.output(v_out, out)
        state_names.append((var, v_in.name, out))
    model = b.to_model(name="onnxforge_replica_apply")
    model, _ = cleanup(model, set(inputs) | {s[1] for s in state_names} | {lr.name})
    model.metadata_props.add(key=contract.PROGRAM_KEY, value="replica_apply")
    return Program(kind="replica_apply", model=model, inputs=inputs, state=state_names, learning_rate=lr.name,
                   trainable=list(trained))


def _update_state(optimizer: Optimizer, b: GraphBuilder, ctx: ProgramTrace, trained: Sequence[Variable],
                  params: Sequence[Value], grads: dict[int, Value], lr: Value) -> list[tuple[Variable, Value, Value]]:
    """``(variable, input, new value)`` of a built-in optimizer's update: weights, EMA averages, slots, step."""
    state: list[tuple[Variable, Value, Value]] = []
    iterations = ctx.read(optimizer.iterations)
    slot_vars = [optimizer.slots(v) for v in trained]
    slot_vals = [{k: ctx.read(sv) for k, sv in slots.items()} for slots in slot_vars]
    new_params, new_slots = optimizer.update_graph(b, trained, params, [grads[v.uid] for v in trained], slot_vals,
                                                   lr, iterations)
    if getattr(optimizer, "use_ema", False):   # as Optimizer.apply_graph: the averages follow the update, before the constraints
        new_params, averages = ema_graph(optimizer, b, ctx.read, trained, new_params, iterations)
        state += [(avg, ctx.read(avg), _typed(new, ctx.read(avg))) for avg, new in averages]
    for var, p_in, p_new in zip(trained, params, apply_constraints(trained, new_params)):
        state.append((var, p_in, _typed(p_new, p_in)))
    for slots, vals, news in zip(slot_vars, slot_vals, new_slots):
        for k, sv in slots.items():
            state.append((sv, vals[k], _typed(news[k], vals[k])))
    state.append((optimizer.iterations, iterations, _typed(iterations + 1, iterations)))
    return state


def _piece(b: GraphBuilder, flat: Value, offset: int, size: int, shape: tuple) -> Value:
    """``flat[offset:offset + size]`` shaped ``shape``."""
    part = b.op("Slice", [flat, b.const(np.asarray([offset], np.int64)), b.const(np.asarray([offset + size], np.int64)),
                          b.const(np.asarray([0], np.int64))], dtype=flat.dtype, shape=(size,))
    return b.op("Reshape", [part, b.const(np.asarray(shape, np.int64))], dtype=flat.dtype, shape=tuple(shape))
