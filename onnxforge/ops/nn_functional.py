"""More ``keras.ops.nn`` functions: ``moments`` / ``normalize`` / ``batch_normalization`` /
``layer_normalization`` / ``rms_normalization``, the remaining activations (``glu``, ``hard_silu``,
``hard_tanh``, ``celu``, the shrink family, ...), ``multi_hot``, ``dot_product_attention`` and ``psnr``.

Each is a composition of ops with gradient rules, with Keras's argument names, defaults and formulas.

Example:
    >>> import numpy as np
    >>> from onnxforge import ops
    >>> mean, var = ops.moments(np.array([[1.0, 3.0]]), axes=[1])
    >>> mean.tolist(), var.tolist()
    ([2.0], [1.0])
"""
from __future__ import annotations

__all__ = ["moments", "normalize", "batch_normalization", "layer_normalization", "rms_normalization", "glu",
           "hard_silu", "hard_swish", "hard_tanh", "celu", "sparse_plus", "sparse_sigmoid", "squareplus", "threshold",
           "soft_shrink", "hard_shrink", "tanh_shrink", "sparsemax", "multi_hot", "dot_product_attention", "psnr", "polar"]

import math
from typing import Any

import numpy as np

from ..backend_config import floatx
from ..graph import FLOAT_TYPES, Value
from ._arrays_util import emit
from ._util import as_value, builder_of, cast_value, dtype_enum, int_const, promote, symbolic

# The module name that OpCall configs record for these ops: Keras's family (keras.src.ops.nn), which
# onnxforge.ops.nn re-exports, so a saved call is written as the op node Keras reads (``Celu``).
OPCALL_MODULE = "nn"


def _float(x: Any) -> Value:
    b = builder_of(x)
    v = as_value(x, b)
    return v if v.dtype in FLOAT_TYPES else cast_value(v, dtype_enum(floatx()))


def _axes(axes: Any) -> list[int]:
    return [int(a) for a in axes] if isinstance(axes, (list, tuple)) else [int(axes)]


def _mean(v: Value, axes: list[int] | None, keepdims: bool) -> Value:
    b = v.builder
    inputs = [v] if axes is None else [v, int_const(b, axes)]
    return emit(b, "ReduceMean", inputs, keepdims=int(keepdims))


# ------------------------------------------------------------------------------------------ normalization
@symbolic
def moments(x: Any, axes: Any, keepdims: bool = False, synchronized: bool = False) -> tuple[Value, Value]:
    """Mean and (population) variance over ``axes``."""
    v = _float(x)
    ax = _axes(axes)
    mean = _mean(v, ax, True)
    centered = v - mean
    var = _mean(centered * centered, ax, keepdims)
    if not keepdims:
        mean = emit(v.builder, "Squeeze", [mean, int_const(v.builder, ax)])
    return mean, var


@symbolic
def normalize(x: Any, axis: int = -1, order: int = 2, epsilon: float | None = None) -> Value:
    """``x`` divided by its ``order``-norm along ``axis`` (at least ``epsilon``, Keras's 1e-12 default ...
    floored by ``backend.epsilon()`` as Keras does)."""
    from ..backend_config import epsilon as backend_epsilon

    v = _float(x)
    b = v.builder
    eps = backend_epsilon() if epsilon is None else epsilon
    ax = int_const(b, [int(axis)])
    if order == 2:
        sq = emit(b, "ReduceSum", [v * v, ax], keepdims=1)
        return v * emit(b, "Reciprocal", [emit(b, "Sqrt", [emit(b, "Max", [sq, as_value(eps * eps, b, like=v)])])])
    if order == 1:
        norm = emit(b, "ReduceSum", [emit(b, "Abs", [v]), ax], keepdims=1)
    else:
        p = float(order)
        norm = emit(b, "Pow", [emit(b, "ReduceSum", [emit(b, "Pow", [emit(b, "Abs", [v]), as_value(p, b, like=v)]),
                                                     ax], keepdims=1), as_value(1.0 / p, b, like=v)])
    return v / emit(b, "Max", [norm, as_value(eps, b, like=v)])


