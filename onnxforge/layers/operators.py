"""Python operators on functional-API tensors: ``inputs + attn``, ``x * 0.5``, ``-x``, ``x[:, 0]``, ``a @ b``.

Keras 3 records each operator applied to a ``KerasTensor`` as an operation node of the functional graph
(``keras.ops.Add``, ``keras.ops.GetItem``, ...). onnxforge records a ``TensorOperator`` layer node that
applies the same Python operator to the traced graph values, so the output spec (shape and dtype) is the
one the graph computes, with NumPy broadcasting, and the model traces, trains and serializes like any other
layer graph. Operators never autocast: like Keras's ops, they compute in their operands' types.

Example:
    >>> from onnxforge.layers import Input
    >>> x = Input(shape=(4, 6))
    >>> (x + 1.0).shape, (x[:, 0] * x[:, 1]).shape, (x @ Input(shape=(6, 2))).shape
    ((None, 4, 6), (None, 6), (None, 4, 2))
"""
from __future__ import annotations

__all__ = ["TensorOperator", "OPERATORS", "encode_index", "decode_index"]

import operator
from typing import Any

import numpy as np

from .base import Layer, auto_name

#: Keras's op names (``keras.ops.<name>``) -> the Python operator applied to graph values.
OPERATORS: dict[str, Any] = {
    "add": operator.add, "subtract": operator.sub, "multiply": operator.mul, "true_divide": operator.truediv,
    "floor_divide": operator.floordiv, "mod": operator.mod, "power": operator.pow, "matmul": operator.matmul,
    "negative": operator.neg, "absolute": operator.abs, "logical_not": operator.invert,
    "greater": operator.gt, "greater_equal": operator.ge, "less": operator.lt, "less_equal": operator.le,
    "logical_and": operator.and_, "logical_or": operator.or_, "logical_xor": operator.xor,
    "get_item": operator.getitem,
}


def encode_index(key: Any) -> Any:
    """An index (ints, slices, ``...``, ``None``, int lists) in Keras's JSON form (``__slice__``, ...)."""
    if isinstance(key, tuple):
        return {"class_name": "__tuple__", "config": {"value": [encode_index(k) for k in key]}}
    if isinstance(key, slice):
        return {"class_name": "__slice__", "config": {"start": encode_index(key.start),
                                                      "stop": encode_index(key.stop),
                                                      "step": encode_index(key.step)}}
    if key is Ellipsis:
        return {"class_name": "__ellipsis__", "config": {}}
    if isinstance(key, (np.integer, np.ndarray)):
        return key.tolist()
    if key is None or isinstance(key, (int, list)):
        return key
    raise TypeError(f"Only integers, slices, ellipsis, None and integer lists can index a functional-API "
                    f"tensor. Received: {key!r} of type {type(key).__name__}")


def decode_index(config: Any) -> Any:
    """The inverse of ``encode_index``."""
    if isinstance(config, dict):
        kind, inner = config.get("class_name"), config.get("config") or {}
        if kind == "__tuple__":
            return tuple(decode_index(k) for k in inner["value"])
        if kind == "__slice__":
            return slice(decode_index(inner.get("start")), decode_index(inner.get("stop")),
                         decode_index(inner.get("step")))
        if kind == "__ellipsis__":
            return Ellipsis
        raise ValueError(f"Unknown index entry in a TensorOperator config: {config!r}")
    return config


_SLOT = {"class_name": "__tensor__", "config": {}}


def _encode_operand(x: Any) -> Any:
    if isinstance(x, (np.ndarray, np.generic)):
        return {"class_name": "__numpy__", "config": {"value": np.asarray(x).tolist(), "dtype": str(x.dtype)}}
    if x is None or isinstance(x, (bool, int, float)):
        return x
    raise TypeError(f"A functional-API tensor can be combined with tensors, Python numbers and NumPy arrays. "
                    f"Received: {x!r} of type {type(x).__name__}")


def _decode_operand(x: Any) -> Any:
    if isinstance(x, dict) and x.get("class_name") == "__numpy__":
        return np.asarray(x["config"]["value"], dtype=x["config"]["dtype"])
    return x


class TensorOperator(Layer):
    """One Python operator applied to symbolic tensors in a functional model.

    The node's arguments are its tensors only; constants (``2.0`` in ``2.0 * x``, NumPy arrays) live in the
    layer's config, so the model's config stays JSON.

    Args:
        op: the Keras op name, a key of ``OPERATORS`` (``"add"``, ``"get_item"``, ...).
        operands: the operator's arguments in order, a ``{"class_name": "__tensor__"}`` slot where a call
            argument goes (default: every argument is a call argument).
        index: for ``"get_item"``, the index in Keras's JSON form (see ``encode_index``).
        **kwargs: base layer arguments (``name``).
    """

    _autocast = False       # an operator computes in its operands' types (Keras ops do not autocast)
    supports_masking = True

    def __init__(self, op: str, operands: list | None = None, index: Any = None, **kwargs: Any):
        if op not in OPERATORS:
            raise ValueError(f"Unknown tensor operator {op!r}. Expected one of {sorted(OPERATORS)}. "
                             f"Received: op={op!r}")
        kwargs.setdefault("name", auto_name(op))
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.op = op
        self.operands = operands
        self.index = index
        self._key = decode_index(index) if op == "get_item" else None

    def call(self, *args: Any) -> Any:
        if self.operands is not None:
            tensors = iter(args)
            args = tuple(next(tensors) if o == _SLOT else _decode_operand(o) for o in self.operands)
        if self.op == "get_item":
            return args[0][self._key]
        return OPERATORS[self.op](*args)

    def get_config(self) -> dict:
        config = {**super().get_config(), "op": self.op}
        if self.operands is not None:
            config["operands"] = self.operands
        if self.op == "get_item":
            config["index"] = self.index
        return config


def apply(op: str, *args: Any) -> Any:
    """``op`` applied to ``args`` (at least one a KerasTensor) as a new ``TensorOperator`` node."""
    from .keras_tensor import KerasTensor

    if all(isinstance(a, KerasTensor) for a in args):
        return TensorOperator(op)(*args)
    operands = [_SLOT if isinstance(a, KerasTensor) else _encode_operand(a) for a in args]
    return TensorOperator(op, operands=operands)(*[a for a in args if isinstance(a, KerasTensor)])


def get_item(x: Any, key: Any) -> Any:
    return TensorOperator("get_item", index=encode_index(key))(x)
