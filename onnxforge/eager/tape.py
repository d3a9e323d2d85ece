"""Eager ``GradientTape``: calls on concrete arrays written down while a tape records, and their gradient as
one cached ONNX program.

Outside a trace every layer, model and op call runs at once (``executor.py``), one compiled program per
signature. While an eager tape records, each run that touches something the tape follows (a trainable
Variable, an array passed to ``tape.watch``, the result of an earlier recorded run) is also written down:
the program, which earlier result or array fed each of its inputs, the Variables it read, and the random
seed and state values it started from. ``tape.gradient(target, sources)`` joins the runs the target depends
on into one ONNX graph (each program's nodes under its own prefix, its inputs wired to their producers'
outputs), differentiates it with ``onnxforge.autodiff.backward`` and runs it: the forward pass again, then
the backward pass, in one onnxruntime call, with the Variables bound from where they live. The joined
program is cached by the programs and their wiring, so an eagerly written training loop compiles its
gradient once, on its first step, as ``tf.function`` would.

Numpy arithmetic on a followed result (``loss * 2``, ``x ** 2``, ``y[:, 0]``) is recorded too: while a tape
records, ``EagerTensor`` hands such calls to onnxforge's ops (``record_ufunc``). A gradient run inside an
outer tape is recorded like any other run, so nested tapes give higher-order gradients.

Example:
    >>> import numpy as np
    >>> import onnxforge as tf
    >>> x = tf.Variable(3.0)
    >>> with tf.GradientTape() as tape:
    ...     y = x ** 2
    >>> float(tape.gradient(y, x))
    6.0
"""
from __future__ import annotations

__all__ = ["Recording", "active_recordings", "record_run", "wants_record", "record_ufunc", "record_getitem"]

import collections
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import compose

from .. import eager_tensor
from ..autodiff import backward
from ..autodiff.custom import opaque
from ..autodiff.engine import _backward_reach, _forward_reach
from ..compiler.cleanup import cleanup
from ..eager_tensor import as_eager
from ..graph import FLOAT_TYPES, GraphBuilder, onnx_dtype, protos
from ..graph.opset import ir_version_for
from ..runtime import Device, ProgramRunner, variables_device
from .. import variables
from ..variables import Variable
from .tape_sources import reroot

#: Joined gradient programs kept (least recently used dropped first).
CACHE_SIZE = 32

_ACTIVE: list[Recording] = []


@dataclass(eq=False)
class _Run:
    """One recorded program run."""

    program: Any                                   # the compiled object run: its id keys the cache
    model: onnx.ModelProto
    host: dict[str, tuple[Any, np.ndarray]]        # input -> (the caller's object, the array fed)
    params: dict[str, Variable]                    # input -> Variable read
    fixed: dict[str, np.ndarray]                   # seed and state inputs -> the value fed (a copy)