@symbolic
def batch_normalization(x: Any, mean: Any, variance: Any, axis: int, offset: Any = None, scale: Any = None,
                        epsilon: float = 1e-3) -> Value:
    """``(x - mean) / sqrt(variance + epsilon) * scale + offset``, the 1-D statistics along ``axis``."""
    v = _float(x)
    b = v.builder
    rank = len(v.shape)
    shape = [1] * rank
    shape[int(axis) % rank] = -1

    def stat(s: Any) -> Value:
        return emit(b, "Reshape", [as_value(s, b, like=v), int_const(b, shape)])

    out = (v - stat(mean)) * emit(b, "Reciprocal", [emit(b, "Sqrt", [stat(variance) + epsilon])])
    if scale is not None:
        out = out * stat(scale)
    if offset is not None:
        out = out + stat(offset)
    return out


@symbolic
def layer_normalization(x: Any, gamma: Any = None, beta: Any = None, axis: int = -1, epsilon: float | None = None,
                        **kwargs: Any) -> Value:
    from ..backend_config import epsilon as backend_epsilon

    # Keras's default is the backend epsilon (1e-7), not the LayerNormalization layer's 1e-3.
    epsilon = backend_epsilon() if epsilon is None else epsilon
    v = _float(x)
    b = v.builder
    ax = [int(a) for a in axis] if isinstance(axis, (list, tuple)) else [int(axis)]
    mean = _mean(v, ax, True)
    centered = v - mean
    out = centered * emit(b, "Reciprocal", [emit(b, "Sqrt", [_mean(centered * centered, ax, True) + epsilon])])
    if gamma is not None:
        out = out * as_value(gamma, b, like=v)
    if beta is not None:
        out = out + as_value(beta, b, like=v)
    return out


@symbolic
def rms_normalization(x: Any, scale: Any = None, axis: int = -1, epsilon: float | None = None) -> Value:
    from ..backend_config import epsilon as backend_epsilon

    v = _float(x)
    b = v.builder
    eps = backend_epsilon() if epsilon is None else epsilon
    ax = [int(a) for a in axis] if isinstance(axis, (list, tuple)) else [int(axis)]
    out = v * emit(b, "Reciprocal", [emit(b, "Sqrt", [_mean(v * v, ax, True) + eps])])
    return out if scale is None else out * as_value(scale, b, like=v)


# ------------------------------------------------------------------------------------------ activations
@symbolic
def glu(x: Any, axis: int = -1) -> Value:
    """``a * sigmoid(b)`` for the two halves of ``x`` along ``axis``."""
    v = _float(x)
    b = v.builder
    first, second = emit(b, "Split", [v], outputs=2, axis=int(axis), num_outputs=2)
    return first * emit(b, "Sigmoid", [second])


@symbolic
def hard_silu(x: Any) -> Value:
    """``x * relu6(x + 3) / 6`` (Keras's ``hard_swish``)."""
    v = _float(x)
    b = v.builder
    gate = emit(b, "Clip", [v + 3.0, as_value(0.0, b, like=v), as_value(6.0, b, like=v)])
    return v * gate * (1.0 / 6.0)


hard_swish = hard_silu


@symbolic
def hard_tanh(x: Any) -> Value:
    v = _float(x)
    b = v.builder
    return emit(b, "Clip", [v, as_value(-1.0, b, like=v), as_value(1.0, b, like=v)])


@symbolic
def celu(x: Any, alpha: float = 1.0) -> Value:
    v = _float(x)
    b = v.builder
    zero = as_value(0.0, b, like=v)
    neg = (emit(b, "Exp", [emit(b, "Min", [v, zero]) * (1.0 / alpha)]) - 1.0) * alpha
    return emit(b, "Max", [v, zero]) + neg


