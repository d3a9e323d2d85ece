"""Warping ops of ``keras.ops.image``: ``map_coordinates``, ``perspective_transform`` and ``elastic_transform``,
with the numbers of Keras 3 on its TensorFlow backend.

``map_coordinates`` reads the input at the integer neighbours of each coordinate (rounded for ``order=0``,
floor and floor + 1 weighted for ``order=1``), each index first moved into range by the fill mode exactly as
Keras's TensorFlow backend moves it (its ``reflect`` and ``mirror`` fold ``|index|``), then one flat ``Gather``
per neighbour combination. ``elastic_transform`` blurs Gaussian noise into a displacement field and samples
every image at the displaced grid the same way. ``perspective_transform`` solves the homography taking the
end points to the start points in closed form (the unit square's map to each quadrilateral, one composed with
the other's adjugate, in float64), then resamples like ``affine_transform`` with the projective division.

Example:
    >>> import numpy as np
    >>> from onnxforge import ops
    >>> x = np.arange(12, dtype=np.float32).reshape(3, 4)
    >>> ops.image.map_coordinates(x, np.float32([[0.5, 2.0], [1.0, 3.0]]), order=1).tolist()
    [3.0, 11.0]
"""
from __future__ import annotations

__all__ = ["map_coordinates", "perspective_transform", "elastic_transform", "homography", "elastic_warp"]

import itertools
from typing import Any

import numpy as np
import onnx

from ..backend_config import normalize_data_format
from ..graph import Value, np_dtype
from ..graph import emit as _ops
from ._image_kernels import affine_transform as _affine
from ._util import as_value, builder_of, cast_value, symbolic
from .image_filters import filter_planes, gaussian_kernel_1d

# The module name OpCall configs record for these ops (keras.ops.image).
OPCALL_MODULE = "image"

_FLOAT, _DOUBLE, _I64 = onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.INT64
_FILL_MODES = ("constant", "nearest", "wrap", "mirror", "reflect")


def _i(b, value: int) -> Value:
    return b.const(np.asarray(value, np.int64))


def _neighbours(coordinate: Value, order: int) -> list[tuple[Value, Value | None]]:
    """``(index, weight)`` pairs of one axis; a weight of ``None`` is 1."""
    b = coordinate.builder
    if order == 0:
        rounded = coordinate if not coordinate.is_float else b.op("Round", [coordinate])
        return [(cast_value(rounded, _I64), None)]
    lower = b.op("Floor", [coordinate])
    upper_weight = coordinate - lower
    index = cast_value(lower, _I64)
    return [(index, 1.0 - upper_weight), (index + _i(b, 1), upper_weight)]


def _fix(index: Value, size: int, fill_mode: str) -> tuple[Value, Value | None]:
    """Keras's TensorFlow ``process_coordinates``: the in-range index, and (constant mode) whether it was valid."""
    b = index.builder
    last = _i(b, size - 1)
    if fill_mode == "constant":
        valid = b.op("And", [b.op("GreaterOrEqual", [index, _i(b, 0)]), b.op("Less", [index, _i(b, size)])])
        return b.op("Clip", [index, _i(b, 0), last]), valid
    if fill_mode == "nearest":
        return b.op("Clip", [index, _i(b, 0), last]), None
    if fill_mode == "wrap":
        return b.op("Mod", [index, _i(b, size)]), None
    folded = b.op("Mod", [b.op("Abs", [index]), _i(b, 2 * size)])
    under = b.op("Less", [folded, _i(b, size)])
    moved = b.op("Where", [under, folded, _i(b, 2 * size) - folded], dtype=_I64)
    if fill_mode == "reflect":
        moved = b.op("Where", [under, moved, moved - _i(b, 1)], dtype=_I64)
    # Keras's mirror can land one past the end (2 * size - size); TensorFlow would refuse that gather.
    return b.op("Clip", [moved, _i(b, 0), last]), None


