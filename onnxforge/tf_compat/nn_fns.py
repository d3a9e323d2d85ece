"""``tf.nn``: activations with TensorFlow's parameter names (``features``, ``beta``, ``alpha``) and the
losses and helpers custom training loops call (``softmax_cross_entropy_with_logits``,
``sparse_softmax_cross_entropy_with_logits``, ``dropout``, ``embedding_lookup``) and the sub-pixel
``depth_to_space`` / ``space_to_depth``, and the convolution and pooling functions (``conv2d``, ``avg_pool2d``,
``max_pool2d`` and their N-D forms) in TensorFlow's spelling (``NHWC``, ``"SAME"``, ``[1, s, s, 1]`` strides),
built from ``keras.ops``.

The crossentropies are ``-sum(labels * log_softmax(logits))`` per row, unclipped and unreduced, as
TensorFlow's (a Keras loss clips probabilities and averages over the batch; these do neither).

Example:
    >>> import numpy as np
    >>> logits = np.array([[2.0, 0.0], [0.0, 2.0]], "float32")
    >>> [round(float(v), 4) for v in sparse_softmax_cross_entropy_with_logits(labels=[0, 0], logits=logits)]
    [0.1269, 2.1269]
"""
from __future__ import annotations

__all__ = ["nn"]

import builtins
import types
from typing import Any

import numpy as np

from .. import ops as _ops
from ..ops import random as _random
from . import nn_more as _nn_more
from .math_fns import l2_normalize, top_k
from .math_more import in_top_k, zero_fraction
from .shape_fns import space_to_batch_nd


def _features(fn: Any, name: str) -> Any:
    def op(features: Any, name: str | None = None) -> Any:
        return fn(features)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"``tf.nn.{name}(features, name=None)``."
    return op


def _as_array(x: Any) -> Any:
    return np.asarray(x) if isinstance(x, (list, tuple, builtins.int, builtins.float)) else x


def silu(features: Any, beta: Any = 1.0) -> Any:
    """``tf.nn.silu`` / ``swish``: ``features * sigmoid(beta * features)``."""
    if isinstance(beta, (builtins.int, builtins.float)) and beta == 1.0:
        return _ops.silu(features)
    return _ops.multiply(features, _ops.sigmoid(_ops.multiply(beta, features)))


def softmax_cross_entropy_with_logits(labels: Any, logits: Any, axis: int = -1, name: str | None = None) -> Any:
    """``tf.nn.softmax_cross_entropy_with_logits``: ``-sum(labels * log_softmax(logits), axis)``, one value
    per row; differentiable in both ``labels`` and ``logits``, as TensorFlow 2's."""
    logits = _as_array(logits)
    labels = _ops.cast(_as_array(labels), _ops.dtype(logits))
    return _ops.negative(_ops.sum(_ops.multiply(labels, _ops.log_softmax(logits, axis=axis)), axis=axis))


def sparse_softmax_cross_entropy_with_logits(labels: Any, logits: Any, name: str | None = None) -> Any:
    """``tf.nn.sparse_softmax_cross_entropy_with_logits``: ``-log_softmax(logits)[..., labels]``, with
    integer ``labels`` shaped like ``logits`` less its last axis."""
    logits = _as_array(logits)
    labels = _ops.cast(_as_array(labels), "int64")
    log_p = _ops.log_softmax(logits, axis=-1)
    picked = _ops.take_along_axis(log_p, _ops.expand_dims(labels, -1), axis=-1)
    return _ops.negative(_ops.squeeze(picked, axis=-1))


def sigmoid_cross_entropy_with_logits(labels: Any = None, logits: Any = None, name: str | None = None) -> Any:
    """``tf.nn.sigmoid_cross_entropy_with_logits``: ``max(x, 0) - x * z + log(1 + exp(-|x|))``, elementwise."""
    if labels is None or logits is None:
        raise ValueError("tf.nn.sigmoid_cross_entropy_with_logits needs both labels and logits.")
    return _ops.binary_crossentropy(_as_array(labels), _as_array(logits), from_logits=True)


def moments(x: Any, axes: Any, shift: Any = None, keepdims: builtins.bool = False, name: str | None = None) -> Any:
    """``tf.nn.moments``: ``(mean, variance)`` over ``axes`` (``shift`` is unused, as in TensorFlow 2)."""
    return _ops.moments(x, axes, keepdims=keepdims)


def dropout(x: Any, rate: Any, noise_shape: Any = None, seed: Any = None, name: str | None = None) -> Any:
    """``tf.nn.dropout``: zero each entry with probability ``rate``, scale the rest by ``1 / (1 - rate)``
    (always, whether training or not: ``tf.nn.dropout`` has no training flag)."""
    return _random.dropout(x, rate, noise_shape=noise_shape, seed=seed)


