"""``tf.nn.conv_transpose`` / ``conv1d_transpose`` / ``conv3d_transpose`` / ``atrous_conv2d`` /
``atrous_conv2d_transpose``: TensorFlow's transposed convolutions with any ``output_shape`` it accepts.

TensorFlow defines a transposed convolution as the gradient of the convolution that maps a tensor of
``output_shape`` to ``input``, so one input size has several valid output sizes (``ceil(out / stride) == in``
for SAME). The padding that forward convolution used and the extra rows the output holds past it become
ONNX ``ConvTranspose``'s ``pads`` and ``output_padding``, so every size TensorFlow accepts is one standard
op (differentiable), eagerly, traced and in a model; a size TensorFlow refuses raises ``tf.errors.InvalidArgumentError`` here, as there.
The spatial sizes of ``input`` and ``output_shape`` must be known while tracing (the batch need not be).

Example:
    >>> import numpy as np
    >>> import onnxforge as tf
    >>> x, k = np.ones((1, 3, 1), "float32"), np.ones((2, 1, 1), "float32")   # kernel (width, out, in)
    >>> tf.nn.conv1d_transpose(x, k, [1, 5, 1], 2, "SAME")[0, :, 0].tolist()
    [1.0, 1.0, 1.0, 1.0, 1.0]
"""
from __future__ import annotations

__all__ = ["conv_transpose", "conv1d_transpose", "conv3d_transpose", "atrous_conv2d", "atrous_conv2d_transpose"]

from typing import Any

import numpy as np

from .. import ops as _ops
from ..ops._arrays_util import emit
from ..ops._util import builder_of, promote, symbolic
from .errors import InvalidArgumentError


def _spatial(value: Any, n: int, channels_last: bool, fn: str, argument: str) -> list[int]:
    """An int, or ``n`` ints, or ``n + 2`` ints over all axes (batch and channels entries dropped)."""
    values = [int(v) for v in (np.asarray(value).reshape(-1).tolist())]
    if len(values) == 1:
        return values * n
    if len(values) == n:
        return values
    if len(values) == n + 2:
        return values[1:-1] if channels_last else values[2:]
    raise ValueError(f"tf.nn.{fn}: {argument} must be an int or a list of {n} or {n + 2} ints. Received: "
                     f"{argument}={value!r}")


