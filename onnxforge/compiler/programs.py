"""Building the three programs of a compiled model: ``infer``, ``eval_step`` and ``train_step``.

Each program is an ``onnx.ModelProto`` in standard ``ai.onnx`` ops with the stable I/O names of
``onnxforge.graph.contract``, plus a ``Program`` record telling the runtime which inputs come from the
host each call, which are Variables (read-only parameters or state pairs) and which outputs go back to
the host.

Example:
    >>> prog = build_infer(model)                                   # doctest: +SKIP
    >>> [i.name for i in prog.model.graph.input][:1]                # doctest: +SKIP
    ['input_layer']
"""
from __future__ import annotations

__all__ = ["Program", "build_infer", "build_eval_step", "build_train_step", "CompileError"]

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from ..autodiff import backward
from ..autodiff.passes import optimize as optimize_gradients
from ..graph import GraphBuilder, Value, onnx_dtype
from ..losses import batch_size, reduce
from ..keras_masks import get_keras_mask, set_keras_mask
from ..variables import Variable
from ..graph import contract
from .cleanup import cleanup
from .config import CompileConfig, OutputConfig, keras_dtype, user_metric
from ..graph.rng import CounterRng
from .custom_loss import custom_objective
from .overridden_apply import gradients_through_apply, overrides_apply
from .program_trace import ProgramTrace, declare_input, onnx_shape, release, reserve

_FLOAT = onnx.TensorProto.FLOAT


class CompileError(ValueError):
    """The model cannot be compiled as asked (no loss to train on, a state variable also trained, ...)."""


@dataclass
class Program:
    """One compiled program and how to drive it.

    Attributes:
        kind: ``"infer"``, ``"eval_step"`` or ``"train_step"``.
        model: the ONNX model.
        inputs: host-fed inputs, in order: model inputs, then (steps) targets and sample weights.
        params: ``(variable, input name)`` of read-only variables (weights, frozen weights, statistics).
        state: ``(variable, input name, output name)`` of variables the program updates.
        learning_rate: the learning-rate input (training steps), else ``None``.
        outputs: outputs fetched to the host, in order (predictions, or metric sums).
        sums: ``(tracker name, state name, output name)`` of every metric sum output.
        trainable: the variables the step trains (captured at compile time).
        layer_metrics: ``(tracker name, metric)`` of the metrics layers update in ``call()``, whose sums the
            program outputs under that name (reported after the compiled metrics, as Keras lists sublayer
            metrics after its own).
        portable: ``False`` when the graph holds a fused training kernel only onnxruntime's CPU provider is
            known to run (``build_train_step(fused_ops=True)``); exports rebuild such a program without.
        reassigned: names of the trained variables a layer also assigns in the step (SpectralNormalization's
            kernel): the optimizer updates them from the assigned value.
    """

    kind: str
    model: onnx.ModelProto
    inputs: list[str]
    params: list[tuple[Variable, str]] = field(default_factory=list)
    state: list[tuple[Variable, str, str]] = field(default_factory=list)
    learning_rate: str | None = None
    outputs: list[str] = field(default_factory=list)
    sums: list[tuple[str, str, str]] = field(default_factory=list)
    trainable: list[Variable] = field(default_factory=list)
    layer_metrics: list[tuple[str, Any]] = field(default_factory=list)
    portable: bool = True
    reassigned: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------ tracing
