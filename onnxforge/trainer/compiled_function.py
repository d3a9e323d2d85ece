"""``tf.function``: a Python function on tensors traced once per input signature into one ONNX program.

TensorFlow's guide "Writing a training loop from scratch" compiles its step with ``@tf.function``::

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss_value = loss_fn(y, logits)
        grads = tape.gradient(loss_value, model.trainable_weights)
        optimizer.apply_gradients(zip(grads, model.trainable_weights))
        train_acc_metric.update_state(y, logits)
        return loss_value

The first call with a new signature (each array argument's shape and dtype; other arguments by value, as
TensorFlow retraces on Python values) traces the function with the arrays as graph inputs, the way a
custom ``Model.train_step`` is traced (``custom_step.CustomStepTrace``): Variables read are program inputs,
those the function changes (optimizer updates, ``assign``, BatchNormalization statistics, the random
stream) are state kept in onnxruntime, each optimizer's learning rate is fed per call, and metric trackers
get the batch's sums after each call. Later calls with that signature only run the program. What the
function returns comes back as arrays in the same structure (``tracker.result()`` as the tracker's value).

As in TensorFlow, Python side effects (``print``) run once per trace, not per call. Called inside another
trace (a ``train_step``, another compiled function) the function is inlined. With
``tf.config.run_functions_eagerly(True)`` it runs as plain Python.

Example:
    >>> import numpy as np
    >>> import onnxforge as tf
    >>> w = tf.Variable(np.ones(3, np.float32), name="w")
    >>> @tf.function
    ... def step(x):
    ...     with tf.GradientTape() as tape:
    ...         loss = tf.reduce_sum(w * x)
    ...     w.assign_sub(0.5 * tape.gradient(loss, [w])[0])
    ...     return loss
    >>> float(step(np.array([1.0, 2.0, 3.0], np.float32))), w.numpy().tolist()
    (6.0, [0.5, 0.0, -0.5])
"""
from __future__ import annotations

__all__ = ["CompiledFunction", "compile_function", "HostFunctionInTrace"]

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from ..eager.tape import record_run, wants_record
from ..eager_tensor import as_eager, is_text
from ..graph import GraphBuilder, Value, onnx_dtype
from ..graph.scope import close
from ..layers.host_inputs import host_arrays
from ..layers.keras_tensor import map_structure
from ..runtime import variables_device
from ..tracing import MetricResult, active_trace
from ..variables import Variable
from .custom_step import CustomStep, CustomStepTrace, _finish, _host, tracker_outputs

#: The random stream of compiled functions that draw random numbers outside any model.
_RNG: list[Variable] = []


def _rng_state() -> Variable:
    if not _RNG:
        seed = int(np.random.randint(0, 2 ** 31 - 1))
        _RNG.append(Variable(np.asarray([seed, 0], np.int64), name="function_seed/state", trainable=False,
                             dtype=np.int64))
    return _RNG[0]


def _is_array(x: Any) -> bool:
    return isinstance(x, np.ndarray) and x.dtype.kind in "biuf"


def _is_spec(x: Any) -> bool:
    """Whether ``x`` describes a tensor without holding one (a ``tf.TensorSpec``: ``shape`` and ``numpy_dtype``)."""
    return callable(getattr(x, "numpy_dtype", None)) and hasattr(x, "shape") and not isinstance(x, np.ndarray)


def _as_array_key(x: Any) -> Any:
    """A fully known spec as an empty array of its shape and dtype (for the signature only), else ``x``."""
    if _is_spec(x) and x.shape is not None and all(isinstance(d, int) for d in x.shape):
        return np.empty(x.shape, x.numpy_dtype())
    return x


def _fits(spec: Any, x: Any) -> bool:
    """Whether the array ``x`` is one ``spec`` describes (its dtype, and every known dim)."""
    shape = spec.shape
    return (_is_array(x) and x.dtype == spec.numpy_dtype() and (shape is None or (
        len(shape) == x.ndim and all(d is None or d == n for d, n in zip(shape, x.shape)))))


