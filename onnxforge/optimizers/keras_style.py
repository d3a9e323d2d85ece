"""Optimizers written the Keras 3 way, traced into the training graph.

A Keras 3 optimizer author subclasses ``keras.optimizers.Optimizer``, creates state in ``build(var_list)`` with
``add_variable_from_reference`` / ``add_variable``, and writes ``update_step(gradient, variable, learning_rate)``
with ``keras.ops`` and ``self.assign`` / ``assign_add`` / ``assign_sub``. onnxforge calls that method once per
trained weight while the training step is built, with the gradient, the learning rate and every Variable standing
for its graph value (an :class:`UpdateScope` is the active trace meanwhile): each ``assign`` becomes the
Variable's new value in the graph, and later reads in the same step see it, as Keras's eager order says.

Example:
    >>> import numpy as np, onnxforge as tf
    >>> from onnxforge import keras
    >>> class PlainSGD(keras.optimizers.Optimizer):
    ...     def __init__(self, learning_rate=0.1, **kw):
    ...         super().__init__(learning_rate=learning_rate, **kw)
    ...     def update_step(self, gradient, variable, learning_rate):
    ...         self.assign_sub(variable, keras.ops.multiply(gradient, learning_rate))
    >>> w = tf.Variable(np.ones(2, np.float32))
    >>> _ = PlainSGD().apply_gradients([(np.array([1.0, -1.0], np.float32), w)])
    >>> [round(float(v), 4) for v in w.numpy()]
    [0.9, 1.1]
"""
from __future__ import annotations

__all__ = ["KerasOptimizerAPI", "UpdateScope", "is_keras_style", "keras_style_apply"]

import contextlib
import inspect
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from .. import initializers
from ..backend_config import floatx
from ..graph import GraphBuilder, Value
from ..graph.value import onnx_dtype
from ..trace_state import active_trace, entered
from ..variables import Variable

_KERAS_STYLE: dict[type, bool] = {}


def is_keras_style(optimizer: Any) -> bool:
    """Whether ``optimizer``'s ``update_step`` is Keras 3's ``(gradient, variable, learning_rate)`` rather than
    onnxforge's graph-emitting ``(b, param, grad, slots, lr, local_step)``."""
    kind = type(optimizer)
    hit = _KERAS_STYLE.get(kind)
    if hit is None:
        fn = getattr(kind, "update_step", None)
        try:
            params = list(inspect.signature(fn).parameters.values())[1:]
        except (TypeError, ValueError):
            params = []
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        hit = _KERAS_STYLE[kind] = len(positional) == 3   # onnxforge's own takes six
    return hit


class KerasOptimizerAPI:
    """The methods Keras 3 gives optimizer authors (mixed into ``Optimizer``)."""

    _trainable_variables: list[Variable]
    _trainable_variables_indices: dict[int, int]

    def _var_key(self, variable: Any) -> int:
        """Keras's key of a trained variable in ``_trainable_variables_indices``."""
        return id(variable)

    def _get_variable_index(self, variable: Any) -> int:
        """The position of ``variable`` in the list ``build`` received (index into lists built there)."""
        try:
            return self._trainable_variables_indices[self._var_key(variable)]
        except KeyError:
            raise ValueError(f"Unknown variable: {variable!r}. This optimizer can only be called for the variables "
                             "it was originally built with. When working with a new set of variables, you should "
                             "recreate a new optimizer instance.") from None

    def add_variable(self, shape: Any, initializer: Any = "zeros", dtype: Any = None, aggregation: str = "none",
                     layout: Any = None, name: str | None = None) -> Variable:
        """A new non-trainable optimizer Variable named ``<optimizer name>/<name>``, part of ``variables`` and of
        the training step's state.

        Example:
            >>> from onnxforge.optimizers import SGD
            >>> SGD(name="sgd").add_variable((2,), initializer="ones", name="acc").path
            'sgd/acc'
        """
        shape = tuple(int(d) for d in (shape if isinstance(shape, (tuple, list)) else (shape,)))
        dtype = np.dtype(dtype if dtype is not None else floatx())
        init = initializers.get(initializer)
        value = init(shape, dtype=dtype) if init is not None else np.zeros(shape, dtype)
        var = Variable(np.asarray(value, dtype=dtype), name=f"{self.name}/{name or 'variable'}", trainable=False,
                       dtype=dtype)
        self._slot_order.append(var)
        return var

    def add_variable_from_reference(self, reference_variable: Variable, name: str | None = None,
                                    initializer: Any = "zeros") -> Variable:
        """A Variable shaped and typed like ``reference_variable``, named
        ``<optimizer name>/<reference path with _>_<name>`` (Keras's naming); it is the reference's slot ``name``."""
        slot = name or "var"
        ref = str(getattr(reference_variable, "path", reference_variable.name)).replace("/", "_").replace(":", "_")
        var = self.add_variable(tuple(reference_variable.shape), initializer, reference_variable.dtype,
                                name=f"{ref}_{slot}")
        uid = getattr(reference_variable, "uid", None)
        if uid in self._slots:
            self._slots[uid][slot] = var
        return var

    def add_optimizer_variables(self, trainable_variables: Sequence[Variable], name: str | Sequence[str],
                                initializer: Any = "zeros") -> Any:
        """``add_variable_from_reference`` for each variable and each name: a list, or a tuple of lists when
        ``name`` is a list of names."""
        names = [name] if isinstance(name, str) else list(name)
        inits = [initializer] * len(names) if isinstance(initializer, str) or not isinstance(initializer, (list, tuple)) \
            else list(initializer)
        if len(inits) != len(names):
            raise ValueError("The number of provided names must match the number of provided initializers. "
                             f"Received name='{name}', initializer='{initializer}'")
        out: tuple[list[Variable], ...] = tuple([] for _ in names)
        for var in trainable_variables:
            for i, (n, init) in enumerate(zip(names, inits)):
                out[i].append(self.add_variable_from_reference(var, name=n, initializer=init))
        return out[0] if isinstance(name, str) else out

    def assign(self, variable: Variable, value: Any) -> Any:
        """``variable.assign(value)`` (in the graph, inside ``update_step``)."""
        return variable.assign(value)

    def assign_add(self, variable: Variable, value: Any) -> Any:
        """``variable.assign_add(value)`` (in the graph, inside ``update_step``)."""
        return variable.assign_add(value)

    def assign_sub(self, variable: Variable, value: Any) -> Any:
        """``variable.assign_sub(value)`` (in the graph, inside ``update_step``)."""
        return variable.assign_sub(value)


