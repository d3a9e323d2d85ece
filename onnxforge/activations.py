"""Activation functions with Keras 3 names and defaults; each emits ONNX ops on a graph ``Value``.

Functions map to one standard op where ONNX has it (Relu, Sigmoid, Tanh, Softmax, Elu, Selu, Softplus,
Softsign, LeakyRelu, HardSigmoid, Exp). ``gelu`` and ``silu`` are written with elementary ops (Erf / Tanh,
Mul, Sigmoid) rather than the opset-20 ``Gelu`` node so the autodiff engine only needs elementwise rules.

Example:
    >>> import onnx
    >>> from onnxforge.graph import GraphBuilder
    >>> from onnxforge import activations
    >>> b = GraphBuilder()
    >>> x = b.input("x", onnx.TensorProto.FLOAT, ("batch", 3))
    >>> y = activations.get("gelu")(x)
    >>> activations.serialize(activations.get("swish"))
    'silu'
"""
from __future__ import annotations

__all__ = [
    "relu", "relu6", "sigmoid", "tanh", "softmax", "log_softmax", "gelu", "silu", "swish", "elu", "selu",
    "softplus", "softsign", "leaky_relu", "linear", "exponential", "hard_sigmoid", "hard_silu", "hard_swish",
    "mish", "celu", "glu", "hard_shrink", "hard_tanh", "log_sigmoid", "soft_shrink", "sparse_plus", "sparse_sigmoid",
    "sparsemax", "squareplus", "tanh_shrink", "threshold", "get", "serialize", "deserialize", "ELEMENTWISE",
]

import functools
import math
from collections.abc import Callable
from typing import Any

from . import keras_objects
from .custom_objects import lookup
from .graph import Value
# Keras 3.15's newer activations are its ``keras.ops`` of the same names (defaults included); ops sit below
# this module in the flow and already take graph values, functional tensors and arrays.
from .ops import (celu, glu, hard_shrink, hard_tanh, log_sigmoid, soft_shrink, sparse_plus, sparse_sigmoid, sparsemax,
                  squareplus, tanh_shrink, threshold)


def _op(op: str, x: Value, **attrs: Any) -> Value:
    return x.builder.op(op, [x], shape=x.shape, **attrs)


def relu(x: Value, negative_slope: float = 0.0, max_value: float | None = None, threshold: float = 0.0) -> Value:
    """``max(x, 0)``, with Keras's optional ``negative_slope``, ``max_value`` clip and ``threshold``."""
    if negative_slope == 0.0 and max_value is None and threshold == 0.0:
        return _op("Relu", x)
    b = x.builder
    if negative_slope != 0.0 and max_value is None and threshold == 0.0:
        return _op("LeakyRelu", x, alpha=float(negative_slope))
    if threshold != 0.0:
        # x where x > threshold, else 0 (Keras's thresholded relu), then the negative part below it.
        keep = b.op("Cast", [b.op("Greater", [x, float(threshold)])], to=x.dtype)
        y = x * keep
        negative = _op("Relu", (-x) + float(threshold)) if negative_slope != 0.0 else None
    else:
        y = _op("Relu", x)
        negative = _op("Relu", -x) if negative_slope != 0.0 else None
    if max_value is not None:   # Keras clips to [0, max_value]
        if threshold < 0.0:   # only then does y hold values below 0 (relu6 and the rest need no Max node)
            y = b.op("Max", [y, 0.0], shape=x.shape)
        y = b.op("Min", [y, float(max_value)], shape=x.shape)
    if negative is not None:
        y = y - negative * float(negative_slope)
    y.shape = x.shape
    return y


def relu6(x: Value) -> Value:
    """``min(max(x, 0), 6)``."""
    return relu(x, max_value=6.0)


def sigmoid(x: Value) -> Value:
    """``1 / (1 + exp(-x))``."""
    return _op("Sigmoid", x)


def tanh(x: Value) -> Value:
    """Hyperbolic tangent."""
    return _op("Tanh", x)


def softmax(x: Value, axis: int | tuple[int, ...] = -1) -> Value:
    """``exp(x) / sum(exp(x))`` along ``axis`` (or jointly over a tuple of axes)."""
    if isinstance(axis, (tuple, list)):
        from . import ops

        return ops.softmax(x, axis)
    return _op("Softmax", x, axis=int(axis))


def log_softmax(x: Value, axis: int | tuple[int, ...] = -1) -> Value:
    """``log(softmax(x))`` along ``axis`` (or jointly over a tuple of axes), computed stably."""
    if isinstance(axis, (tuple, list)):
        from . import ops

        return ops.log_softmax(x, axis)
    return _op("LogSoftmax", x, axis=int(axis))


def gelu(x: Value, approximate: bool = False) -> Value:
    """Gaussian error linear unit: ``x * Φ(x)``; the tanh approximation when ``approximate=True``."""
    if approximate:
        inner = (x + (x * x * x) * 0.044715) * math.sqrt(2.0 / math.pi)
        y = x * ((_op("Tanh", inner) + 1.0) * 0.5)
    else:
        y = x * ((_op("Erf", x * (1.0 / math.sqrt(2.0))) + 1.0) * 0.5)
    y.shape = x.shape
    return y


def silu(x: Value) -> Value:
    """``x * sigmoid(x)`` (a.k.a. swish)."""
    y = x * _op("Sigmoid", x)
    y.shape = x.shape
    return y


swish = silu


def elu(x: Value, alpha: float = 1.0) -> Value:
    """``x`` for ``x > 0``, else ``alpha * (exp(x) - 1)``."""
    return _op("Elu", x, alpha=float(alpha))