def _interpolate(gather, coordinates: list[Value], sizes: list[int], order: int, fill_mode: str,
                 fill: Value) -> Value:
    """Sum over neighbour combinations of weight * value, ``gather(indices)`` reading the values."""
    b = fill.builder
    axes = [[(*_fix(index, size, fill_mode), weight) for index, weight in _neighbours(c, order)]
            for c, size in zip(coordinates, sizes)]
    total = None
    for combination in itertools.product(*axes):
        values = gather([index for index, _, _ in combination])
        valid = [v for _, v, _ in combination if v is not None]
        if valid:
            every = valid[0]
            for v in valid[1:]:
                every = b.op("And", [every, v])
            values = b.op("Where", [every, values, fill], dtype=values.dtype)
        weights = [w for _, _, w in combination if w is not None]
        term = values
        for w in weights:
            term = term * w
        total = term if total is None else total + term
    return total


def _fill(b, fill_value: Any, like: int, compute: int) -> Value:
    """Keras casts ``fill_value`` to the input's type, then to the computation's."""
    return b.const(np.asarray(fill_value).astype(np_dtype(like)).astype(np_dtype(compute)))


@symbolic
def map_coordinates(inputs: Any, coordinates: Any, order: int, fill_mode: str = "constant",
                    fill_value: float = 0) -> Value:
    """Samples ``inputs`` (any rank, known shape) at ``coordinates`` (``(rank, *out)``): nearest neighbour
    (``order=0``) or linear (``order=1``), points outside handled by ``fill_mode`` (``constant``, ``nearest``,
    ``wrap``, ``mirror``, ``reflect``), as Keras 3's ``ops.image.map_coordinates``.

    Example:
        >>> import numpy as np
        >>> from onnxforge import ops
        >>> ops.image.map_coordinates(np.float32([1, 2, 3]), np.float32([[-1.0, 0.5, 5.0]]), 1).tolist()
        [0.0, 1.5, 0.0]
    """
    b = builder_of(inputs, coordinates)
    x, c = as_value(inputs, b), as_value(coordinates, b)
    shape = _ops.static_shape(x)
    cshape = _ops.static_shape(c)
    if cshape is None or len(cshape) < 2:
        raise ValueError(f"Invalid coordinates rank: expected at least rank 2. Received input with shape: {cshape}")
    if cshape[0] != len(shape):
        raise ValueError("First dim of `coordinates` must be the same as the rank of `inputs`. Received inputs with "
                         f"shape: {shape} and coordinate leading dim of {cshape[0]}")
    if fill_mode not in _FILL_MODES:
        raise ValueError(f"Invalid value for argument `fill_mode`. Expected one of {set(_FILL_MODES)}. Received: "
                         f"fill_mode={fill_mode}")
    if order not in (0, 1):
        raise NotImplementedError("map_coordinates currently requires order<=1")
    if any(d is None for d in shape):
        raise ValueError(f"map_coordinates: the shape of `inputs` must be known. Received: inputs.shape={shape}")
    if order == 1 and not c.is_float:
        c = cast_value(c, _FLOAT)
    compute = c.dtype if c.is_float else _FLOAT
    flat = cast_value(b.op("Reshape", [x, _ops.ints(b, [-1])]), compute)
    strides = [int(np.prod(shape[k + 1:])) for k in range(len(shape))]
    axes = [b.op("Squeeze", [b.op("Slice", [c, _ops.ints(b, [k]), _ops.ints(b, [k + 1]), _ops.ints(b, [0])]),
                             _ops.ints(b, [0])]) for k in range(len(shape))]

    def gather(indices: list[Value]) -> Value:
        linear = None
        for index, stride in zip(indices, strides):
            part = index * _i(b, stride) if stride != 1 else index
            linear = part if linear is None else linear + part
        return b.op("Gather", [flat, linear], axis=0)

    out = _interpolate(gather, axes, list(shape), order, fill_mode, _fill(b, fill_value, x.dtype, compute))
    if not x.is_float:
        out = b.op("Round", [out])
    return _ops.set_shape(cast_value(out, x.dtype), tuple(cshape[1:]))