def embedding_lookup(params: Any, ids: Any, max_norm: Any = None, name: str | None = None) -> Any:
    """``tf.nn.embedding_lookup``: the rows ``params[ids]`` (``params`` one tensor, not a sharded list)."""
    if max_norm is not None:
        raise NotImplementedError(f"tf.nn.embedding_lookup with max_norm is not supported. Received: "
                                  f"max_norm={max_norm}")
    if isinstance(params, (list, tuple)):
        raise NotImplementedError("tf.nn.embedding_lookup over a list of sharded params is not supported; "
                                  "pass one tensor.")
    return _ops.take(params, _as_array(ids), axis=0)


def bias_add(value: Any, bias: Any, data_format: str | None = None, name: str | None = None) -> Any:
    """``tf.nn.bias_add``: ``bias`` added along the channel axis (last, or 1 for ``NC...`` formats)."""
    if data_format is not None and data_format.startswith("NC"):
        ndim = len(_ops.shape(value))
        bias = _ops.reshape(bias, (-1,) + (1,) * (ndim - 2))
    return _ops.add(value, bias)


def _tf_data_format(data_format: Any, fn: str) -> str:
    # TensorFlow spells the layout NHWC / NCHW where keras.ops says channels_last / channels_first.
    formats = {"NHWC": "channels_last", "NCHW": "channels_first"}
    if data_format not in formats:
        raise ValueError(f"tf.nn.{fn}: data_format must be 'NHWC' or 'NCHW'. Received: data_format={data_format!r}")
    return formats[data_format]


def depth_to_space(input: Any, block_size: int, data_format: str = "NHWC", name: str | None = None) -> Any:
    """``tf.nn.depth_to_space``: each pixel's ``block_size**2`` channel groups spread into a
    ``block_size x block_size`` block (the sub-pixel upscaling ESPCN-style super-resolution ends with)."""
    return _ops.depth_to_space(_as_array(input), block_size, data_format=_tf_data_format(data_format,
                                                                                             "depth_to_space"))


def space_to_depth(input: Any, block_size: int, data_format: str = "NHWC", name: str | None = None) -> Any:
    """``tf.nn.space_to_depth``: the inverse of ``depth_to_space``."""
    return _ops.space_to_depth(_as_array(input), block_size, data_format=_tf_data_format(data_format,
                                                                                             "space_to_depth"))


