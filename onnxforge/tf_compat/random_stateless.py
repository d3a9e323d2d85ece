"""``tf.random.stateless_categorical`` / ``stateless_gamma`` / ``stateless_poisson``: the stateful draws of
``random_fns`` and ``random_poisson`` with a two-integer ``seed`` that fixes the numbers (the same seed gives the
same sample at every call, another seed another one), TensorFlow's stateless contract. As there, the
distributions are TensorFlow's and the numbers are not (another generator). Unlike ``tf.random.gamma`` /
``poisson``, ``shape`` is the whole output shape, which the parameters broadcast to (TensorFlow's stateless
convention).

Example:
    >>> import onnxforge as tf
    >>> a = tf.random.stateless_poisson([3, 2], seed=[1, 2], lam=[1.0, 10.0])
    >>> b = tf.random.stateless_poisson([3, 2], seed=[1, 2], lam=[1.0, 10.0])
    >>> a.dtype.name, tuple(a.shape), bool((a == b).all())
    ('int32', (3, 2), True)
"""
from __future__ import annotations

__all__ = ["stateless_categorical", "stateless_gamma", "stateless_poisson"]

from typing import Any

import numpy as np

from .. import ops as _ops
from ..ops import random as _random
from .random_fns import _stateless_seed, categorical
from .random_poisson import poisson


def _full_shape(shape: Any, fn: str) -> tuple[int, ...]:
    try:
        return tuple(int(d) for d in np.asarray(shape.numpy() if hasattr(shape, "numpy") else shape).reshape(-1))
    except (TypeError, ValueError) as e:
        raise ValueError(f"tf.random.{fn}: shape must be known when the graph is built (ints). "
                         f"Received: shape={shape!r}") from e


def _broadcast(value: Any, shape: tuple[int, ...], dtype: str, name: str, fn: str) -> np.ndarray:
    array = np.asarray(value.numpy() if hasattr(value, "numpy") else value, dtype)
    try:
        return np.broadcast_to(array, shape)
    except ValueError as e:
        raise ValueError(f"tf.random.{fn}: {name} of shape {array.shape} does not broadcast to shape "
                         f"{shape}") from e


def stateless_categorical(logits: Any, num_samples: Any, seed: Any, dtype: Any = "int64",
                          name: str | None = None) -> Any:
    """``tf.random.stateless_categorical``: ``[batch, num_samples]`` class indices drawn from
    ``softmax(logits[b])``, fixed by ``seed``."""
    return categorical(logits, num_samples, dtype=dtype, seed=_stateless_seed(seed, "stateless_categorical"))


def stateless_gamma(shape: Any, seed: Any, alpha: Any, beta: Any = None, dtype: Any = "float32",
                    name: str | None = None) -> Any:
    """``tf.random.stateless_gamma``: Gamma(``alpha``) samples of ``shape`` with rate ``beta`` (1 when
    ``None``), both broadcast to ``shape``, fixed by ``seed``."""
    fn = "stateless_gamma"
    dtype = np.dtype(dtype).name
    if np.dtype(dtype).kind != "f":
        raise TypeError(f"tf.random.{fn}: dtype must be float16, float32 or float64. Received: {dtype}")
    out = _full_shape(shape, fn)
    key = _stateless_seed(seed, fn)
    draws = _random.gamma(out, _ops.convert_to_tensor(_broadcast(alpha, out, dtype, "alpha", fn).copy()),
                          dtype=dtype, seed=key)
    if beta is None:
        return draws
    return _ops.divide(draws, _ops.convert_to_tensor(_broadcast(beta, out, dtype, "beta", fn).copy()))


def stateless_poisson(shape: Any, seed: Any, lam: Any, dtype: Any = "int32", name: str | None = None) -> Any:
    """``tf.random.stateless_poisson``: Poisson counts of ``shape`` (int32 by default) with rates ``lam``
    (known now, broadcast to ``shape``), fixed by ``seed``."""
    fn = "stateless_poisson"
    out = _full_shape(shape, fn)
    rates = _broadcast(lam, out, "float64", "lam", fn).copy()
    return poisson([], rates, dtype=dtype, seed=_stateless_seed(seed, fn))