def _points(p: Value, name: str) -> Value:
    shape = _ops.static_shape(p)
    if shape is None or len(shape) not in (2, 3) or tuple(shape[-2:]) != (4, 2):
        raise ValueError(f"Invalid {name} shape: expected (4,2) for a single image or (N,4,2) for a batch. "
                         f"Received shape: {shape}")
    b = p.builder
    p = cast_value(p, _DOUBLE)
    return p if len(shape) == 3 else b.op("Unsqueeze", [p, _ops.ints(b, [0])], shape=(1, 4, 2))


def _square_to_quad(p: Value) -> list[Value]:
    """Heckbert's projective map of the unit square's corners (0,0), (1,0), (1,1), (0,1) onto the four points
    ``p`` (B, 4, 2): the nine entries of the 3x3 matrix, each ``(B,)``."""
    b = p.builder

    def at(i: int, j: int) -> Value:
        return b.op("Reshape", [b.op("Slice", [p, _ops.ints(b, [i, j]), _ops.ints(b, [i + 1, j + 1]),
                                               _ops.ints(b, [1, 2])]), _ops.ints(b, [-1])])
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = [(at(i, 0), at(i, 1)) for i in range(4)]
    sx, sy = x0 - x1 + x2 - x3, y0 - y1 + y2 - y3
    dx1, dx2, dy1, dy2 = x1 - x2, x3 - x2, y1 - y2, y3 - y2
    den = dx1 * dy2 - dx2 * dy1
    g, h = (sx * dy2 - dx2 * sy) / den, (dx1 * sy - sx * dy1) / den
    one = x0 * 0.0 + 1.0
    return [x1 - x0 + g * x1, x3 - x0 + h * x3, x0, y1 - y0 + g * y1, y3 - y0 + h * y3, y0, g, h, one]


def homography(start_points: Value, end_points: Value) -> Value:
    """Keras's ``compute_homography_matrix``: the ``(B, 8)`` float32 projective transform taking an output pixel
    at an end point to the input pixel at the matching start point."""
    b = start_points.builder
    m = _square_to_quad(_points(start_points, "start_points"))
    a, bb, c, d, e, f, g, h, i = _square_to_quad(_points(end_points, "end_points"))
    adjugate = [e * i - f * h, c * h - bb * i, bb * f - c * e,
                f * g - d * i, a * i - c * g, c * d - a * f,
                d * h - e * g, bb * g - a * h, a * e - bb * d]
    entries = [sum((m[3 * r + k] * adjugate[3 * k + col] for k in range(1, 3)), m[3 * r] * adjugate[col])
               for r in range(3) for col in range(3)]
    scale = entries[8]
    columns = [b.op("Unsqueeze", [v / scale, _ops.ints(b, [1])]) for v in entries[:8]]
    return cast_value(b.op("Concat", columns, axis=1), _FLOAT)