@symbolic
def sparse_plus(x: Any) -> Value:
    """0 below -1, ``(x + 1)^2 / 4`` in ``[-1, 1]``, ``x`` above 1."""
    v = _float(x)
    b = v.builder
    mid = (v + 1.0) * (v + 1.0) * 0.25
    low = emit(b, "LessOrEqual", [v, as_value(-1.0, b, like=v)])
    high = emit(b, "GreaterOrEqual", [v, as_value(1.0, b, like=v)])
    return emit(b, "Where", [low, as_value(0.0, b, like=v), emit(b, "Where", [high, v, mid])])


@symbolic
def sparse_sigmoid(x: Any) -> Value:
    """0 at or below -1, ``(x + 1) / 2`` between, 1 at or above 1 (Keras's piecewise-linear sigmoid)."""
    v = _float(x)
    b = v.builder
    low = emit(b, "LessOrEqual", [v, as_value(-1.0, b, like=v)])
    high = emit(b, "GreaterOrEqual", [v, as_value(1.0, b, like=v)])
    return emit(b, "Where", [low, as_value(0.0, b, like=v),
                             emit(b, "Where", [high, as_value(1.0, b, like=v), (v + 1.0) * 0.5])])


@symbolic
def squareplus(x: Any, b: float = 4) -> Value:
    v = _float(x)
    return (v + emit(v.builder, "Sqrt", [v * v + float(b)])) * 0.5


@symbolic
def threshold(x: Any, threshold: float, default_value: float) -> Value:  # noqa: A002 (Keras's name)
    v = _float(x)
    bld = v.builder
    return emit(bld, "Where", [emit(bld, "Greater", [v, as_value(float(threshold), bld, like=v)]), v,
                               as_value(float(default_value), bld, like=v)])


@symbolic
def soft_shrink(x: Any, threshold: float = 0.5) -> Value:  # noqa: A002
    v = _float(x)
    b = v.builder
    t = float(threshold)
    return emit(b, "Where", [emit(b, "Greater", [v, as_value(t, b, like=v)]), v - t,
                             emit(b, "Where", [emit(b, "Less", [v, as_value(-t, b, like=v)]), v + t,
                                               as_value(0.0, b, like=v)])])


@symbolic
def hard_shrink(x: Any, threshold: float = 0.5) -> Value:  # noqa: A002
    v = _float(x)
    b = v.builder
    keep = emit(b, "Greater", [emit(b, "Abs", [v]), as_value(float(threshold), b, like=v)])
    return emit(b, "Where", [keep, v, as_value(0.0, b, like=v)])


@symbolic
def tanh_shrink(x: Any) -> Value:
    v = _float(x)
    return v - emit(v.builder, "Tanh", [v])


@symbolic
def sparsemax(x: Any, axis: int = -1) -> Value:
    """Sparsemax (Martins & Astudillo): the Euclidean projection of ``x`` onto the simplex along ``axis``."""
    from .sorting import sort

    v = _float(x)
    b = v.builder
    rank = len(v.shape)
    ax = int(axis) % rank
    n = v.shape[ax]
    if not isinstance(n, int):
        raise ValueError("ops.sparsemax needs a static size along `axis`.")
    z = emit(b, "Neg", [sort(emit(b, "Neg", [v]), axis=ax)])          # descending
    k_shape = [1] * rank
    k_shape[ax] = n
    k = as_value(np.arange(1, n + 1, dtype=np.float32).reshape(k_shape), b, like=v)
    cums = emit(b, "CumSum", [z, as_value(np.int64(ax), b)])
    support = cast_value(emit(b, "Greater", [1.0 + k * z, cums]), v.dtype)
    k_z = emit(b, "ReduceSum", [support, int_const(b, [ax])], keepdims=1)
    tau = (emit(b, "ReduceSum", [support * z, int_const(b, [ax])], keepdims=1) - 1.0) / k_z
    return emit(b, "Max", [v - tau, as_value(0.0, b, like=v)])


