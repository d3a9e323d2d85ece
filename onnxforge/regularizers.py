"""Weight regularizers (Keras 3 formulas): ``l1 * sum(|w|)``, ``l2 * sum(w²)`` and the orthogonality
penalty of ``OrthogonalRegularizer``.

Called on a graph ``Value`` (inside a trace) a regularizer emits its penalty as a scalar node; called on an
array it returns a Python float (handy for checks).

Example:
    >>> import numpy as np
    >>> from onnxforge import regularizers
    >>> regularizers.L2(0.5)(np.array([1.0, 2.0]))
    2.5
"""
from __future__ import annotations

__all__ = ["Regularizer", "L1", "L2", "L1L2", "OrthogonalRegularizer", "l1", "l2", "l1_l2", "orthogonal_regularizer",
           "get", "serialize", "deserialize"]

from typing import Any

import numpy as np
import onnx

from .keras_objects import object_config, object_from_config
from .graph import Value, np_dtype


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


def _orthogonal_penalty(x: Any, factor: float, rows: bool) -> Any:
    """``factor / 2 * mean |cos|`` over the pairs of distinct rows (or columns), in graph ops on a ``Value``
    and in numpy on an array. Each vector is scaled by ``min(1 / norm, 1 / epsilon)`` as Keras's
    ``normalize`` does (a zero vector stays zero instead of dividing by zero)."""
    from .backend_config import epsilon

    shape = tuple(x.shape) if x.shape is not None else None
    if shape is None or len(shape) != 2:
        raise ValueError(f"Inputs to OrthogonalRegularizer must have rank 2. Received: inputs.shape={shape}")
    size = shape[0] if rows else shape[1]
    if not isinstance(size, (int, np.integer)):
        raise ValueError("OrthogonalRegularizer needs the static size of the regularized axis. Received: "
                         f"inputs.shape={shape}")
    pairs = size * (size - 1.0) / 2.0   # one row: 0 pairs, a NaN penalty, as Keras gives
    cap = 1.0 / epsilon()
    axis = 1 if rows else 0
    if not isinstance(x, Value):
        a = np.asarray(x)
        with np.errstate(divide="ignore"):
            inv = np.minimum(1.0 / np.sqrt(np.sum(a * a, axis=axis, keepdims=True)), cap)
        u = a * inv
        product = u @ u.T if rows else u.T @ u
        off = product * (1.0 - np.eye(size, dtype=a.dtype))
        with np.errstate(invalid="ignore", divide="ignore"):
            return float(factor * 0.5 * np.sum(np.abs(off)) / pairs)
    b = x.builder
    dtype = np_dtype(x.dtype or onnx.TensorProto.FLOAT)
    square_sum = b.op("ReduceSum", [x * x, b.const(np.asarray([axis], np.int64))], keepdims=1)
    inv = b.op("Min", [b.op("Reciprocal", [b.op("Sqrt", [square_sum])]), b.const(np.asarray(cap, dtype))])
    u = x * inv
    ut = b.op("Transpose", [u], perm=[1, 0])
    product = b.op("MatMul", [u, ut] if rows else [ut, u])
    off = product * b.const((1.0 - np.eye(size)).astype(dtype))
    total = b.op("ReduceSum", [b.op("Abs", [off])], keepdims=0, shape=())
    return total * b.const(np.asarray(factor * 0.5 / pairs if pairs else np.nan, dtype))


class OrthogonalRegularizer(Regularizer):
    """Pushes the rows (``mode="rows"``) or columns (``mode="columns"``) of a rank-2 weight towards being
    orthogonal: ``factor / 2`` times the mean absolute cosine between distinct pairs of them (Keras 3).

    Args:
        factor: non-negative penalty factor, default ``0.01``.
        mode: ``"rows"`` (default) or ``"columns"``; for a ``Dense`` kernel ``(input_dim, units)``, rows
            are the input features' weight vectors.

    Example:
        >>> import numpy as np
        >>> from onnxforge import regularizers
        >>> regularizers.OrthogonalRegularizer(factor=1.0)(np.array([[1.0, 0.0], [1.0, 1.0]]))  # doctest: +ELLIPSIS
        0.7071...
    """

    def __init__(self, factor: float = 0.01, mode: str = "rows"):
        if isinstance(factor, bool) or not isinstance(factor, (int, float, np.integer, np.floating)):
            raise ValueError("Invalid value for argument factor: expected a non-negative float. "
                             f"Received: factor={factor!r}")
        self.factor = _check("factor", factor)
        if mode not in ("rows", "columns"):
            raise ValueError(f'Invalid value for argument `mode`. Expected one of {{"rows", "columns"}}. '
                             f"Received: mode={mode!r}")
        self.mode = mode

    def __call__(self, x):
        return _orthogonal_penalty(x, self.factor, self.mode == "rows")

    def get_config(self):
        return {"factor": self.factor, "mode": self.mode}


# Keras 3 exposes the lower-case names as aliases of the classes: ``regularizers.l2(1e-4)``.
l1 = L1
l2 = L2
l1_l2 = L1L2
orthogonal_regularizer = OrthogonalRegularizer

_ALIASES = {"L1": L1, "L2": L2, "L1L2": L1L2, "l1": L1, "l2": L2, "l1_l2": L1L2, "l1l2": L1L2,
            "OrthogonalRegularizer": OrthogonalRegularizer, "orthogonal_regularizer": OrthogonalRegularizer}


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
