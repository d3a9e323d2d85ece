"""Custom training steps: a ``Model`` subclass's ``train_step(self, data)`` traced ONCE into one ONNX graph.

Keras's modern GAN pattern overrides ``train_step`` with gradient tapes and several optimizers::

    class GAN(onnxforge.Model):
        def train_step(self, real):
            noise = ops.random.normal((ops.shape(real)[0], 64))
            with onnxforge.GradientTape() as tape:
                d_loss = ...
            grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
            self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))
            with onnxforge.GradientTape() as tape:
                g_loss = ...
            ...
            return {"d_loss": d_loss, "g_loss": g_loss}

``fit`` / ``train_on_batch`` trace it on symbolic values (batch dimension ``"batch"``) into a single
training program, run by onnxruntime every step:

* Variables read are graph inputs. Eager semantics hold inside the trace: after
  ``optimizer.apply_gradients`` a Variable's later reads see its *updated* value (the generator step
  uses the discriminator just updated), and BatchNormalization's moving statistics updates chain the
  same way. Every Variable changed by the step is a state pair (input -> ``<name>:new``), recorded in
  ``metadata_props["onnxforge.state"]``; the others are read-only inputs.
* Each optimizer's learning rate is a float32 scalar input ``learning_rate/<attribute>`` (the attribute
  holding it: ``learning_rate/d_optimizer``), its step counter and slots are state.
* Random ops (``ops.random.*`` without a seed, Dropout, GaussianNoise) draw from the model's RNG state
  Variable ``seed_generator/state``; a ``SeedGenerator`` from its own. See ``onnxforge.ops.random``.
* The returned dict's values are scalar outputs ``logs/<key>``. As in Keras 3 (``_get_metrics_result_or_logs``),
  when the returned keys are exactly the names of ``model.metrics``' results, ``fit`` / ``evaluate`` report those
  metrics' results; otherwise they report what the last step returned (a plain value is the last batch's, not an
  epoch mean), listed in ``model.metrics``' order, then the other keys sorted.
* Metric trackers work as in Keras's VAE and GAN examples: ``tracker.update_state(loss)`` in the step
  emits the batch's state sums as outputs ``metrics/<k>/<name>/<state>``, added to the tracker on the host
  after each step; a returned ``tracker.result()`` is logged as the tracker's result. ``fit`` resets
  ``model.metrics`` (the trackers the model holds, or its ``metrics`` property) at each epoch's start.
* Layers called without ``training=`` take their ``call()``'s default, as in Keras 3: inference mode for
  Dropout and BatchNormalization (pass ``training=True`` for their training behaviour), but ``True`` for a
  model or layer whose ``call`` declares ``training=True`` (and the layers it calls). Regularizers add no loss here.

The data passed to ``train_step`` is what Keras passes: ``x`` alone, ``(x, y)`` or ``(x, y, sample_weight)``
(a tuple of tensors for several input arrays). Host inputs are named ``x`` (``x/0``, ``x/1``, ...), ``y``
and ``sample_weight``. Data holding a dict (``fit({"x": x, "y": y})``, a dataset of dicts) reaches the step in
the structure it was given, its inputs named by their paths (``x``, ``y``; see ``step_data``). A batch whose
feature shapes, dtypes or structure differ from the traced ones is retraced.

A ``test_step`` override is traced the same way for ``evaluate`` (no optimizer is applied there), and a
``predict_step`` override for ``predict`` (``custom_predict``). Not supported yet: calling the compiled default
training or evaluation step from an override (``super().train_step(data)``).
"""
from __future__ import annotations

__all__ = ["LAST_STATE", "CustomStepTrace", "CustomStep", "build_custom_step", "declare_data", "tracker_outputs", "train_batch"]

import json
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from ..graph.shape_inference import fill_shapes
from ..graph import contract
from ..compiler.cleanup import cleanup
from ..compiler.programs import CompileError, Program
from ..graph.rng import CounterRng
from ..compiler.program_trace import ProgramTrace, declare_input
from ..graph import GraphBuilder, Value, onnx_dtype
from ..runtime import ProgramRunner
from ..tracing import MetricResult
from ..variables import Variable
from .step_data import StepData, leaf_names, rebuild
from .custom_step_logs import LAST_STATE, LastLog, TrackerLog, metric_results_by_name

_FLOAT = onnx.TensorProto.FLOAT
#: Prefix of the outputs carrying the dict returned by ``train_step``.
LOGS_PREFIX = "logs/"
#: Prefix of the outputs carrying the state sums of metric trackers updated in the step.
METRICS_PREFIX = "metrics/"