# ------------------------------------------------------------------------------------------ encodings
@symbolic
def multi_hot(inputs: Any, num_classes: int | None = None, axis: int = -1, dtype: Any = None, sparse: bool = False,
              **kwargs: Any) -> Value:
    """1 for every class present in each row of integer ``inputs`` (rank 1 or 2); ``num_tokens=`` is Keras's
    older name of ``num_classes``."""
    if num_classes is None and "num_tokens" in kwargs:
        num_classes = kwargs.pop("num_tokens")
    if kwargs:
        raise TypeError(f"multi_hot() got unexpected keyword arguments: {sorted(kwargs)}")
    if num_classes is None:
        raise ValueError("Argument `num_classes` must be specified.")
    b = builder_of(inputs)
    v = cast_value(as_value(inputs, b), 7)
    elem = dtype_enum(dtype or floatx())
    values = as_value(np.asarray([0, 1]), b, dtype=elem)
    hot = emit(b, "OneHot", [v, int_const(b, [int(num_classes)]), values], axis=-1, dtype=elem)
    reduce_axis = -2 if v.shape is not None and len(v.shape) >= 2 else 0
    out = emit(b, "ReduceMax", [hot, int_const(b, [reduce_axis])], keepdims=0)
    if axis not in (-1, len(out.shape) - 1 if out.shape else -1):
        from .arrays import moveaxis

        out = moveaxis(out, -1, axis)
    return out


# ------------------------------------------------------------------------------------------ attention
@symbolic
def dot_product_attention(query: Any, key: Any, value: Any, bias: Any = None, mask: Any = None, scale: Any = None,
                          is_causal: bool = False, flash_attention: Any = None, attn_logits_soft_cap: Any = None
                          ) -> Value:
    """Scaled dot-product attention on ``(batch, length, heads, head_dim)`` tensors (Keras's layout);
    ``mask`` is boolean (True: attend), broadcast to ``(batch, heads, q_len, k_len)``."""
    b = builder_of(query, key, value, bias, mask)
    q, k, val = promote(b, query, key, value)
    head_dim = q.shape[-1]
    s = (1.0 / math.sqrt(head_dim)) if scale is None else float(scale)
    logits = emit(b, "Einsum", [q, k], equation="bthd,bshd->bhts") * s
    if attn_logits_soft_cap is not None:
        cap = float(attn_logits_soft_cap)
        logits = emit(b, "Tanh", [logits * (1.0 / cap)]) * cap
    if bias is not None:
        logits = logits + as_value(bias, b, like=logits)
    neg = as_value(float(np.finfo(np.float32).min) / 2, b, like=logits)
    if mask is not None:
        keep = cast_value(as_value(mask, b), 9)
        logits = emit(b, "Where", [keep, logits, neg])
    if is_causal:
        from ._arrays_util import dim
        from .arrays_creation import _triangle_mask

        causal = _triangle_mask(b, dim(logits, 2), dim(logits, 3), 0, True)   # query t sees keys s <= t
        logits = emit(b, "Where", [causal, logits, neg])
    weights = emit(b, "Softmax", [logits], axis=-1)
    return emit(b, "Einsum", [weights, val], equation="bhts,bshd->bthd")


# ------------------------------------------------------------------------------------------ metrics-like
@symbolic
def psnr(x1: Any, x2: Any, max_val: float) -> Value:
    """Peak signal-to-noise ratio over all entries: ``20 log10(max_val) - 10 log10(mse)``."""
    b = builder_of(x1, x2)
    a, c = promote(b, x1, x2)
    a, c = _float(a), _float(c)
    diff = a - c
    mse = emit(b, "ReduceMean", [diff * diff], keepdims=0)
    return 20.0 * math.log10(float(max_val)) - emit(b, "Log", [mse]) * (10.0 / math.log(10.0))


@symbolic
def polar(abs_: Any, angle: Any) -> tuple[Value, Value]:
    """``(abs_ * cos(angle), abs_ * sin(angle))``: the real and imaginary parts (no complex dtype here)."""
    b = builder_of(abs_, angle)
    r, t = promote(b, abs_, angle)
    return r * emit(b, "Cos", [t]), r * emit(b, "Sin", [t])
