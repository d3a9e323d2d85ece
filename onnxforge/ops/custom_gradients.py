"""``keras.ops.custom_gradient`` / ``tf.custom_gradient``: a function whose gradient is given, not derived.

The decorated ``f(*args)`` returns ``(outputs, grad)``. Inside a graph (a compiled training step, a traced
``train_step`` or ``tf.function``, a layer's ``call``) ``f``'s nodes are emitted as usual, followed by one
``Identity`` per output; the region is registered with ``onnxforge.autodiff.custom`` so that the reverse walk
does not differentiate ``f``'s nodes but traces ``grad`` on graph values of the outputs' gradients when (and
each time) a gradient is taken. Outside a trace ``f`` runs eagerly; an eager ``GradientTape`` records the call
as one run whose gradient is ``grad`` (``onnxforge.eager.custom_runs`` registers that here).

``grad`` is called as TensorFlow calls it, ``grad(*upstreams)`` (one upstream gradient per flattened output),
which also serves Keras's portable form ``grad(*args, upstream=None)``; Keras's torch form, with a required
keyword-only ``upstream``, gets ``grad(*inputs, upstream=upstream)``. When ``f`` reads trainable Variables
that are not among its arguments, ``grad`` must accept ``variables`` and return
``(input_grads, variable_grads)``, as in TensorFlow.

Example:
    >>> import numpy as np
    >>> import onnxforge as tf
    >>> @tf.custom_gradient
    ... def reverse(x):
    ...     return tf.identity(x), lambda dy: -dy
    >>> x = tf.Variable([1.0, 2.0])
    >>> with tf.GradientTape() as tape:
    ...     y = tf.reduce_sum(reverse(x) * 3.0)
    >>> tape.gradient(y, x).tolist()
    [-3.0, -3.0]
"""
from __future__ import annotations

__all__ = ["custom_gradient", "register_eager_custom_gradient", "call_grad", "check_variables", "flatten", "pack",
           "split_result"]

import functools
import inspect
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..autodiff.custom import CustomGradient, register
from ..graph import FLOAT_TYPES, GraphBuilder, Value
from ..variables import Variable
from ._util import _active_trace, _has_keras_tensor, as_value, builder_of, cast_value

# Set by ``onnxforge.eager``: runs a custom-gradient function on arrays so an open eager tape can differentiate it.
_EAGER: list[Callable[[Callable[..., Any], tuple, dict], Any]] = []


def register_eager_custom_gradient(run: Callable[[Callable[..., Any], tuple, dict], Any]) -> None:
    """Called by ``onnxforge.eager``: how a decorated function runs on arrays (``run(f, args, kwargs)``)."""
    _EAGER[:] = [run]