class _Tracer:
    """A builder with the model's inputs declared and its forward pass traced."""

    def __init__(self, model: Any, training: bool, weights: str, config: CompileConfig | None = None,
                 rng_state: Variable | None = None, replicated: bool = False, fused_ops: bool = False,
                 weight_ranks: Mapping[str, int] | None = None):
        self.model = model
        self.training = training
        self.b = b = GraphBuilder(float32_fallback=True)
        in_names = list(model.input_names)
        out_names = list(model.output_names)
        self.outs = config.outputs if config is not None else []
        with_targets = [o for o in self.outs if o.has_target]
        wanted = in_names + [contract.target(o.name) for o in with_targets] + \
            [contract.sample_weight(o.name) for o in with_targets] + [contract.LEARNING_RATE]
        if config is None:
            wanted += out_names
        reserve(b, _unique(wanted))
        self.xs = []
        for name, kt in zip(in_names, model.inputs):
            self.xs.append(b.input(release(b, name), onnx_dtype(keras_dtype(kt.dtype)), onnx_shape(kt.shape, name)))
        self.targets: dict[str, Value] = {}
        self.weights: dict[str, Value] = {}
        for o in with_targets:
            self.targets[o.name] = b.input(release(b, contract.target(o.name)), onnx_dtype(o.target_dtype),
                                           onnx_shape(o.target_shape, contract.target(o.name)))
        for o in with_targets:
            self.weights[o.name] = b.input(release(b, contract.sample_weight(o.name)), _FLOAT,
                                           _weight_shape(o, (weight_ranks or {}).get(o.name, 1)))
        self.rng = CounterRng(lambda: self.ctx.read(rng_state)) if rng_state is not None else None
        self.ctx = ProgramTrace(b, training, weights, random_uniform=self.rng.uniform if self.rng else None)
        self.ctx.replicated = replicated
        self.ctx.fused_training_ops = fused_ops
        #: Host-fed inputs declared after tracing (a replicated step's global batch size, its cut inputs).
        self.extra_inputs: list[Value] = []
        with self.ctx.active():
            preds = model.trace(list(self.xs), training=training)
        preds = list(preds) if isinstance(preds, (list, tuple)) else [preds]
        if len(preds) != len(out_names):
            raise CompileError(f"model.trace returned {len(preds)} values for the model's {len(out_names)} "
                               f"outputs {out_names}.")
        for p, kt, name in zip(preds, model.outputs, out_names):
            if p.shape is None:
                p.shape = onnx_shape(kt.shape, name)
            if p.dtype is None:
                p.dtype = onnx_dtype(keras_dtype(kt.dtype))
        self.preds = preds

    def host_inputs(self) -> list[str]:
        return [x.name for x in self.xs] + [t.name for t in self.targets.values()] + \
            [w.name for w in self.weights.values()] + [v.name for v in self.extra_inputs]


def _weight_shape(o: OutputConfig, rank: int) -> tuple:
    """The sample-weight input of output ``o``: one weight per sample, ``(batch,)``, or with ``rank > 1`` one
    per loss entry (Keras's temporal weights), shaped like the loss before reduction: the target without its
    class axis, with the target's own dim names, since the two must agree."""
    if rank == 1:
        return (contract.BATCH_DIM,)
    return onnx_shape(o.target_shape, contract.target(o.name))[:rank]


def _unique(items: Sequence[str]) -> list[str]:
    seen: dict[str, None] = {}
    for i in items:
        seen.setdefault(i, None)
    return list(seen)


def _scalar(b: GraphBuilder, v: Value) -> Value:
    """A scalar float32 from a loss term (summing anything that is not already a scalar)."""
    if v.dtype not in (None, _FLOAT):
        v = b.op("Cast", [v], to=_FLOAT)
    if v.shape != ():
        v = reduce("ReduceSum", v, None)
    return v


def _objective(t: _Tracer, config: CompileConfig) -> tuple[Value, list[tuple[str, str, Value]]]:
    """The total training loss and the batch sums of every tracker (loss, per-output losses, metrics)."""
    b = t.b
    if config.custom_loss:
        return custom_objective(t, config)
    if not config.has_loss and not t.ctx.losses:
        raise CompileError("No loss to compute. Provide a `loss` argument in `compile()` (or add losses with "
                           "`Layer.add_loss` inside `call()`).")
    n = batch_size(t.preds[0])
    terms, sums = [], []
    per_output: list[tuple[OutputConfig, Value]] = []
    for o in config.outputs:
        if o.loss is None:
            continue
        value = _scalar(b, o.loss(t.targets[o.name], t.preds[o.index], t.weights[o.name]))
        per_output.append((o, value))
        terms.append(value if o.loss_weight == 1.0 else value * float(o.loss_weight))
    terms += [_scalar(b, r) for r in t.ctx.losses]
    total = terms[0] if len(terms) == 1 else b.op("Sum", terms, dtype=_FLOAT, shape=())
    sums.append((contract.LOSS, "total", total * n))
    sums.append((contract.LOSS, "count", n))
    if config.per_output_losses:
        for o, value in per_output:
            sums.append((f"{o.name}_loss", "total", value * n))
            sums.append((f"{o.name}_loss", "count", n))
    return total, sums


