"""Tracing: the context in which layers' ``call()`` emit ONNX nodes for one program."""
from __future__ import annotations

__all__ = ["TraceContext", "current_trace"]

import contextlib
from collections.abc import Iterator
from typing import Callable

import numpy as np

from .graph import GraphBuilder, Value, onnx_dtype
from .variables import Variable

_stack: list[TraceContext] = []


def current_trace() -> TraceContext:
    """The innermost active trace; layer code outside a trace is an error."""
    if not _stack:
        raise RuntimeError("No active trace: layers and Variables emit graph ops only while a model is being "
                           "compiled (inside TraceContext.active()).")
    return _stack[-1]


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
        #: Scalar losses added by layers (weight regularizers, activity regularizers).
        self.losses: list[Value] = []
        #: Run-time size checks on symbolic dims, as ``(dims, minimum, message)``: ``(dim,)`` must be at least
        #: ``minimum``; ``(a, b)`` must be equal. The compiler maps them to program inputs for the host.
        self.dim_checks: list[tuple[tuple[str, ...], int | None, str]] = []
        #: Run-time value checks on host inputs, as ``(input name, minimum, maximum, message)``: every element
        #: of that input must lie in ``[minimum, maximum]`` (an Embedding's ids).
        self.value_checks: list[tuple[str, int, int, str]] = []

    @contextlib.contextmanager
    def active(self) -> Iterator[TraceContext]:
        _stack.append(self)
        try:
            yield self
        finally:
            _stack.pop()

    def read(self, var: Variable) -> Value:
        """The graph value of ``var`` in this program (created on first read)."""
        hit = self.reads.get(var.uid)
        if hit is not None:
            return hit[1]
        if self.weights == "inputs":
            value = self.b.input(var.name, onnx_dtype(var.dtype), var.shape)
        else:
            value = self.b.initializer(var.name, var.numpy())
        self.reads[var.uid] = (var, value)
        return value

    def update(self, var: Variable, new_value: Value) -> None:
        """Record that this program's step sets ``var`` to ``new_value`` (non-trainable state only)."""
        if self.training:
            self.updates[var.uid] = (var, new_value)

    def add_loss(self, value: Value) -> None:
        """Add a scalar to the training loss (regularization)."""
        self.losses.append(value)

    def require_dim(self, dim: str, minimum: int, message: str) -> None:
        """Ask for the symbolic dim ``dim`` to be at least ``minimum`` at run time (checked on the host,
        before onnxruntime, with ``message``: e.g. a recurrent layer refusing a zero-length sequence)."""
        if not any(d == (dim,) and m is not None and m >= minimum for d, m, _ in self.dim_checks):
            self.dim_checks.append(((dim,), int(minimum), message))

    def require_equal_dims(self, a: str, b: str, message: str) -> None:
        """Ask for the symbolic dims ``a`` and ``b`` to be equal at run time (checked like ``require_dim``)."""
        if a != b and not any(set(d) == {a, b} for d, _, _ in self.dim_checks):
            self.dim_checks.append(((a, b), None, message))

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

    def random_uniform(self, like: Value) -> Value:
        """U[0, 1) noise with the shape of ``like``, from the program's RNG state."""
        if self._random_uniform is None:
            raise RuntimeError("This program has no random number source; random ops need a training "
                               "program compiled by onnxforge.")
        return self._random_uniform(like)


def constant(value: np.ndarray | float, like: Value) -> Value:
    """A constant in the dtype of ``like`` (helper for layer code)."""
    return like.builder.const(value, like.dtype)
