"""More of ``tf.math``: the inverse and hyperbolic trigonometric functions, ``erf``, ``expm1``, ``softmax``,
``cumprod``, ``count_nonzero``, segment sums and ``xlogy``, with TensorFlow's argument names and result
dtypes, built from ``keras.ops`` (so each runs on arrays, in a traced step and on functional tensors).

Example:
    >>> import numpy as np
    >>> round(float(atan2(np.float32(1.0), np.float32(1.0))), 4)
    0.7854
    >>> count_nonzero(np.array([0, 3, 5])).tolist(), cumprod(np.array([1.0, 2.0, 3.0]), exclusive=True).tolist()
    (2, [1.0, 1.0, 2.0])
"""
from __future__ import annotations

__all__ = ["tan", "sinh", "cosh", "asin", "acos", "atan", "asinh", "acosh", "atanh", "atan2", "erf", "erfinv",
           "expm1", "softsign", "softmax", "log_softmax", "cumprod", "count_nonzero", "xlogy", "xdivy", "mod",
           "floormod", "segment_sum", "segment_max", "unsorted_segment_sum", "unsorted_segment_max", "segment_min",
           "segment_prod", "segment_mean", "unsorted_segment_min", "unsorted_segment_prod", "unsorted_segment_mean",
           "unsorted_segment_sqrt_n",
           "reduce_euclidean_norm", "multiply_no_nan", "reciprocal_no_nan", "bincount", "in_top_k", "rint", "erfc",
           "xlog1py", "polyval", "zero_fraction", "invert_permutation", "is_non_decreasing", "is_strictly_increasing",
           "confusion_matrix", "scalar_mul", "truncatediv", "truncatemod", "cumulative_logsumexp", "lgamma",
           "digamma", "lbeta"]

import builtins
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import ops as _ops
from ..ops._util import symbolic
from .elementwise import _keep_dtype, _unary
from .errors import InvalidArgumentError
from .math_fns import _axis_index, cumsum
from .tensors import _reduction

tan, sinh, cosh = _unary(_ops.tan, "tan"), _unary(_ops.sinh, "sinh"), _unary(_ops.cosh, "cosh")
asin, acos, atan = _unary(_ops.arcsin, "asin"), _unary(_ops.arccos, "acos"), _unary(_ops.arctan, "atan")
asinh, acosh = _unary(_ops.arcsinh, "asinh"), _unary(_ops.arccosh, "acosh")
atanh, erf = _unary(_ops.arctanh, "atanh"), _unary(_ops.erf, "erf")
erfinv, expm1 = _unary(_ops.erfinv, "erfinv"), _unary(_ops.expm1, "expm1")
softsign = _unary(_ops.softsign, "softsign")
reduce_euclidean_norm = _reduction(lambda x, axis=None, keepdims=False: _keep_dtype(
    x, _ops.sqrt(_ops.sum(_ops.square(x), axis=axis, keepdims=keepdims))), "reduce_euclidean_norm")


def atan2(y: Any, x: Any, name: str | None = None) -> Any:
    """``tf.math.atan2(y, x)``: the angle of ``(x, y)``, elementwise."""
    return _ops.arctan2(y, x)


def softmax(logits: Any, axis: int | None = None, name: str | None = None) -> Any:
    """``tf.math.softmax`` / ``tf.nn.softmax``: over the last axis by default."""
    return _ops.softmax(_as_float(logits), axis=-1 if axis is None else axis)


def log_softmax(logits: Any, axis: int | None = None, name: str | None = None) -> Any:
    """``tf.math.log_softmax`` / ``tf.nn.log_softmax``: over the last axis by default."""
    return _ops.log_softmax(_as_float(logits), axis=-1 if axis is None else axis)


def _as_float(x: Any) -> Any:
    """Python lists of floats are float32 tensors (TensorFlow's ``convert_to_tensor``)."""
    return np.asarray(x, np.float32) if isinstance(x, (list, tuple, float)) else x