class Recording:
    """What one eager tape has recorded (see the module docstring)."""

    def __init__(self, watch_accessed_variables: bool = True):
        self.watch_accessed_variables = watch_accessed_variables
        self.runs: list[_Run] = []
        self.produced: dict[int, tuple[int, str]] = {}   # id(result) -> (run index, output name)
        self.watched: dict[int, Any] = {}                # id(array or Variable) -> it
        self.paused = 0
        self.variables_read: dict[int, Variable] = {}     # id -> each Variable a recorded run read
        # Everything whose id is a key above stays alive while recorded, so no id is reused.
        self._refs: list[Any] = []

    # ---------------------------------------------------------------- recording
    def watch(self, obj: Any) -> None:
        self.watched[id(obj)] = obj
        self._refs.append(obj)

    def follows(self, obj: Any) -> bool:
        """Whether ``obj`` is a result of a recorded run or a watched array or Variable."""
        return id(obj) in self.produced or id(obj) in self.watched

    def _follows_variable(self, var: Variable) -> bool:
        return (var.trainable and self.watch_accessed_variables) or id(var) in self.watched

    def watched_variables(self) -> tuple[Variable, ...]:
        """The Variables watched explicitly or read by a recorded run (trainable ones, unless
        ``watch_accessed_variables=False``), in the order first met."""
        found: dict[int, Variable] = {k: v for k, v in self.watched.items() if isinstance(v, Variable)}
        for var in self.variables_read.values():
            if self._follows_variable(var):
                found.setdefault(id(var), var)
        return tuple(found.values())

    def wants(self, originals: Sequence[Any], params: Sequence[Variable]) -> bool:
        return not self.paused and (any(self.follows(o) for o in originals)
                                    or any(self._follows_variable(v) for v in params))

    def add(self, run: _Run, results: Sequence[tuple[Any, str]]) -> None:
        # A Variable passed to an op is a host input of its run; one a layer reads is a parameter. Kept past
        # ``reset`` so that ``watched_variables()`` still answers after ``gradient``.
        for var in [obj for obj, _ in run.host.values() if isinstance(obj, Variable)] + list(run.params.values()):
            self.variables_read.setdefault(id(var), var)
        index = len(self.runs)
        self.runs.append(run)
        for obj, name in results:
            self.produced[id(obj)] = (index, name)
            self._refs.append(obj)
        self._refs.extend(obj for obj, _ in run.host.values())

    def reset(self) -> None:
        self.runs, self.produced, self._refs = [], {}, list(self.watched.values())

    # ---------------------------------------------------------------- gradients
    def gradient(self, targets: Sequence[Any], sources: Sequence[Any], output_gradients: Sequence[Any] | None,
                 unconnected_gradients: str) -> list[Any]:
        """``d sum(targets) / d source`` for each source (``None`` or zeros where unconnected)."""
        plan = _Plan(self, targets, sources, output_gradients)
        grads: list[Any] = [None] * len(sources)
        if plan.wrt:
            entry = _program(plan)
            # No source connected to the targets: no program to run (one without outputs does not load).
            values = entry.run(plan) if entry.connected else []
            for i, value in zip(entry.connected, values):
                grads[i] = as_eager(value)
        if unconnected_gradients == "zero":
            grads = [g if g is not None else _zeros_like(s) for g, s in zip(grads, sources)]
        return grads


def _zeros_like(source: Any) -> Any:
    value = source.numpy() if isinstance(source, Variable) else np.asarray(source)
    return as_eager(np.zeros_like(value))


def active_recordings() -> list[Recording]:
    """The recordings of the eager tapes now open (innermost last)."""
    return _ACTIVE


def push(recording: Recording) -> None:
    _ACTIVE.append(recording)
    eager_tensor.set_tape_hooks(record_ufunc, record_getitem)
    variables.set_tape_read(record_read, lambda var: _followed([var]))


def pop(recording: Recording) -> None:
    if recording in _ACTIVE:
        _ACTIVE.remove(recording)
    if not _ACTIVE:
        eager_tensor.set_tape_hooks(None, None)
        variables.set_tape_read(None, None)


def wants_record(originals: Sequence[Any], params: Sequence[Variable]) -> list[Recording]:
    """The open recordings that follow any of these inputs (cheap when no tape is open)."""
    if not _ACTIVE:
        return []
    return [rec for rec in _ACTIVE if rec.wants(originals, params)]


def record_run(recordings: Sequence[Recording], program: Any, model: onnx.ModelProto,
               host: dict[str, tuple[Any, np.ndarray]], params: dict[str, Variable], fixed: dict[str, np.ndarray],
               results: Sequence[tuple[Any, str]]) -> None:
    """Write one run into each of ``recordings`` (``results``: each returned object and the output it is)."""
    run = _Run(program, model, host, params, {k: np.array(v, copy=True) for k, v in fixed.items()})
    for rec in recordings:
        rec.add(run, results)