class CustomStepTrace(ProgramTrace):
    """The trace of a custom ``train_step``: Variables keep their *current* graph value (eager order).

    Args:
        builder: the graph under construction.
        rng_state: the model's int64 ``[seed, counter]`` RNG Variable.
        owner: the model (names the learning-rate inputs after its optimizer attributes).
    """

    #: ``variable.assign(host value)`` inside the step is part of the step, run every time.
    assigns_in_graph = True

    def __init__(self, builder: GraphBuilder, rng_state: Variable, owner: Any = None):
        self.rng = CounterRng(lambda: self.read(rng_state))
        self.rng_state = rng_state
        super().__init__(builder, training=False, weights="inputs", random_uniform=self.rng.uniform)
        # Keras 3 passes no flag into a custom step: a layer called without ``training=`` takes its call()'s
        # default (a model's ``call(x, training=True)``: True), not this program's False.
        self.training_unspecified = True
        self.owner = owner
        #: Variable uid -> its value after the updates emitted so far.
        self.current: dict[int, Value] = {}
        #: Optimizers applied in this step, with their learning-rate inputs, in first-use order.
        self.learning_rates: dict[int, tuple[Any, Value]] = {}
        #: The learning-rate inputs of an optimizer's 2nd, 3rd ... ``apply_gradients`` in this step:
        #: ``(optimizer, input, k)``, fed its rate ``k`` iterations on (a schedule moves between them, as in Keras).
        self.later_rates: list[tuple[Any, Value, int]] = []
        self.apply_counts: dict[int, int] = {}
        #: Metric trackers updated in this step: id -> (metric, this step's state sums), in first-use order.
        self.trackers: dict[int, tuple[Any, list[Value]]] = {}

    # ------------------------------------------------------------------------------------ metric trackers
    def track_metric(self, metric: Any, sums: list[Value]) -> None:
        """``metric.update_state(...)`` in the step: its batch sums become outputs added up on the host."""
        hit = self.trackers.get(id(metric))
        if hit is not None:   # updated twice in one step: both updates count
            sums = [self.b.op("Add", [a, s]) for a, s in zip(hit[1], sums)]
            for s, a in zip(sums, hit[1]):
                s.dtype, s.shape = a.dtype, a.shape
        self.trackers[id(metric)] = (metric, sums)

    def metric_result(self, metric: Any) -> MetricResult:
        """``metric.result()`` in the step: a reference the logs may return (the host knows the value)."""
        return MetricResult(metric)

    # ------------------------------------------------------------------------------------ variables
    def read(self, var: Variable) -> Value:
        hit = self.current.get(var.uid)
        return self.input_of(var) if hit is None else self.read_after_assign(var, hit)

    def _declare(self, var: Variable) -> Value:
        # Two optimizers of one class share variable names ("adam/iteration"): number the later ones.
        name, k = var.path, 0
        while name in self.b._taken:
            k += 1
            name = f"{var.path}_{k}"
        return self.b.input(name, onnx_dtype(var.dtype), var.shape)

    def assign(self, var: Variable, value: Value) -> None:
        """From here on, ``var`` reads as ``value``; the step outputs the last value assigned."""
        original = self.input_of(var)
        if value.dtype is None:
            value.dtype = original.dtype
        if value.shape is None:
            value.shape = original.shape
        self.current[var.uid] = value

    def update(self, var: Variable, new_value: Value, in_inference: bool = False) -> None:
        # Always a training program: BatchNormalization called with training=True updates its statistics.
        self.assign(var, new_value)

    # ------------------------------------------------------------------------------------ optimizers
    def learning_rate_input(self, optimizer: Any) -> Value:
        hit = self.learning_rates.get(id(optimizer))
        if hit is None:
            label = _attribute_name(self.owner, optimizer) or optimizer.name
            value = declare_input(self.b, f"{contract.LEARNING_RATE}/{label}", np.float32, (), unique=True)
            hit = self.learning_rates[id(optimizer)] = (optimizer, value)
        return hit[1]

    def apply_gradients(self, optimizer: Any, grads_and_vars: Iterable[tuple[Any, Any]]) -> Value:
        """Emit ``optimizer``'s update of the given Variables; later reads see the new values."""
        pairs = [tuple(p) for p in grads_and_vars]
        for p in pairs:
            if len(p) != 2 or not isinstance(p[1], Variable):
                raise TypeError(f"{optimizer.name}.apply_gradients expects (gradient, Variable) pairs, e.g. "
                                f"zip(grads, model.trainable_weights). Received an entry {p!r}")
        kept = [(g, v) for g, v in pairs if g is not None]
        if not kept:
            raise ValueError(f"{optimizer.name}.apply_gradients: no gradients provided for any variable "
                             f"{[v.path for _, v in pairs]}. The loss does not depend on them inside the tape "
                             "(was it computed outside the `with GradientTape()` block?).")
        skipped = [v.path for g, v in pairs if g is None]
        if skipped:
            warnings.warn(f"Gradients do not exist for variables {skipped} when minimizing the loss; they are "
                          "left unchanged.", stacklevel=3)
        variables = [v for _, v in kept]
        seen: set[int] = set()
        for v in variables:
            if v.uid in seen:
                raise ValueError(f"{optimizer.name}.apply_gradients received variable {v.path!r} twice.")
            seen.add(v.uid)
        b = self.b
        start = len(b.nodes)
        params = [self.read(v) for v in variables]
        grads = []
        for (g, v), p in zip(kept, params):
            g = g.__onnx_value__() if isinstance(g, Variable) else g
            if not isinstance(g, Value):
                raise TypeError(f"{optimizer.name}.apply_gradients: the gradient of {v.path!r} must be a graph "
                                f"tensor (from GradientTape.gradient). Received: {g!r}")
            g.dtype = g.dtype or p.dtype
            g.shape = g.shape if g.shape is not None else p.shape
            grads.append(g)
        k = self.apply_counts.get(id(optimizer), 0)
        self.apply_counts[id(optimizer)] = k + 1
        if k == 0:
            lr = self.learning_rate_input(optimizer)
        else:   # each apply_gradients advances `iterations`: Keras evaluates the schedule afresh for each
            label = _attribute_name(self.owner, optimizer) or optimizer.name
            lr = declare_input(self.b, f"{contract.LEARNING_RATE}/{label}/apply_{k}", np.float32, (), unique=True)
            self.later_rates.append((optimizer, lr, k))
        for var, new in optimizer.apply_graph(b, self.read, variables, params, grads, lr):
            self.assign(var, new)
        new_iterations = self.read(optimizer.iterations)
        fill_shapes(b, start)
        return new_iterations

    def state_pairs(self) -> list[tuple[Variable, Value, Value]]:
        """``(variable, input value, output value)`` of every Variable the step changes."""
        pairs = [(self.reads[uid][0], self.reads[uid][1], value) for uid, value in self.current.items()
                 if value is not self.reads[uid][1]]
        if self.rng.used:
            pairs.append((self.rng_state, self.reads[self.rng_state.uid][1], self.rng.new_state()))
        pairs += self.seed_streams.updates()
        return pairs


