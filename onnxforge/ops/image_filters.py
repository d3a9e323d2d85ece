"""Colour and filter ops of ``keras.ops.image``: ``rgb_to_hsv``, ``hsv_to_rgb``, ``gaussian_blur``,
``sobel_edges`` and ``ssim``, with the numbers of Keras 3 on its TensorFlow backend.

Every filter runs one channel at a time: the channels are folded into the batch (``(N * C, 1, H, W)``) and a
single-channel ``Conv`` slides over them, so the channel count may be unknown when the graph is built and the
kernel may be a graph value (the Gaussian of a sigma drawn at run time, as ``RandomElasticTransform`` needs).

Example:
    >>> import numpy as np
    >>> from onnxforge import ops
    >>> ops.image.gaussian_blur(np.ones((1, 5, 5, 2), np.float32)).shape
    TensorShape([1, 5, 5, 2])
    >>> float(ops.image.ssim(np.ones((8, 8, 1), np.float32), np.ones((8, 8, 1), np.float32), filter_size=3))
    1.0
"""
from __future__ import annotations

__all__ = ["rgb_to_hsv", "hsv_to_rgb", "gaussian_blur", "sobel_edges", "ssim", "gaussian_kernel_1d", "filter_planes"]

from typing import Any

import numpy as np
import onnx

from ..backend_config import normalize_data_format
from ..graph import Value, np_dtype
from ..graph import emit as _ops
from ..graph.size_limits import check_constant
from . import _color_kernels as ck
from ._util import as_value, builder_of, cast_value, symbolic

# The module name OpCall configs record for these ops (keras.ops.image).
OPCALL_MODULE = "image"

_FLOAT = onnx.TensorProto.FLOAT


def _images(images: Any, name: str = "images", ranks: tuple[int, ...] = (3, 4)) -> Value:
    b = builder_of(images)
    x = as_value(images, b)
    if x.shape is None or len(x.shape) not in ranks:
        wanted = "rank 3 (single image) or rank 4 (batch of images)" if ranks == (3, 4) else "rank 4 (batch of images)"
        raise ValueError(f"Invalid {name} rank: expected {wanted}. Received input with shape: "
                         f"{name}.shape={_ops.static_shape(x) if x.shape is not None else None}")
    return x


def _batched(x: Value) -> tuple[Value, bool]:
    if len(x.shape) == 4:
        return x, False
    b = x.builder
    return b.op("Unsqueeze", [x, _ops.ints(b, [0])], shape=(1, *x.shape)), True


def _unbatch(y: Value, unbatched: bool) -> Value:
    if not unbatched:
        return y
    b = y.builder
    return b.op("Squeeze", [y, _ops.ints(b, [0])], shape=tuple(y.shape[1:]) if y.shape is not None else None)


def _hsv_checks(x: Value, data_format: str) -> None:
    if not x.is_float:
        raise ValueError(f"Invalid images dtype: expected float dtype. Received: images.dtype={np_dtype(x.dtype).name}")
    channels = x.shape[-1 if data_format == "channels_last" else -3]
    if isinstance(channels, int) and channels != 3:
        raise ValueError(f"Input images must have 3 channels, but received images with {channels} channels.")


@symbolic
def rgb_to_hsv(images: Any, data_format: str | None = None) -> Value:
    """Converts RGB images (floats in ``[0, 1]``) to HSV, each channel in ``[0, 1]``, as Keras 3's
    ``ops.image.rgb_to_hsv`` (one image or a batch).

    Example:
        >>> import numpy as np
        >>> from onnxforge import ops
        >>> ops.image.rgb_to_hsv(np.array([[[1.0, 0.0, 0.0]]], np.float32)).tolist()
        [[[0.0, 1.0, 1.0]]]
    """
    data_format = normalize_data_format(data_format)
    x = _images(images)
    _hsv_checks(x, data_format)
    x, unbatched = _batched(x)
    return _unbatch(ck.rgb_to_hsv(x, data_format), unbatched)


@symbolic
def hsv_to_rgb(images: Any, data_format: str | None = None) -> Value:
    """Converts HSV images (each channel in ``[0, 1]``) back to RGB, as Keras 3's ``ops.image.hsv_to_rgb``.

    Example:
        >>> import numpy as np
        >>> from onnxforge import ops
        >>> ops.image.hsv_to_rgb(np.array([[[0.0, 1.0, 1.0]]], np.float32)).tolist()
        [[[1.0, 0.0, 0.0]]]
    """
    data_format = normalize_data_format(data_format)
    x = _images(images)
    _hsv_checks(x, data_format)
    x, unbatched = _batched(x)
    return _unbatch(ck.hsv_to_rgb(x, data_format), unbatched)