def cumprod(x: Any, axis: int = 0, exclusive: builtins.bool = False, reverse: builtins.bool = False,
            name: str | None = None) -> Any:
    """``tf.math.cumprod``: running products along ``axis`` (0 by default); ``exclusive`` starts from 1,
    ``reverse`` runs from the end."""
    ndim, axis = _axis_index(x, axis)
    if reverse:
        x = _ops.flip(x, axis=axis)
    if exclusive:   # a 1 padded in front, the last product dropped: TensorFlow's order of multiplications
        pads = [[0, 0]] * ndim
        pads[axis] = [1, 0]
        index = (slice(None),) * axis + (slice(0, -1),)
        out = _ops.cumprod(_ops.pad(x, pads, constant_values=1), axis=axis)[index]
    else:
        out = _ops.cumprod(x, axis=axis)
    if reverse:
        out = _ops.flip(out, axis=axis)
    return _keep_dtype(x, out)


def count_nonzero(input: Any, axis: Any = None, keepdims: Any = None, dtype: Any = "int64",  # noqa: A002
                  name: str | None = None) -> Any:
    """``tf.math.count_nonzero``: how many entries are not zero (int64 by default)."""
    nonzero = _ops.cast(_ops.not_equal(input, 0), dtype)
    return _ops.sum(nonzero, axis=tuple(axis) if isinstance(axis, list) else axis, keepdims=bool(keepdims))


def xlogy(x: Any, y: Any, name: str | None = None) -> Any:
    """``tf.math.xlogy``: ``x * log(y)``, 0 where ``x`` is 0."""
    return _ops.where(_ops.equal(x, 0), _ops.zeros_like(_ops.multiply(x, y)), _ops.multiply(x, _ops.log(y)))


def xdivy(x: Any, y: Any, name: str | None = None) -> Any:
    """``tf.math.xdivy``: ``x / y``, 0 where ``x`` is 0."""
    return _ops.where(_ops.equal(x, 0), _ops.zeros_like(_ops.divide(x, y)), _ops.divide(x, y))


def mod(x: Any, y: Any, name: str | None = None) -> Any:
    """``tf.math.floormod`` (``tf.math.mod``): the remainder taking the sign of ``y``, in ``x``'s dtype."""
    return _keep_dtype(x, _ops.mod(x, y), y)


floormod = mod


def multiply_no_nan(x: Any, y: Any, name: str | None = None) -> Any:
    """``tf.math.multiply_no_nan``: ``x * y``, 0 where ``y`` is 0 even when ``x`` is inf or nan."""
    return _ops.where(_ops.equal(y, 0), _ops.zeros_like(_ops.multiply(x, y)), _ops.multiply(x, y))


def reciprocal_no_nan(x: Any, name: str | None = None) -> Any:
    """``tf.math.reciprocal_no_nan``: ``1 / x``, 0 where ``x`` is 0."""
    return _ops.divide_no_nan(_ops.ones_like(x), x)


def _segments(fn: Callable[..., Any], tf_name: str, sorted_ids: builtins.bool) -> Callable[..., Any]:
    if sorted_ids:
        def op(data: Any, segment_ids: Any, name: str | None = None) -> Any:
            ids = np.asarray(segment_ids) if isinstance(segment_ids, (list, tuple)) else segment_ids
            return fn(data, ids, sorted=True)
    else:
        def op(data: Any, segment_ids: Any, num_segments: Any, name: str | None = None) -> Any:  # type: ignore[misc]
            ids = np.asarray(segment_ids) if isinstance(segment_ids, (list, tuple)) else segment_ids
            return fn(data, ids, num_segments=int(num_segments))
    op.__name__ = op.__qualname__ = tf_name
    op.__doc__ = f"``tf.math.{tf_name}``: the segments of ``data`` along its first axis, reduced."
    return op


