"""More of ``tf.nn``: ``batch_normalization``, ``l2_loss``, ``weighted_cross_entropy_with_logits``, ``crelu``,
``local_response_normalization`` (``lrn``), ``depthwise_conv2d`` / ``separable_conv2d`` / ``conv2d_transpose``,
the custom-training-loop losses (``compute_average_loss``, ``scale_regularization_loss``, ``log_poisson_loss``)
and the moment helpers (``sufficient_statistics``, ``normalize_moments``, ``weighted_moments``), with TensorFlow's
argument names and defaults, built from ``keras.ops`` (so each runs on arrays, in a traced step and in a
functional model, and has gradients). ``nn_fns`` adds them to the ``tf.nn`` namespace.

Example:
    >>> import numpy as np
    >>> float(l2_loss(np.array([1.0, 2.0], np.float32)))
    2.5
    >>> crelu(np.array([[1.0, -2.0]], np.float32)).tolist()
    [[1.0, 0.0, 0.0, 2.0]]
"""
from __future__ import annotations

__all__ = ["batch_normalization", "l2_loss", "weighted_cross_entropy_with_logits", "crelu",
           "local_response_normalization", "lrn", "depthwise_conv2d", "conv2d_transpose", "separable_conv2d",
           "compute_average_loss", "scale_regularization_loss", "log_poisson_loss", "sufficient_statistics",
           "normalize_moments", "weighted_moments"]

from typing import Any

import numpy as np

from .. import ops as _ops
from ..ops._util import symbolic
from .errors import InvalidArgumentError


def _as_array(x: Any) -> Any:
    return np.asarray(x, np.float32) if isinstance(x, (list, tuple, float)) else x


def batch_normalization(x: Any, mean: Any, variance: Any, offset: Any, scale: Any, variance_epsilon: float,
                        name: str | None = None) -> Any:
    """``tf.nn.batch_normalization``: ``(x - mean) / sqrt(variance + variance_epsilon) * scale + offset``
    (``offset`` / ``scale`` may be ``None``), computed as TensorFlow does: one factor, then one shift."""
    return _batch_norm(_as_array(x), _as_array(mean), _as_array(variance), None if offset is None else
                       _as_array(offset), None if scale is None else _as_array(scale), float(variance_epsilon))


@symbolic
def _batch_norm(x: Any, mean: Any, variance: Any, offset: Any, scale: Any, epsilon: float) -> Any:
    inv = _ops.rsqrt(_ops.add(variance, epsilon))
    if scale is not None:
        inv = _ops.multiply(inv, scale)
    shift = _ops.negative(_ops.multiply(mean, inv))
    if offset is not None:
        shift = _ops.add(offset, shift)
    return _ops.add(_ops.multiply(x, _ops.cast(inv, _ops.dtype(x))), _ops.cast(shift, _ops.dtype(x)))


def l2_loss(t: Any, name: str | None = None) -> Any:
    """``tf.nn.l2_loss``: half the sum of the squares of ``t``'s elements (float tensors only, as in TensorFlow)."""
    t = _as_array(t)
    dtype = np.dtype(_ops.dtype(t))
    if dtype.kind != "f":
        raise InvalidArgumentError(f"tf.nn.l2_loss: t must be a float tensor (half, bfloat16, float, double). "
                                   f"Received: t of dtype {dtype.name}")
    return _half_square_sum(t)


@symbolic
def _half_square_sum(t: Any) -> Any:
    return _ops.multiply(_ops.sum(_ops.square(t)), _ops.cast(0.5, _ops.dtype(t)))


def weighted_cross_entropy_with_logits(labels: Any, logits: Any, pos_weight: Any, name: str | None = None) -> Any:
    """``tf.nn.weighted_cross_entropy_with_logits``: sigmoid cross-entropy with the positive term scaled by
    ``pos_weight``, in the form that stays finite for large ``|logits|``."""
    labels, logits = _as_array(labels), _as_array(logits)
    if tuple(_ops.shape(labels)) != tuple(_ops.shape(logits)):
        raise ValueError(f"tf.nn.weighted_cross_entropy_with_logits: logits and labels must have the same shape. "
                         f"Received: logits.shape={tuple(_ops.shape(logits))}, "
                         f"labels.shape={tuple(_ops.shape(labels))}")
    return _weighted_ce(labels, logits, pos_weight)