def gaussian_kernel_1d(sigma: Value, size: int, support: Value | None = None) -> Value:
    """A normalised Gaussian over the ``size`` offsets ``i - (size - 1) / 2``, shaped ``(size,)``, for a scalar
    graph ``sigma``; offsets beyond ``support`` (a scalar, when given) weigh nothing, so a kernel whose size
    is only known at run time sits, zero padded, inside a static one."""
    b = sigma.builder
    check_constant((size,), 4, "a Gaussian kernel")   # before numpy allocates its offsets
    offsets = b.const(np.arange(size, dtype=np.float32) - np.float32((size - 1) / 2), sigma.dtype)
    scaled = offsets / b.op("Reshape", [sigma, _ops.ints(b, [1])])
    kernel = b.op("Exp", [scaled * scaled * -0.5])
    if support is not None:
        inside = b.op("LessOrEqual", [b.op("Abs", [offsets]), b.op("Reshape", [support, _ops.ints(b, [1])])])
        kernel = b.op("Where", [inside, kernel, offsets * 0.0], dtype=kernel.dtype)
    return kernel / _ops.reduce("ReduceSum", kernel, [0], True)


def filter_planes(x: Value, weight: Value, pads: list[int], data_format: str, mode: str = "constant") -> Value:
    """Correlates every channel of the batch ``x`` (rank 4) with each of the ``(K, 1, kh, kw)`` kernels of
    ``weight``: ``(N, H', W', C, K)`` for channels-last input, ``(N, C, H', W', K)`` for channels-first.
    ``pads`` are ONNX's ``[top, left, bottom, right]``, zeros or (``mode="reflect"``) mirrored pixels."""
    b = x.builder
    last = data_format == "channels_last"
    nchw = _ops.transpose(x, (0, 3, 1, 2)) if last else x
    shape = b.op("Shape", [nchw])
    planes = b.op("Reshape", [nchw, b.op("Concat", [_ops.ints(b, [-1, 1]), b.op("Slice", [
        shape, _ops.ints(b, [2]), _ops.ints(b, [4])])], axis=0)])
    if mode != "constant" and any(pads):
        planes = b.op("Pad", [planes, _ops.ints(b, [0, 0, pads[0], pads[1], 0, 0, pads[2], pads[3]])], mode=mode)
        pads = [0, 0, 0, 0]
    if weight.dtype != planes.dtype:
        weight = cast_value(weight, planes.dtype)
    out = b.op("Conv", [planes, weight], pads=pads)    # (N * C, K, H', W')
    out_shape = b.op("Concat", [b.op("Slice", [shape, _ops.ints(b, [0]), _ops.ints(b, [2])]),
                                b.op("Slice", [b.op("Shape", [out]), _ops.ints(b, [1]), _ops.ints(b, [4])])], axis=0)
    out = b.op("Reshape", [out, out_shape])            # (N, C, K, H', W')
    return _ops.transpose(out, (0, 3, 4, 1, 2) if last else (0, 1, 3, 4, 2))


def _pair(value: Any, name: str, kind: type) -> tuple:
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(values) != 2:
        raise ValueError(f"gaussian_blur(): `{name}` must be a number or a tuple of two. Received: {name}={value!r}")
    return values


