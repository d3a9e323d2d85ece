"""Geometry ops of ``keras.ops.image`` that keep to the pixel grid or resample it separably: ``crop_images``,
``pad_images`` and ``scale_and_translate``, with Keras 3's arguments, checks and numbers.

``scale_and_translate`` is JAX's ``jax.image.scale_and_translate`` as Keras writes it for every backend: one
``(input, output)`` weight matrix per spatial axis, built in the graph from ``scale`` and ``translation`` (so
they may be tensors), applied by a ``MatMul`` along that axis.

Example:
    >>> import numpy as np
    >>> from onnxforge import ops
    >>> ops.image.pad_images(np.ones((2, 3, 3, 1), np.float32), 1, 1, target_height=6, target_width=6).shape
    TensorShape([2, 6, 6, 1])
    >>> ops.image.crop_images(np.ones((4, 5, 2), np.float32), 1, 1, target_height=2, target_width=3).shape
    TensorShape([2, 3, 2])
"""
from __future__ import annotations

__all__ = ["crop_images", "pad_images", "scale_and_translate"]

import math
from typing import Any

import numpy as np
import onnx

from ..backend_config import normalize_data_format
from ..graph import Value
from ..graph import emit as _ops
from ._util import as_value, builder_of, cast_value, promote, symbolic

# The module name OpCall configs record for these ops (keras.ops.image).
OPCALL_MODULE = "image"

_FLOAT = onnx.TensorProto.FLOAT


def _check_rank(x: Value) -> None:
    if x.shape is None or len(x.shape) not in (3, 4):
        raise ValueError("Invalid images rank: expected rank 3 (single image) or rank 4 (batch of images). "
                         f"Received: images.shape={_ops.static_shape(x) if x.shape is not None else None}")


def _two_of_three(names: tuple[str, str, str], values: tuple, verb: str) -> None:
    if list(values).count(None) != 1:
        received = ", ".join(f"{n}={v}" for n, v in zip(names, values))
        raise ValueError(f"Must specify exactly two of {', '.join(names)}. Received: {received}")
    for n, v in zip(names, values):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer))):
            raise TypeError(f"{verb}: `{n}` must be an int or None. Received: {n}={v!r}")
        if v is not None and v < 0:
            raise ValueError(f"{n} must be >= 0. Received: {n}={v}")


def _hw_axes(x: Value, data_format: str) -> tuple[int, int]:
    rank = len(x.shape)
    return (rank - 3, rank - 2) if data_format == "channels_last" else (rank - 2, rank - 1)


def _known(size: Any, name: str, verb: str, x: Value) -> int:
    if not isinstance(size, int):
        raise ValueError(f"{verb}: the image {name} must be known to infer the missing argument. Received: "
                         f"images.shape={_ops.static_shape(x)}")
    return size


@symbolic
def pad_images(images: Any, top_padding: int | None = None, left_padding: int | None = None,
               bottom_padding: int | None = None, right_padding: int | None = None,
               target_height: int | None = None, target_width: int | None = None,
               data_format: str | None = None) -> Value:
    """Pads images with zeros: two of ``top_padding``, ``bottom_padding``, ``target_height`` (and of
    ``left_padding``, ``right_padding``, ``target_width``) fix the third, as Keras 3's ``ops.image.pad_images``.

    Example:
        >>> import numpy as np
        >>> from onnxforge import ops
        >>> ops.image.pad_images(np.ones((2, 2, 1), np.float32), 1, 0, 0, 1)[..., 0].tolist()
        [[0.0, 0.0, 0.0], [1.0, 1.0, 0.0], [1.0, 1.0, 0.0]]
    """
    data_format = normalize_data_format(data_format)
    b = builder_of(images)
    x = as_value(images, b)
    _check_rank(x)
    _two_of_three(("top_padding", "bottom_padding", "target_height"), (top_padding, bottom_padding, target_height),
                  "pad_images")
    _two_of_three(("left_padding", "right_padding", "target_width"), (left_padding, right_padding, target_width),
                  "pad_images")
    ha, wa = _hw_axes(x, data_format)
    if top_padding is None or bottom_padding is None:
        height = _known(x.shape[ha], "height", "pad_images", x)
        top_padding = target_height - bottom_padding - height if top_padding is None else top_padding
        bottom_padding = target_height - top_padding - height if bottom_padding is None else bottom_padding
    if left_padding is None or right_padding is None:
        width = _known(x.shape[wa], "width", "pad_images", x)
        left_padding = target_width - right_padding - width if left_padding is None else left_padding
        right_padding = target_width - left_padding - width if right_padding is None else right_padding
    for name, value in (("top_padding", top_padding), ("left_padding", left_padding),
                        ("right_padding", right_padding), ("bottom_padding", bottom_padding)):
        if value < 0:
            raise ValueError(f"{name} must be >= 0. Received: {name}={value}")
    rank = len(x.shape)
    begins, ends = [0] * rank, [0] * rank
    begins[ha], ends[ha], begins[wa], ends[wa] = top_padding, bottom_padding, left_padding, right_padding
    shape = list(x.shape)
    for axis, extra in ((ha, top_padding + bottom_padding), (wa, left_padding + right_padding)):
        shape[axis] = shape[axis] + extra if isinstance(shape[axis], int) else None
    return b.op("Pad", [x, _ops.ints(b, begins + ends)], mode="constant", shape=tuple(shape))


