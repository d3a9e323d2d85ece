"""More ``keras.random`` distributions, each built in the graph on the uniform source of ``random.py`` (so
``seed`` means the same there: ``None``, an int or a ``SeedGenerator``): ``randint`` (floor of uniform),
``truncated_normal`` (inverse CDF on the truncated range, no re-draws), ``categorical`` (Gumbel-max),
``shuffle`` (argsort of uniform keys), ``binomial`` for counts known when the graph is built, and ``gamma`` /
``beta`` (Marsaglia-Tsang on a fixed number of candidates per sample: mixup's and cutmix's mixing weights).

Example:
    >>> import numpy as np
    >>> from onnxforge import ops
    >>> x = ops.random.randint((1000,), 2, 5, seed=1)
    >>> str(x.dtype), sorted(np.unique(x).tolist())
    ('int32', [2, 3, 4])
    >>> sorted(np.asarray(ops.random.shuffle(np.arange(5), seed=2)).tolist())
    [0, 1, 2, 3, 4]
"""
from __future__ import annotations

__all__ = ["randint", "truncated_normal", "categorical", "shuffle", "binomial", "gamma", "beta"]

import math
from typing import Any

import numpy as np
import onnx

from ..graph import Value
from ._arrays_util import axis_index, dim, emit, rank_of, value
from ._util import as_value, builder_of, cast_value, dtype_enum, fill_const, int_const, symbolic
from .random import _zeros, uniform_source

# The module name OpCall configs record for these ops (keras.random), as for random.py's own.
OPCALL_MODULE = "random"

_DOUBLE, _INT64 = onnx.TensorProto.DOUBLE, onnx.TensorProto.INT64
# Φ(-2): the share of a standard normal below -2 (Keras truncates at two standard deviations).
_BELOW_MINUS_TWO = 0.5 * math.erfc(math.sqrt(2.0))


@symbolic
def randint(shape: Any, minval: Any, maxval: Any, dtype: Any = "int32", seed: Any = None) -> Value:
    """Integers drawn uniformly from ``[minval, maxval)``, of ``shape``."""
    like = _zeros(shape, "float32")
    b = like.builder
    u = cast_value(uniform_source(b, seed)(like), _DOUBLE)
    lo, hi = as_value(minval, b, dtype="float64"), as_value(maxval, b, dtype="float64")
    span = hi - lo
    # u < 1, but u * span can round up to span: the last step is clipped back into the range.
    steps = emit(b, "Min", [emit(b, "Floor", [u * span]), span - 1.0])
    out = cast_value(steps + lo, dtype_enum(dtype))
    out.shape = like.shape
    return out


@symbolic
def truncated_normal(shape: Any, mean: float = 0.0, stddev: float = 1.0, dtype: Any = None,
                     seed: Any = None) -> Value:
    """Normal samples of ``shape`` within two standard deviations of ``mean``: the inverse normal CDF of a
    uniform draw on ``[Φ(-2), Φ(2)]``, the distribution Keras's re-drawing gives, in a fixed number of ops."""
    from .numpy_math import erfinv

    like = _zeros(shape, dtype)
    b = like.builder
    u = uniform_source(b, seed)(like)
    p = u * (1.0 - 2.0 * _BELOW_MINUS_TWO) + _BELOW_MINUS_TWO
    z = erfinv(p * 2.0 - 1.0) * math.sqrt(2.0)
    z = z * as_value(stddev, b, like) + as_value(mean, b, like)
    z.shape = like.shape
    return z


@symbolic
def categorical(logits: Any, num_samples: int, dtype: Any = "int32", seed: Any = None) -> Value:
    """``num_samples`` class indices per row of ``logits`` (batch, classes), drawn with probabilities
    ``softmax(logits)``: the argmax of the logits plus Gumbel noise, one draw per sample and class."""
    b = builder_of(logits)
    v = as_value(logits, b)
    v = v if v.is_float else cast_value(v, onnx.TensorProto.FLOAT)
    if v.shape is None or len(v.shape) != 2:
        raise ValueError(f"random.categorical: `logits` must have shape (batch_size, num_classes). Received: "
                         f"logits.shape={v.shape}")
    rows = emit(b, "Unsqueeze", [v, int_const(b, [1])])
    like = emit(b, "Expand", [rows * 0.0, int_const(b, [1, int(num_samples), 1])])
    u = uniform_source(b, seed)(like)
    gumbel = -emit(b, "Log", [-emit(b, "Log", [u])])     # u = 0 gives -inf: never the argmax
    picks = emit(b, "ArgMax", [rows + gumbel], axis=2, keepdims=0)
    return cast_value(picks, dtype_enum(dtype))


@symbolic
def shuffle(x: Any, axis: int = 0, seed: Any = None) -> Value:
    """``x`` with its entries along ``axis`` in a random order (the argsort of one uniform key per entry)."""
    from .sorting import argsort

    v = value(x)
    b = v.builder
    axis = axis_index(axis, rank_of(v, "random.shuffle"), "random.shuffle")
    keys = uniform_source(b, seed)(fill_const(b, [dim(v, axis)], 0.0, onnx.TensorProto.FLOAT))
    return emit(b, "Gather", [v, argsort(keys)], axis=axis, shape=v.shape)