def custom_gradient(f: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate ``f(*args) -> (outputs, grad)`` so that gradients through it come from ``grad``.

    Args:
        f: returns the outputs (a tensor or a nested structure of tensors) and ``grad``, called with the
            gradient of each flattened output and returning one gradient per flattened positional argument
            (a tensor, a list or tuple, ``None`` for no gradient); with ``variables=`` (the trainable
            Variables ``f`` read that are not arguments) it returns ``(input_grads, variable_grads)``.

    Returns:
        A function returning ``f``'s outputs.

    Example:
        >>> import numpy as np
        >>> from onnxforge import ops
        >>> @ops.custom_gradient
        ... def log1pexp(x):
        ...     e = ops.exp(x)
        ...     def grad(*args, upstream=None):
        ...         upstream = args[0] if upstream is None else upstream
        ...         return ops.multiply(upstream, 1.0 - 1.0 / ops.add(1.0, e))
        ...     return ops.log(1.0 + e), grad
        >>> float(log1pexp(np.float32(0.0)))  # doctest: +ELLIPSIS
        0.693...
    """
    if not callable(f):
        raise TypeError(f"custom_gradient expects a function returning (outputs, grad). Received: f={f!r}")

    @functools.wraps(f)
    def decorated(*args: Any, **kwargs: Any) -> Any:
        b = builder_of(args, kwargs)
        if b is not None:
            return _traced(f, b, args, kwargs)
        if _has_keras_tensor(args, kwargs):
            raise TypeError(f"custom_gradient function {_name(f)!r} was called on functional-API tensors (keras.Input "
                            "results). Call it inside a Layer's call() so that it is traced with the model.")
        if _EAGER:
            return _EAGER[0](f, args, kwargs)
        return split_result(f, f(*args, **kwargs))[0]

    return decorated


# ------------------------------------------------------------------------------------------ shared helpers
def _name(f: Any) -> str:
    return getattr(f, "__name__", type(f).__name__)


def flatten(x: Any) -> list[Any]:
    """The leaves of nested lists, tuples and dicts (dicts in key order), as ``tf.nest.flatten``."""
    if isinstance(x, (list, tuple)):
        return [leaf for item in x for leaf in flatten(item)]
    if isinstance(x, dict):
        return [leaf for key in sorted(x) for leaf in flatten(x[key])]
    return [x]


def pack(template: Any, leaves: Iterator[Any]) -> Any:
    """``template``'s structure with its leaves taken in order from ``leaves``."""
    if isinstance(template, (list, tuple)):
        items = [pack(t, leaves) for t in template]
        return items if isinstance(template, list) else type(template)(items) if not hasattr(template, "_fields") \
            else type(template)(*items)
    if isinstance(template, dict):
        filled = {k: pack(template[k], leaves) for k in sorted(template)}
        return {k: filled[k] for k in template}
    return next(leaves)


def split_result(f: Any, result: Any) -> tuple[Any, Callable[..., Any]]:
    """``(outputs, grad)`` from what ``f`` returned, or a TypeError saying what was expected."""
    if not isinstance(result, (tuple, list)) or len(result) != 2 or not callable(result[1]):
        raise TypeError(f"A custom_gradient function must return a pair (outputs, grad) with grad a function. "
                        f"{_name(f)!r} returned: {type(result).__name__} "
                        f"{result!r:.200}")
    return result[0], result[1]


def _accepts_variables(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return True
    return "variables" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _upstream_by_keyword(fn: Callable[..., Any]) -> bool:
    """Keras's torch form ``grad(*args, upstream)``: a keyword-only ``upstream`` without a default."""
    try:
        p = inspect.signature(fn).parameters.get("upstream")
    except (TypeError, ValueError):
        return False
    return p is not None and p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is inspect.Parameter.empty


def check_variables(f: Any, grad: Callable[..., Any], variables: Sequence[Variable]) -> None:
    """TensorFlow's rule: a function that reads trainable Variables needs a ``grad`` taking ``variables``."""
    if variables and not _accepts_variables(grad):
        names = [getattr(v, "path", v.name) for v in variables]
        raise TypeError(f"The grad function of custom_gradient function {_name(f)!r} must accept the keyword argument "
                        f"'variables', since the function reads the trainable variables {names}.")


def call_grad(f: Any, grad: Callable[..., Any], upstream: Sequence[Any], inputs: Sequence[Any],
              variables: Sequence[Variable]) -> tuple[list[Any], list[Any]]:
    """Call ``grad`` the way TensorFlow (or Keras's torch form) does; its input and variable gradients, checked."""
    extra = {"variables": list(variables)} if variables else {}
    check_variables(f, grad, variables)
    if _upstream_by_keyword(grad):
        out = grad(*inputs, upstream=upstream[0] if len(upstream) == 1 else tuple(upstream), **extra)
    else:
        out = grad(*upstream, **extra)
    if variables:
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise TypeError(f"The grad function of {_name(f)!r} got variables=, so it must return "
                            f"(input_grads, variable_grads). Received: {out!r:.200}")
        input_grads, variable_grads = out
        variable_grads = flatten(variable_grads)
        if len(variable_grads) != len(variables):
            raise ValueError(f"The grad function of {_name(f)!r} must return one gradient per variable "
                             f"({len(variables)}). Received {len(variable_grads)}.")
    else:
        input_grads, variable_grads = out, []
    input_grads = flatten(input_grads)
    if len(input_grads) != len(inputs):
        raise ValueError(f"The grad function of custom_gradient function {_name(f)!r} must return one gradient per "
                         f"flattened positional argument ({len(inputs)}). Received {len(input_grads)}.")
    return input_grads, variable_grads


# ------------------------------------------------------------------------------------------ in a graph
def _graph_grad(b: GraphBuilder, g: Any, like: Value) -> Value | None:
    """A gradient the user returned, as a graph value in ``like``'s float type."""
    if g is None:
        return None
    v = as_value(g, b, like=like)
    if like.dtype in FLOAT_TYPES and v.dtype in FLOAT_TYPES and v.dtype != like.dtype:
        v = cast_value(v, like.dtype)
    return v


def _traced(f: Callable[..., Any], b: GraphBuilder, args: tuple, kwargs: dict) -> Any:
    leaves = flatten(args)
    values = [as_value(leaf, b) if leaf is not None else None for leaf in leaves]
    args = pack(args, iter(values))
    start = len(b.nodes)
    outputs, grad = split_result(f, f(*args, **kwargs))
    inner = b.nodes[start:]
    flat_out = flatten(outputs)
    boundary = []
    for y in flat_out:
        if y is None:
            boundary.append(None)
            continue
        v = as_value(y, b)
        boundary.append(b.op("Identity", [v], dtype=v.dtype, shape=v.shape))
    variables, var_values = _variables_read(b, inner, [v for v in values if v is not None])
    check_variables(f, grad, variables)
    inputs = [v for v in values if v is not None]

    ctx = _active_trace()

    def backward(upstream: list[Value]) -> list[Value | None]:
        # ``grad`` may read Variables (``dy * w``): it runs in the trace ``f`` ran in, wherever the walk is.
        if ctx is not None and _active_trace() is not ctx:
            with ctx.active():
                input_grads, variable_grads = call_grad(f, grad, upstream, values, variables)
        else:
            input_grads, variable_grads = call_grad(f, grad, upstream, values, variables)
        grads = [_graph_grad(b, g, v) for g, v in zip(input_grads, values) if v is not None]
        grads += [_graph_grad(b, g, v) for g, v in zip(variable_grads, var_values)]
        return grads

    outs = [v for v in boundary if v is not None]
    if outs:
        register(b, CustomGradient([v.name for v in inputs] + [v.name for v in var_values],
                                   [v.name for v in outs], backward))
    return pack(outputs, iter(boundary))


def _variables_read(b: GraphBuilder, inner: list[Any], inputs: list[Value]) -> tuple[list[Variable], list[Value]]:
    """The trainable Variables whose graph values ``f``'s nodes read (not passed as arguments), by name."""
    from ..graph.builder import _all_inputs

    ctx = _active_trace()
    if ctx is None:
        return [], []
    read = {name for node in inner for name in _all_inputs(node)}
    given = {v.name for v in inputs}
    found: dict[int, tuple[Variable, Value]] = {}
    for var, value in [*ctx.reads.values(), *ctx.updates.values()]:
        if var.trainable and value.name in read and value.name not in given:
            found.setdefault(var.uid, (var, value))
    ordered = sorted(found.values(), key=lambda pair: getattr(pair[0], "path", pair[0].name))
    return [var for var, _ in ordered], [value for _, value in ordered]