def _attribute_name(owner: Any, obj: Any) -> str | None:
    for key, value in getattr(owner, "__dict__", {}).items():
        if value is obj:
            return key
    return None


# ------------------------------------------------------------------------------------------ the program
@dataclass
class CustomStep:
    """A traced custom step: its program, runner, the optimizers it advances and the logged keys."""

    program: Program
    runner: ProgramRunner
    learning_rates: list[tuple[Any, str]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    data_inputs: list[str] = field(default_factory=list)
    #: ``(optimizer, input name, k)`` of the rates of an optimizer's later applies in one step.
    later_rates: list[tuple[Any, str, int]] = field(default_factory=list)
    #: ``(metric, output names of its state sums)`` of every tracker the step updates.
    trackers: list[tuple[Any, list[str]]] = field(default_factory=list)
    #: The logged keys whose value is a tracker's ``result()``, in the order of the returned dict.
    results: dict[str, Any] = field(default_factory=dict)
    #: Every logged key, in the order of the returned dict.
    order: list[str] = field(default_factory=list)
    #: ``log_trackers()``, made once.
    log_entries: list[tuple[str, Any]] = field(default_factory=list)
    final_entries: list[tuple[str, Any]] | None = None

    def run(self, arrays: Sequence[np.ndarray]) -> dict[str, Any]:
        """One step; the values of the plain (non-tracker) logs. Tracker sums go into their metrics."""
        values = self.run_outputs(arrays)
        return {key: float(v) if np.size(v) == 1 else np.asarray(v) for key, v in zip(self.keys, values)}

    def run_outputs(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One step on the data ``arrays``: the learning rates fed, the optimizers advanced, the trackers'
        sums merged into their metrics; the program's outputs (the ``keys`` outputs first)."""
        feeds = dict(zip(self.data_inputs, arrays))
        for opt, name in self.learning_rates:
            feeds[name] = np.asarray(opt.fed_learning_rate(), np.float32)
        for opt, name, k in self.later_rates:
            feeds[name] = np.asarray(opt.fed_learning_rate_at(k), np.float32)
        values = self.runner.run(feeds)
        for opt, _ in self.learning_rates:
            opt._advance()
        for opt, _, _ in self.later_rates:
            opt._advance()
        at = len(self.keys)
        for metric, outs in self.trackers:
            metric.merge_state(values[at:at + len(outs)])
            at += len(outs)
        return values

    def log_trackers(self, model: Any) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]] | None]:
        """``(key, tracker)`` pairs for the loops' logs: after each step, what the step returned (a plain value
        as it is, a ``tracker.result()`` read from the tracker, which holds the same); and, where the returned
        keys are exactly the names of ``model.metrics``' results, those results for an epoch's or an
        evaluation's end (Keras 3's ``_get_metrics_result_or_logs``), else ``None``: the last step's logs.
        Ordered as Keras's ``_flatten_metrics_in_order``: ``model.metrics``' names first, the other keys sorted."""
        named = metric_results_by_name(model)
        first = [key for key in named if key in self.order]
        order = first + sorted(set(self.order) - set(first))
        entries = [(key, TrackerLog(self.results[key]) if key in self.results else LastLog(key)) for key in order]
        final = [(key, TrackerLog(*named[key])) for key in order] if set(self.order) == set(named) else None
        return entries, final


