"""TensorFlow's window ops on NHWC images that return more than one value per pixel: ``tf.image.sobel_edges``
(vertical and horizontal Sobel responses) and ``tf.nn.max_pool_with_argmax`` (the maxima and where they
were, the indices SegNet-style decoders unpool with).

``sobel_edges`` pads by reflection and sums the eight shifted neighbours with the Sobel weights (slices and
adds, so run-time image sizes work and it differentiates). ``max_pool_with_argmax`` is ONNX ``MaxPool``
with its ``Indices`` output, whose NCHW flat index is converted to TensorFlow's NHWC one
(``(y * width + x) * channels + c``, plus ``batch * height * width * channels`` with
``include_batch_in_index``); the pooled values are the ordinary differentiable ``max_pool``.

Example:
    >>> import numpy as np
    >>> import onnxforge as tf
    >>> values, where = tf.nn.max_pool_with_argmax(np.arange(16.0).reshape(1, 4, 4, 1), 2, 2, "VALID")
    >>> values[0, :, :, 0].tolist(), where[0, :, :, 0].tolist()
    ([[5.0, 7.0], [13.0, 15.0]], [[5, 7], [13, 15]])
"""
from __future__ import annotations

__all__ = ["sobel_edges", "max_pool_with_argmax"]

from typing import Any

import numpy as np

from .. import ops as _ops
from ..ops import _conv_utils as cu
from ..ops._arrays_util import emit
from ..ops._util import as_value, builder_of, symbolic
from .errors import InvalidArgumentError

_SOBEL_Y = ((-1, -2, -1), (0, 0, 0), (1, 2, 1))


def sobel_edges(image: Any) -> Any:
    """``tf.image.sobel_edges``: ``[batch, h, w, d, 2]`` in ``image``'s float dtype, the vertical (``dy``) then horizontal
    (``dx``) Sobel responses of an NHWC ``image``, its border extended by reflection."""
    x = np.asarray(image, np.float32) if isinstance(image, (list, tuple)) else image
    if len(_ops.shape(x)) != 4:
        raise ValueError(f"tf.image.sobel_edges: image must be [batch, height, width, depth]. Received shape "
                         f"{tuple(_ops.shape(x))}")
    if _ops.dtype(x) not in ("float16", "bfloat16", "float32", "float64"):
        raise InvalidArgumentError(f"tf.image.sobel_edges: image must be a float tensor (half, bfloat16, float or "
                                   f"double, as TensorFlow's). Received dtype {_ops.dtype(x)}")
    padded = _ops.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="reflect")

    def window(i: int, j: int) -> Any:   # the neighbour at row offset i - 1, column offset j - 1
        return padded[:, i:(i - 2) or None, j:(j - 2) or None, :]

    dy = dx = None
    for i in range(3):
        for j in range(3):
            for weight, which in ((_SOBEL_Y[i][j], "y"), (_SOBEL_Y[j][i], "x")):
                if weight:
                    term = window(i, j) * float(weight)
                    if which == "y":
                        dy = term if dy is None else dy + term
                    else:
                        dx = term if dx is None else dx + term
    return _ops.stack([dy, dx], axis=-1)


def _window(value: Any, fn: str, argument: str) -> list[int]:
    values = [int(v) for v in np.asarray(value).reshape(-1).tolist()]
    if len(values) == 1:
        return values * 2
    if len(values) == 2:
        return values
    if len(values) == 4:
        return values[1:3]
    raise ValueError(f"tf.nn.{fn}: {argument} must be an int or a list of 1, 2 or 4 ints. Received: "
                     f"{argument}={value!r}")


@symbolic
def _argmax_indices(x: Any, kernel: list[int], strides: list[int], padding: str, include_batch: bool,
                    dtype: str) -> Any:
    b = builder_of(x)
    v = as_value(x, b)
    nchw = emit(b, "Transpose", [v], perm=[0, 3, 1, 2])
    attrs = cu.padding_attrs(list(v.shape[1:3]), kernel, strides, [1, 1], padding)
    flat = b.op("MaxPool", [nchw], kernel_shape=kernel, strides=strides, outputs=2, **attrs)[1]   # NCHW flat
    idx = emit(b, "Transpose", [flat], perm=[0, 2, 3, 1])                                          # (N, h, w, C)
    dims = b.op("Cast", [b.op("Shape", [v])], to=7)

    def dim(i: int) -> Any:
        return b.op("Slice", [dims, b.const(np.asarray([i], np.int64)), b.const(np.asarray([i + 1], np.int64))])

    plane = b.op("Mul", [dim(1), dim(2)])
    spatial = b.op("Mod", [idx, plane])                       # y * width + x within one image's channel plane
    channel_of = b.op("Div", [b.op("Mod", [idx, b.op("Mul", [plane, dim(3)])]), plane])
    out = b.op("Add", [b.op("Mul", [spatial, dim(3)]), channel_of])
    if include_batch:
        out = b.op("Add", [out, b.op("Mul", [b.op("Div", [idx, b.op("Mul", [plane, dim(3)])]),
                                             b.op("Mul", [plane, dim(3)])])])
    return b.op("Cast", [out], to=6 if dtype == "int32" else 7)


def max_pool_with_argmax(input: Any, ksize: Any, strides: Any, padding: str, data_format: str = "NHWC",  # noqa: A002
                         output_dtype: Any = "int64", include_batch_in_index: bool = False,
                         name: str | None = None) -> tuple[Any, Any]:
    """``tf.nn.max_pool_with_argmax``: ``(output, argmax)`` of a 2-D max pool over NHWC ``input``; ``argmax``
    holds each maximum's flat NHWC index (``output_dtype`` int64 or int32)."""
    if data_format != "NHWC":
        raise ValueError(f"tf.nn.max_pool_with_argmax supports data_format 'NHWC' only (as TensorFlow). Received: "
                         f"data_format={data_format!r}")
    if not isinstance(padding, str) or padding.upper() not in ("SAME", "VALID"):
        raise ValueError(f"tf.nn.max_pool_with_argmax: padding must be 'SAME' or 'VALID'. Received: {padding!r}")
    dtype = np.dtype(output_dtype).name
    if dtype not in ("int32", "int64"):
        raise TypeError(f"tf.nn.max_pool_with_argmax: output_dtype must be int32 or int64. Received: {dtype}")
    x = np.asarray(input, np.float32) if isinstance(input, (list, tuple)) else input
    if len(_ops.shape(x)) != 4:
        raise ValueError(f"tf.nn.max_pool_with_argmax: input must be 4-D NHWC. Received shape "
                         f"{tuple(_ops.shape(x))}")
    kernel, step = _window(ksize, "max_pool_with_argmax", "ksize"), _window(strides, "max_pool_with_argmax",
                                                                           "strides")
    pad = padding.lower()
    values = _ops.max_pool(x, kernel, step, pad, data_format="channels_last")
    return values, _argmax_indices(x, kernel, step, pad, bool(include_batch_in_index), dtype)