def _metric_sums(t: _Tracer, config: CompileConfig) -> list[tuple[str, str, Value]]:
    sums = []
    for o in config.outputs:
        pred = t.preds[o.index]
        if pred.is_float and pred.dtype != _FLOAT:
            # Keras metrics convert predictions to their dtype (float32): a float16 or float64 output is
            # scored in float32, whatever the model's policy.
            cast_pred = t.b.op("Cast", [pred], to=_FLOAT, shape=pred.shape)
            set_keras_mask(cast_pred, get_keras_mask(pred))   # padded steps stay out of the metrics
            pred = cast_pred
        target = fed_target = t.targets.get(o.name)
        if o.sparse_unit_axis and target is not None:   # the class ids as fed, (batch, ..., 1), for user metrics
            fed_target = t.b.op("Unsqueeze", [target, t.b.const(np.asarray([-1], np.int64))],
                                shape=(*target.shape, 1))
        for weighted, items in ((False, o.metrics), (True, o.weighted_metrics)):
            for name, metric in items:
                values = metric.batch_sums(fed_target if user_metric(metric) else target, pred,
                                           t.weights[o.name] if weighted else None)
                for (state, _), v in zip(metric.state_spec(), values):
                    sums.append((name, state, v))
    return sums


def _layer_metric_sums(t: _Tracer, config: CompileConfig
                       ) -> tuple[list[tuple[str, str, Value]], list[tuple[str, Any]]]:
    """The batch sums of every metric a layer updated in ``call()`` (Keras's endpoint layer), each under the
    metric's name (made unique against the compiled trackers': Keras would let one overwrite the other)."""
    taken = {name for name, _ in config.trackers()}
    sums, trackers = [], []
    for metric, values in t.ctx.layer_metrics.values():
        name, k = metric.name, 0
        while name in taken:
            k += 1
            name = f"{metric.name}_{k}"
        taken.add(name)
        trackers.append((name, metric))
        sums += [(name, state, v) for (state, _), v in zip(metric.state_spec(), values)]
    return sums, trackers


def _finish(t: _Tracer, kind: str, host_out: list[tuple[str, Value]], state: list[tuple[Variable, Value, Value]],
            sums: list[tuple[str, str, str]], lr: Value | None, trainable: Sequence[Variable] = ()) -> Program:
    """Declare outputs, write metadata, clean the graph up and make the ``Program`` record."""
    b = t.b
    for name, value in host_out:
        b.output(value, release(b, name) if name in b._taken and name not in b.values else name)
    state_names: list[tuple[Variable, str, str]] = []
    state_vars = set()
    for var, v_in, v_out in state:
        out_name = contract.new_state(v_in.name)
        b.output(v_out, out_name)
        state_names.append((var, v_in.name, out_name))
        state_vars.add(var.uid)
    params = [(var, v.name) for var, v in t.ctx.reads.values() if var.uid not in state_vars]
    host_inputs = t.host_inputs()
    model = b.to_model(name=f"onnxforge_{kind}")
    protected = set(host_inputs) | {s[1] for s in state_names} | ({lr.name} if lr is not None else set())
    model, removed = cleanup(model, protected)
    params = [(var, name) for var, name in params if name not in removed]
    io = {
        "inputs": {"data": [x.name for x in t.xs], "targets": [v.name for v in t.targets.values()],
                   "sample_weights": [v.name for v in t.weights.values()],
                   "learning_rate": lr.name if lr is not None else None,
                   "params": [name for _, name in params], "state": [s[1] for s in state_names]},
        "outputs": {"predictions" if kind == "infer" else "sums": [n for n, _ in host_out],
                    "state": [s[2] for s in state_names]},
    }
    pairs = json.dumps([[s[1], s[2]] for s in state_names])
    for key, value in ((contract.PROGRAM_KEY, kind), (contract.STATE_KEY, pairs),
                       (contract.IO_KEY, json.dumps(io))):
        model.metadata_props.add(key=key, value=value)
    if t.ctx.dim_checks:  # sizes only known at run time (a recurrent layer's sequence length)
        checks = t.ctx.dim_check_records()
        model.metadata_props.add(key=contract.DIM_CHECKS_KEY, value=json.dumps(checks))
    if t.ctx.value_checks:  # ids an Embedding gathers with, checked on the host
        model.metadata_props.add(key=contract.VALUE_CHECKS_KEY, value=json.dumps(
            [{"input": n, "min": lo, "max": hi, "message": m} for n, lo, hi, m in t.ctx.value_checks]))
    return Program(kind=kind, model=model, inputs=host_inputs, params=params, state=state_names,
                   learning_rate=lr.name if lr is not None else None, outputs=[n for n, _ in host_out],
                   sums=sums, trainable=list(trainable), portable=not t.ctx.used_fused_ops)


