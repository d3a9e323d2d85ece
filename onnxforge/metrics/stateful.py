"""Keras-style metrics written by users: ``add_variable`` in ``__init__``, ``update_state`` with ``keras.ops``
and ``assign_add``, ``result`` from the variables.

Used on arrays, such a metric runs its own Python code (``onnxforge.ops`` evaluate NumPy eagerly). Compiled
into a model, its ``update_state`` is traced once with every variable standing at zero, which gives each
variable's *increase* for a batch as graph ops: the batch sums of the onnxforge metric contract. That is
exact when updates add to the variables (``assign_add``, ``assign_sub``, ``assign(v + ...)``), as every
Keras metric's do; an update that is not a sum (``assign(0.9 * v + x)``, overwriting) is refused at compile
time with a message naming the variable. ``result`` then runs on the accumulated values.

Example:
    >>> import numpy as np
    >>> from onnxforge import ops
    >>> from onnxforge.metrics import Metric
    >>> class Hits(Metric):
    ...     def __init__(self, name="hits", **kwargs):
    ...         super().__init__(name=name, **kwargs)
    ...         self.hits = self.add_variable(shape=(), initializer="zeros", name="hits")
    ...     def update_state(self, y_true, y_pred, sample_weight=None):
    ...         self.hits.assign_add(ops.sum(ops.cast(ops.equal(y_true, ops.argmax(y_pred, -1)), "float32")))
    ...     def result(self):
    ...         return self.hits.numpy()
    >>> m = Hits()
    >>> m.update_state(np.array([1, 0]), np.array([[0.2, 0.8], [0.3, 0.7]], np.float32))
    >>> float(m.result())
    1.0
"""
from __future__ import annotations

__all__ = ["MetricVariable", "trace_increments", "check_additive"]

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx

from ..graph import GraphBuilder, Value, onnx_dtype

_FLOAT = onnx.TensorProto.FLOAT


def _initial(initializer: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    if callable(initializer) and not isinstance(initializer, str):
        return np.asarray(initializer(shape, dtype=dtype), dtype).reshape(shape)
    name = str(initializer or "zeros").lower()
    if name in ("zeros", "zero"):
        return np.zeros(shape, dtype)
    if name in ("ones", "one"):
        return np.ones(shape, dtype)
    raise ValueError(f"Metric variables take the initializer 'zeros', 'ones' or a callable(shape, dtype). Received: "
                     f"initializer={initializer!r}")


class MetricVariable:
    """A metric's state variable: a NumPy value on the host, a graph value while a step is traced.

    Supports what Keras metrics do with variables: ``assign``, ``assign_add``, ``assign_sub``, ``numpy()``,
    ``value``, arithmetic, indexing and use in ``onnxforge.ops``.
    """

    def __init__(self, name: str, shape: Sequence[int], dtype: Any, initializer: Any):
        self.name = name
        self._dtype = np.dtype(dtype or "float32")
        self._shape = tuple(int(d) for d in shape)
        self._init = _initial(initializer, self._shape, self._dtype)
        self._value = self._init.copy()
        self._symbolic: Value | None = None

    # ------------------------------------------------------------------ state
    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def dtype(self) -> str:
        return self._dtype.name

    @property
    def value(self) -> Any:
        return self._symbolic if self._symbolic is not None else self._value

    def numpy(self) -> np.ndarray:
        if self._symbolic is not None:
            raise RuntimeError(f"Metric variable {self.name!r} has no value while the training step is traced: its "
                               "value is known only when the step runs. Call numpy() in result(), not in "
                               "update_state().")
        return self._value.copy()

    def assign(self, value: Any) -> MetricVariable:
        if self._symbolic is not None or isinstance(value, Value) or hasattr(value, "__onnx_value__"):
            if self._symbolic is None:
                raise RuntimeError(f"Metric variable {self.name!r} was assigned a graph value outside a compiled "
                                   "step. Pass arrays to update_state, or the metric to compile(metrics=...).")
            self._symbolic = _as_graph(value, self._symbolic)
        else:
            self._value = np.asarray(value, self._dtype).reshape(self._shape).copy()
        return self

    def assign_add(self, value: Any) -> MetricVariable:
        return self.assign(self.value + value)

    def assign_sub(self, value: Any) -> MetricVariable:
        return self.assign(self.value - value)

    def reset(self) -> None:
        self._value = self._init.copy()

    # ------------------------------------------------------------------ interop
    def __getattr__(self, name: str) -> Any:
        # Only while a step is traced does the variable stand for a graph value (``__onnx_value__``, which ops
        # and the graph builder look for); otherwise ops see a NumPy array through ``__array__``.
        if name == "__onnx_value__" and self.__dict__.get("_symbolic") is not None:
            return lambda: self._symbolic
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self.numpy(), dtype=dtype)

    def __float__(self) -> float:
        return float(self.numpy())

    def __getitem__(self, index: Any) -> Any:
        return self.value[index]

    def __repr__(self) -> str:
        return f"<MetricVariable {self.name!r} shape={self._shape} dtype={self.dtype}>"