def selu(x: Value) -> Value:
    """Scaled ELU with Keras's (and ONNX's default) constants alpha=1.67326324, scale=1.05070098."""
    return _op("Selu", x, alpha=1.6732632423543772, gamma=1.0507009873554805)


def softplus(x: Value) -> Value:
    """``log(exp(x) + 1)``."""
    return _op("Softplus", x)


def softsign(x: Value) -> Value:
    """``x / (abs(x) + 1)``."""
    return _op("Softsign", x)


def leaky_relu(x: Value, negative_slope: float = 0.2) -> Value:
    """``x`` for ``x >= 0``, else ``negative_slope * x`` (Keras 3 function default 0.2)."""
    return _op("LeakyRelu", x, alpha=float(negative_slope))


def linear(x: Value) -> Value:
    """The identity."""
    return x


def exponential(x: Value) -> Value:
    """``exp(x)``."""
    return _op("Exp", x)


def hard_sigmoid(x: Value) -> Value:
    """Keras 3's ``relu6(x + 3) / 6``: ``clip(x / 6 + 0.5, 0, 1)``."""
    return _op("HardSigmoid", x, alpha=1.0 / 6.0, beta=0.5)


def hard_silu(x: Value) -> Value:
    """``x * hard_sigmoid(x)``."""
    y = x * hard_sigmoid(x)
    y.shape = x.shape
    return y


hard_swish = hard_silu


def mish(x: Value) -> Value:
    """``x * tanh(softplus(x))``."""
    y = x * _op("Tanh", _op("Softplus", x))
    y.shape = x.shape
    return y


def _anywhere(fn: Callable) -> Callable:
    # Keras activations take any tensor: graph values (in layers), functional-API tensors (a graph node)
    # and arrays, which run now (``keras.activations.softmax(logits)`` in a sampling callback).
    from .ops._util import as_value, builder_of, symbolic

    @functools.wraps(fn)
    def on_value(x: Any, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(x, Value):
            # Inside a trace: a weight (keras.io's decision forest takes softmax(self.pi) in call()) is read
            # through the trace, an array becomes a constant.
            x = as_value(x, builder_of(x))
        return fn(x, *args, **kwargs)

    return symbolic(on_value)


relu, relu6, sigmoid, tanh, softmax, log_softmax, gelu, silu, elu, selu, softplus, softsign, leaky_relu, \
    exponential, hard_sigmoid, hard_silu, mish = (
        _anywhere(f) for f in (relu, relu6, sigmoid, tanh, softmax, log_softmax, gelu, silu, elu, selu, softplus,
                               softsign, leaky_relu, exponential, hard_sigmoid, hard_silu, mish))
swish, hard_swish = silu, hard_silu

_BY_NAME: dict[str, Callable] = {
    "relu": relu, "relu6": relu6, "sigmoid": sigmoid, "tanh": tanh, "softmax": softmax,
    "log_softmax": log_softmax, "gelu": gelu, "silu": silu, "swish": silu, "elu": elu, "selu": selu,
    "softplus": softplus, "softsign": softsign, "leaky_relu": leaky_relu, "linear": linear,
    "exponential": exponential, "hard_sigmoid": hard_sigmoid, "hard_silu": hard_silu, "hard_swish": hard_silu,
    "mish": mish, "celu": celu, "glu": glu, "hard_shrink": hard_shrink, "hard_tanh": hard_tanh,
    "log_sigmoid": log_sigmoid, "soft_shrink": soft_shrink, "sparse_plus": sparse_plus,
    "sparse_sigmoid": sparse_sigmoid, "sparsemax": sparsemax, "squareplus": squareplus, "tanh_shrink": tanh_shrink,
    "threshold": threshold,
}

#: Activations that act on each element alone: safe to apply in any memory layout (the convolution
#: layers apply these before transposing back to channels_last).
ELEMENTWISE = frozenset(f for name, f in _BY_NAME.items() if name not in ("softmax", "log_softmax", "glu", "sparsemax"))


def serialize(activation: Callable) -> str | Any:
    """The Keras name of a built-in activation (``"relu"``); other functions as Keras 3 writes them,
    ``{"class_name": "function", "config": <name>, ...}``."""
    for name, fn in _BY_NAME.items():
        if fn is activation and name not in ("swish", "hard_swish"):
            return name
    if hasattr(activation, "get_config"):
        return keras_objects.serialize(activation)
    if callable(activation) and isinstance(getattr(activation, "__name__", None), str):
        # Keras 3's form of a function, named "package>name" once registered: Keras resolves a bare string
        # only among its own activations, this form through custom_objects too.
        return {"module": "builtins", "class_name": "function",
                "config": keras_objects.get_registered_name(activation), "registered_name": "function"}
    return repr(activation)


def deserialize(config: Any, custom_objects: dict | None = None) -> Callable:
    if isinstance(config, dict) and config.get("class_name") == "function":
        # Keras 3 writes a function as {"class_name": "function", "config": <its (registered) name>}.
        config = config.get("config")
    elif isinstance(config, dict):
        return keras_objects.deserialize(config, custom_objects)
    fn = (custom_objects or {}).get(config) or lookup(config) or _BY_NAME.get(config)
    if fn is None:
        raise ValueError(f"Unknown activation function: {config!r}. Known: {sorted(_BY_NAME)}")
    return fn


def get(identifier: Any) -> Callable:
    """An activation function from a name, a callable, a serialized layer dict, or ``None`` (linear)."""
    if identifier is None:
        return linear
    if isinstance(identifier, (str, dict)):
        return deserialize(identifier)
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret activation function identifier: {identifier!r}")