def _segment_mean(data: Any, segment_ids: Any, num_segments: Any = None, sorted: builtins.bool = False,
                  root: builtins.bool = False) -> Any:  # noqa: A002
    # The sum over the segment's rows divided by their count (or its square root); an empty segment is 0.
    total = _ops.segment_sum(data, segment_ids, num_segments=num_segments, sorted=sorted)
    ones = _ops.cast(_ops.ones_like(segment_ids), total.dtype)
    count = _ops.maximum(_ops.segment_sum(ones, segment_ids, num_segments=num_segments, sorted=sorted), 1.0)
    count = _ops.reshape(count, (-1,) + (1,) * (len(total.shape) - 1))
    return _ops.divide(total, _ops.sqrt(count) if root else count)


def _segment_sqrt_n(data: Any, segment_ids: Any, num_segments: Any = None, sorted: builtins.bool = False) -> Any:  # noqa: A002
    return _segment_mean(data, segment_ids, num_segments, sorted, root=True)


def _empty_as_zero(fn: Callable[..., Any]) -> Callable[..., Any]:
    # TensorFlow's sorted segment_max / segment_min give 0 for an id skipped in the sorted ids (the unsorted
    # ones keep the dtype's extreme there).
    def extreme(data: Any, segment_ids: Any, num_segments: Any = None, sorted: builtins.bool = False) -> Any:  # noqa: A002
        out = fn(data, segment_ids, num_segments=num_segments, sorted=sorted)
        hits = _ops.segment_sum(_ops.ones_like(segment_ids), segment_ids, num_segments=out.shape[0], sorted=sorted)
        hits = _ops.reshape(hits, (-1,) + (1,) * (len(out.shape) - 1))
        return _ops.where(_ops.greater(hits, 0), out, _ops.zeros_like(out))
    return extreme


segment_sum = _segments(_ops.segment_sum, "segment_sum", True)
segment_max = _segments(_empty_as_zero(_ops.segment_max), "segment_max", True)
segment_min = _segments(_empty_as_zero(_ops.segment_min), "segment_min", True)
segment_mean = _segments(_segment_mean, "segment_mean", True)
unsorted_segment_sum = _segments(_ops.segment_sum, "unsorted_segment_sum", False)
unsorted_segment_max = _segments(_ops.segment_max, "unsorted_segment_max", False)
unsorted_segment_min = _segments(_ops.segment_min, "unsorted_segment_min", False)
unsorted_segment_mean = _segments(_segment_mean, "unsorted_segment_mean", False)
unsorted_segment_sqrt_n = _segments(_segment_sqrt_n, "unsorted_segment_sqrt_n", False)
# An empty segment's product is 1, in both of TensorFlow's forms and in ops.segment_prod.
segment_prod = _segments(_ops.segment_prod, "segment_prod", True)
unsorted_segment_prod = _segments(_ops.segment_prod, "unsorted_segment_prod", False)


def bincount(arr: Any, weights: Any = None, minlength: Any = None, maxlength: Any = None, dtype: Any = "int32",
             name: str | None = None, axis: Any = None, binary_output: builtins.bool = False) -> Any:
    """``tf.math.bincount``: how often each value of ``arr`` occurs (int32 counts, or ``weights``' sums)."""
    if maxlength is not None or axis is not None or binary_output:
        raise NotImplementedError("tf.math.bincount: maxlength, axis and binary_output are not supported. "
                                  f"Received: maxlength={maxlength}, axis={axis}, binary_output={binary_output}")
    out = _ops.bincount(arr, weights=weights, minlength=int(minlength or 0))
    return out if weights is not None else _ops.cast(out, dtype)


def in_top_k(targets: Any, predictions: Any, k: int, name: str | None = None) -> Any:
    """``tf.math.in_top_k(targets, predictions, k)``: whether each row's target class is among its ``k`` largest
    predictions (ties with the k-th value count as in, as TensorFlow's)."""
    kth = _ops.min(_ops.top_k(predictions, k)[0], axis=-1)
    target_score = _ops.take_along_axis(predictions, _ops.expand_dims(_ops.cast(targets, "int64"), -1), axis=-1)
    return _ops.greater_equal(_ops.squeeze(target_score, -1), kth)