def _window(value: Any, n: int, data_format: str, fn: str, argument: str) -> tuple[int, ...]:
    """TensorFlow's ``strides`` / ``ksize`` / ``dilations``: one int, ``n`` ints, or ``n + 2`` with the batch
    and channel entries 1, as ``n`` spatial ints."""
    values = [builtins.int(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
    if len(values) == 1:
        return tuple(values * n)
    if len(values) == n:
        return tuple(values)
    if len(values) == n + 2:
        outer = (values[0], values[1]) if data_format.startswith("NC") else (values[0], values[-1])
        if outer == (1, 1):
            return tuple(values[2:] if data_format.startswith("NC") else values[1:-1])
    raise ValueError(f"tf.nn.{fn}: {argument} must be an int or a list of 1, {n} or {n + 2} ints (the batch and "
                     f"channel entries 1). Received: {argument}={value!r}")


def _padding(padding: Any, fn: str) -> str:
    if not isinstance(padding, str) or padding.upper() not in ("SAME", "VALID"):
        raise ValueError(f"tf.nn.{fn}: padding must be 'SAME' or 'VALID' (explicit paddings are not supported: pad "
                         f"with tf.pad first). Received: padding={padding!r}")
    return padding.lower()


def _nd_format(data_format: Any, n: int, fn: str) -> str:
    formats = {f"N{s}C": "channels_last" for s in ("W", "HW", "DHW")}
    formats.update({f"NC{s}": "channels_first" for s in ("W", "HW", "DHW")})
    if data_format is None:
        return "channels_last"
    if data_format not in formats or len(data_format) != n + 2:
        raise ValueError(f"tf.nn.{fn}: data_format must be channels-last (NHWC, ...) or channels-first (NCHW, ...) "
                         f"for {n} spatial dims. Received: data_format={data_format!r}")
    return formats[data_format]


def convolution(input: Any, filters: Any, strides: Any = None, padding: str = "VALID", data_format: Any = None,
                dilations: Any = None, name: str | None = None) -> Any:
    """``tf.nn.convolution``: N-D convolution of ``input`` with ``filters`` shaped ``(*spatial, in, out)``."""
    n = len(_ops.shape(filters)) - 2
    layout = data_format or ("NWC", "NHWC", "NDHWC")[n - 1]
    return _ops.conv(_as_array(input), _as_array(filters), strides=_window(1 if strides is None else strides, n,
                     layout, "convolution", "strides"), padding=_padding(padding, "convolution"),
                     data_format=_nd_format(layout, n, "convolution"),
                     dilation_rate=_window(1 if dilations is None else dilations, n, layout, "convolution",
                                           "dilations"))


def conv2d(input: Any, filters: Any, strides: Any, padding: Any, data_format: str = "NHWC", dilations: Any = None,
           name: str | None = None) -> Any:
    """``tf.nn.conv2d``: 2-D convolution, ``filters`` shaped ``(height, width, in, out)``.

    Example:
        >>> import numpy as np
        >>> edge = np.array([-1.0, 1.0, 0.0], np.float32).reshape(1, 3, 1, 1)
        >>> image = np.arange(4, dtype=np.float32).reshape(1, 1, 4, 1)
        >>> conv2d(image, edge, strides=[1, 1, 1, 1], padding="SAME").numpy().ravel().tolist()
        [0.0, 1.0, 1.0, 1.0]
    """
    return _conv_n(input, filters, strides, padding, data_format, dilations, 2, "conv2d")


def conv1d(input: Any, filters: Any, stride: Any, padding: Any, data_format: str = "NWC", dilations: Any = None,
           name: str | None = None) -> Any:
    """``tf.nn.conv1d``: 1-D convolution, ``filters`` shaped ``(width, in, out)``."""
    return _conv_n(input, filters, stride, padding, data_format, dilations, 1, "conv1d")


def conv3d(input: Any, filters: Any, strides: Any, padding: Any, data_format: str = "NDHWC", dilations: Any = None,
           name: str | None = None) -> Any:
    """``tf.nn.conv3d``: 3-D convolution, ``filters`` shaped ``(depth, height, width, in, out)``."""
    return _conv_n(input, filters, strides, padding, data_format, dilations, 3, "conv3d")


def _conv_n(input: Any, filters: Any, strides: Any, padding: Any, data_format: Any, dilations: Any, n: int,
            fn: str) -> Any:
    layout = _nd_format(data_format, n, fn)
    return _ops.conv(_as_array(input), _as_array(filters), strides=_window(strides, n, data_format, fn, "strides"),
                     padding=_padding(padding, fn), data_format=layout,
                     dilation_rate=_window(1 if dilations is None else dilations, n, data_format, fn, "dilations"))


def _pool_fn(kind: str, n: int | None) -> Any:
    default_layouts = {1: "NWC", 2: "NHWC", 3: "NDHWC"}
    fn = f"{kind}_pool{'' if n is None else f'{n}d'}"
    op = _ops.average_pool if kind == "avg" else _ops.max_pool

    def pool(input: Any, ksize: Any, strides: Any, padding: Any, data_format: Any = None,
             name: str | None = None) -> Any:
        x = _as_array(input)
        spatial = n if n is not None else len(_ops.shape(x)) - 2
        layout = data_format or default_layouts.get(spatial, "NHWC")
        return op(x, pool_size=_window(ksize, spatial, layout, fn, "ksize"),
                  strides=_window(strides, spatial, layout, fn, "strides"), padding=_padding(padding, fn),
                  data_format=_nd_format(layout, spatial, fn))

    pool.__name__ = pool.__qualname__ = fn
    pool.__doc__ = (f"``tf.nn.{fn}``: {'average' if kind == 'avg' else 'max'} pooling over ``ksize`` windows every "
                    "``strides`` (an average counts only the window's entries inside the input, as TensorFlow's).")
    return pool


nn = types.SimpleNamespace(
    relu=_features(_ops.relu, "relu"), relu6=_features(_ops.relu6, "relu6"), elu=_features(_ops.elu, "elu"),
    selu=_features(_ops.selu, "selu"), softplus=_features(_ops.softplus, "softplus"),
    softsign=_features(_ops.softsign, "softsign"),
    sigmoid=lambda x, name=None: _ops.sigmoid(x), tanh=lambda x, name=None: _ops.tanh(x),
    gelu=lambda features, approximate=False, name=None: _ops.gelu(features, approximate=approximate),
    silu=silu, swish=silu,
    leaky_relu=lambda features, alpha=0.2, name=None: _ops.leaky_relu(features, negative_slope=alpha),
    softmax=lambda logits, axis=None, name=None: _ops.softmax(logits, axis=-1 if axis is None else axis),
    log_softmax=lambda logits, axis=None, name=None: _ops.log_softmax(logits, axis=-1 if axis is None else axis),
    moments=moments, l2_normalize=l2_normalize, dropout=dropout, embedding_lookup=embedding_lookup,
    bias_add=bias_add, depth_to_space=depth_to_space, space_to_depth=space_to_depth,
    sigmoid_cross_entropy_with_logits=sigmoid_cross_entropy_with_logits,
    softmax_cross_entropy_with_logits=softmax_cross_entropy_with_logits,
    sparse_softmax_cross_entropy_with_logits=sparse_softmax_cross_entropy_with_logits,
    conv1d=conv1d, conv2d=conv2d, conv3d=conv3d, convolution=convolution,
    **{f"{kind}_pool{suffix}": _pool_fn(kind, n) for kind in ("avg", "max")
       for suffix, n in (("", None), ("1d", 1), ("2d", 2), ("3d", 3))},
    top_k=top_k, in_top_k=in_top_k, zero_fraction=zero_fraction, space_to_batch=space_to_batch_nd,
    **{name: getattr(_nn_more, name) for name in _nn_more.__all__},
)