def _host(array: Any) -> np.ndarray:
    a = np.asarray(array)
    if a.dtype == np.float64 or a.dtype == np.float16:
        return a.astype(np.float32)
    if a.dtype.kind in "iu" and a.dtype != np.int64:
        return a.astype(np.int64)
    return a


def _declare(b: GraphBuilder, name: str, array: np.ndarray) -> Value:
    shape = (contract.BATCH_DIM,) + tuple(int(d) for d in array.shape[1:]) if array.ndim else ()
    return b.input(name, onnx_dtype(array.dtype), shape)


def _data_names(prefix: str, n: int) -> list[str]:
    return [prefix] if n == 1 else [f"{prefix}/{i}" for i in range(n)]


def declare_data(b: GraphBuilder, xs: Sequence[np.ndarray], ys: Sequence[np.ndarray] = (),
                 sample_weight: Any = None) -> tuple[Any, list[str]]:
    """The step's ``data`` argument as graph inputs shaped like one batch, and their names: ``StepData`` in its
    own structure (inputs named by their paths: ``x``, ``y``), else ``x``, ``(x, y)`` or ``(x, y, sample_weight)``
    with a tuple for several arrays (inputs ``x`` or ``x/0``, ``x/1``..., ``y``..., ``sample_weight``)."""
    if isinstance(xs, StepData):
        values = [_declare(b, name, a) for name, a in zip(leaf_names(xs.spec), xs)]
        return rebuild(xs.spec, values), [v.name for v in values]
    x_names, y_names = _data_names("x", len(xs)), _data_names("y", len(ys))
    x_vals = [_declare(b, n, a) for n, a in zip(x_names, xs)]
    y_vals = [_declare(b, n, a) for n, a in zip(y_names, ys)]
    sw_val = _declare(b, "sample_weight", sample_weight) if sample_weight is not None else None
    data_inputs = x_names + y_names + ([sw_val.name] if sw_val is not None else [])
    x_data: Any = x_vals[0] if len(x_vals) == 1 else tuple(x_vals)
    if y_vals or sw_val is not None:
        y_data: Any = (y_vals[0] if len(y_vals) == 1 else tuple(y_vals)) if y_vals else None
        return ((x_data, y_data) if sw_val is None else (x_data, y_data, sw_val)), data_inputs
    return x_data, data_inputs