# ------------------------------------------------------------------------------------------ the plan
class _Plan:
    """The runs a gradient needs, how they are wired, what is fed, and the cache key of all of it."""

    def __init__(self, rec: Recording, targets: Sequence[Any], sources: Sequence[Any],
                 output_gradients: Sequence[Any] | None):
        picked = [(t, rec.produced.get(id(t))) for t in targets]
        self.runs: list[_Run] = []
        self.wrt: list[tuple[int, str]] = []   # (source position, graph value)
        if not any(ref for _, ref in picked):
            return
        needed = _reach(rec, [ref[0] for _, ref in picked if ref])
        position = {r: p for p, r in enumerate(needed)}
        self.runs = [rec.runs[r] for r in needed]
        self.links: list[dict[str, tuple]] = []
        self.leaves: list[np.ndarray] = []
        self.leaf_types: list[onnx.TypeProto] = []
        self.fixed: list[np.ndarray] = []
        self.variables: dict[int, Variable] = {}
        leaf_of: dict[tuple[int, str], int] = {}
        leaf_ids: dict[int, int] = {}
        key_runs = []
        for p, run in enumerate(self.runs):
            types = {vi.name: vi.type for vi in run.model.graph.input}
            links: dict[str, tuple] = {}
            for name, (obj, array) in run.host.items():
                src = rec.produced.get(id(obj))
                if src is not None and src[0] in position and position[src[0]] < p:
                    links[name] = ("run", position[src[0]], src[1])
                    continue
                k = leaf_of.get((id(obj), array.dtype.str))
                if k is None:
                    k = leaf_of[(id(obj), array.dtype.str)] = len(self.leaves)
                    self.leaves.append(array)
                    self.leaf_types.append(types[name])
                    if rec.follows(obj):
                        leaf_ids.setdefault(id(obj), k)
                links[name] = ("leaf", k)
            for name, var in run.params.items():
                self.variables[var.uid] = var
                links[name] = ("var", var.uid)
            for name, value in run.fixed.items():
                links[name] = ("fixed", len(self.fixed))
                self.fixed.append(value)
            self.links.append(links)
            key_runs.append((id(run.program), tuple(sorted(links.items()))))

        self.targets = [("run", position[ref[0]], ref[1]) for _, ref in picked if ref]
        self.seeds: list[np.ndarray] | None = None
        if output_gradients is not None:
            self.seeds = [np.asarray(g, dtype=np.asarray(t).dtype) for (t, ref), g in zip(picked, output_gradients)
                          if ref]
        key_sources = []
        for i, source in enumerate(sources):
            value = self._source(rec, source, position, leaf_ids)
            key_sources.append(value)
            if value is not None:
                self.wrt.append((i, value))
        self.key = (tuple(key_runs), tuple(self.targets), tuple(key_sources),
                    None if self.seeds is None else tuple((s.shape, s.dtype.str) for s in self.seeds),
                    tuple((a.shape, a.dtype.str) for a in self.leaves))

    def _source(self, rec: Recording, source: Any, position: dict[int, int], leaf_ids: dict[int, int]) -> Any:
        if isinstance(source, Variable):
            if source.uid in self.variables and rec._follows_variable(source):
                return f"var/{source.uid}"
            return None
        ref = rec.produced.get(id(source))
        if ref is not None and ref[0] in position:
            return f"r{position[ref[0]]}/{ref[1]}"
        if id(source) in leaf_ids:
            return f"leaf/{leaf_ids[id(source)]}"
        return None

    def feeds(self) -> dict[str, np.ndarray]:
        out = {f"leaf/{k}": a for k, a in enumerate(self.leaves)}
        out.update({f"fixed/{k}": a for k, a in enumerate(self.fixed)})
        out.update({f"seed/{k}": a for k, a in enumerate(self.seeds or [])})
        return out