def _leaves(tree: Any) -> list:
    """The leaves in ``map_structure``'s order (``flatten`` sorts dict keys; the traced inputs follow this)."""
    out: list = []
    map_structure(out.append, tree)
    return out


class _Slot:
    """Where a returned leaf comes from: a program output, a tracker's result, or a Python value."""

    def __init__(self, kind: str, payload: Any):
        self.kind, self.payload = kind, payload


def _function_input(x: Any) -> np.ndarray:
    """An argument array as the traced function receives it: integers keep their dtype, as in TensorFlow (int32
    from ``tf.constant([1, 2])`` or ``tf.range`` so ``x // 2`` returns int32; uint8 pixels so
    ``tf.image.convert_image_dtype`` scales by 255, not by int64's maximum); float64 becomes float32, the type
    the models' batches are fed in."""
    a = np.asarray(x)
    return a if a.dtype.kind in "iu" else _host(a)


def _signature(tree: Any) -> Any:
    """A hashable key: arrays by shape and dtype, Variables by identity, other values by value."""
    def leaf(x: Any) -> Any:
        if _is_array(x):
            return ("array", x.shape, x.dtype.str)
        if _is_spec(x):
            return ("spec", None if x.shape is None else tuple(x.shape), x.numpy_dtype().str)
        if isinstance(x, Variable):
            return ("variable", x.uid)
        if isinstance(x, np.ndarray) and is_text(x):
            # A string tensor stays a constant of the trace (ONNX cannot read characters: tf.strings runs on
            # the host), so its value is part of the signature: TensorFlow would retrace on a Python string.
            return ("text", x.shape, tuple(x.reshape(-1).tolist()))
        try:
            hash(x)
        except TypeError:
            return ("object", id(x))   # the trace pins the object, so its id is not reused while it lives
        return ("value", type(x).__name__, x)
    return repr(map_structure(lambda x: type(x).__name__, tree)), tuple(leaf(x) for x in _leaves(tree))


def _python_result(value: Any) -> Any:
    """A returned Python leaf as TensorFlow hands it back: numbers and booleans become tensors (``return 3``
    gives an int32 scalar, ``return 0.5`` a float32 one), ``None`` and other objects come back as they are."""
    if isinstance(value, (bool, np.generic)):
        return as_eager(np.asarray(value))
    if isinstance(value, int):
        return as_eager(np.asarray(value, np.int32 if -2 ** 31 <= value < 2 ** 31 else np.int64))
    if isinstance(value, float):
        return as_eager(np.asarray(value, np.float32))
    return value


class _Traced:
    """One traced signature: its step (program, runner, optimizers, trackers) and the output template."""

    def __init__(self, step: CustomStep, template: Any, results: dict[int, Any], pinned: list[Any]):
        self.step = step
        self.template = template
        self.results = results
        self.pinned = pinned


class HostFunctionInTrace(TypeError):
    """Python that only runs on concrete arrays (``tf.numpy_function`` / ``tf.py_function``) met while tracing;
    ``CompiledFunction`` then runs its function as plain Python."""