@symbolic
def gaussian_blur(images: Any, kernel_size: Any = (3, 3), sigma: Any = (1.0, 1.0),
                  data_format: str | None = None) -> Value:
    """Blurs images with a Gaussian kernel, zero padded to keep their size, as Keras 3's
    ``ops.image.gaussian_blur`` on TensorFlow (``sigma[0]`` spreads along the width, ``sigma[1]`` along the
    height, the order of Keras's ``tensordot``; a non-square ``kernel_size`` is laid out as Keras lays it).

    Example:
        >>> import numpy as np
        >>> from onnxforge import ops
        >>> x = np.zeros((1, 5, 5, 1), np.float32); x[0, 2, 2, 0] = 1.0
        >>> round(float(ops.image.gaussian_blur(x, (3, 3), (1.0, 1.0)).sum()), 4)
        1.0
    """
    data_format = normalize_data_format(data_format)
    x = _images(images)
    if not x.is_float:
        x = cast_value(x, _FLOAT)
    sizes = _pair(kernel_size, "kernel_size", int)
    if any(isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 for k in sizes):
        raise ValueError(f"gaussian_blur(): `kernel_size` must be positive integers. Received: "
                         f"kernel_size={kernel_size!r}")
    kh, kw = int(sizes[0]), int(sizes[1])
    sx, sy = (as_value(s, x.builder, like=x) for s in _pair(sigma, "sigma", float))
    b = x.builder
    # Keras forms outer(g(kernel_size[1], sigma[1]), g(kernel_size[0], sigma[0])) and reads it as (kh, kw).
    outer = b.op("Mul", [b.op("Reshape", [gaussian_kernel_1d(sy, kw), _ops.ints(b, [kw, 1])]),
                         b.op("Reshape", [gaussian_kernel_1d(sx, kh), _ops.ints(b, [1, kh])])])
    weight = b.op("Reshape", [outer, _ops.ints(b, [1, 1, kh, kw])], shape=(1, 1, kh, kw))
    x, unbatched = _batched(x)
    pads = [(kh - 1) // 2, (kw - 1) // 2, kh // 2, kw // 2]   # TensorFlow's SAME: the odd pixel goes after
    y = filter_planes(x, weight, pads, data_format)
    y = b.op("Squeeze", [y, _ops.ints(b, [4])])
    return _unbatch(_ops.set_shape(y, x.shape), unbatched)


_SOBEL = np.asarray([[[-1, -2, -1], [0, 0, 0], [1, 2, 1]], [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]], np.float32)


@symbolic
def sobel_edges(images: Any, data_format: str | None = None) -> Value:
    """The Sobel gradients ``[dy, dx]`` of every channel, on reflect-padded images, as Keras 3's
    ``ops.image.sobel_edges`` (TensorFlow's ``tf.image.sobel_edges``): ``(N, H, W, C, 2)`` (channels-last) or
    ``(N, C, H, W, 2)``.

    Example:
        >>> import numpy as np
        >>> from onnxforge import ops
        >>> ops.image.sobel_edges(np.ones((1, 8, 8, 1), np.float32)).shape
        TensorShape([1, 8, 8, 1, 2])
    """
    data_format = normalize_data_format(data_format)
    x = _images(images, ranks=(4,))
    if not x.is_float:
        x = cast_value(x, _FLOAT)
    b = x.builder
    weight = b.const(_SOBEL.reshape(2, 1, 3, 3), x.dtype)
    y = filter_planes(x, weight, [1, 1, 1, 1], data_format, mode="reflect")
    return _ops.set_shape(y, (*x.shape, 2))


def _ssim_kernel(size: int, sigma: float) -> np.ndarray:
    """Keras's ``_create_gaussian_kernel`` in float32: ``exp(-x^2 / (2 sigma^2))``, normalised, outer product."""
    offsets = np.arange(size, dtype=np.float32) - np.float32((size - 1) / 2.0)
    g = np.exp(-(offsets ** 2) / np.float32(2.0 * sigma ** 2)).astype(np.float32)
    g = g / g.sum(dtype=np.float32)
    return np.outer(g, g).astype(np.float32)


@symbolic
def ssim(image1: Any, image2: Any, max_val: float = 1.0, filter_size: int = 11, filter_sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03, data_format: str | None = None) -> Value:
    """The structural similarity of two images (or two batches: one value per image pair), averaged over the
    valid positions of a ``filter_size`` Gaussian window and over the channels, as Keras 3's ``ops.image.ssim``.

    Example:
        >>> import numpy as np
        >>> from onnxforge import ops
        >>> a = np.random.default_rng(0).random((2, 16, 16, 3)).astype(np.float32)
        >>> ops.image.ssim(a, a, filter_size=7).round(5).tolist()
        [1.0, 1.0]
    """
    data_format = normalize_data_format(data_format)
    x1, x2 = _images(image1, "image1"), _images(image2, "image2")
    if isinstance(filter_size, bool) or not isinstance(filter_size, (int, np.integer)) or filter_size < 1:
        raise ValueError(f"ssim(): `filter_size` must be a positive integer. Received: filter_size={filter_size!r}")
    b = x1.builder
    original = x1.dtype
    compute = x1.dtype if x1.is_float else _FLOAT
    x1, x2 = cast_value(x1, compute), cast_value(x2, compute)
    (x1, unbatched), (x2, _) = _batched(x1), _batched(x2)
    weight = b.const(_ssim_kernel(int(filter_size), float(filter_sigma)).reshape(1, 1, filter_size, filter_size),
                     compute)

    def mean(v: Value) -> Value:     # (N, H', W', C, 1) or (N, C, H', W', 1)
        return filter_planes(v, weight, [0, 0, 0, 0], data_format)

    c1, c2 = float((k1 * max_val) ** 2), float((k2 * max_val) ** 2)
    mu1, mu2 = mean(x1), mean(x2)
    mu1_sq, mu2_sq, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    var1, var2, cov = mean(x1 * x1) - mu1_sq, mean(x2 * x2) - mu2_sq, mean(x1 * x2) - mu12
    ssim_map = ((mu12 * 2.0 + c1) * (cov * 2.0 + c2)) / ((mu1_sq + mu2_sq + c1) * (var1 + var2 + c2))
    spatial = [1, 2, 4] if data_format == "channels_last" else [2, 3, 4]
    per_channel = _ops.reduce("ReduceMean", ssim_map, spatial, False)
    out = _ops.reduce("ReduceMean", per_channel, [1], False)
    out = _ops.set_shape(out, (x1.shape[0],))
    return _unbatch(cast_value(out, original), unbatched)