class UpdateScope:
    """The trace a Keras-style ``update_step`` runs in: Variables read as their current graph values (the trained
    weights as given, anything else through ``read``), and ``assign`` records the new value.

    Whatever else is asked of the trace (random draws, ...) goes to the trace outside, if there is one.
    """

    assigns_in_graph = True
    training = True

    def __init__(self, b: GraphBuilder, read: Callable[[Variable], Value], outer: Any = None):
        self.b = b
        self._read = read
        self._outer = outer
        self.current: dict[int, tuple[Variable, Value]] = {}
        self.assigned: dict[int, Variable] = {}

    def __getattr__(self, name: str) -> Any:
        outer = self.__dict__.get("_outer")
        if outer is None or name.startswith("__"):
            raise AttributeError(f"An optimizer's update_step cannot use {name!r} of the training trace here.")
        return getattr(outer, name)

    def read(self, var: Variable) -> Value:
        hit = self.current.get(var.uid)
        if hit is None:
            hit = self.current[var.uid] = (var, self._read(var))
        return hit[1]

    def read_autocast(self, var: Variable) -> Value:
        return self.read(var)

    def assign_variable(self, var: Variable, value: Any, in_inference: bool = False) -> Value:
        if hasattr(value, "__onnx_value__"):
            value = value.__onnx_value__()
        to = onnx_dtype(var.dtype)
        if not isinstance(value, Value):
            value = self.b.const(np.broadcast_to(np.asarray(value, dtype=var.dtype), var.shape).copy())
        elif value.dtype not in (None, to):
            value = self.b.op("Cast", [value], to=to, shape=value.shape)
        static = value.static_shape() if value.shape is not None else None
        if static is not None and tuple(static) != tuple(var.shape):
            if int(np.prod(static)) != int(np.prod(var.shape)):
                raise ValueError(f"Cannot assign a value of shape {tuple(static)} to variable {var.path!r} of "
                                 f"shape {tuple(var.shape)}.")
            value = self.b.op("Reshape", [value, self.b.const(np.asarray(var.shape, np.int64))], shape=var.shape)
        value.dtype = value.dtype or to
        value.shape = value.shape if value.shape is not None else tuple(var.shape)
        self.current[var.uid] = (var, value)
        self.assigned[var.uid] = var
        return value


@contextlib.contextmanager
def _learning_rate_as(optimizer: Any, lr: Value) -> Iterator[None]:
    """``optimizer.learning_rate`` reads as the step's learning-rate input while ``update_step`` is traced."""
    optimizer._traced_learning_rate = lr
    try:
        yield
    finally:
        optimizer._traced_learning_rate = None


def keras_style_apply(optimizer: Any, b: GraphBuilder, read: Callable[[Variable], Value],
                      variables: Sequence[Variable], params: Sequence[Value], grads: Sequence[Value],
                      lr: Value) -> tuple[list[Value], list[tuple[Variable, Value]]]:
    """Trace a Keras-style ``update_step`` for each weight, after Keras's gradient scaling, clipping and weight
    decay. Returns the weights' new values and ``(optimizer Variable, new value)`` for every other Variable
    the method assigned (its slots)."""
    if not optimizer.built:
        optimizer.build(list(variables))   # Keras builds once, with every trained variable
    for var in variables:
        optimizer._get_variable_index(var)  # a variable the optimizer was not built with: Keras's error
    grads = optimizer._prepared_gradients(b, list(grads))
    scope = UpdateScope(b, read, active_trace())
    trained = {v.uid for v in variables}
    for var, p in zip(variables, params):
        if optimizer.weight_decay is not None and optimizer._use_weight_decay(var):
            p = p - p * (lr * float(optimizer.weight_decay))
        scope.current[var.uid] = (var, p)
    with entered(scope), _learning_rate_as(optimizer, lr):   # type: ignore[arg-type]
        for var, g in zip(variables, grads):
            optimizer.update_step(g, var, lr)
    new_params = [scope.current[v.uid][1] for v in variables]
    others = [(var, scope.current[uid][1]) for uid, var in scope.assigned.items()
              if uid not in trained and var is not optimizer.iterations]
    return new_params, others