rint, erfc = _unary(_ops.round, "rint"), _unary(_ops.erfc, "erfc")


def xlog1py(x: Any, y: Any, name: str | None = None) -> Any:
    """``tf.math.xlog1py``: ``x * log1p(y)``, and 0 where ``x`` is 0 (whatever ``y`` is)."""
    return _xlog1py(x, y)


@symbolic
def _xlog1py(x: Any, y: Any) -> Any:
    return _ops.where(_ops.equal(x, 0), _ops.zeros_like(_ops.multiply(x, y)), _ops.multiply(x, _ops.log1p(y)))


def polyval(coeffs: Any, x: Any, name: str | None = None) -> Any:
    """``tf.math.polyval``: ``coeffs[0] * x**(n-1) + ... + coeffs[n-1]`` by Horner's rule (a list of
    coefficients; none gives zeros)."""
    if not isinstance(coeffs, (list, tuple)):
        raise ValueError(f"tf.math.polyval: coeffs must be a list of tensors or numbers. Received: {type(coeffs)}")
    if not coeffs:
        return _ops.zeros_like(x)
    out = _ops.add(_ops.zeros_like(x), coeffs[0])
    for c in coeffs[1:]:
        out = _ops.add(_ops.multiply(out, x), c)
    return out


def zero_fraction(value: Any, name: str | None = None) -> Any:
    """``tf.math.zero_fraction``: the float32 fraction of ``value``'s elements that are zero."""
    return _zero_fraction(np.asarray(value) if isinstance(value, (list, tuple)) else value)


@symbolic
def _zero_fraction(value: Any) -> Any:
    return _ops.mean(_ops.cast(_ops.equal(value, 0), "float32"))


def invert_permutation(x: Any, name: str | None = None) -> Any:
    """``tf.math.invert_permutation``: ``y`` with ``y[x[i]] = i`` for a permutation ``x`` of ``0 .. n-1``."""
    known = np.asarray(x) if isinstance(x, (list, tuple, np.ndarray)) else None
    if known is not None and sorted(known.ravel().tolist()) != list(range(known.size)):
        raise InvalidArgumentError(f"tf.math.invert_permutation: x must be a permutation of 0 .. {known.size - 1}. "
                                   f"Received: x={known.tolist()}")
    dtype = _ops.dtype(x) if hasattr(x, "dtype") and not isinstance(x, list) else "int32"
    return _ops.cast(_ops.argsort(x), dtype)


def _monotone(strict: builtins.bool) -> Callable[..., Any]:
    @symbolic
    def program(x: Any) -> Any:
        flat = _ops.reshape(x, (-1,))
        return _ops.all((_ops.greater if strict else _ops.greater_equal)(flat[1:], flat[:-1]))

    def op(x: Any, name: str | None = None) -> Any:
        return program(np.asarray(x) if isinstance(x, (list, tuple)) else x)
    op.__name__ = op.__qualname__ = "is_strictly_increasing" if strict else "is_non_decreasing"
    op.__doc__ = (f"``tf.math.{op.__name__}``: whether each element of ``x`` (flattened) is "
                  f"{'greater than' if strict else 'at least'} the one before (true for fewer than two).")
    return op


is_non_decreasing, is_strictly_increasing = _monotone(False), _monotone(True)


