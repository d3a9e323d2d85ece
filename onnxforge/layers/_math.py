"""Numeric helpers shared by layers, written as Keras 3 computes them (so results match to float32)."""
from __future__ import annotations

__all__ = ["l2_normalize"]

from collections.abc import Sequence

from ..graph import Value
from ..graph import emit as _ops


def l2_normalize(x: Value, axes: Sequence[int], epsilon: float) -> Value:
    """``x * min(rsqrt(sum(x², axes)), 1 / epsilon)``: Keras's ``ops.normalize(order=2)``."""
    b = x.builder
    square_sum = _ops.reduce("ReduceSum", x * x, list(axes), keepdims=True)
    inv_norm = b.op("Reciprocal", [b.op("Sqrt", [square_sum])])
    inv_norm = b.op("Min", [inv_norm, 1.0 / float(epsilon)])
    return x * inv_norm