@symbolic
def perspective_transform(images: Any, start_points: Any, end_points: Any, interpolation: str = "bilinear",
                          fill_value: float = 0, data_format: str | None = None) -> Value:
    """Warps images so that the four ``start_points`` (``(4, 2)`` or ``(N, 4, 2)``, ``(x, y)`` pixels) move to
    ``end_points``; uncovered pixels get ``fill_value``. Keras 3's ``ops.image.perspective_transform``.

    Example:
        >>> import numpy as np
        >>> from onnxforge import ops
        >>> corners = np.float32([[0, 0], [3, 0], [0, 3], [3, 3]])
        >>> x = np.random.default_rng(0).random((4, 4, 1)).astype(np.float32)
        >>> bool(np.allclose(ops.image.perspective_transform(x, corners, corners), x, atol=1e-5))
        True
    """
    if interpolation not in ("nearest", "bilinear"):
        raise ValueError("Invalid value for argument `interpolation`. Expected of one ('nearest', 'bilinear'). "
                         f"Received: interpolation={interpolation}")
    data_format = normalize_data_format(data_format)
    b = builder_of(images, start_points, end_points)
    x = as_value(images, b)
    if x.shape is None or len(x.shape) not in (3, 4):
        raise ValueError("Invalid images rank: expected rank 3 (single image) or rank 4 (batch of images). "
                         f"Received input with shape: images.shape={_ops.static_shape(x)}")
    s, e = as_value(start_points, b), as_value(end_points, b)
    if _ops.static_shape(s) != _ops.static_shape(e):
        raise ValueError(f"start_points and end_points must have the same shape. Received "
                         f"start_points.shape={_ops.static_shape(s)}, end_points.shape={_ops.static_shape(e)}")
    transform = homography(s, e)
    unbatched = len(x.shape) == 3
    if unbatched:
        x = b.op("Unsqueeze", [x, _ops.ints(b, [0])], shape=(1, *x.shape))
    compute = x if x.is_float else cast_value(x, _FLOAT)
    out = _affine(compute, transform, interpolation, "constant", fill_value, data_format, projective=True)
    if not x.is_float:
        out = cast_value(b.op("Round", [out]), x.dtype)
    if unbatched:
        out = b.op("Squeeze", [out, _ops.ints(b, [0])], shape=tuple(x.shape[1:]))
    return out


def elastic_warp(images: Value, alpha: Value | float, sigma: Value | float, kernel_size: int, order: int,
                 fill_mode: str, fill_value: float, data_format: str, seed: Any = None,
                 support: Value | None = None) -> Value:
    """The elastic warp of a float batch (rank 4, known height and width): per image, two fields of
    ``N(0, 1) * sigma`` noise blurred by a ``kernel_size`` Gaussian of ``sigma`` (weights beyond ``support``
    dropped), scaled by ``alpha``, added to the pixel grid, and sampled there like ``map_coordinates``."""
    from .random import _standard_normal

    b = images.builder
    x = images if data_format == "channels_last" else _ops.transpose(images, (0, 2, 3, 1))
    n, h, w, ch = _ops.static_shape(x)
    if h is None or w is None or ch is None:
        raise ValueError(f"elastic_transform: images need a known height, width and channel count. Received: "
                         f"images.shape={_ops.static_shape(images)}")
    sigma = as_value(sigma, b, like=x)
    alpha = as_value(alpha, b, like=x)
    first = b.op("Slice", [x, _ops.ints(b, [0, 0, 0]), _ops.ints(b, [1, 1, 1]), _ops.ints(b, [3, 1, 2])])
    like = b.op("Expand", [first * 0.0, b.op("Concat", [b.op("Slice", [b.op("Shape", [x]), _ops.ints(b, [0]),
                                                                       _ops.ints(b, [3])]), _ops.ints(b, [1])],
                                                        axis=0)], shape=(n, h, w, 1))
    g = gaussian_kernel_1d(sigma, kernel_size, support)
    kernel = b.op("Reshape", [b.op("Mul", [b.op("Reshape", [g, _ops.ints(b, [kernel_size, 1])]),
                                           b.op("Reshape", [g, _ops.ints(b, [1, kernel_size])])]),
                              _ops.ints(b, [1, 1, kernel_size, kernel_size])], shape=(1, 1, kernel_size, kernel_size))
    pad = kernel_size // 2
    fields = []
    for _ in range(2):
        noise = _standard_normal(like, seed) * b.op("Reshape", [sigma, _ops.ints(b, [1])])
        blurred = filter_planes(noise, kernel, [pad] * 4, "channels_last")   # (N, H, W, 1, 1)
        fields.append(b.op("Reshape", [blurred, _ops.ints(b, [-1, h, w])]) * b.op("Reshape", [alpha, _ops.ints(b, [1])]))
    dx, dy = fields
    rows = b.const(np.arange(h, dtype=np.float32).reshape(1, h, 1), x.dtype)
    cols = b.const(np.arange(w, dtype=np.float32).reshape(1, 1, w), x.dtype)
    flat = b.op("Reshape", [x, _ops.ints(b, [0, h * w, ch])])

    def gather(indices: list[Value]) -> Value:
        yi, xi = indices
        index = b.op("Reshape", [yi * _i(b, w) + xi, _ops.ints(b, [0, h * w, 1])])
        got = b.op("GatherND", [flat, index], batch_dims=1)
        return b.op("Reshape", [got, _ops.ints(b, [0, h, w, ch])])

    coordinates = [rows + dy, cols + dx]
    weighted = _interpolate(gather, [b.op("Unsqueeze", [v, _ops.ints(b, [3])]) for v in coordinates], [h, w],
                            order, fill_mode, _fill(b, fill_value, x.dtype, x.dtype))
    out = _ops.set_shape(weighted, (n, h, w, ch))
    return out if data_format == "channels_last" else _ops.transpose(out, (0, 3, 1, 2))