@symbolic
def crop_images(images: Any, top_cropping: int | None = None, left_cropping: int | None = None,
                bottom_cropping: int | None = None, right_cropping: int | None = None,
                target_height: int | None = None, target_width: int | None = None,
                data_format: str | None = None) -> Value:
    """Crops images: two of ``top_cropping``, ``bottom_cropping``, ``target_height`` (and of ``left_cropping``,
    ``right_cropping``, ``target_width``) fix the third, as Keras 3's ``ops.image.crop_images``.

    Example:
        >>> import numpy as np
        >>> from onnxforge import ops
        >>> x = np.arange(16, dtype=np.float32).reshape(4, 4, 1)
        >>> ops.image.crop_images(x, 1, 1, 1, 1)[..., 0].tolist()
        [[5.0, 6.0], [9.0, 10.0]]
    """
    data_format = normalize_data_format(data_format)
    b = builder_of(images)
    x = as_value(images, b)
    _check_rank(x)
    _two_of_three(("top_cropping", "bottom_cropping", "target_height"),
                  (top_cropping, bottom_cropping, target_height), "crop_images")
    _two_of_three(("left_cropping", "right_cropping", "target_width"), (left_cropping, right_cropping, target_width),
                  "crop_images")
    ha, wa = _hw_axes(x, data_format)
    height, width = x.shape[ha], x.shape[wa]
    if top_cropping is None or target_height is None:
        height = _known(height, "height", "crop_images", x)
        top_cropping = height - target_height - bottom_cropping if top_cropping is None else top_cropping
        target_height = height - bottom_cropping - top_cropping if target_height is None else target_height
    if left_cropping is None or target_width is None:
        width = _known(width, "width", "crop_images", x)
        left_cropping = width - target_width - right_cropping if left_cropping is None else left_cropping
        target_width = width - right_cropping - left_cropping if target_width is None else target_width
    for name, value in (("top_cropping", top_cropping), ("target_height", target_height),
                        ("left_cropping", left_cropping), ("target_width", target_width)):
        if value < 0:
            raise ValueError(f"{name} must be >= 0. Received: {name}={value}")
    for name, start, size, total in (("height", top_cropping, target_height, height),
                                     ("width", left_cropping, target_width, width)):
        if isinstance(total, int) and start + size > total:
            raise ValueError(f"crop_images: the crop ({start} + {size}) exceeds the image {name} {total}. "
                             f"Received: images.shape={_ops.static_shape(x)}")
    shape = list(x.shape)
    shape[ha], shape[wa] = target_height, target_width
    return b.op("Slice", [x, _ops.ints(b, [top_cropping, left_cropping]),
                          _ops.ints(b, [top_cropping + target_height, left_cropping + target_width]),
                          _ops.ints(b, [ha, wa])], shape=tuple(shape))


_METHODS = {"linear": "linear", "bilinear": "linear", "trilinear": "linear", "triangle": "linear",
            "cubic": "cubic", "bicubic": "cubic", "tricubic": "cubic", "lanczos3": "lanczos3", "lanczos5": "lanczos5"}


def _kernel(method: str, x: Value) -> Value:
    """Keras's resampling kernels on distances ``x >= 0``."""
    b = x.builder
    zero = x * 0.0
    if method == "linear":
        return b.op("Max", [1.0 - x, zero])
    if method == "cubic":
        near = ((x * 1.5 - 2.5) * x) * x + 1.0
        far = ((x * -0.5 + 2.5) * x - 4.0) * x + 2.0
        out = b.op("Where", [b.op("GreaterOrEqual", [x, 1.0]), far, near], dtype=x.dtype)
        return b.op("Where", [b.op("GreaterOrEqual", [x, 2.0]), zero, out], dtype=x.dtype)
    radius = 3.0 if method == "lanczos3" else 5.0
    y = b.op("Sin", [x * math.pi]) * b.op("Sin", [x * (math.pi / radius)]) * radius
    denominator = b.op("Where", [b.op("Equal", [x, 0.0]), zero + 1.0, x * x * (math.pi ** 2)], dtype=x.dtype)
    out = b.op("Where", [b.op("Greater", [x, 1e-3]), y / denominator, zero + 1.0], dtype=x.dtype)
    return b.op("Where", [b.op("Greater", [x, radius]), zero, out], dtype=x.dtype)


