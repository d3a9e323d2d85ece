"""``optimizer.apply_gradients`` outside a trace: the update compiled once per set of Variables and gradient
shapes (as ``tf.function`` compiles a step), run by onnxruntime on the Variables where they live.

This is the last line of TensorFlow's eager training loop (``grads = tape.gradient(loss, weights)``, then
``optimizer.apply_gradients(zip(grads, weights))``). Pairs whose gradient is ``None`` are left out with a
warning, as Keras does; the optimizer's slots and ``iterations`` advance as in a compiled step.

Example:
    >>> import numpy as np
    >>> import onnxforge as tf
    >>> w = tf.Variable(np.ones(2, np.float32))
    >>> opt = tf.keras.optimizers.SGD(0.5)
    >>> _ = opt.apply_gradients([(np.array([1.0, -1.0], np.float32), w)])
    >>> w.numpy().tolist(), int(opt.iterations)
    ([0.5, 1.5], 1)
"""
from __future__ import annotations

__all__ = ["apply_eagerly"]

import warnings
from typing import Any

import numpy as np

from ..gradient_tape import GradientTape
from ..optimizers import base
from ..variables import Variable
from .compiled_function import CompiledFunction


def apply_eagerly(optimizer: Any, grads_and_vars: Any) -> Any:
    """Apply ``(gradient, Variable)`` pairs now (see the module docstring). Returns ``optimizer.iterations``."""
    pairs = list(grads_and_vars)
    for pair in pairs:
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and isinstance(pair[1], Variable)):
            raise TypeError(f"{type(optimizer).__name__}.apply_gradients expects (gradient, Variable) pairs. "
                            f"Received: {pair!r}")
    kept = [(g, v) for g, v in pairs if g is not None]
    missing = [v.path for g, v in pairs if g is None]
    if missing:
        warnings.warn(f"Gradients do not exist for variables {missing} when minimizing the loss. If using "
                      "`model.compile()`, did you forget to provide a `loss` argument?", stacklevel=3)
    if not kept:
        return optimizer.iterations
    variables = tuple(v for _, v in kept)
    grads = []
    for g, v in kept:
        g = np.asarray(g)
        if g.shape != tuple(v.shape):
            raise ValueError(f"{type(optimizer).__name__}.apply_gradients: the gradient of {v.path!r} has shape "
                             f"{g.shape}; expected the Variable's shape {tuple(v.shape)}.")
        grads.append(g.astype(v.dtype, copy=False))
    cache = optimizer.__dict__.setdefault("_eager_updates", {})
    key = tuple(v.uid for v in variables)
    update = cache.get(key)
    if update is None:
        def step(*gs: Any) -> Any:
            return optimizer.apply_gradients(zip(gs, variables))

        update = cache[key] = CompiledFunction(step)
    update(*grads)
    return optimizer.iterations


base.set_eager_apply(apply_eagerly, GradientTape)