def build_custom_step(model: Any, xs: Sequence[np.ndarray], ys: Sequence[np.ndarray], sample_weight: Any,
                      device: Any, method: str = "train_step") -> CustomStep:
    """Trace ``model.train_step`` (or ``test_step``) on symbolic data shaped like one batch and make its
    program and runner."""
    b = GraphBuilder(float32_fallback=True)
    data, data_inputs = declare_data(b, xs, ys, sample_weight)
    rng_state = model._rng_stream()
    ctx = CustomStepTrace(b, rng_state, owner=model)
    with ctx.active():
        logs = getattr(model, method)(data)
    logs = _check_logs(model, logs, method)

    host_out = []
    order = list(logs)
    results = {key: value.metric for key, value in logs.items() if isinstance(value, MetricResult)}
    for key, value in logs.items():
        if key in results:
            continue
        v = value if isinstance(value, Value) else b.const(np.asarray(value, np.float32))
        if v.shape is None:
            fill_shapes(b, 0)
        if v.dtype != _FLOAT:
            v = b.op("Cast", [v], to=_FLOAT, shape=v.shape)
        # A tensor of several values (NNCLR's per-sample loss) is logged as the array it is, as Keras's
        # float() conversion of the logs leaves it; one of a single value becomes a float.
        if v.shape not in ((), None) and all(d == 1 for d in v.shape):
            v = b.op("Reshape", [v, b.const(np.zeros(0, np.int64))], shape=())
        host_out.append((LOGS_PREFIX + key, v))
    n_logs = len(host_out)
    trackers = tracker_outputs(b, ctx, host_out)
    step = _finish(model, b, ctx, host_out, data_inputs, device, n_logs, method)
    step.trackers, step.results, step.order = trackers, results, order
    return step


def tracker_outputs(b: GraphBuilder, ctx: CustomStepTrace, host_out: list[tuple[str, Value]]
                    ) -> list[tuple[Any, list[str]]]:
    """Append the state sums of every metric tracker the step updated to ``host_out`` (float32 outputs
    ``metrics/<k>/<name>/<state>``); ``(metric, output names)`` for ``CustomStep.trackers``."""
    trackers = []
    for k, (metric, sums) in enumerate(ctx.trackers.values()):
        outs = []
        for (state, _), v in zip(metric.state_spec(), sums):
            outs.append(f"{METRICS_PREFIX}{k}/{metric.name}/{state}")
            host_out.append((outs[-1], v if v.dtype in (None, _FLOAT) else b.op("Cast", [v], to=_FLOAT, shape=v.shape)))
        trackers.append((metric, outs))
    return trackers


def _check_logs(model: Any, logs: Any, method: str = "train_step") -> dict[str, Any]:
    if not isinstance(logs, dict):
        raise CompileError(f"{type(model).__name__}.{method} must return a dict of metric values such as "
                           f"{{'d_loss': d_loss, 'g_loss': g_loss}}. Received: {type(logs).__name__}")
    if any(isinstance(v, dict) for v in logs.values()):
        # Keras flattens nested results: {"compile_metrics": {"mae": ...}} logs as "mae".
        flat: dict[str, Any] = {}
        for key, value in logs.items():
            flat.update(value if isinstance(value, dict) else {key: value})
        logs = flat
    for key, value in logs.items():
        if not isinstance(key, str) or "/" in key or not key:
            raise CompileError(f"{type(model).__name__}.{method}: dict keys name the logs and must be non-empty "
                               f"strings without '/'. Received key {key!r}")
        if isinstance(value, Variable):
            logs[key] = value.__onnx_value__()
        elif not isinstance(value, (Value, MetricResult, int, float, np.number)):
            hint = (" Return tracker.result() for a metric tracker updated with tracker.update_state(value) in "
                    "the step (fit() reports its mean), or the value itself (fit() reports the last step's)."
                    if hasattr(value, "update_state") or hasattr(value, "result") else "")
            raise CompileError(f"{type(model).__name__}.{method} returned {key!r}: {value!r}. Return graph "
                               f"tensors, numbers or metric results.{hint}")
    return logs


