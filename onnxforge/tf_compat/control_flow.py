"""``tf.cond``, ``tf.while_loop``, ``tf.map_fn`` and ``tf.scan``: TensorFlow's functional control flow, as
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

__all__ = ["cond", "while_loop", "map_fn", "scan"]

from collections.abc import Callable
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