@symbolic
def binomial(shape: Any, counts: Any, probabilities: Any, dtype: Any = None, seed: Any = None) -> Value:
    """Successes in ``counts`` trials of probability ``probabilities`` (broadcast to ``shape``): the sum of
    one Bernoulli draw per trial, so ``counts`` must be known when the graph is built (an int or a list of
    ints; a NumPy array of counts reaches an eager call as a tensor, so pass ``counts.tolist()``)."""
    if isinstance(counts, Value) or hasattr(counts, "__onnx_value__"):
        raise ValueError("random.binomial in a graph needs `counts` known when it is built (an int or a list of "
                         "ints): one Bernoulli draw per trial is summed. Received: counts as a tensor")
    n = np.asarray(counts, np.int64)
    if n.size == 0 or n.min() < 0:
        raise ValueError(f"random.binomial: `counts` must be non-negative. Received: counts={counts!r}")
    like = _zeros(shape, dtype)
    b = like.builder
    trials = int(n.max())
    if trials == 0:
        return like
    drawn = emit(b, "Unsqueeze", [like, int_const(b, [-1])])
    drawn = emit(b, "Expand", [drawn, int_const(b, [trials])])
    u = uniform_source(b, seed)(drawn)
    p = emit(b, "Unsqueeze", [as_value(probabilities, b, like), int_const(b, [-1])])
    # Trial k counts only where k < counts (counts broadcast like probabilities).
    live = b.const(np.arange(trials)[(None,) * n.ndim] < n[..., None]) if n.ndim else None
    success = emit(b, "Less", [u, p])
    if live is not None:
        success = emit(b, "And", [success, live])
    out = emit(b, "ReduceSum", [cast_value(success, like.dtype), int_const(b, [-1])], keepdims=0)
    out.shape = like.shape
    return out


# Marsaglia-Tsang candidates drawn per sample: each is accepted with probability >= 0.95 (for the shape >= 1
# it works on), so all eight fail with probability <= 0.05 ** 8 < 4e-11; a fixed count keeps the graph a
# straight line where the textbook sampler loops until it accepts.
_GAMMA_TRIES = 8


@symbolic
def gamma(shape: Any, alpha: Any, dtype: Any = None, seed: Any = None) -> Value:
    """Gamma samples of ``shape`` with concentration ``alpha`` (a number or an array broadcast to ``shape``)
    and scale 1: Marsaglia and Tsang's method on a fixed number of candidates (see ``_GAMMA_TRIES``), boosted
    by ``U ** (1 / alpha)`` below 1, as TensorFlow and torch sample it."""
    like = _zeros(shape, dtype)
    return _gamma(like, alpha, uniform_source(like.builder, seed))


@symbolic
def beta(shape: Any, alpha: Any, beta: Any, dtype: Any = None, seed: Any = None) -> Value:  # noqa: A002
    """Beta(``alpha``, ``beta``) samples of ``shape``: ``X / (X + Y)`` of two gamma draws from one stream."""
    like = _zeros(shape, dtype)
    draw = uniform_source(like.builder, seed)
    x, y = _gamma(like, alpha, draw), _gamma(like, beta, draw)
    out = x / (x + y)
    out.shape = like.shape
    return out


def _gamma(like: Value, alpha: Any, draw: Any) -> Value:
    b = like.builder
    zeros = cast_value(like, _DOUBLE)
    a = as_value(alpha, b, dtype="float64") + zeros
    small = emit(b, "Less", [a, b.const(np.asarray(1.0))])
    boosted = emit(b, "Where", [small, a + 1.0, a])
    d = boosted - 1.0 / 3.0
    c = emit(b, "Reciprocal", [emit(b, "Sqrt", [d * 9.0])])
    tries = emit(b, "Concat", [int_const(b, [_GAMMA_TRIES]), emit(b, "Shape", [zeros])], axis=0)
    stacked = emit(b, "Expand", [emit(b, "Unsqueeze", [zeros, int_const(b, [0])]), tries])
    u1, u2, u3 = (cast_value(draw(stacked), _DOUBLE) for _ in range(3))
    # Box-Muller normals; 1 - u lies in (0, 1], so the logs stay finite.
    z = emit(b, "Sqrt", [emit(b, "Log", [1.0 - u1]) * -2.0]) * emit(b, "Cos", [u2 * (2.0 * math.pi)])
    v = emit(b, "Pow", [z * c + 1.0, b.const(np.asarray(3.0))])
    log_v = emit(b, "Log", [emit(b, "Max", [v, b.const(np.asarray(1e-300))])])
    accept = emit(b, "And", [emit(b, "Greater", [v, b.const(np.asarray(0.0))]),
                             emit(b, "Less", [emit(b, "Log", [1.0 - u3]), z * z * 0.5 + d - d * v + d * log_v])])
    hits = cast_value(accept, onnx.TensorProto.INT32)
    first = emit(b, "ArgMax", [hits], axis=0, keepdims=1)     # the first accepted candidate
    picked = emit(b, "Squeeze", [emit(b, "GatherElements", [d * v, first], axis=0), int_const(b, [0])])
    # Eight rejections in a row: the mode d stands in (a value of the right size, never negative).
    any_hit = emit(b, "Cast", [emit(b, "ReduceMax", [hits, int_const(b, [0])], keepdims=0)], to=onnx.TensorProto.BOOL)
    x = emit(b, "Where", [any_hit, picked, d])
    boost = emit(b, "Pow", [1.0 - cast_value(draw(zeros), _DOUBLE), emit(b, "Reciprocal", [a])])
    x = emit(b, "Where", [small, x * boost, x])
    out = cast_value(x, like.dtype)
    out.shape = like.shape
    return out
