"""``tf.cond``, ``tf.while_loop``, ``tf.map_fn`` and ``tf.scan`` (and ``foldl`` / ``foldr`` / ``switch_case`` /
``case`` built on them): TensorFlow's functional control flow, as
``keras.ops.cond`` / ``while_loop`` / ``map`` / ``scan`` (ONNX ``If``, ``Loop`` and ``Scan`` inside a
``tf.function``; Python control flow on arrays), with TensorFlow's arguments and result structures.

A condition known while tracing (a Python value, an array) picks the branch, or unrolls the loop, then. A
condition on a traced tensor: ``tf.cond`` becomes one ONNX ``If`` that runs only the branch taken, and
``tf.while_loop`` one ONNX ``Loop`` that runs until the condition fails or ``maximum_iterations`` (both
differentiable; ``graph_flow.py``). Python ``if`` / ``while`` / ``for`` statements on tensors inside a
``tf.function`` are converted to these by ``autograph.py`` (TensorFlow's AutoGraph, for the common forms).

Example:
    >>> import numpy as np
    >>> i, x = while_loop(lambda i, x: i < 3, lambda i, x: (i + 1, x * 2.0), [0, np.float32(1.0)])
    >>> i, float(x)
    (3, 8.0)
    >>> float(cond(np.bool_(True), lambda: np.float32(1.0), lambda: np.float32(2.0)))
    1.0
"""
from __future__ import annotations

__all__ = ["cond", "while_loop", "map_fn", "scan", "foldl", "foldr", "switch_case", "case", "control_dependencies",
           "no_op", "group", "tuple_"]

import builtins
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .. import ops as _ops
from ..graph.value import Value
from ..ops.control import run_while
from ..ops.traced_flow import register_traced_flow
from .graph_flow import traced_cond, traced_while
from .graph_scan import traced_scan

# keras.ops.cond / while_loop / fori_loop / switch / scan / map on traced tensors lower through the same
# If / Loop / Scan as tf.cond and tf.while_loop (ops/ sits below tf_compat/, so it is handed them here).
register_traced_flow(cond=traced_cond, while_=traced_while, scan=traced_scan)


def _traced(x: Any) -> bool:
    return isinstance(x, Value)


def cond(pred: Any, true_fn: Callable[[], Any] | None = None, false_fn: Callable[[], Any] | None = None,
         name: str | None = None) -> Any:
    """``tf.cond``: ``true_fn()`` when ``pred`` holds, else ``false_fn()``; both must return the same
    structure of tensors (see the module docstring for a traced ``pred``)."""
    if true_fn is None or false_fn is None:
        raise TypeError(f"tf.cond: true_fn and false_fn are both required. Received: true_fn={true_fn!r}, "
                        f"false_fn={false_fn!r}")
    if not _traced(pred):
        return _ops.cond(pred, true_fn, false_fn)
    return traced_cond(pred, true_fn, false_fn)


def while_loop(cond: Callable[..., Any], body: Callable[..., Any], loop_vars: Any, shape_invariants: Any = None,
               parallel_iterations: int = 10, back_prop: bool = True, swap_memory: bool = False,
               maximum_iterations: Any = None, name: str | None = None) -> Any:
    """``tf.while_loop``: ``loop_vars = body(*loop_vars)`` while ``cond(*loop_vars)``; the final loop
    variables in ``loop_vars``' structure (a list stays a list). ``parallel_iterations``, ``back_prop`` and
    ``swap_memory`` only schedule TensorFlow's loop and are accepted. ``shape_invariants`` (the loop
    variables' structure of shapes, ``None`` dims free) lets a traced loop's variables change shape."""
    return run_while(cond, body, loop_vars, maximum_iterations, shape_invariants, "tf.while_loop")


def map_fn(fn: Callable[[Any], Any], elems: Any, dtype: Any = None, parallel_iterations: Any = None,
           back_prop: bool = True, swap_memory: bool = False, infer_shape: bool = True, name: str | None = None,
           fn_output_signature: Any = None) -> Any:
    """``tf.map_fn``: ``fn`` applied to each slice of ``elems`` along its first axis, the results stacked."""
    elems = np.asarray(elems) if isinstance(elems, list) else elems
    return _ops.map(fn, elems)


def scan(fn: Callable[[Any, Any], Any], elems: Any, initializer: Any = None, parallel_iterations: int = 10,
         back_prop: bool = True, swap_memory: bool = False, infer_shape: bool = True, reverse: bool = False,
         name: str | None = None) -> Any:
    """``tf.scan``: the running ``acc = fn(acc, x)`` over the first axis of ``elems``, every ``acc`` stacked
    (without ``initializer`` the first element starts the accumulator and is the first result)."""
    elems = np.asarray(elems) if isinstance(elems, list) else elems
    if initializer is None:
        first = elems[-1] if reverse else elems[0]
        rest = elems[:-1] if reverse else elems[1:]
        _, tail = _ops.scan(lambda acc, x: (fn(acc, x),) * 2, first, rest, reverse=reverse)
        head = _ops.expand_dims(first, 0)
        return _ops.concatenate([tail, head] if reverse else [head, tail], axis=0)
    _, out = _ops.scan(lambda acc, x: (fn(acc, x),) * 2, initializer, elems, reverse=reverse)
    return out


