"""``tf.random.poisson``: Poisson counts by inverting the distribution function with one uniform draw each.

For rates known when the graph is built (numbers, lists, arrays: how programs pass them), the cumulative
probabilities of ``0 .. K - 1`` events are computed here in float64 for every rate, with ``K`` far enough into
the tail (``lam + 10 sqrt(lam) + 20``) that a larger count has probability below float32 resolution; a sample
is the number of those cumulative values below a uniform draw. That is a constant table, one
``keras.random.uniform`` draw (the same generator and ``seed`` meaning) and a comparison, so it runs eagerly,
in a ``tf.function`` and in a model; the numbers differ from TensorFlow's (another generator), the
distribution does not. Rates only known when the program runs are refused, as ``keras.random.binomial``
refuses run-time counts.

Example:
    >>> import numpy as np
    >>> import onnxforge as tf
    >>> draws = tf.random.poisson([4000], [0.0, 3.0], seed=1)
    >>> draws.shape, draws.dtype.name, float(draws[:, 0].max()), abs(float(draws[:, 1].mean()) - 3.0) < 0.15
    (TensorShape([4000, 2]), 'float32', 0.0, True)
"""
from __future__ import annotations

__all__ = ["poisson"]

import math
from typing import Any

import numpy as np

from .. import ops as _ops
from ..graph import Value
from ..layers.keras_tensor import KerasTensor
from ..ops import random as _random

#: The largest rate whose table (``lam + 10 sqrt(lam) + 20`` entries per rate) is built.
MAX_RATE = 10000.0


def _cumulative(rates: np.ndarray) -> np.ndarray:
    """``rates.shape + (K,)`` float32 cumulative probabilities of ``0 .. K - 1`` events."""
    top = float(rates.max()) if rates.size else 0.0
    size = int(math.ceil(top + 10.0 * math.sqrt(top) + 20.0))
    k = np.arange(size, dtype=np.float64)
    lam = rates.astype(np.float64)[..., None]
    lgamma = np.vectorize(math.lgamma)(k + 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_p = np.where(lam > 0, k * np.log(np.where(lam > 0, lam, 1.0)) - lam - lgamma,
                         np.where(k == 0, 0.0, -np.inf))
    return np.minimum(np.cumsum(np.exp(log_p), axis=-1), 1.0).astype(np.float32)


def poisson(shape: Any, lam: Any, dtype: Any = "float32", seed: Any = None, name: str | None = None) -> Any:
    """``tf.random.poisson``: samples ``shape + lam.shape`` (``dtype``: float16/32/64, int32 or int64) with
    rates ``lam`` (non-negative, known now; at most ``MAX_RATE``)."""
    if isinstance(lam, (Value, KerasTensor)):
        raise ValueError("tf.random.poisson needs `lam` known when the graph is built (a number, list or array): "
                         "its distribution table is computed then. Received: lam as a traced tensor")
    rates = np.asarray(lam.numpy() if hasattr(lam, "numpy") else lam, np.float64)
    if np.any(~np.isfinite(rates)) or np.any(rates < 0):
        raise ValueError(f"tf.random.poisson: lam must be finite and non-negative. Received: lam={rates.tolist()}")
    if rates.size and rates.max() > MAX_RATE:
        raise ValueError(f"tf.random.poisson: rates above {MAX_RATE:g} are not supported (its table grows with the "
                         f"rate). Received: max(lam)={rates.max():g}")
    name_ = np.dtype(dtype).name
    if name_ not in ("float16", "float32", "float64", "int32", "int64"):
        raise TypeError(f"tf.random.poisson: dtype must be float16, float32, float64, int32 or int64. Received: "
                        f"dtype={name_}")
    sizes = [int(d) for d in np.asarray(shape).reshape(-1).tolist()] if not isinstance(shape, Value) else None
    if sizes is None:
        raise ValueError("tf.random.poisson: shape must be known when the graph is built (ints).")
    table = _cumulative(rates)                                     # rates.shape + (K,)
    u = _random.uniform((*sizes, *rates.shape, 1), dtype="float32", seed=seed)
    counts = _ops.sum(_ops.cast(_ops.greater_equal(u, table), "int32"), axis=-1)
    return _ops.cast(counts, name_)
