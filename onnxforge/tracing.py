"""Tracing: the context in which layers' ``call()`` emit ONNX nodes for one program."""
from __future__ import annotations

__all__ = ["TraceContext", "current_trace", "active_trace", "MetricResult", "set_eager_executor", "eager_executor",
           "autocast_scope", "autocast_dtype", "constant"]

import contextlib
from typing import Any, Callable

import numpy as np
import onnx

from .graph import GraphBuilder, Value, onnx_dtype
from .graph.stopped import stop_gradient_value
from .trace_state import (active_trace, autocast_dtype, autocast_scope, current_trace, eager_executor, entered,
                          set_eager_executor)
from .variables import Variable

_BFLOAT16 = onnx.TensorProto.BFLOAT16
class MetricResult:
    """What ``metric.result()`` gives inside a traced custom ``train_step``: a reference to the tracker.

    Its value exists only once the step has run (the tracker's sums are added up on the host), so it can be
    returned in the step's logs dict (``{"loss": self.loss_tracker.result()}``), and nothing else.
    """

    def __init__(self, metric: Any):
        self.metric = metric

    def _error(self, what: str) -> TypeError:
        name = getattr(self.metric, "name", "?")
        return TypeError(
            f"{what} needs the value of metric {name!r} ({type(self.metric).__name__}).result(), which a traced "
            "train_step does not have: the tracker's state is added up after each step runs. Return "
            f"{name}.result() in the logs dict as it is (fit reports it), and compute with the values you "
            "passed to update_state() instead.")

    def __onnx_value__(self) -> Any:
        raise self._error("Using it in graph ops")

    def __float__(self) -> float:
        raise self._error("float()")

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        raise self._error("Converting to a numpy array")

    def __bool__(self) -> bool:
        raise self._error("A truth value")

    def __repr__(self) -> str:
        return f"<MetricResult of {getattr(self.metric, 'name', '?')!r}>"