def _fold(fn: Callable[[Any, Any], Any], elems: Any, initializer: Any, reverse: bool) -> Any:
    elems = np.asarray(elems) if isinstance(elems, list) else elems
    if initializer is None:
        initializer, elems = (elems[-1], elems[:-1]) if reverse else (elems[0], elems[1:])
    final, _ = _ops.scan(lambda acc, x: (fn(acc, x), None), initializer, elems, reverse=reverse)
    return final


def foldl(fn: Callable[[Any, Any], Any], elems: Any, initializer: Any = None, parallel_iterations: int = 10,
          back_prop: bool = True, swap_memory: bool = False, name: str | None = None) -> Any:
    """``tf.foldl``: ``acc = fn(acc, x)`` over the first axis of ``elems`` from the front; the final ``acc``
    (without ``initializer`` the first element starts it).

    Example:
        >>> int(foldl(lambda a, x: a + x, np.array([1, 2, 3])))
        6
    """
    return _fold(fn, elems, initializer, reverse=False)


def foldr(fn: Callable[[Any, Any], Any], elems: Any, initializer: Any = None, parallel_iterations: int = 10,
          back_prop: bool = True, swap_memory: bool = False, name: str | None = None) -> Any:
    """``tf.foldr``: ``foldl`` from the back (without ``initializer`` the last element starts it)."""
    return _fold(fn, elems, initializer, reverse=True)


def switch_case(branch_index: Any, branch_fns: Any, default: Callable[[], Any] | None = None,
                name: str | None = None) -> Any:
    """``tf.switch_case``: ``branch_fns[branch_index]()`` (a list, or a dict of int keys); an index with no
    branch runs ``default``, or the last branch when there is none, as TensorFlow does. A traced index becomes
    nested ``tf.cond``s."""
    pairs = sorted(branch_fns.items()) if isinstance(branch_fns, dict) else list(enumerate(branch_fns))
    if not pairs:
        raise ValueError("tf.switch_case: branch_fns must not be empty.")
    fallback = default if default is not None else pairs[-1][1]
    if not _traced(branch_index):
        return dict(pairs).get(builtins.int(np.asarray(branch_index)), fallback)()
    out = fallback
    for key, fn in reversed(pairs):
        out = (lambda k, f, rest: lambda: cond(_ops.equal(branch_index, k), f, rest))(key, fn, out)
    return out()


def case(pred_fn_pairs: Any, default: Callable[[], Any] | None = None, exclusive: bool = False,
         strict: bool = False, name: str | None = None) -> Any:
    """``tf.case``: the function paired with the first true predicate (``default``, else the last pair's
    function, when none holds). ``exclusive=True`` with more than one known-true predicate raises
    ``InvalidArgumentError`` as TensorFlow does."""
    pairs = list(pred_fn_pairs.items() if isinstance(pred_fn_pairs, dict) else pred_fn_pairs)
    if not pairs:
        if default is None:
            raise ValueError("tf.case: pred_fn_pairs is empty and no default was given.")
        return default()
    if exclusive:
        known = [p for p, _ in pairs if not _traced(p)]
        if builtins.sum(builtins.bool(np.asarray(p)) for p in known) > 1:
            from .errors import InvalidArgumentError
            raise InvalidArgumentError("tf.case: more than one condition evaluated as True but exclusive=True.")
    out = default if default is not None else pairs[-1][1]
    for pred, fn in reversed(pairs):
        out = (lambda p, f, rest: lambda: cond(p, f, rest))(pred, fn, out)
    return out()


@contextlib.contextmanager
def control_dependencies(control_inputs: Any) -> Iterator[None]:
    """``tf.control_dependencies``: accepted and nothing more. As in TensorFlow 2's ``tf.function``, the ops of
    a traced onnxforge function already take effect in program order (a Variable assigned is read back new),
    and eager code runs line by line."""
    yield


def no_op(name: str | None = None) -> None:
    """``tf.no_op``: nothing to run (``None`` stands for the operation)."""
    return None


def group(*inputs: Any, name: str | None = None) -> None:
    """``tf.group``: the grouped operations have already run (see ``control_dependencies``); ``None``."""
    return None


def tuple_(tensors: Any, name: str | None = None, control_inputs: Any = None) -> list[Any]:
    """``tf.tuple`` (named so here to leave the builtin alone in this module): the tensors, as a list (their computation is already complete, as ``group``'s)."""
    return list(tensors)