def _geometry(size: int, out: int, kernel: int, stride: int, dilation: int, padding: str) -> tuple[int, int, int]:
    """``(pad_begin, pad_end, output_padding)`` of one axis; ``ValueError`` for a size TF refuses."""
    span = (kernel - 1) * dilation + 1
    if padding == "SAME":
        fits = -(-out // stride) == size
        total = max((size - 1) * stride + span - out, 0)
        begin, end = total // 2, total - total // 2
    else:
        fits = out >= span and -(-(out - span + 1) // stride) == size
        begin = end = 0
    if not fits:
        raise ValueError(f"the output size {out} is not one a {padding} convolution with kernel {kernel}, stride "
                         f"{stride} and dilation {dilation} maps to the input size {size}")
    return begin, end, out - ((size - 1) * stride + span - begin - end)


@symbolic
def _transpose_conv(x: Any, k: Any, strides: list[int], dilations: list[int], pads: list[int],
                    output_padding: list[int], channels_last: bool) -> Any:
    b = builder_of(x, k)
    x, k = promote(b, x, k)
    n = len(strides)
    if channels_last:
        x = emit(b, "Transpose", [x], perm=[0, n + 1, *range(1, n + 1)])
    w = emit(b, "Transpose", [k], perm=[n + 1, n, *range(n)])   # TF (*k, out, in) -> ONNX (in, out, *k)
    y = emit(b, "ConvTranspose", [x, w], kernel_shape=list(k.shape[:n]), strides=strides, dilations=dilations,
             pads=pads, output_padding=output_padding)
    return emit(b, "Transpose", [y], perm=[0, *range(2, n + 2), 1]) if channels_last else y


def conv_transpose(input: Any, filters: Any, output_shape: Any, strides: Any, padding: str = "SAME",  # noqa: A002
                   data_format: str | None = None, dilations: Any = None, name: str | None = None) -> Any:
    """``tf.nn.conv_transpose``: the N-d transposed convolution (``filters``: ``(*kernel, out_channels,
    in_channels)``; ``data_format`` ``"N...C"`` by default, or ``"NC..."``) whose result has ``output_shape``."""
    x = np.asarray(input, np.float32) if isinstance(input, (list, tuple)) else input
    k = np.asarray(filters, np.float32) if isinstance(filters, (list, tuple)) else filters
    shape, k_shape = tuple(_ops.shape(x)), tuple(_ops.shape(k))
    n = len(shape) - 2
    fn = {1: "conv1d_transpose", 2: "conv2d_transpose", 3: "conv3d_transpose"}.get(n, "conv_transpose")
    if n < 1 or len(k_shape) != n + 2:
        raise ValueError(f"tf.nn.{fn}: input must have rank 3 to 5 and filters rank input's. Received shapes "
                         f"{list(shape)} and {list(k_shape)}")
    channels_last = data_format is None or not str(data_format).startswith("NC")
    if not isinstance(padding, str) or padding.upper() not in ("SAME", "VALID"):
        raise ValueError(f"tf.nn.{fn}: padding must be 'SAME' or 'VALID'. Received: padding={padding!r}")
    s = _spatial(strides, n, channels_last, fn, "strides")
    d = _spatial(1 if dilations is None else dilations, n, channels_last, fn, "dilations")
    entries = [int(v) if isinstance(v, (int, np.integer)) else None
               for v in (output_shape if isinstance(output_shape, (list, tuple)) else
                         np.asarray(output_shape).reshape(-1).tolist())]
    if len(entries) not in (n, n + 2):
        raise ValueError(f"tf.nn.{fn}: output_shape must have {n + 2} entries. Received: {entries}")
    out = entries if len(entries) == n else (entries[1:-1] if channels_last else entries[2:])
    size = shape[1:-1] if channels_last else shape[2:]
    channels = shape[-1] if channels_last else shape[1]
    if isinstance(channels, int) and channels != k_shape[-1]:
        raise ValueError(f"tf.nn.{fn}: input has {channels} channels and filters expect {k_shape[-1]} (their last "
                         f"axis). Received shapes {list(shape)} and {list(k_shape)}")
    if len(entries) == n + 2:
        want = entries[-1] if channels_last else entries[1]
        if want is not None and want != k_shape[-2]:
            raise ValueError(f"tf.nn.{fn}: output_shape's channels ({want}) must be filters' out_channels "
                             f"(axis -2: {k_shape[-2]}).")
    if any(not isinstance(v, int) for v in (*out, *size)):
        raise ValueError(f"tf.nn.{fn}: the spatial sizes of input and output_shape must be known while tracing. "
                         f"Received input shape {list(shape)}, output_shape={entries}")
    try:
        geometry = [_geometry(i, o, kk, ss, dd, padding.upper())
                    for i, o, kk, ss, dd in zip(size, out, k_shape[:n], s, d)]
    except ValueError as e:
        raise InvalidArgumentError(f"tf.nn.{fn}: {e}. Received: output_shape={entries}, input shape {list(shape)}") from None
    pads = [g[0] for g in geometry] + [g[1] for g in geometry]
    return _transpose_conv(x, k, s, d, pads, [g[2] for g in geometry], channels_last)


def conv1d_transpose(input: Any, filters: Any, output_shape: Any, strides: Any, padding: str = "SAME",  # noqa: A002
                     data_format: str = "NWC", dilations: Any = None, name: str | None = None) -> Any:
    """``tf.nn.conv1d_transpose``: ``filters`` ``(width, out_channels, in_channels)``, layout NWC or NCW."""
    return conv_transpose(input, filters, output_shape, strides, padding, data_format, dilations)


def conv3d_transpose(input: Any, filters: Any, output_shape: Any, strides: Any, padding: str = "SAME",  # noqa: A002
                     data_format: str = "NDHWC", dilations: Any = None, name: str | None = None) -> Any:
    """``tf.nn.conv3d_transpose``: ``filters`` ``(depth, height, width, out_channels, in_channels)``."""
    return conv_transpose(input, filters, output_shape, strides, padding, data_format, dilations)


def atrous_conv2d(value: Any, filters: Any, rate: int, padding: str, name: str | None = None) -> Any:
    """``tf.nn.atrous_conv2d``: ``conv2d`` of an NHWC ``value`` with ``filters`` dilated by ``rate``."""
    from .nn_fns import conv2d

    if int(rate) < 1:
        raise ValueError(f"tf.nn.atrous_conv2d: rate must be at least 1. Received: rate={rate!r}")
    return conv2d(value, filters, 1, padding, dilations=int(rate))


def atrous_conv2d_transpose(value: Any, filters: Any, output_shape: Any, rate: int, padding: str,
                            name: str | None = None) -> Any:
    """``tf.nn.atrous_conv2d_transpose``: the transpose of ``atrous_conv2d`` (stride 1, dilation ``rate``)."""
    if int(rate) < 1:
        raise ValueError(f"tf.nn.atrous_conv2d_transpose: rate must be at least 1. Received: rate={rate!r}")
    return conv_transpose(value, filters, output_shape, 1, padding, "NHWC", int(rate))