def _finish(model: Any, b: GraphBuilder, ctx: CustomStepTrace, host_out: list[tuple[str, Value]],
            data_inputs: list[str], device: Any, n_logs: int | None = None, kind: str = "train_step",
            label: str = "logs") -> CustomStep:
    """The program and runner of a traced step whose host outputs are ``host_out`` (the first ``n_logs`` of them
    are its ``label`` outputs in the I/O metadata, the rest metric sums)."""
    for name, value in host_out:
        b.output(value, name)
    state = []
    for var, v_in, v_out in ctx.state_pairs():
        out_name = contract.new_state(v_in.name)
        b.output(v_out, out_name)
        state.append((var, v_in.name, out_name))
    state_ids = {var.uid for var, _, _ in state}
    params = [(var, v.name) for var, v in ctx.reads.values() if var.uid not in state_ids]
    lrs = [(opt, value.name) for opt, value in ctx.learning_rates.values()]
    later = [(opt, value.name, k) for opt, value, k in ctx.later_rates]
    host_inputs = data_inputs + [name for _, name in lrs] + [name for _, name, _ in later]
    onnx_model = b.to_model(name=f"onnxforge_{kind}")
    protected = set(host_inputs) | {s[1] for s in state}
    onnx_model, removed = cleanup(onnx_model, protected)
    params = [(var, name) for var, name in params if name not in removed]
    rate_names = {opt.name: name for opt, name in lrs} | {f"{opt.name}#{k}": name for opt, name, k in later}
    io = {"inputs": {"data": data_inputs, "learning_rates": rate_names,
                     "params": [name for _, name in params], "state": [s[1] for s in state]},
          "outputs": {label: [name for name, _ in host_out[:n_logs]], "state": [s[2] for s in state]}}
    if n_logs is not None and n_logs < len(host_out):
        io["outputs"]["metric_sums"] = [name for name, _ in host_out[n_logs:]]
    for key, value in ((contract.PROGRAM_KEY, kind), (contract.STATE_KEY, json.dumps([[s[1], s[2]] for s in state])),
                       (contract.IO_KEY, json.dumps(io))):
        onnx_model.metadata_props.add(key=key, value=value)
    if getattr(ctx, "dim_checks", None):  # sizes only known at run time (a recurrent layer's sequence length)
        checks = ctx.dim_check_records()
        onnx_model.metadata_props.add(key=contract.DIM_CHECKS_KEY, value=json.dumps(checks))
    value_checks = getattr(ctx, "value_checks", None)
    if value_checks:  # ids an Embedding gathers with, checked on the host
        onnx_model.metadata_props.add(key=contract.VALUE_CHECKS_KEY, value=json.dumps(
            [{"input": n, "min": lo, "max": hi, "message": m} for n, lo, hi, m in value_checks]))
    outputs = [name for name, _ in host_out]
    program = Program(kind=kind, model=onnx_model, inputs=host_inputs, params=params, state=state,
                      outputs=outputs)
    runner = ProgramRunner(onnx_model, device, host_inputs, outputs, params=params, state=state, name=kind)
    keys = [name[len(LOGS_PREFIX):] for name in outputs[:n_logs]]
    return CustomStep(program, runner, lrs, keys, data_inputs, later_rates=later)


# ------------------------------------------------------------------------------------------ driving
def _signature(arrays: Sequence[np.ndarray]) -> tuple:
    return tuple((a.shape[1:], a.dtype.str) for a in arrays)


def train_batch(model: Any, xs: Sequence[np.ndarray], ys: Sequence[np.ndarray] | None,
                sample_weight: Any, method: str = "train_step") -> dict[str, np.ndarray]:
    """One custom training (or ``test_step``) step on host arrays; the plain logs for the fit loop as
    ``key/last`` (kept, not summed); tracker results are read from the trackers themselves."""
    xs = StepData([_host(x) for x in xs], xs.spec) if isinstance(xs, StepData) else [_host(x) for x in xs]
    ys = [_host(y) for y in (ys or [])]
    if isinstance(sample_weight, list):
        if any(w is not None for w in sample_weight[1:]):
            raise ValueError("A custom train_step receives one sample_weight vector; per-output weights are not "
                             "supported.")
        sample_weight = sample_weight[0] if sample_weight else None
    sw = None if sample_weight is None else np.asarray(sample_weight, np.float32)
    arrays = xs + ys + ([sw] if sw is not None else [])
    key = (_signature(xs), _signature(ys), sw is not None, getattr(xs, "spec", None))
    steps = model.__dict__.setdefault("_custom_steps" if method == "train_step" else "_custom_test_steps", {})
    step = steps.get(key)
    if step is None:
        step = steps[key] = build_custom_step(model, xs, ys, sw, model._device, method)
        if method == "train_step":
            model._custom_program = step.program
        step.log_entries, step.final_entries = step.log_trackers(model)
    model._trackers = step.log_entries   # what fit / evaluate report, in Keras's order
    # What an epoch's or evaluation's end reports instead, while these are the model's trackers.
    model._final_trackers = (step.log_entries, step.final_entries) if step.final_entries else None
    logs = step.run(arrays)
    return {f"{k}/{LAST_STATE}": np.asarray(v, np.float64 if np.ndim(v) == 0 else None) for k, v in logs.items()}