@symbolic
def elastic_transform(images: Any, alpha: float = 20.0, sigma: float = 5.0, interpolation: str = "bilinear",
                      fill_mode: str = "reflect", fill_value: float = 0.0, seed: Any = None,
                      data_format: str | None = None) -> Value:
    """Deforms images by a random displacement field: Gaussian noise blurred with ``sigma`` (a kernel of
    ``6 * int(sigma) + 1`` taps), scaled by ``alpha``; Keras 3's ``ops.image.elastic_transform``. ``seed`` is
    ``None``, an int (the same field at every call) or a ``SeedGenerator``.

    Example:
        >>> import numpy as np
        >>> from onnxforge import ops
        >>> x = np.random.default_rng(0).random((2, 8, 8, 3)).astype(np.float32)
        >>> ops.image.elastic_transform(x, alpha=2.0, sigma=1.0, seed=1).shape
        TensorShape([2, 8, 8, 3])
    """
    if interpolation not in ("nearest", "bilinear"):
        raise ValueError("Invalid value for argument `interpolation`. Expected of one ('nearest', 'bilinear'). "
                         f"Received: interpolation={interpolation}")
    if fill_mode not in ("reflect", "wrap", "constant", "nearest"):
        raise ValueError("Invalid value for argument `fill_mode`. Expected of one ('reflect', 'wrap', 'constant', "
                         f"'nearest'). Received: fill_mode={fill_mode}")
    for name, value in (("alpha", alpha), ("sigma", sigma)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            raise TypeError(f"elastic_transform: `{name}` must be a Python number (it sets the blur kernel's "
                            f"size when the graph is built). Received: {name}={value!r}")
    if sigma < 0:
        raise ValueError(f"elastic_transform: `sigma` must be >= 0. Received: sigma={sigma}")
    data_format = normalize_data_format(data_format)
    b = builder_of(images)
    x = as_value(images, b)
    if x.shape is None or len(x.shape) not in (3, 4):
        raise ValueError("Invalid images rank: expected rank 3 (single image) or rank 4 (batch of images). "
                         f"Received input with shape: images.shape={_ops.static_shape(x)}")
    unbatched = len(x.shape) == 3
    if unbatched:
        x = b.op("Unsqueeze", [x, _ops.ints(b, [0])], shape=(1, *x.shape))
    compute = x if x.is_float else cast_value(x, _FLOAT)
    kernel_size = 6 * int(sigma) | 1
    out = elastic_warp(compute, float(alpha), float(sigma), kernel_size, ("nearest", "bilinear").index(interpolation),
                       fill_mode, fill_value, data_format, seed)
    if not x.is_float:
        out = cast_value(b.op("Round", [out]), x.dtype)
    if unbatched:
        out = b.op("Squeeze", [out, _ops.ints(b, [0])], shape=tuple(x.shape[1:]))
    return out