def _reach(rec: Recording, targets: list[int]) -> list[int]:
    """The recorded runs the target runs depend on, in recording order."""
    needed = set(targets)
    for r in range(max(targets), -1, -1):
        if r not in needed:
            continue
        for obj, _ in rec.runs[r].host.values():
            src = rec.produced.get(id(obj))
            if src is not None and src[0] < r:
                needed.add(src[0])
    return sorted(needed)


# ------------------------------------------------------------------------------------------ the program
@dataclass(eq=False)
class _GradientProgram:
    """A joined, differentiated program: what to feed it and which sources it answers."""

    model: onnx.ModelProto
    inputs: list[str]
    outputs: list[str]
    params: list[tuple[Variable, str]]
    connected: list[int]
    keep: list[Any]                                  # the recorded programs, alive while their ids key this
    runners: dict[Device, ProgramRunner] = field(default_factory=dict)

    def run(self, plan: _Plan) -> list[np.ndarray]:
        # The Variables of this call (the same uids as when compiled), bound from where they live.
        params = [(plan.variables[int(name.split("/", 1)[1])], name) for _, name in self.params]
        device = variables_device(var for var, _ in params)
        runner = self.runners.get(device)
        if runner is None:
            runner = self.runners[device] = ProgramRunner(self.model, device, self.inputs, self.outputs,
                                                          params=params, name="gradient_tape")
        runner.params = params
        feeds = plan.feeds()
        values = runner.run({name: feeds[name] for name in self.inputs})
        recordings = wants_record([obj for run in plan.runs for obj, _ in run.host.values()],
                                  list(plan.variables.values()))
        if recordings:   # an outer tape: this run is differentiable in its turn
            results = [(as_eager(v), name) for v, name in zip(values, self.outputs)]
            host = {name: (_leaf_object(plan, name), feeds[name]) for name in self.inputs}
            record_run(recordings, self, self.model, host, {name: var for var, name in params}, {}, results)
            return [obj for obj, _ in results]
        return values


def _leaf_object(plan: _Plan, name: str) -> Any:
    """The caller's object behind an input of a gradient program (an outer tape links it by identity)."""
    kind, k = name.split("/", 1)
    if kind == "leaf":
        array = plan.leaves[int(k)]
        for run in plan.runs:
            for obj, fed in run.host.values():
                if fed is array:
                    return obj
    return plan.feeds()[name]


_CACHE: collections.OrderedDict[Any, _GradientProgram] = collections.OrderedDict()


def _program(plan: _Plan) -> _GradientProgram:
    entry = _CACHE.get(plan.key)
    if entry is None:
        entry = _CACHE[plan.key] = _compile(plan)
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    _CACHE.move_to_end(plan.key)
    return entry


