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

from ..tracing import set_eager_executor
from .executor import EagerExecutor, EagerProgram

__all__ = ["EagerExecutor", "EagerProgram", "executor"]

#: The process-wide executor (its caches are per layer, and one for all ops).
executor = EagerExecutor()
set_eager_executor(executor)