def _binary(op: Callable[[Any, Any], Any], reflected: bool = False) -> Callable[..., Any]:
    def method(self: MetricVariable, other: Any) -> Any:
        other = other.value if isinstance(other, MetricVariable) else other
        return op(other, self.value) if reflected else op(self.value, other)
    return method


for _name, _op in (("add", lambda a, b: a + b), ("sub", lambda a, b: a - b), ("mul", lambda a, b: a * b),
                   ("truediv", lambda a, b: a / b), ("pow", lambda a, b: a ** b)):
    setattr(MetricVariable, f"__{_name}__", _binary(_op))
    setattr(MetricVariable, f"__r{_name}__", _binary(_op, reflected=True))
MetricVariable.__neg__ = lambda self: -self.value


def _as_graph(value: Any, like: Value) -> Value:
    """``value`` as a float graph value of ``like``'s graph (constants become initializers)."""
    if hasattr(value, "__onnx_value__") and not isinstance(value, Value):
        value = value.__onnx_value__()
    b = like.builder
    if not isinstance(value, Value):
        value = b.const(np.asarray(value, np.float32))
    if value.dtype != like.dtype and like.dtype is not None:
        value = b.op("Cast", [value], to=like.dtype, shape=value.shape)
    return value


# ------------------------------------------------------------------------------------------ tracing
def trace_increments(variables: Sequence[MetricVariable], update: Callable[[], Any], builder: GraphBuilder,
                     start: Callable[[MetricVariable], Value]) -> list[Value]:
    """Run ``update`` with each variable standing at ``start(variable)``; the variables' final graph values."""
    for var in variables:
        var._symbolic = start(var)
    try:
        update()
        finals = [var._symbolic for var in variables]
    finally:
        for var in variables:
            var._symbolic = None
    out = []
    for var, final in zip(variables, finals):
        if final.shape is None:
            final.shape = var.shape
        if final.shape != var.shape and final.shape != () and var.shape != ():
            final = builder.op("Reshape", [final, builder.const(np.asarray(var.shape, np.int64))], shape=var.shape)
        elif final.shape != var.shape:
            final = builder.op("Expand", [final, builder.const(np.asarray(var.shape, np.int64))], shape=var.shape)
        out.append(final if final.dtype == _FLOAT else builder.op("Cast", [final], to=_FLOAT, shape=var.shape))
    return out


def _depends_on(builder: GraphBuilder, value_name: str, target: str, producers: dict[str, Any]) -> bool:
    stack, seen = [value_name], set()
    while stack:
        name = stack.pop()
        if name == target:
            return True
        if name in seen or name not in producers:
            continue
        seen.add(name)
        stack.extend(i for i in producers[name].input if i)
    return False


def check_additive(metric_name: str, variables: Sequence[MetricVariable], update: Callable[..., Any],
                   inputs: Sequence[tuple[int | None, tuple | None] | None]) -> None:
    """Refuse an update that is not ``variable + (something independent of it)`` for every variable.

    ``update(*values)`` is traced on a scratch graph whose inputs have the types in ``inputs`` and whose
    variables start as graph inputs of their own; each final value must be a chain of Add / Sub (and casts
    or reshapes that keep the variable unchanged) with the variable's own start appearing once, added.
    """
    b = GraphBuilder()
    values = [None if spec is None else b.input(f"arg{i}", spec[0] or _FLOAT, spec[1]) for i, spec in enumerate(inputs)]
    starts: dict[int, Value] = {}

    def start(var: MetricVariable) -> Value:
        starts[id(var)] = b.input(f"state_{len(starts)}", onnx_dtype(var._dtype), var.shape)
        return starts[id(var)]

    finals = trace_increments(variables, lambda: update(*values), b, start)
    producers = {o: n for n in b.nodes for o in n.output}
    for var, final in zip(variables, finals):
        s = starts[id(var)].name
        if not _additive(final.name, s, producers, b):
            raise ValueError(
                f"Metric {metric_name!r}: the update of variable {var.name!r} is not a sum. onnxforge compiles a "
                "metric as per-batch increases of its variables (assign_add, assign_sub, assign(variable + ...)), "
                "as every Keras metric updates; keep running averages or overwrites in result() instead.")


_PASS_THROUGH = ("Identity", "Cast", "Reshape", "Expand")


def _additive(name: str, start: str, producers: dict[str, Any], b: GraphBuilder) -> bool:
    if name == start:
        return True
    node = producers.get(name)
    if node is None:
        return False
    if node.op_type in _PASS_THROUGH:
        return _additive(node.input[0], start, producers, b)
    if node.op_type == "Add":
        left, right = node.input[0], node.input[1]
        if _additive(left, start, producers, b):
            return not _depends_on(b, right, start, producers)
        return _additive(right, start, producers, b) and not _depends_on(b, left, start, producers)
    if node.op_type == "Sub":
        return _additive(node.input[0], start, producers, b) and not _depends_on(b, node.input[1], start, producers)
    return False