def _weights(m: int, n: int, scale: Value, translation: Value, method: str, antialias: bool) -> Value:
    """The ``(m, n)`` matrix taking an axis of ``m`` input samples to ``n`` output samples."""
    b = scale.builder
    inv = 1.0 / scale
    sample = (b.const(np.arange(n, dtype=np.float32) + 0.5, scale.dtype) * inv - translation * inv - 0.5)
    distance = b.op("Abs", [b.op("Unsqueeze", [sample, _ops.ints(b, [0])]) -
                            b.const(np.arange(m, dtype=np.float32).reshape(m, 1), scale.dtype)])
    if antialias:
        distance = distance / b.op("Max", [inv, inv * 0.0 + 1.0])
    w = _kernel(method, distance)
    total = _ops.reduce("ReduceSum", w, [0], True)
    safe = b.op("Where", [b.op("Equal", [total, 0.0]), total * 0.0 + 1.0, total], dtype=total.dtype)
    big = b.op("Greater", [b.op("Abs", [total]), 1000.0 * float(np.finfo(np.float32).eps)])
    w = b.op("Where", [big, w / safe, w * 0.0], dtype=w.dtype)
    inside = b.op("And", [b.op("GreaterOrEqual", [sample, -0.5]), b.op("LessOrEqual", [sample, float(m) - 0.5])])
    return b.op("Where", [b.op("Unsqueeze", [inside, _ops.ints(b, [0])]), w, w * 0.0], dtype=w.dtype,
                shape=(m, n))


@symbolic
def scale_and_translate(images: Any, output_shape: Any, scale: Any, translation: Any, spatial_dims: Any,
                        method: str, antialias: bool = True) -> Value:
    """Resamples ``images`` to ``output_shape``: an input point ``x`` of axis ``spatial_dims[i]`` lands at
    ``x * scale[i] + translation[i]`` (Keras 3's ``ops.image.scale_and_translate``; ``method`` one of
    ``linear`` / ``cubic`` / ``lanczos3`` / ``lanczos5`` and their aliases).

    Example:
        >>> import numpy as np
        >>> from onnxforge import ops
        >>> x = np.arange(4, dtype=np.float32).reshape(1, 4)
        >>> ops.image.scale_and_translate(x, (1, 8), np.float32([2.0]), np.float32([0.0]), (1,), "linear").shape
        TensorShape([1, 8])
    """
    if method not in _METHODS:
        raise ValueError(f"Invalid value for argument `method`. Expected of one {sorted(_METHODS)}. Received: "
                         f"method={method}")
    b = builder_of(images, scale, translation)
    x = as_value(images, b)
    s, t = promote(b, scale, translation)
    if not s.is_float:
        s, t = cast_value(s, _FLOAT), cast_value(t, _FLOAT)
    dims = [int(d) for d in spatial_dims]
    out_dims = [int(d) for d in output_shape]
    shape = _ops.static_shape(x)
    if len(out_dims) != len(shape):
        raise ValueError(f"scale_and_translate: `output_shape` must have one entry per axis of images "
                         f"{shape}. Received: output_shape={tuple(output_shape)}")
    rounding = not x.is_float
    out = cast_value(x, _FLOAT) if rounding else x
    rank = len(shape)
    for i, d in enumerate(dims):
        d = d % rank
        if shape[d] is None:
            raise ValueError(f"scale_and_translate: spatial axis {d} of images must be known. Received: "
                             f"images.shape={shape}")
        si = b.op("Gather", [s, b.const(np.asarray(i, np.int64))], axis=0, shape=())
        ti = b.op("Gather", [t, b.const(np.asarray(i, np.int64))], axis=0, shape=())
        w = cast_value(_weights(shape[d], out_dims[d], si, ti, _METHODS[method], bool(antialias)), out.dtype)
        perm = [a for a in range(rank) if a != d] + [d]
        out = _ops.transpose(_ops.transpose(out, perm) @ w, _ops.inverse_perm(perm))
    if rounding:
        low = cast_value(_ops.reduce("ReduceMin", x, list(range(rank)), False), _FLOAT)
        high = cast_value(_ops.reduce("ReduceMax", x, list(range(rank)), False), _FLOAT)
        out = cast_value(b.op("Min", [b.op("Max", [b.op("Round", [out]), low]), high]), x.dtype)
    final = list(shape)
    for d in dims:
        final[d % rank] = out_dims[d % rank]
    return _ops.set_shape(out, tuple(final))