def _sum_outputs(sums: list[tuple[str, str, Value]]) -> tuple[list[tuple[str, Value]], list[tuple[str, str, str]]]:
    host_out, records = [], []
    for tracker, state, value in sums:
        out = contract.sum_output(tracker, state)
        host_out.append((out, value))
        records.append((tracker, state, out))
    return host_out, records


# ------------------------------------------------------------------------------------------ programs
def build_infer(model: Any, weights: str = "inputs", rng_state: Variable | None = None) -> Program:
    """The inference program: model inputs -> model outputs (``training=False``).

    Args:
        model: a built model (``inputs``, ``outputs``, ``input_names``, ``output_names``, ``trace``).
        weights: ``"inputs"`` (variables are graph inputs, bound from device memory at run time) or
            ``"initializers"`` (their current values are baked in: a standalone, exportable graph).
        rng_state: the int64 ``[seed, counter]`` Variable random ops in ``call()`` draw from (a VAE's sampling
            layer; Dropout and GaussianNoise draw nothing at inference). With ``weights="inputs"`` it is state
            each run advances, as ``SeedGenerator`` states are; baked in, it gives the same draws every run.
    """
    t = _Tracer(model, training=False, weights=weights, rng_state=rng_state)
    host_out = list(zip(model.output_names, t.preds))
    return _finish(t, "infer", host_out, _stream_state(t, rng_state) if weights == "inputs" else [], [], None)


def _stream_state(t: _Tracer, rng_state: Variable | None) -> list[tuple[Variable, Value, Value]]:
    """The state pairs of an inference or evaluation program: what its layers assigned in ``call()`` (a
    stateful RNN's states, as Keras keeps them across ``predict`` batches) and the random streams it drew
    from."""
    state: list[tuple[Variable, Value, Value]] = []
    for var, new in t.ctx.updates.values():
        # The input is the value the program started from (a read after the assignment sees the new one).
        old = t.ctx.reads[var.uid][1] if var.uid in t.ctx.reads else t.ctx.read(var)
        state.append((var, old, _typed(new, old)))
    if t.rng is not None and t.rng.used:
        state.append((rng_state, t.ctx.read(rng_state), t.rng.new_state()))
    return state + [(var, old, _typed(new, old)) for var, old, new in t.ctx.seed_streams.updates()]


def build_eval_step(model: Any, config: CompileConfig, rng_state: Variable | None = None,
                    weight_ranks: Mapping[str, int] | None = None) -> Program:
    """The evaluation program: inputs, targets, sample weights, parameters -> loss and metric sums (and the
    random streams advanced, where ``call()`` draws: see ``build_infer``). ``weight_ranks`` gives an output's
    sample weights a rank above 1 (see ``build_train_step``)."""
    t = _Tracer(model, training=False, weights="inputs", config=config, rng_state=rng_state,
                weight_ranks=weight_ranks)
    _, loss_sums = _objective(t, config)
    layer_sums, layer_metrics = _layer_metric_sums(t, config)
    host_out, records = _sum_outputs(loss_sums + _metric_sums(t, config) + layer_sums)
    program = _finish(t, "eval_step", host_out, _stream_state(t, rng_state), records, None)
    program.layer_metrics = layer_metrics
    return program


