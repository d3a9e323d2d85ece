"""What the statements ``autograph`` converts call while a ``tf.function`` is traced: each runs its Python
statement when the condition or iterable is a Python value, and ``tf.cond`` / ``tf.while_loop`` when it is a
traced tensor.

Variables a block assigns travel in and out of the block's function. One without a value before the
statement (``UNDEFINED``) is a temporary of the block: a loop does not carry it, and it has no value after a
traced loop; an ``if`` must give it a value in both branches to use it after the ``if`` (TensorFlow's rule).

Example:
    >>> while_stmt(lambda i, s: i < 3, lambda i, s: (i + 1, s + i), (0, 0), ("i", "s"))
    (3, 3)
"""
from __future__ import annotations

__all__ = ["UNDEFINED", "ld", "if_stmt", "if_return", "while_stmt", "for_stmt"]

from collections.abc import Callable
from typing import Any

import numpy as np

from ..graph import Value
from .control_flow import cond, while_loop


class _Undefined:
    """A variable with no value yet (it is assigned first inside the statement)."""

    def __repr__(self) -> str:
        return "UNDEFINED"


UNDEFINED = _Undefined()


def ld(read: Callable[[], Any]) -> Any:
    """The variable ``read`` reads, or ``UNDEFINED`` when it has no value yet."""
    try:
        return read()
    except (NameError, UnboundLocalError):
        return UNDEFINED


def _traced(x: Any) -> bool:
    return isinstance(x, Value) or hasattr(x, "__onnx_value__") and not hasattr(x, "numpy")


def if_stmt(test: Any, then_fn: Callable[..., tuple], else_fn: Callable[..., tuple], values: tuple,
            names: tuple[str, ...]) -> tuple:
    """``if test:`` with the blocks' variables ``names`` (their values before the statement: ``values``)."""
    if not _traced(test):
        return then_fn(*values) if test else else_fn(*values)
    def branch(fn: Callable[..., tuple]) -> Callable[[], Any]:
        return lambda: _defined(fn(*values), names, "if")
    return tuple(cond(test, branch(then_fn), branch(else_fn)))


def _defined(out: tuple, names: tuple[str, ...], what: str) -> tuple:
    missing = [n for n, v in zip(names, out) if v is UNDEFINED]
    if missing:
        raise ValueError(f"tf.function (AutoGraph): {missing} must have a value in both branches of an `{what}` "
                         "on a tensor (or before it) to be used after it; define them before the `if`.")
    return out


def if_return(test: Any, then_fn: Callable[[], Any], else_fn: Callable[[], Any]) -> Any:
    """``if test: ... return a`` / ``else: ... return b``: the value returned."""
    if not _traced(test):
        return then_fn() if test else else_fn()
    return cond(test, then_fn, else_fn)


def while_stmt(test_fn: Callable[..., Any], body_fn: Callable[..., tuple], values: tuple,
               names: tuple[str, ...]) -> tuple:
    """``while test:`` over the body's variables ``names``; a traced test becomes one ``tf.while_loop``."""
    values = tuple(values)
    while True:
        keep = test_fn(*values)
        if _traced(keep):
            return _traced_loop(test_fn, body_fn, values, names)
        if not keep:
            return values
        values = tuple(body_fn(*values))


def _traced_loop(test_fn: Callable[..., Any], body_fn: Callable[..., tuple], values: tuple,
                 names: tuple[str, ...]) -> tuple:
    carried = [k for k, v in enumerate(values) if v is not UNDEFINED]

    def full(state: tuple) -> list[Any]:
        out = [UNDEFINED] * len(values)
        for k, v in zip(carried, state):
            out[k] = v
        return out

    def body(*state: Any) -> list[Any]:
        out = body_fn(*full(state))
        return [out[k] for k in carried]

    final = while_loop(lambda *state: test_fn(*full(state)), body, [values[k] for k in carried])
    return tuple(full(final))


def for_stmt(iterable: Any, body_fn: Callable[..., tuple], values: tuple, names: tuple[str, ...]) -> tuple:
    """``for item in iterable:``; a traced iterable of unknown length (``tf.range(n)``) becomes a
    ``tf.while_loop`` over its first axis, any other is iterated in Python (a static length unrolls)."""
    values = tuple(values)
    first = iterable.shape[0] if isinstance(iterable, Value) and iterable.shape else None
    if not isinstance(iterable, Value) or isinstance(first, (int, np.integer)):
        for item in iterable:
            values = tuple(body_fn(item, *values))
        return values
    from .tensors import shape

    count = shape(iterable, out_type="int64")[0]
    step = (lambda i, *state: (i + 1, *body_fn(iterable[i], *state)))
    out = _traced_loop(lambda i, *state: i < count, step, (np.int64(0), *values), ("__ag_index", *names))
    return tuple(out[1:])