@symbolic
def _weighted_ce(labels: Any, logits: Any, pos_weight: Any) -> Any:
    log_weight = _ops.add(1.0, _ops.multiply(_ops.subtract(pos_weight, 1.0), labels))
    softplus_neg = _ops.add(_ops.log1p(_ops.exp(_ops.negative(_ops.abs(logits)))), _ops.relu(_ops.negative(logits)))
    return _ops.add(_ops.multiply(_ops.subtract(1.0, labels), logits), _ops.multiply(log_weight, softplus_neg))


def crelu(features: Any, name: str | None = None, axis: int = -1) -> Any:
    """``tf.nn.crelu``: ``relu(x)`` and ``relu(-x)`` concatenated along ``axis`` (twice the channels)."""
    return _crelu(_as_array(features), axis=axis)


@symbolic
def _crelu(x: Any, axis: int) -> Any:
    return _ops.concatenate([_ops.relu(x), _ops.relu(_ops.negative(x))], axis=axis)


def local_response_normalization(input: Any, depth_radius: int = 5, bias: float = 1.0, alpha: float = 1.0,  # noqa: A002
                                 beta: float = 0.5, name: str | None = None) -> Any:
    """``tf.nn.local_response_normalization`` (``tf.nn.lrn``): each channel of 4-D ``input`` divided by
    ``(bias + alpha * sum of squares over the 2 * depth_radius + 1 nearest channels) ** beta``."""
    x = _as_array(input)
    if len(_ops.shape(x)) != 4:
        raise InvalidArgumentError(f"tf.nn.local_response_normalization: input must be 4-dimensional. "
                                   f"Received: input.shape={tuple(_ops.shape(x))}")
    return _lrn(x, r=int(depth_radius), bias=float(bias), alpha=float(alpha), beta=float(beta))


@symbolic
def _lrn(x: Any, r: int, bias: float, alpha: float, beta: float) -> Any:
    channels = _ops.shape(x)[-1]
    squares = _ops.pad(_ops.square(x), [[0, 0], [0, 0], [0, 0], [r, r]])
    # The window sum as 2r + 1 shifted slices of the zero-padded squares (small radii: AlexNet's is 2 to 5).
    total = squares[..., 0:channels]
    for k in range(1, 2 * r + 1):
        total = _ops.add(total, squares[..., k:k + channels])
    return _ops.divide(x, _ops.power(_ops.add(bias, _ops.multiply(alpha, total)), beta))


lrn = local_response_normalization


def _nhwc(data_format: str, fn: str) -> str:
    if data_format not in ("NHWC", "NCHW"):
        raise ValueError(f"tf.nn.{fn}: data_format must be 'NHWC' or 'NCHW'. Received: data_format={data_format!r}")
    return "channels_last" if data_format == "NHWC" else "channels_first"