class TraceContext:
    """Everything a layer's ``call()`` may touch while one program is traced.

    Args:
        builder: where nodes go.
        training: the Keras ``training`` flag of this program (Dropout, BatchNormalization).
        weights: how a Variable enters the graph: ``"inputs"`` (a graph input named after the variable —
            training steps and device-resident runtime programs) or ``"initializers"`` (its current value
            baked in — exported inference graphs).
        random_uniform: how the program draws U[0, 1) noise shaped like a shape tensor; set by the
            compiler, which owns the RNG state of the program.

    Example:
        >>> import numpy as np, onnx
        >>> from onnxforge.graph import GraphBuilder
        >>> b = GraphBuilder()
        >>> ctx = TraceContext(b, training=False, weights="initializers")
        >>> w = Variable(np.eye(2, dtype=np.float32), name="w")
        >>> with ctx.active():
        ...     x = b.input("x", onnx.TensorProto.FLOAT, ("batch", 2))
        ...     y = x @ w
        >>> sorted(ctx.reads) == [w.uid]
        True
    """

    def __init__(self, builder: GraphBuilder, training: bool, weights: str = "inputs",
                 random_uniform: Callable[[Value], Value] | None = None):
        if weights not in ("inputs", "initializers"):
            raise ValueError(f"weights must be 'inputs' or 'initializers'. Received: weights={weights!r}")
        self.b = builder
        self.training = training
        self.weights = weights
        self._random_uniform = random_uniform
        #: Variable uid -> (Variable, graph value) for every variable read.
        self.reads: dict[int, tuple[Variable, Value]] = {}
        #: Variable uid -> (Variable, new value): state updates (BatchNorm moving statistics).
        self.updates: dict[int, tuple[Variable, Value]] = {}
        #: Variable uid -> the values a trainable variable was assigned in this training step, in order
        #: (SpectralNormalization's kernel). Each is a fresh node whose input gets no gradient: TensorFlow's
        #: ``assign`` is not differentiable, and a weight's gradient sums those of all the values it was read as.
        self.versions: dict[int, list[Value]] = {}
        #: Scalar losses added by layers (weight regularizers, activity regularizers).
        self.losses: list[Value] = []
        #: Run-time size checks on symbolic dims, as ``(dims, minimum, message, maximum)``: ``(dim,)`` must lie
        #: in ``[minimum, maximum]`` (no maximum: ``None``); ``(a, b)`` must be equal. The compiler maps them to
        #: program inputs for the host (``dim_check_records``).
        self.dim_checks: list[tuple[tuple[str, ...], int | None, str, int | None]] = []
        #: Run-time value checks on host inputs, as ``(input name, minimum, maximum, message)``: every element
        #: of that input must lie in ``[minimum, maximum]`` (an Embedding's ids).
        self.value_checks: list[tuple[str, int, int, str]] = []
        #: Whether this program is one replica of a data-parallel step (``onnxforge.distribute``): then
        #: ``cross_replica_sum`` cuts the graph where the replicas must exchange values.
        self.replicated = False
        #: ``(local value, summed input)`` of every ``cross_replica_sum`` in a replicated program, in order.
        self.replica_sums: list[tuple[Value, Value]] = []
        #: Metrics updated inside layers' ``call()`` (Keras's endpoint-layer pattern): id -> (metric, this
        #: program's state sums), in first-use order. Step programs output the sums and report the metrics.
        self.layer_metrics: dict[int, tuple[Any, list[Value]]] = {}
        #: Whether layers may emit fused training kernels that only onnxruntime's CPU provider is known to run
        #: (``BatchNormalization(training_mode=1)``: the CUDA provider refuses it from opset 14, and files
        #: must run everywhere). The compiler turns it on for CPU programs of this process, never for a file.
        self.fused_training_ops = False
        #: Whether a layer emitted such a kernel (the program is then rebuilt without for export).
        self.used_fused_ops = False

    def active(self) -> contextlib.AbstractContextManager[TraceContext]:
        """Make this the trace layers emit into, for the ``with`` block."""
        return entered(self)

    def read(self, var: Variable) -> Value:
        """The graph value of ``var`` at this point of the program: its value after the updates recorded so
        far (eager order: a layer called twice per step sees its first call's update), else its input."""
        hit = self.updates.get(var.uid)
        return self.read_after_assign(var, hit[1]) if hit is not None else self.input_of(var)

    def read_after_assign(self, var: Variable, assigned: Value) -> Value:
        """What a read of ``var`` gives after this program assigned it ``assigned``.

        A non-trainable variable reads as the value assigned, but no gradient flows back through the read
        into the computation of that value: in Keras on TensorFlow and on torch the read returns the
        variable, not the expression assigned to it. A BatchNormalization called in training mode and then in
        inference mode in one step (keras.io AdaMatch) must not send gradients into its batch statistics.
        Trainable variables keep the value: their reads are versions the gradient sums over."""
        if var.trainable:
            return assigned
        return stop_gradient_value(self.b, assigned)

    def read_autocast(self, var: Variable) -> Value:
        """``read(var)``, cast to the autocast scope's dtype where Keras would cast it: a float Variable with
        ``autocast=True`` read inside a mixed-precision layer's call. A Cast per read, never shared: a
        GradientTape records only the nodes emitted inside it, so each read must own its path."""
        value = self.read(var)
        dtype = autocast_dtype()
        if dtype is None or not getattr(var, "autocast", True) or not value.is_float:
            return value
        to = onnx_dtype(dtype) if dtype != "bfloat16" else _BFLOAT16
        if value.dtype == to:
            return value
        return self.b.op("Cast", [value], to=to, shape=value.shape)

    def input_of(self, var: Variable) -> Value:
        """The graph value carrying ``var``'s value at the start of the program (created on first use)."""
        hit = self.reads.get(var.uid)
        if hit is not None:
            return hit[1]
        value = self._declare(var)
        self.reads[var.uid] = (var, value)
        return value

    def _declare(self, var: Variable) -> Value:
        """How a variable enters the graph; subclasses choose names. Two variables may share a name (the
        same ``Dense(name="decision")`` built in each tree of keras.io's decision forest): a suffix keeps the
        second one's graph name unique."""
        name = self.b.fresh(var.path)
        self.b._taken.discard(name)   # claimed again by the declaration below
        if self.weights == "inputs":
            return self.b.input(name, onnx_dtype(var.dtype), var.shape)
        return self.b.initializer(name, var.numpy())

    def assign_variable(self, var: Variable, value: Any, in_inference: bool = False) -> Value:
        """``var.assign(value)`` inside this program: ``value`` (a graph value or a constant) converted to the
        variable's dtype and shape, recorded as an update (see ``update``; ``in_inference``: in inference
        programs too). Returns the assigned value."""
        if hasattr(value, "__onnx_value__"):
            value = value.__onnx_value__()
        to = onnx_dtype(var.dtype)
        if not isinstance(value, Value):
            value = self.b.const(np.asarray(value, dtype=var.dtype))
        elif value.dtype not in (None, to):
            value = self.b.op("Cast", [value], to=to, shape=value.shape)
        static = value.static_shape() if value.shape is not None else None
        if static is not None and tuple(static) != tuple(var.shape):
            if int(np.prod(static)) != int(np.prod(var.shape)) or len(static) > len(var.shape):
                raise ValueError(f"Cannot assign a value of shape {tuple(static)} to variable {var.path!r} of "
                                 f"shape {var.shape}.")
            value = self.b.op("Reshape", [value, self.b.const(np.asarray(var.shape, np.int64))], shape=var.shape)
        self.update(var, value, in_inference)
        return value

    def update(self, var: Variable, new_value: Value, in_inference: bool = False) -> None:
        """Record that this program's step sets ``var`` to ``new_value`` (non-trainable state only).

        Updates chain: later reads of ``var`` in the same program see ``new_value``, and the program's
        output for ``var`` is its last update (Keras applies every ``assign`` of a step in order). Inference
        programs keep only the updates made ``in_inference``: a stateful RNN's states and every
        ``Variable.assign`` in a layer's ``call()`` (Keras assigns in every mode), not the statistics that
        built-in layers update only in training."""
        if self.training or in_inference:
            self.input_of(var)  # the state pair needs the input even if the layer never read it
            if new_value.dtype is None:
                new_value.dtype = onnx_dtype(var.dtype)
            if new_value.shape is None:
                new_value.shape = var.shape
            if self.training and var.trainable:
                new_value = self.b.op("Identity", [new_value], dtype=new_value.dtype, shape=new_value.shape)
                self.versions.setdefault(var.uid, []).append(new_value)
            self.updates[var.uid] = (var, new_value)

    def cross_replica_sum(self, local: Value) -> Value:
        """The sum of ``local`` over every replica of a data-parallel step (synchronized BatchNormalization's
        batch moments). One replica (every program but a replicated one): ``local`` itself.

        In a replicated program the graph is cut here: ``local`` becomes an output the runtime all-reduces
        between program stages, and the sum a new input of the same type; gradients reach ``local`` the
        same way back (``onnxforge.distribute`` splits the program at these cuts).
        """
        if not self.replicated:
            return local
        name = self.b.fresh(f"replica_sum_{len(self.replica_sums)}")
        self.b._taken.discard(name)   # claimed by fresh(); input() claims it again
        total = self.b.input(name, local.dtype, local.shape)
        self.replica_sums.append((local, total))
        return total

    def add_loss(self, value: Value) -> None:
        """Add a scalar to the training loss (regularization)."""
        self.losses.append(value)

    def require_dim(self, dim: str, minimum: int, message: str, maximum: int | None = None) -> None:
        """Ask for the symbolic dim ``dim`` to be at least ``minimum`` (and at most ``maximum``) at run time
        (checked on the host, before onnxruntime, with ``message``: e.g. a recurrent layer refusing a
        zero-length sequence, a stateful one a batch of another size than its states')."""
        if not any(d == (dim,) and m is not None and m >= minimum and (maximum is None or x == maximum)
                   for d, m, _, x in self.dim_checks):
            self.dim_checks.append(((dim,), int(minimum), message, maximum))

    def require_equal_dims(self, a: str, b: str, message: str) -> None:
        """Ask for the symbolic dims ``a`` and ``b`` to be equal at run time (checked like ``require_dim``)."""
        if a != b and not any(set(d) == {a, b} for d, *_ in self.dim_checks):
            self.dim_checks.append(((a, b), None, message, None))

    def dim_check_records(self) -> list[dict[str, Any]]:
        """``dim_checks`` as the program's ``onnxforge.dim_checks`` JSON records (``graph/contract.py``)."""
        return [{"dims": list(d), "min": m, "message": msg, **({"max": x} if x is not None else {})}
                for d, m, msg, x in self.dim_checks]

    def require_values(self, value: Value, minimum: int, maximum: int, message: str) -> bool:
        """Ask for every element of ``value`` to lie in ``[minimum, maximum]``, checked on the host before
        each run with ``message`` (ONNX has no way to raise; an Embedding's ``Gather`` would fail inside
        onnxruntime for ids past the table, and silently wrap negative ones to the end).

        Only possible when ``value`` is a program input, or one through ``Identity`` / ``Cast``; returns
        whether the check could be placed.
        """
        name = value.name
        producers = {out: node for node in self.b.nodes for out in node.output}
        while name in producers and producers[name].op_type in ("Identity", "Cast"):
            name = producers[name].input[0]
        if name not in {v.name for v in self.b.inputs}:
            return False
        entry = (name, int(minimum), int(maximum), message)
        if entry not in self.value_checks:
            self.value_checks.append(entry)
        return True

    def track_metric(self, metric: Any, sums: list[Value]) -> None:
        """A metric's ``update_state`` inside this trace (a layer's ``call()``, as Keras's endpoint layer does):
        its batch sums are recorded in ``layer_metrics``; an update repeated in one program counts twice."""
        hit = self.layer_metrics.get(id(metric))
        if hit is not None:
            total = [self.b.op("Add", [a, s]) for a, s in zip(hit[1], sums)]
            for t, a in zip(total, hit[1]):
                t.dtype, t.shape = a.dtype, a.shape
            sums = total
        self.layer_metrics[id(metric)] = (metric, sums)

    def metric_result(self, metric: Any) -> Any:
        """A metric tracker's ``result()`` inside this trace (see ``track_metric``)."""
        raise TypeError(self._metric_error(metric, "result()"))

    def _metric_error(self, metric: Any, method: str) -> str:
        name = getattr(metric, "name", "?")
        return (f"Metric {name!r} ({type(metric).__name__}).{method} was called while onnxforge traces a graph "
                "(a layer's call(), a loss, or a program without metric state). A metric's result() is known on the "
                "host only: return the tracker's result() from a Model subclass's train_step (fit then reports "
                "it), or let fit report a metric that a layer updates in call().")

    def random_uniform(self, like: Value) -> Value:
        """U[0, 1) noise with the shape of ``like``, from the program's RNG state."""
        if self._random_uniform is None:
            raise RuntimeError("This program has no random number source: random ops need a program compiled "
                               "by onnxforge (fit, predict, an eager call) or a seed (seed=1337, a SeedGenerator).")
        return self._random_uniform(like)


def constant(value: np.ndarray | float, like: Value) -> Value:
    """A constant in the dtype of ``like`` (helper for layer code)."""
    return like.builder.const(value, like.dtype)
