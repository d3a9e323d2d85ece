"""``tf.math.ndtri`` (the standard normal quantile, probit) and ``tf.math.erfcinv``.

``erfinv(2p - 1)`` loses the lower tail: ``2p - 1`` rounds to ``-1`` for small ``p``. So the quantile is
Acklam's rational approximation (relative error about 1e-9), a central form for ``0.02425 <= p <= 0.97575`` and
a tail form in ``sqrt(-2 log q)`` with ``q`` the smaller tail probability, evaluated in float64 and cast back:
float32 results are TensorFlow's to rounding, float64 ones to about 1e-9. ``p`` of 0 and 1 give ``-inf`` /
``inf``, outside ``[0, 1]`` NaN, as TensorFlow. They are graph ops: eager, traced and differentiable.

Example:
    >>> import numpy as np
    >>> import onnxforge as tf
    >>> [round(v, 4) for v in tf.math.ndtri(np.array([0.025, 0.5, 0.975], "float32")).tolist()]
    [-1.96, 0.0, 1.96]
"""
from __future__ import annotations

__all__ = ["ndtri", "erfcinv"]

import math
from typing import Any

import numpy as np

from .. import ops as _ops
from ..ops._util import symbolic

_CENTRAL_NUM = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02,
                -3.066479806614716e+01, 2.506628277459239e+00)
_CENTRAL_DEN = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
                -1.328068155288572e+01, 1.0)
_TAIL_NUM = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00,
             4.374664141464968e+00, 2.938163982698783e+00)
_TAIL_DEN = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00, 1.0)
_SPLIT = 0.02425


def _horner(coefficients: tuple[float, ...], t: Any) -> Any:
    acc = t * coefficients[0] + coefficients[1]
    for c in coefficients[2:]:
        acc = acc * t + c
    return acc


def _float_input(x: Any, fn: str) -> tuple[Any, str]:
    x = np.asarray(x, np.float32) if isinstance(x, (list, tuple, float, int)) else x
    dtype = _ops.dtype(x)
    if dtype not in ("float16", "bfloat16", "float32", "float64"):
        raise TypeError(f"tf.math.{fn}: x must be a float tensor (half, float or double). Received dtype {dtype}")
    return x, dtype


def ndtri(x: Any, name: str | None = None) -> Any:
    """``tf.math.ndtri``: ``z`` with ``P(Z <= z) = x`` for a standard normal ``Z`` (the probit)."""
    x, dtype = _float_input(x, "ndtri")
    return _ndtri(x, dtype=dtype)


@symbolic   # eagerly one compiled program per signature, not one per step
def _ndtri(x: Any, dtype: str) -> Any:
    p = _ops.cast(x, "float64")
    inside = _ops.logical_and(p > 0.0, p < 1.0)
    safe = _ops.where(inside, p, 0.5)          # keep the logs of the unused branches finite
    q = safe - 0.5
    r = q * q
    central = q * _horner(_CENTRAL_NUM, r) / _horner(_CENTRAL_DEN, r)
    tail_p = _ops.minimum(safe, 1.0 - safe)
    t = _ops.sqrt(-2.0 * _ops.log(tail_p))
    lower = _horner(_TAIL_NUM, t) / _horner(_TAIL_DEN, t)  # the quantile of the smaller tail, negative
    tail = _ops.where(safe < 0.5, lower, -lower)
    z = _ops.where(_ops.abs(q) <= 0.5 - _SPLIT, central, tail)
    edge = _ops.where(p == 0.0, -math.inf, _ops.where(p == 1.0, math.inf, math.nan))
    return _ops.cast(_ops.where(inside, z, edge), dtype)


def erfcinv(x: Any, name: str | None = None) -> Any:
    """``tf.math.erfcinv``: ``y`` with ``erfc(y) = x`` for ``x`` in ``[0, 2]`` (``-ndtri(x / 2) / sqrt(2)``)."""
    x, _ = _float_input(x, "erfcinv")
    return -ndtri(x * 0.5) * (1.0 / math.sqrt(2.0))
