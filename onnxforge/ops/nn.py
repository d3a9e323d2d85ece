"""Neural-network ops (``keras.ops.nn``): activations and the element-wise crossentropies.

Example:
    >>> import numpy as np
    >>> from onnxforge import ops
    >>> ops.sigmoid(np.array([0.0])).tolist()
    [0.5]
    >>> ops.binary_crossentropy([1.0], [0.0], from_logits=True)   # Python floats: floatx, as Keras
    tensor([0.6931472], dtype=float32)
"""
from __future__ import annotations

__all__ = ["sigmoid", "softplus", "softsign", "relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "silu",
           "swish", "log_sigmoid", "hard_sigmoid", "softmax", "log_softmax", "binary_crossentropy",
           "categorical_crossentropy", "sparse_categorical_crossentropy"]

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..graph import Value
from ._util import as_value, builder_of, cast_value, promote, symbolic

#: Keras's fuzz factor: probabilities are clipped to [EPSILON, 1 - EPSILON] in crossentropies.
EPSILON = 1e-7


def _float(x: Any) -> Value:
    b = builder_of(x)
    v = as_value(x, b)
    return v if v.is_float else cast_value(v, 1)


def _unary(op: str, x: Any, **attrs: Any) -> Value:
    v = _float(x)
    return v.builder.op(op, [v], shape=v.shape, **attrs)


@symbolic
def sigmoid(x: Any) -> Value:
    return _unary("Sigmoid", x)


@symbolic
def softplus(x: Any) -> Value:
    """``log(1 + exp(x))``, computed as ``relu(x) + log1p(exp(-|x|))`` so large inputs do not overflow."""
    v = _float(x)
    b = v.builder
    tail = b.op("Softplus", [b.op("Neg", [b.op("Abs", [v])])], shape=v.shape)   # exp of a non-positive number
    return b.op("Add", [b.op("Relu", [v], shape=v.shape), tail], shape=v.shape)


@symbolic
def softsign(x: Any) -> Value:
    return _unary("Softsign", x)


@symbolic
def relu(x: Any) -> Value:
    return _unary("Relu", x)


@symbolic
def relu6(x: Any) -> Value:
    v = _float(x)
    b = v.builder
    return b.op("Clip", [v, b.const(0.0, v.dtype), b.const(6.0, v.dtype)], shape=v.shape)


@symbolic
def leaky_relu(x: Any, negative_slope: float = 0.2) -> Value:
    """``x`` where positive, ``negative_slope * x`` elsewhere (Keras's default slope 0.2)."""
    return _unary("LeakyRelu", x, alpha=float(negative_slope))


@symbolic
def elu(x: Any, alpha: float = 1.0) -> Value:
    return _unary("Elu", x, alpha=float(alpha))


@symbolic
def selu(x: Any) -> Value:
    return _unary("Selu", x, alpha=1.67326324, gamma=1.05070098)


@symbolic
def gelu(x: Any, approximate: bool = True) -> Value:
    """Gaussian error linear unit (Keras's default: the tanh approximation)."""
    return _unary("Gelu", x, approximate="tanh" if approximate else "none")


@symbolic
def silu(x: Any) -> Value:
    v = _float(x)
    return v.builder.op("Mul", [v, v.builder.op("Sigmoid", [v], shape=v.shape)], shape=v.shape)


swish = silu


@symbolic
def log_sigmoid(x: Any) -> Value:
    """``log(sigmoid(x)) = -softplus(-x)``."""
    v = _float(x)
    return v.builder.op("Neg", [softplus(v.builder.op("Neg", [v], shape=v.shape))], shape=v.shape)


@symbolic
def hard_sigmoid(x: Any) -> Value:
    """Keras 3's ``relu6(x + 3) / 6``."""
    return _unary("HardSigmoid", x, alpha=1.0 / 6.0, beta=0.5)


@symbolic
def softmax(x: Any, axis: int | Sequence[int] = -1) -> Value:
    """Softmax along ``axis``, or jointly over several axes (a tuple, as Keras accepts)."""
    if isinstance(axis, (tuple, list)) and len(axis) != 1:
        return _unary("Exp", log_softmax(x, axis))
    return _unary("Softmax", x, axis=_one_axis(axis))


@symbolic
def log_softmax(x: Any, axis: int | Sequence[int] = -1) -> Value:
    """Log-softmax along ``axis``, or jointly over several axes (a tuple)."""
    if isinstance(axis, (tuple, list)) and len(axis) != 1:
        # ONNX's LogSoftmax takes one axis: x - log(sum(exp(x))) over the axes (ReduceLogSumExp is stable).
        v = _float(x)
        lse = v.builder.op("ReduceLogSumExp", [v, v.builder.const(np.asarray(axis, np.int64))], keepdims=1)
        return v.builder.op("Sub", [v, lse], shape=v.shape)
    return _unary("LogSoftmax", x, axis=_one_axis(axis))


def _one_axis(axis: int | Sequence[int]) -> int:
    return int(axis[0]) if isinstance(axis, (tuple, list)) else int(axis)


@symbolic
def binary_crossentropy(target: Any, output: Any, from_logits: bool = False) -> Value:
    """Element-wise binary crossentropy (no reduction), as ``keras.ops.binary_crossentropy``.

    With ``from_logits`` it is ``max(x, 0) - x * t + log(1 + exp(-|x|))`` (stable for any logit); with
    probabilities, these are clipped to ``[1e-7, 1 - 1e-7]`` as Keras does.
    """
    b = builder_of(target, output)
    out = _float(output)
    t, out = promote(b, target, out)
    if from_logits:
        return b.op("Sub", [softplus(out), out * t])
    p = b.op("Clip", [out, b.const(EPSILON, out.dtype), b.const(1.0 - EPSILON, out.dtype)], shape=out.shape)
    log_p = b.op("Log", [p], shape=p.shape)
    log_q = b.op("Log", [1.0 - p], shape=p.shape)
    return b.op("Neg", [t * log_p + (1.0 - t) * log_q])


@symbolic
def categorical_crossentropy(target: Any, output: Any, from_logits: bool = False, axis: int = -1) -> Value:
    """Crossentropy between one-hot (or soft) ``target`` and ``output`` along ``axis`` (reduced)."""
    from .. import losses

    b = builder_of(target, output)
    t, out = promote(b, target, _float(output))
    return losses.categorical_crossentropy(t, out, from_logits=from_logits, axis=axis)


@symbolic
def sparse_categorical_crossentropy(target: Any, output: Any, from_logits: bool = False, axis: int = -1) -> Value:
    """Crossentropy between integer class ids ``target`` and ``output`` along ``axis`` (reduced)."""
    from .. import losses

    b = builder_of(target, output)
    return losses.sparse_categorical_crossentropy(as_value(target, b, dtype="int64"), _float(output),
                                                  from_logits=from_logits, axis=axis)