def _joined(plan: _Plan) -> onnx.ModelProto:
    """The plan's runs as one model: each program's graph under ``r{p}/``, its inputs wired by Identity or
    Cast nodes to the values that fed them; the targets are its outputs."""
    nodes, initializers, inputs = [], [], []
    opset = 0
    for k, t in enumerate(plan.leaf_types):
        inputs.append(onnx.ValueInfoProto(name=f"leaf/{k}", type=t))
    for k, a in enumerate(plan.fixed):
        inputs.append(protos.value_info(f"fixed/{k}", onnx_dtype(a.dtype), a.shape))
    var_types: dict[int, onnx.TypeProto] = {}
    outputs_of: list[dict[str, int]] = []
    for p, (run, links) in enumerate(zip(plan.runs, plan.links)):
        opset = max(opset, next(o.version for o in run.model.opset_import if o.domain in ("", "ai.onnx")))
        graph = compose.add_prefix_graph(run.model.graph, f"r{p}/")
        init_names = {t.name for t in run.model.graph.initializer}
        outputs_of.append({o.name: o.type.tensor_type.elem_type for o in run.model.graph.output})
        for vi in run.model.graph.input:
            if vi.name in init_names:
                continue
            link = links[vi.name]
            want = vi.type.tensor_type.elem_type
            if link[0] == "run":
                source, have = f"r{link[1]}/{link[2]}", outputs_of[link[1]][link[2]]
            elif link[0] == "var":
                source, have = f"var/{link[1]}", want
                var_types.setdefault(link[1], vi.type)
            else:
                source, have = f"{link[0]}/{link[1]}", want
            target = f"r{p}/{vi.name}"
            nodes.append(protos.node("Identity", [source], [target]) if have == want
                         else protos.node("Cast", [source], [target], to=want))
        nodes.extend(graph.node)
        initializers.extend(graph.initializer)
    for uid, t in var_types.items():
        inputs.append(onnx.ValueInfoProto(name=f"var/{uid}", type=t))
    outputs = [protos.value_info(f"r{p}/{name}", outputs_of[p][name], None) for _, p, name in plan.targets]
    for k, s in enumerate(plan.seeds or []):
        inputs.append(protos.value_info(f"seed/{k}", onnx_dtype(s.dtype), s.shape))
    # A source returned by a run whose later nodes read the value behind it (Grad-CAM's conv output).
    nodes = reroot(nodes, [name for _, name in plan.wrt])
    g = protos.graph(nodes, "gradient_tape", inputs, outputs, initializer=initializers)
    return protos.model(g, opset, ir_version=ir_version_for(opset))


def _compile(plan: _Plan) -> _GradientProgram:
    b = GraphBuilder.from_model(_joined(plan))
    for p, run in enumerate(plan.runs):
        regions = getattr(run.program, "custom_gradient_regions", None)
        if regions is not None:   # a custom_gradient call or a program holding some: its gradients are given
            regions(b, f"r{p}/")
    targets = [b.values[o.name] for o in b.outputs]
    b.outputs = []
    wrt = [name for _, name in plan.wrt if b.values[name].dtype in FLOAT_TYPES]
    walked = opaque(b, list(b.nodes))
    reached, _ = _forward_reach(b, walked, wrt)
    needed: set[str] = set()
    for t in targets:
        needed |= _backward_reach(walked, reached, t.name)
    wanted = [name for name in dict.fromkeys(wrt) if name in needed]
    connected, outputs = [], []
    if wanted:
        seeds = [b.values[f"seed/{k}"] for k in range(len(targets))] if plan.seeds is not None else None
        if len(targets) == 1 and seeds is None:
            grads = backward(b, targets[0], wanted)
        else:
            grads = backward(b, targets, wanted, seed=seeds)
        for i, name in plan.wrt:
            if name in grads and name in wanted:
                g = grads[name]
                g.dtype = g.dtype or b.values[name].dtype
                g.shape = g.shape if g.shape is not None else b.values[name].shape
                out = f"grad/{len(outputs)}"
                b.output(g, out)
                connected.append(i)
                outputs.append(out)
    model, _ = cleanup(b.to_model(name="onnxforge_gradient_tape"))
    present = {vi.name for vi in model.graph.input}
    inputs = [vi.name for vi in model.graph.input if not vi.name.startswith("var/")]
    params = [(plan.variables[int(name.split("/", 1)[1])], name) for name in present if name.startswith("var/")]
    return _GradientProgram(model, inputs, outputs, params, connected, [run.program for run in plan.runs])


# ------------------------------------------------------------------------------------------ numpy calls
_UFUNCS: dict[Any, str] = {
    np.add: "add", np.subtract: "subtract", np.multiply: "multiply", np.true_divide: "divide",
    np.power: "power", np.negative: "negative", np.exp: "exp", np.log: "log", np.sqrt: "sqrt",
    np.square: "square", np.tanh: "tanh", np.absolute: "abs", np.maximum: "maximum", np.minimum: "minimum",
    np.matmul: "matmul", np.sin: "sin", np.cos: "cos", np.reciprocal: "reciprocal", np.positive: "copy",
}