def confusion_matrix(labels: Any, predictions: Any, num_classes: Any = None, weights: Any = None,
                     dtype: Any = "int32", name: str | None = None) -> Any:
    """``tf.math.confusion_matrix``: ``(num_classes, num_classes)`` counts (or summed ``weights``), rows the
    true labels and columns the predictions; ``num_classes`` defaults to the largest value plus one, which
    needs concrete labels.

    Example:
        >>> confusion_matrix([1, 2, 1], [2, 2, 1], num_classes=3).tolist()
        [[0, 0, 0], [0, 1, 1], [0, 0, 1]]
    """
    if num_classes is None:
        known = [np.asarray(v) for v in (labels, predictions) if isinstance(v, (list, tuple, np.ndarray))]
        if len(known) != 2:
            raise ValueError("tf.math.confusion_matrix: num_classes is required for traced labels or predictions.")
        num_classes = int(max(known[0].max(initial=-1), known[1].max(initial=-1))) + 1
    return _confusion(np.asarray(labels) if isinstance(labels, (list, tuple)) else labels,
                      np.asarray(predictions) if isinstance(predictions, (list, tuple)) else predictions,
                      None if weights is None else np.asarray(weights, np.float64) if isinstance(
                          weights, (list, tuple)) else weights, n=int(num_classes), dtype=dtype)


@symbolic
def _confusion(labels: Any, predictions: Any, weights: Any, n: int, dtype: Any) -> Any:
    flat = _ops.add(_ops.multiply(_ops.cast(labels, "int64"), n), _ops.cast(predictions, "int64"))
    counts = _ops.bincount(flat, weights=None if weights is None else _ops.cast(weights, "float64"),
                           minlength=n * n)
    return _ops.cast(_ops.reshape(counts[:n * n], (n, n)), dtype)


def scalar_mul(scalar: Any, x: Any, name: str | None = None) -> Any:
    """``tf.math.scalar_mul`` (``tf.scalar_mul``): ``x`` times the scalar, in ``x``'s dtype."""
    return _keep_dtype(x, _ops.multiply(scalar, x))


def truncatediv(x: Any, y: Any, name: str | None = None) -> Any:
    """``tf.truncatediv``: integer division rounding toward zero (C's ``/``; ``tf.math.floordiv`` rounds down)."""
    return _keep_dtype(x, _truncated(x, y, remainder=False), y)


@symbolic
def _truncated(x: Any, y: Any, remainder: builtins.bool) -> Any:
    # Both from |x| and |y|: the quotient takes the sign of x * y, the remainder that of x.
    if remainder:
        return _ops.multiply(_ops.sign(x), _ops.mod(_ops.abs(x), _ops.abs(y)))
    return _ops.multiply(_ops.multiply(_ops.sign(x), _ops.sign(y)), _ops.floor_divide(_ops.abs(x), _ops.abs(y)))


def truncatemod(x: Any, y: Any, name: str | None = None) -> Any:
    """``tf.truncatemod``: the remainder with the sign of ``x`` (C's ``fmod``; ``tf.math.floormod`` takes
    ``y``'s)."""
    return _keep_dtype(x, _truncated(x, y, remainder=True), y)


def cumulative_logsumexp(x: Any, axis: int = 0, exclusive: builtins.bool = False, reverse: builtins.bool = False,
                         name: str | None = None) -> Any:
    """``tf.math.cumulative_logsumexp``: ``log(cumsum(exp(x)))`` along ``axis``, computed after subtracting
    the axis's maximum so large values do not overflow (an exclusive first entry is ``-inf``)."""
    top = _ops.stop_gradient(_ops.max(x, axis=axis, keepdims=True))
    return _ops.add(_ops.log(cumsum(_ops.exp(_ops.subtract(x, top)), axis=axis, exclusive=exclusive,
                                    reverse=reverse)), top)


# Lanczos's approximation of the gamma function (g = 7, nine terms), good to about 1e-15 in float64.
_LANCZOS_G = 7.0
_LANCZOS = (0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
            -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
            1.5056327351493116e-7)


def _float_input(x: Any) -> Any:
    return np.asarray(x, np.float32) if isinstance(x, (list, tuple, builtins.float, builtins.int)) else x


