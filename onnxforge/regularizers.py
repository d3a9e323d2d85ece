"""Weight regularizers (Keras 3 formulas): ``l1 * sum(|w|)`` and ``l2 * sum(w²)``.

Called on a graph ``Value`` (inside a trace) a regularizer emits its penalty as a scalar node; called on an
array it returns a Python float (handy for checks).

Example:
    >>> import numpy as np
    >>> from onnxforge import regularizers
    >>> regularizers.L2(0.5)(np.array([1.0, 2.0]))
    2.5
"""
from __future__ import annotations

__all__ = ["Regularizer", "L1", "L2", "L1L2", "l1", "l2", "l1_l2", "get", "serialize", "deserialize"]

from typing import Any

import numpy as np

from .keras_objects import object_config, object_from_config
from .graph import Value


def _check(name: str, value: Any) -> float:
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"Value for argument `{name}` should be a non-negative float. Received: {name}={value}")
    return value


class Regularizer:
    """Base class: ``__call__(x)`` is the penalty of weight ``x``."""

    def __call__(self, x: Any) -> Any:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict) -> Regularizer:
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config()})"


def _sum_abs(x: Any) -> Any:
    if isinstance(x, Value):
        b = x.builder
        return b.op("ReduceSum", [b.op("Abs", [x])], keepdims=0, shape=())
    return float(np.sum(np.abs(x)))


def _sum_square(x: Any) -> Any:
    if isinstance(x, Value):
        return x.builder.op("ReduceSum", [x * x], keepdims=0, shape=())
    return float(np.sum(np.square(x)))


class L1(Regularizer):
    """``l1 * sum(abs(x))``, default ``l1=0.01``."""

    def __init__(self, l1: float = 0.01):
        self.l1 = _check("l1", l1)

    def __call__(self, x):
        return _sum_abs(x) * self.l1

    def get_config(self):
        return {"l1": self.l1}


class L2(Regularizer):
    """``l2 * sum(square(x))``, default ``l2=0.01``."""

    def __init__(self, l2: float = 0.01):
        self.l2 = _check("l2", l2)

    def __call__(self, x):
        return _sum_square(x) * self.l2

    def get_config(self):
        return {"l2": self.l2}


class L1L2(Regularizer):
    """``l1 * sum(abs(x)) + l2 * sum(square(x))``, defaults ``l1=0.0, l2=0.0``."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        self.l1, self.l2 = _check("l1", l1), _check("l2", l2)

    def __call__(self, x):
        terms = []
        if self.l1:
            terms.append(_sum_abs(x) * self.l1)
        if self.l2:
            terms.append(_sum_square(x) * self.l2)
        if not terms:
            return x.builder.const(0.0, x.dtype) if isinstance(x, Value) else 0.0
        return terms[0] if len(terms) == 1 else terms[0] + terms[1]

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


# Keras 3 exposes the lower-case names as aliases of the classes: ``regularizers.l2(1e-4)``.
l1 = L1
l2 = L2
l1_l2 = L1L2

_ALIASES = {"L1": L1, "L2": L2, "L1L2": L1L2, "l1": L1, "l2": L2, "l1_l2": L1L2}


def serialize(regularizer: Regularizer | None) -> dict | None:
    """Keras 3's serialized form (``None`` stays ``None``)."""
    if regularizer is None:
        return None
    return object_config(regularizer, "keras.regularizers")


def deserialize(config: dict, custom_objects: dict | None = None) -> Regularizer:
    """The regularizer described by ``serialize``'s output."""
    return object_from_config(config, _ALIASES, custom_objects, "regularizer", sorted(_ALIASES))


def get(identifier: Any) -> Any:
    """A regularizer from a name (``"l2"``), a config dict, an instance or a callable (or ``None``)."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        cls = _ALIASES.get(identifier)
        if cls is None:
            raise ValueError(f"Could not interpret regularizer identifier: {identifier!r}. Known: {sorted(_ALIASES)}")
        return cls()
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret regularizer identifier: {identifier!r}")