def _pair(value: Any, data_format: str, fn: str, argument: str) -> tuple[int, int]:
    values = [int(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
    if len(values) == 1:
        return values[0], values[0]
    if len(values) == 2:
        return values[0], values[1]
    if len(values) == 4:
        return (values[2], values[3]) if data_format == "NCHW" else (values[1], values[2])
    raise ValueError(f"tf.nn.{fn}: {argument} must be an int or a list of 1, 2 or 4 ints. "
                     f"Received: {argument}={value!r}")


def _padding(padding: Any, fn: str) -> str:
    if not isinstance(padding, str) or padding.upper() not in ("SAME", "VALID"):
        raise ValueError(f"tf.nn.{fn}: padding must be 'SAME' or 'VALID'. Received: padding={padding!r}")
    return padding.lower()


def depthwise_conv2d(input: Any, filter: Any, strides: Any, padding: Any, data_format: str | None = None,  # noqa: A002
                     dilations: Any = None, name: str | None = None) -> Any:
    """``tf.nn.depthwise_conv2d``: each input channel convolved with its own ``channel_multiplier`` filters,
    ``filter`` shaped ``(height, width, in_channels, channel_multiplier)``."""
    layout = data_format or "NHWC"
    return _ops.depthwise_conv(_as_array(input), _as_array(filter), strides=_pair(strides, layout, "depthwise_conv2d",
                               "strides"), padding=_padding(padding, "depthwise_conv2d"),
                               data_format=_nhwc(layout, "depthwise_conv2d"),
                               dilation_rate=_pair(1 if dilations is None else dilations, layout, "depthwise_conv2d",
                                                   "dilations"))


def conv2d_transpose(input: Any, filters: Any, output_shape: Any, strides: Any, padding: str = "SAME",  # noqa: A002
                     data_format: str = "NHWC", dilations: Any = None, name: str | None = None) -> Any:
    """``tf.nn.conv2d_transpose``: the gradient of ``conv2d`` with respect to its input, ``filters`` shaped
    ``(height, width, out_channels, in_channels)``; any ``output_shape`` TensorFlow accepts
    (``conv_transpose_fns``)."""
    from .conv_transpose_fns import conv_transpose

    _nhwc(data_format, "conv2d_transpose")
    return conv_transpose(input, filters, output_shape, strides, padding, data_format, dilations)


def separable_conv2d(input: Any, depthwise_filter: Any, pointwise_filter: Any, strides: Any, padding: Any,  # noqa: A002
                     data_format: str | None = None, dilations: Any = None, name: str | None = None) -> Any:
    """``tf.nn.separable_conv2d``: ``depthwise_conv2d`` then a 1x1 convolution with ``pointwise_filter``
    (``(1, 1, in_channels * channel_multiplier, out_channels)``)."""
    layout = data_format or "NHWC"
    depthwise = depthwise_conv2d(input, depthwise_filter, strides, padding, layout, dilations)
    return _ops.conv(depthwise, _as_array(pointwise_filter), strides=1, padding="valid",
                     data_format=_nhwc(layout, "separable_conv2d"))


def compute_average_loss(per_example_loss: Any, sample_weight: Any = None, global_batch_size: Any = None) -> Any:
    """``tf.nn.compute_average_loss``: the (weighted) per-example losses summed and divided by the global batch
    size, by default the first dimension of ``per_example_loss`` (one replica here, so it is the batch)."""
    loss = _as_array(per_example_loss)
    if sample_weight is not None:
        loss = _ops.multiply(loss, _ops.cast(_as_array(sample_weight), _ops.dtype(loss)))
    if global_batch_size is None:
        shape = _ops.shape(loss)
        global_batch_size = shape[0] if shape else 1
    elif isinstance(global_batch_size, (int, np.integer)) and global_batch_size < 0:
        raise ValueError(f"tf.nn.compute_average_loss: global_batch_size must be non-negative. "
                         f"Received: global_batch_size={global_batch_size}")
    return _average(loss, global_batch_size)


@symbolic
def _average(loss: Any, global_batch_size: Any) -> Any:
    total = _ops.sum(loss)
    # An empty batch averages to 0, as TensorFlow's divide_no_nan gives.
    count = _ops.cast(global_batch_size, _ops.dtype(total))
    return _ops.where(_ops.equal(count, 0), _ops.zeros_like(total), _ops.divide(total, _ops.maximum(count, 1)))


def scale_regularization_loss(regularization_loss: Any) -> Any:
    """``tf.nn.scale_regularization_loss``: the summed loss divided by the number of replicas (one here)."""
    return _ops.sum(_as_array(regularization_loss))


def log_poisson_loss(targets: Any, log_input: Any, compute_full_loss: bool = False, name: str | None = None) -> Any:
    """``tf.nn.log_poisson_loss``: ``exp(log_input) - log_input * targets``, plus Stirling's approximation of
    ``log(targets!)`` for targets above 1 when ``compute_full_loss``."""
    targets, log_input = _as_array(targets), _as_array(log_input)
    if tuple(_ops.shape(targets)) != tuple(_ops.shape(log_input)):
        raise ValueError(f"tf.nn.log_poisson_loss: log_input and targets must have the same shape. Received: "
                         f"log_input.shape={tuple(_ops.shape(log_input))}, targets.shape={tuple(_ops.shape(targets))}")
    return _log_poisson(targets, log_input, full=bool(compute_full_loss))


@symbolic
def _log_poisson(targets: Any, log_input: Any, full: bool) -> Any:
    result = _ops.subtract(_ops.exp(log_input), _ops.multiply(log_input, targets))
    if not full:
        return result
    safe = _ops.maximum(targets, 1.0)   # the approximation is only used (and only finite) above 1
    stirling = _ops.add(_ops.subtract(_ops.multiply(safe, _ops.log(safe)), safe),
                        _ops.multiply(0.5, _ops.log(_ops.multiply(2.0 * np.pi, safe))))
    return _ops.add(result, _ops.where(_ops.greater(targets, 1.0), stirling, _ops.zeros_like(targets)))


def sufficient_statistics(x: Any, axes: Any, shift: Any = None, keepdims: bool = False,
                          name: str | None = None) -> tuple[Any, Any, Any, Any]:
    """``tf.nn.sufficient_statistics``: ``(count, sum of x - shift, sum of squares of x - shift, shift)`` over
    ``axes`` (``count`` the number of elements reduced, in ``x``'s dtype)."""
    x = _as_array(x)
    axes = [int(a) for a in (axes if isinstance(axes, (list, tuple)) else [axes])]
    shape = _ops.shape(x)
    count = _ops.cast(np.prod([shape[a] for a in axes]), _ops.dtype(x))
    if shift is not None:   # returned as a tensor of x's dtype, as TensorFlow converts it
        shift = _ops.cast(_as_array(shift), _ops.dtype(x))
    centred = x if shift is None else _ops.subtract(x, shift)
    m_ss = _ops.sum(centred, axis=axes, keepdims=keepdims)
    v_ss = _ops.sum(_ops.square(centred), axis=axes, keepdims=keepdims)
    return count, m_ss, v_ss, shift


def normalize_moments(counts: Any, mean_ss: Any, variance_ss: Any, shift: Any, name: str | None = None
                      ) -> tuple[Any, Any]:
    """``tf.nn.normalize_moments``: ``(mean, variance)`` from ``sufficient_statistics``'s sums."""
    shifted_mean = _ops.divide(mean_ss, counts)
    variance = _ops.subtract(_ops.divide(variance_ss, counts), _ops.square(shifted_mean))
    return (shifted_mean if shift is None else _ops.add(shifted_mean, shift)), variance


def weighted_moments(x: Any, axes: Any, frequency_weights: Any, keepdims: bool = False,
                     name: str | None = None) -> tuple[Any, Any]:
    """``tf.nn.weighted_moments``: the mean and variance over ``axes`` with each element counted
    ``frequency_weights`` times (broadcast against ``x``; zero total weight gives 0)."""
    x, w = _as_array(x), _ops.cast(_as_array(frequency_weights), _ops.dtype(_as_array(x)))
    axes = [int(a) for a in (axes if isinstance(axes, (list, tuple)) else [axes])]
    return _weighted_moments(x, w, axes=axes, keepdims=bool(keepdims))


@symbolic
def _weighted_moments(x: Any, w: Any, axes: list[int], keepdims: bool) -> tuple[Any, Any]:
    total = _ops.sum(_ops.add(w, _ops.zeros_like(x)), axis=axes, keepdims=True)

    def safe_divide(a: Any) -> Any:   # TensorFlow's divide_no_nan
        return _ops.where(_ops.equal(total, 0), _ops.zeros_like(a), _ops.divide(a, _ops.where(
            _ops.equal(total, 0), _ops.ones_like(total), total)))

    mean = safe_divide(_ops.sum(_ops.multiply(w, x), axis=axes, keepdims=True))
    variance = safe_divide(_ops.sum(_ops.multiply(w, _ops.square(_ops.subtract(x, mean))), axis=axes, keepdims=True))
    if not keepdims:
        mean, variance = _ops.squeeze(mean, axis=axes), _ops.squeeze(variance, axis=axes)
    return mean, variance