def _lanczos_lgamma(z: Any) -> Any:
    """log Gamma(z) for z >= 0.5 (float64 values)."""
    z = _ops.subtract(z, 1.0)
    total = _ops.add(_ops.zeros_like(z), _LANCZOS[0])
    for k, c in enumerate(_LANCZOS[1:], start=1):
        total = _ops.add(total, _ops.divide(c, _ops.add(z, builtins.float(k))))
    t = _ops.add(z, _LANCZOS_G + 0.5)
    return _ops.add(_ops.subtract(_ops.add(0.5 * np.log(2.0 * np.pi), _ops.multiply(_ops.add(z, 0.5), _ops.log(t))),
                                  t), _ops.log(total))


@symbolic
def _lgamma(x: Any) -> Any:
    # In float64, with the reflection formula below 0.5; both branches see safe inputs so neither the
    # values nor the gradients of the unused one turn into NaN.
    v = _ops.cast(x, "float64")
    low = _ops.less(v, 0.5)
    pole = _ops.logical_and(_ops.less_equal(v, 0.0), _ops.equal(v, _ops.floor(v)))   # 0, -1, -2, ...
    upper = _lanczos_lgamma(_ops.where(low, _ops.subtract(1.0, v), v))
    # The reflection's sin(pi v) is 0 at every integer: it reads 0.25 wherever its result is not used.
    vr = _ops.where(_ops.logical_and(low, _ops.logical_not(pole)), v, 0.25)
    reflected = _ops.subtract(_ops.log(_ops.divide(np.pi, _ops.abs(_ops.sin(_ops.multiply(np.pi, vr))))), upper)
    return _ops.cast(_ops.where(pole, np.inf, _ops.where(low, reflected, upper)), _ops.dtype(x))


def lgamma(x: Any, name: str | None = None) -> Any:
    """``tf.math.lgamma``: ``log |Gamma(x)|`` (``inf`` at 0 and the negative integers)."""
    return _lgamma(_float_input(x))


@symbolic
def _digamma(x: Any) -> Any:
    v = _ops.cast(x, "float64")
    low = _ops.less(v, 0.5)
    z = _ops.where(low, _ops.subtract(1.0, v), v)
    # Up by six with psi(z) = psi(z + 1) - 1 / z, then the asymptotic series, accurate for z + 6 >= 6.5.
    shift = _ops.zeros_like(z)
    for k in range(6):
        shift = _ops.add(shift, _ops.divide(1.0, _ops.add(z, builtins.float(k))))
    w = _ops.add(z, 6.0)
    inv2 = _ops.divide(1.0, _ops.square(w))
    series = _ops.add(_ops.zeros_like(w), -1.0 / 132)   # -1/12 w^-2 + 1/120 w^-4 - ... by Horner's rule
    for c in (1.0 / 240, -1.0 / 252, 1.0 / 120, -1.0 / 12):
        series = _ops.add(_ops.multiply(series, inv2), c)
    series = _ops.multiply(series, inv2)
    upper = _ops.subtract(_ops.add(_ops.subtract(_ops.log(w), _ops.divide(0.5, w)), series), shift)
    pole = _ops.logical_and(_ops.less_equal(v, 0.0), _ops.equal(v, _ops.floor(v)))   # NaN there, as TensorFlow
    vr = _ops.where(_ops.logical_and(low, _ops.logical_not(pole)), v, 0.25)   # as in _lgamma
    reflected = _ops.subtract(upper, _ops.divide(np.pi, _ops.tan(_ops.multiply(np.pi, vr))))
    return _ops.cast(_ops.where(pole, np.nan, _ops.where(low, reflected, upper)), _ops.dtype(x))


def digamma(x: Any, name: str | None = None) -> Any:
    """``tf.math.digamma``: the derivative of ``lgamma``."""
    return _digamma(_float_input(x))


def lbeta(x: Any, name: str | None = None) -> Any:
    """``tf.math.lbeta``: ``log |Beta(x)|`` over the last axis: ``sum(lgamma(x)) - lgamma(sum(x))``."""
    x = _float_input(x)
    return _ops.subtract(_ops.sum(lgamma(x), axis=-1), lgamma(_ops.sum(x, axis=-1)))