def build_train_step(model: Any, config: CompileConfig, trainable: Sequence[Variable],
                     rng_state: Variable | None = None, fused_ops: bool = False,
                     weight_ranks: Mapping[str, int] | None = None) -> Program:
    """The training program: forward, loss, gradients (onnxforge autodiff), optimizer update, in one graph.

    Args:
        model: the model.
        config: the resolved compile configuration (its optimizer emits the update).
        trainable: the variables to train, as captured by ``compile()``; every other variable read is a
            read-only input (frozen weights pass through untouched).
        rng_state: the int64 ``[seed, counter]`` Variable of in-graph noise (Dropout), if any.
        fused_ops: let layers emit fused training kernels that only onnxruntime's CPU provider is known to
            run (BatchNormalization's batch statistics, normalization and moving statistics as one
            ``BatchNormalization(training_mode=1)``). Only for a CPU program run in this process: the result
            is then marked ``portable=False``, and whatever writes a file builds the step again without.
        weight_ranks: output name -> rank of its sample weights where above 1: Keras's temporal weights,
            ``(batch, steps)``, one per loss entry. Other outputs keep one weight per sample, ``(batch,)``.
    """
    opt = config.optimizer
    if opt is None:
        raise CompileError("No optimizer to train with. Provide an `optimizer` argument in `compile()`.")
    t = _Tracer(model, training=True, weights="inputs", config=config, rng_state=rng_state, fused_ops=fused_ops,
                weight_ranks=weight_ranks)
    b, ctx = t.b, t.ctx
    total, loss_sums = _objective(t, config)
    trained = [v for v in trainable if v.uid in ctx.reads]
    params = [ctx.reads[v.uid][1] for v in trained]
    objective = opt.scale_loss_graph(total, ctx.read)
    grads = _weight_gradients(b, objective, ctx, trained)
    # Rewrites that span several gradient rules (e.g. a Relu mask applied before MaxUnpool, on the 4x
    # smaller pooled gradient): each rule only sees its own node.
    optimize_gradients(b)
    if overrides_apply(opt):   # a subclass's apply(grads, variables) sees the gradients first, as in Keras's fit
        trained, grads = gradients_through_apply(opt, ctx, trained, grads)
        params = [ctx.reads[v.uid][1] for v in trained]
    for g, p in zip(grads, params):
        g.dtype = g.dtype or p.dtype
        g.shape = g.shape if g.shape is not None else p.shape
    lr = declare_input(b, release(b, contract.LEARNING_RATE), np.float32, ())
    state: list[tuple[Variable, Value, Value]] = []
    # A weight its layer assigned in the step (SpectralNormalization's kernel) is updated from that value, as
    # Keras's optimizer updates the variable after the forward pass assigned it.
    current = [ctx.read(v) for v in trained]
    for var, new_value in opt.apply_graph(b, ctx.read, trained, current, grads, lr):
        state.append((var, ctx.input_of(var), _typed(new_value, ctx.input_of(var))))
    reassigned = {v.uid for v in trained if v.uid in ctx.updates}
    program_reassigned = [v.path for v in trained if v.uid in reassigned]
    for var, new_value in ctx.updates.values():
        if var.uid not in reassigned:
            state.append((var, ctx.input_of(var), _typed(new_value, ctx.input_of(var))))
    if t.rng is not None and t.rng.used:
        state.append((rng_state, ctx.read(rng_state), t.rng.new_state()))
    state += [(var, old, _typed(new, old)) for var, old, new in ctx.seed_streams.updates()]

    layer_sums, layer_metrics = _layer_metric_sums(t, config)
    host_out, records = _sum_outputs(loss_sums + _metric_sums(t, config) + layer_sums)
    program = _finish(t, "train_step", host_out, state, records, lr, trained)
    program.layer_metrics = layer_metrics
    program.reassigned = program_reassigned
    return program


def _weight_gradients(b: GraphBuilder, objective: Value, ctx: Any, trained: Sequence[Variable]) -> list[Value]:
    """The gradient of ``objective`` for each trained variable, TensorFlow's way: the sum over every value the
    variable was read as (its input, then each value a layer assigned it in the step), with no gradient
    through an assignment or a ``stop_gradient``."""
    from ..ops.core import stopped_outputs

    versions = [[ctx.reads[v.uid][1], *ctx.versions.get(v.uid, [])] for v in trained]
    wrt = [value for vs in versions for value in vs]
    cut = set(stopped_outputs(b)) | {value.name for vs in versions for value in vs[1:]}
    by_name = backward(b, objective, wrt, cut=cut) if wrt else {}
    grads = []
    for vs in versions:
        parts = [by_name[value.name] for value in vs]
        total = parts[0]
        for part in parts[1:]:
            total = b.op("Add", [total, part], dtype=vs[0].dtype, shape=vs[0].shape)
        grads.append(total)
    return grads


def _typed(value: Value, like: Value) -> Value:
    """A state output carries its input's type (the builder may not know the update's shape)."""
    if value.dtype is None:
        value.dtype = like.dtype
    if value.shape is None:
        value.shape = like.shape
    return value
