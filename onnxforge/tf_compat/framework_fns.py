"""TensorFlow's small framework helpers that programs call around their math: ``tf.realdiv``, ``tf.as_string``,
``tf.parallel_stack``, ``tf.guarantee_const``, ``tf.timestamp``, ``tf.get_logger``, ``tf.inside_function``,
``tf.init_scope``, ``tf.is_symbolic_tensor``, ``tf.recompute_grad``, ``tf.grad_pass_through`` and
``tf.no_gradient``.

Most are what they are in TensorFlow 2 (``realdiv`` is division, ``parallel_stack`` is ``stack``, the
gradient helpers keep their values). ``recompute_grad`` saves memory in TensorFlow by recomputing the forward
pass during backprop; onnxforge's gradient graph is built once and onnxruntime plans its memory, so it returns
a function with the same values and gradients. ``grad_pass_through(f)`` computes ``f`` forward and passes
gradients straight through to its inputs (``x + stop_gradient(f(x) - x)``), as TensorFlow's does.

Example:
    >>> import numpy as np
    >>> import onnxforge as tf
    >>> tf.realdiv(np.array([3.0]), np.array([2.0])).tolist(), tf.is_symbolic_tensor(np.ones(2))
    ([1.5], False)
"""
from __future__ import annotations

__all__ = ["realdiv", "as_string", "parallel_stack", "guarantee_const", "timestamp", "get_logger",
           "inside_function", "init_scope", "is_symbolic_tensor", "recompute_grad", "grad_pass_through",
           "no_gradient"]

import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..eager_tensor import as_eager
from ..graph import Value
from ..layers.keras_tensor import KerasTensor
from ..trace_state import active_trace
from .elementwise import divide
from .strings_fns import as_string
from .tensors import identity, stack, stop_gradient


def realdiv(x: Any, y: Any, name: str | None = None) -> Any:
    """``tf.realdiv``: ``x / y`` for real (float) tensors."""
    return divide(x, y)


def parallel_stack(values: Any, name: str | None = None) -> Any:
    """``tf.parallel_stack``: ``tf.stack(values)`` along a new first axis (TensorFlow's variant only differs in
    how it schedules the copies). As in TensorFlow, only inside a traced function: eagerly it raises
    ``RuntimeError``."""
    if active_trace() is None and not any(isinstance(v, (Value, KerasTensor)) for v in values):
        raise RuntimeError("tf.parallel_stack() is not compatible with eager execution.")
    return stack(values, axis=0)


def guarantee_const(input: Any, name: str | None = None) -> Any:  # noqa: A002
    """``tf.guarantee_const``: ``input`` itself (a promise to TensorFlow's optimizer, nothing to compute)."""
    return identity(input)


def timestamp(name: str | None = None) -> Any:
    """``tf.timestamp``: the seconds since the epoch, a float64 scalar (the time of this call; traced code
    keeps the tracing time)."""
    return as_eager(np.asarray(time.time(), np.float64))


def get_logger() -> logging.Logger:
    """``tf.get_logger``: the ``"tensorflow"`` logger of Python's ``logging``, as TensorFlow's."""
    return logging.getLogger("tensorflow")


def inside_function() -> bool:
    """``tf.inside_function``: whether the code runs while a function or model is being traced."""
    return active_trace() is not None


@contextlib.contextmanager
def init_scope() -> Iterator[None]:
    """``tf.init_scope``: accepted. TensorFlow lifts the block's ops out of the function being traced; onnxforge
    creates Variables and constants on the host in either case."""
    yield


def is_symbolic_tensor(tensor: Any) -> bool:
    """``tf.is_symbolic_tensor``: whether ``tensor`` is a graph tensor (traced or a functional model's input)
    rather than a concrete one."""
    return isinstance(tensor, (Value, KerasTensor))


def recompute_grad(f: Callable[..., Any]) -> Callable[..., Any]:
    """``tf.recompute_grad``: ``f`` with the same values and gradients (see the module docstring for why the
    memory-saving recomputation is not needed)."""
    @functools.wraps(f)
    def inner(*args: Any, **kwargs: Any) -> Any:
        return f(*args, **kwargs)

    return inner


def grad_pass_through(f: Callable[..., Any]) -> Callable[..., Any]:
    """``tf.grad_pass_through``: ``f`` forward, the identity backward (the straight-through estimator of a
    quantizer or a non-differentiable assignment): ``x + stop_gradient(f(x) - x)``."""
    @functools.wraps(f)
    def inner(*args: Any, **kwargs: Any) -> Any:
        if len(args) != 1 or kwargs:
            raise TypeError("tf.grad_pass_through: the wrapped function takes one tensor here. Received "
                            f"{len(args)} positional and {len(kwargs)} keyword arguments")
        x = args[0]
        return x + stop_gradient(f(x) - x)

    return inner


def no_gradient(op_type: str) -> None:
    """``tf.no_gradient``: accepted. It declares a custom TensorFlow op non-differentiable; onnxforge's ops all
    have their gradients declared already."""
    if not isinstance(op_type, str):
        raise TypeError(f"op_type must be a string. Received: op_type={op_type!r}")