class CompiledFunction:
    """The callable ``tf.function(fn)`` returns (see the module docstring); ``python_function`` is ``fn``."""

    #: Set once a trace met ``tf.numpy_function`` / ``py_function``: the function then runs as plain Python.
    _host_python = False

    def __init__(self, fn: Callable[..., Any], run_eagerly: Callable[[], bool] = lambda: False,
                 keep_dtypes: bool = False):
        self.python_function = fn
        self._run_eagerly = run_eagerly
        self._keep_dtypes = keep_dtypes   # arrays traced in their own dtypes (float64 stays float64)
        self._traces: dict[Any, _Traced] = {}
        #: Traces made for ``tf.TensorSpec``s (``get_concrete_function``): each serves every argument it fits.
        self._spec_traces: list[tuple[Any, _Traced]] = []
        self.tracing_count = 0
        functools.update_wrapper(self, fn)

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        # A decorated method: bind it, one compiled function per instance.
        if obj is None:
            return self
        bound = obj.__dict__.get(f"_compiled_{self.python_function.__name__}")
        if bound is None:
            bound = type(self)(self.python_function.__get__(obj, objtype), self._run_eagerly, self._keep_dtypes)
            obj.__dict__[f"_compiled_{self.python_function.__name__}"] = bound
        return bound

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if active_trace() is not None or self._run_eagerly() or self._host_python:
            return self.python_function(*args, **kwargs)
        given, tree = self._arguments(args, kwargs)
        try:
            traced, _ = self.trace_arguments(tree)
        except HostFunctionInTrace:
            # It calls tf.numpy_function / py_function: Python an ONNX program cannot hold. TensorFlow runs it
            # as a host op inside its graph; here the whole function runs as Python, from now on.
            self._host_python = True
            return self.python_function(*args, **kwargs)
        arrays = [x for x in _leaves(tree) if _is_array(x)]
        return self._run(traced, arrays, given if len(given) == len(arrays) else arrays)

    def _arguments(self, args: tuple, kwargs: dict) -> tuple[list[Any], Any]:
        """The caller's arrays (before any cast) and the argument tree as the trace takes it."""
        tree = (tuple(host_arrays(a) for a in args), {k: host_arrays(v) for k, v in kwargs.items()})
        # A NumPy scalar is a tensor to TensorFlow (one trace serves every value), a Python number is not.
        tree = map_structure(lambda x: np.asarray(x) if isinstance(x, np.generic) and x.dtype.kind in "biuf"
                             else x, tree)
        given = [x for x in _leaves(tree) if _is_array(x)]   # the caller's arrays, before any cast
        cast = np.asarray if self._keep_dtypes else _function_input
        return given, map_structure(lambda x: cast(x) if _is_array(x) else x, tree)

    def trace_arguments(self, tree: Any) -> tuple[_Traced, Any]:
        """The trace serving the argument ``tree`` (arrays, ``tf.TensorSpec``s, Python values), made now if
        there is none yet (what ``get_concrete_function`` returns a handle on), and the tree."""
        key = _signature(tree)
        specs = any(_is_spec(x) for x in _leaves(tree))
        # A spec with every dim known is the signature of an array of that shape: a trace for one serves both.
        traced = self._traces.get(key) or self._traces.get(_signature(map_structure(_as_array_key, tree)))
        if traced is None and not specs:
            traced = self._spec_trace(tree)
        if traced is None:
            traced = self._traces[key] = self._trace(tree)
            if specs:
                self._spec_traces.append((_leaves(tree), traced))
        return traced, tree

    def run_traced(self, traced: _Traced, arrays: list[np.ndarray]) -> Any:
        """Run one trace on the arrays its inputs take, in order (a concrete function's call)."""
        arrays = [np.asarray(a) if self._keep_dtypes else _function_input(a) for a in arrays]
        return self._run(traced, arrays, arrays)

    def _spec_trace(self, tree: Any) -> _Traced | None:
        """A trace made for specs that ``tree``'s arrays fit, its other arguments equal."""
        leaves = _leaves(tree)
        for pattern, traced in self._spec_traces:
            if len(pattern) == len(leaves) and all(
                    _fits(p, x) if _is_spec(p) else _signature(p) == _signature(x) for p, x in zip(pattern, leaves)):
                return traced
        return None

    def _trace(self, tree: Any) -> _Traced:
        b = GraphBuilder(float32_fallback=True)
        names: list[str] = []
        self.tracing_count += 1

        def to_input(x: Any) -> Any:
            if _is_spec(x):   # a dim the spec leaves open (None) is unknown to the traced code, as in TensorFlow
                v = b.input(f"arg_{len(names)}", onnx_dtype(x.numpy_dtype()),
                            None if x.shape is None else tuple(x.shape))
            elif _is_array(x):
                v = b.input(f"arg_{len(names)}", onnx_dtype(x.dtype), tuple(x.shape))
            else:
                return x
            names.append(v.name)
            return v

        graph_args, graph_kwargs = map_structure(to_input, tree)
        ctx = CustomStepTrace(b, _rng_state())
        with ctx.active():
            out = self.python_function(*graph_args, **graph_kwargs)
        host_out: list[tuple[str, Value]] = []
        results: dict[int, Any] = {}

        def mark(leaf: Any) -> Any:
            if isinstance(leaf, Variable):
                leaf = ctx.read(leaf)
            if isinstance(leaf, MetricResult):
                results[len(results)] = leaf.metric
                return _Slot("result", len(results) - 1)
            if isinstance(leaf, np.ndarray) and leaf.dtype.kind in "biuf":
                # A tensor computed while tracing (``return tf.constant(1.0) * 2``): a constant output, a fresh
                # tensor on each call as TensorFlow's, and the program is not left without outputs.
                leaf = b.op("Identity", [b.const(np.array(leaf))])
            if isinstance(leaf, Value):
                host_out.append((f"returns/{len(host_out)}", leaf))
                return _Slot("output", len(host_out) - 1)
            return _Slot("python", leaf)

        template = map_structure(mark, out)
        n_returns = len(host_out)
        trackers = tracker_outputs(b, ctx, host_out)
        # The program runs where the Variables it reads live (CUDA after a CUDA fit), so nothing is copied.
        device = variables_device(var for var, _ in ctx.reads.values())
        step = _finish(None, b, ctx, host_out, names, device, n_returns, kind="function", label="returns")
        close(b)   # a tensor that leaked out (a global) is refused by any later graph
        step.trackers = trackers
        return _Traced(step, template, results, _leaves(tree))

    def _run(self, traced: _Traced, arrays: list[np.ndarray], originals: list[Any]) -> Any:
        step = traced.step
        runner = step.runner
        # A function that returns no tensor and changes no Variable (``return None``, only a ``print``) has
        # an empty program, which onnxruntime refuses to load; TensorFlow just returns the Python values.
        if not runner.outputs and not runner.state:
            return map_structure(lambda slot: _python_result(slot.payload), traced.template)
        # Inside an eager GradientTape a function without an optimizer is one more recorded run: the tape
        # differentiates through its program like through any eager call's.
        recordings = [] if step.learning_rates else wants_record(originals, [var for var, _ in runner.params])
        fixed = {name: np.array(var.numpy(), copy=True) for var, name, _ in runner.state} if recordings else {}
        # A function whose every effect was Python (it returns None or Python values and assigns nothing) has
        # an empty program, which onnxruntime does not load: there is nothing to run.
        values = step.run_outputs(arrays) if runner.model.graph.output else []
        results: list[tuple[Any, str]] = []

        def fill(slot: _Slot) -> Any:
            if slot.kind == "output":
                out = as_eager(np.asarray(values[slot.payload]))
                results.append((out, runner.outputs[slot.payload]))
                return out
            if slot.kind == "result":
                return traced.results[slot.payload].result()
            return _python_result(slot.payload)

        out = map_structure(fill, traced.template)
        if recordings:
            host = {name: (orig, a) for name, orig, a in zip(step.data_inputs, originals, arrays)}
            record_run(recordings, step, runner.model, host, {name: var for var, name in runner.params}, fixed,
                       results)
        return out


def compile_function(fn: Callable[..., Any], run_eagerly: Callable[[], bool] = lambda: False,
                     keep_dtypes: bool = False) -> CompiledFunction:
    """``fn`` compiled per input signature (``tf.function``; see the module docstring); it runs as plain
    Python whenever ``run_eagerly()`` says so (``tf.config.run_functions_eagerly``). ``keep_dtypes``: array
    arguments keep their dtypes instead of being fed as a model's batches are (float64 as float32)."""
    return fn if isinstance(fn, CompiledFunction) else CompiledFunction(fn, run_eagerly, keep_dtypes)