#: Ufuncs whose results are booleans or integers: nothing differentiable flows through them.
_NO_GRADIENT = {np.greater, np.greater_equal, np.less, np.less_equal, np.equal, np.not_equal, np.logical_and,
                np.logical_or, np.logical_not, np.logical_xor, np.isnan, np.isinf, np.isfinite, np.sign,
                np.floor_divide, np.floor, np.ceil, np.rint, np.signbit}

_run_op: list[Callable[[str, tuple], Any]] = []


def set_op_runner(fn: Callable[[str, tuple], Any]) -> None:
    """Registered by the executor: runs the named ``onnxforge.ops`` function on arrays, recorded."""
    _run_op[:] = [fn]


def _followed(inputs: Sequence[Any]) -> bool:
    return any(rec.follows(x) or isinstance(x, Variable) and rec._follows_variable(x)
               for rec in _ACTIVE if not rec.paused for x in inputs)


def record_ufunc(ufunc: Any, method: str, inputs: tuple, kwargs: dict) -> Any:
    """A numpy ufunc call on an EagerTensor while a tape records: through onnxforge's op when it involves
    a followed value (so the tape sees it), else ``NotImplemented`` (numpy computes it)."""
    op = _UFUNCS.get(ufunc)
    if op is None or method != "__call__" or kwargs or not _run_op or not _followed(inputs):
        # A comparison (``if x > 0.0:`` under the tape, TensorFlow's autodiff guide) has no gradient to lose.
        if op is None and method == "__call__" and _run_op and ufunc not in _NO_GRADIENT and _followed(inputs):
            warnings.warn(f"GradientTape: numpy's {ufunc.__name__} is not recorded; gradients through its "
                          "result are None. Use the onnxforge / tf op instead.", stacklevel=3)
        return NotImplemented
    return _run_op[0](op, tuple(_plain(x) for x in inputs))


def record_read(var: Variable) -> Any:
    """A followed Variable's value for arithmetic (``x ** 2``), as the result of a recorded read."""
    if not _run_op or not _followed([var]):
        return None
    return _run_op[0]("copy", (var,))


def _plain(x: Any) -> Any:
    return x if isinstance(x, (np.ndarray, Variable)) else np.asarray(x) if isinstance(x, np.generic) else x


def record_getitem(tensor: Any, index: Any) -> Any:
    """``tensor[index]`` while a tape records and follows ``tensor``; ``NotImplemented`` otherwise."""
    if not _run_op or not _followed([tensor]):
        return NotImplemented
    key = _index_key(index)
    if key is None:
        return NotImplemented
    return _run_op[0]("__getitem__", (tensor, key))


def _index_key(index: Any) -> Any:
    """``index`` as a hashable key (slices as tuples), or ``None`` for fancy indexing."""
    parts = index if isinstance(index, tuple) else (index,)
    out = []
    for part in parts:
        if isinstance(part, slice):
            out.append(("slice", part.start, part.stop, part.step))
        elif part is None or part is Ellipsis or isinstance(part, (int, np.integer)) and not isinstance(part, bool):
            out.append(("item", None if part is None else "..." if part is Ellipsis else int(part)))
        elif isinstance(part, np.ndarray) and part.ndim == 0 and part.dtype.kind in "iu":
            # An eager integer scalar (``preds[:, tf.argmax(preds[0])]``) is a known index, as in TensorFlow.
            out.append(("item", int(part)))
        else:
            return None
    return ("tuple" if isinstance(index, tuple) else "one", tuple(out))


def index_from_key(key: Any) -> Any:
    """The index ``_index_key`` encoded."""
    kind, parts = key
    items = [slice(*p[1:]) if p[0] == "slice" else None if p[1] is None else Ellipsis if p[1] == "..." else p[1]
             for p in parts]
    return tuple(items) if kind == "tuple" else items[0]
