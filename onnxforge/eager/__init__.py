"""Eager execution: layers, models and ``onnxforge.ops`` called on arrays outside a trace run at once.

Each call signature compiles once into a small ONNX program (see ``executor``) that onnxruntime runs with
the Variables bound where they live, so ``model(x)``, ``model(x, training=True)``, ``layer(x)``,
``ops.exp(x)`` and ``keras.random.normal((2, 3))`` work as in Keras 3, in a callback, a test or a notebook.
The executor compiles and runs, so it sits above the layers in the import flow: importing this package
registers it with ``onnxforge.tracing``, through which ``Layer.__call__`` and the ops reach it.

Example:
    >>> import numpy as np
    >>> from onnxforge import layers
    >>> dense = layers.Dense(2, kernel_initializer="ones")
    >>> dense(np.ones((1, 3), np.float32)).numpy().tolist()
    [[3.0, 3.0]]
"""
from __future__ import annotations

from typing import Any

from ..tracing import set_eager_executor
from . import tape
from .executor import EagerExecutor, EagerProgram

__all__ = ["EagerExecutor", "EagerProgram", "executor"]

#: The process-wide executor (its caches are per layer, and one for all ops).
executor = EagerExecutor()
set_eager_executor(executor)


def _getitem(tensor: Any, key: Any) -> Any:
    return tensor[tape.index_from_key(key)]


def _run_op(name: str, args: tuple) -> Any:
    """An ``onnxforge.ops`` function (or indexing) on arrays, eagerly: what a recording tape sends numpy
    calls to, so they are recorded like any op."""
    from .. import ops

    if name == "__getitem__":
        return executor.run_function(_getitem, args, {})
    return getattr(ops, name)(*args)


tape.set_op_runner(_run_op)

from ..ops.custom_gradients import register_eager_custom_gradient  # noqa: E402
from .custom_runs import run_custom_gradient  # noqa: E402

register_eager_custom_gradient(run_custom_gradient)
