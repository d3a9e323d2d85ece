"""Image resampling kernels shared by ``ops.image`` and the image layers (``Resizing``, ``CenterCrop``, the
random geometric augmentations): ``resize_images`` and ``affine_transform``, with Keras 3's torch-backend numbers.

``resize_images`` is an ONNX ``Resize`` over the two spatial axes: ``bilinear`` and ``bicubic``
(``cubic_coeff_a=-0.75``) with half-pixel centers, ``nearest`` as torch's ``nearest-exact``; ``antialias=True``
(PIL's filters, as torch) is built from per-axis resampling matrices for known sizes; ``crop_to_aspect_ratio``
/ ``pad_to_aspect_ratio`` crop or pad the centered box first. ``affine_transform`` resamples like the torch
backend's ``map_coordinates`` (bilinear or nearest; ``reflect`` / ``wrap`` / ``nearest`` / ``constant`` fill)
from standard ops (``Floor``, ``Mod``, ``GatherND``).
"""
from __future__ import annotations

__all__ = ["resize_images", "affine_transform", "antialias_matrix"]

import numpy as np
import onnx

from ..graph import Value
from ..graph import emit as _ops
from ..graph.size_limits import check_constant
from ..graph.value import np_dtype, onnx_dtype

_I64 = onnx.TensorProto.INT64


def _spatial_axes(rank: int, data_format: str) -> tuple[int, int]:
    return (rank - 3, rank - 2) if data_format == "channels_last" else (rank - 2, rank - 1)


def _pil_filter(kind: str):
    if kind == "bilinear":
        return 1.0, lambda t: np.maximum(0.0, 1.0 - np.abs(t))
    a = -0.5  # PIL's (and torch's antialiased) bicubic

    def cubic(t):
        t = np.abs(t)
        return np.where(t < 1, ((a + 2) * t - (a + 3)) * t * t + 1,
                        np.where(t < 2, (((t - 5) * t + 8) * t - 4) * a, 0.0))
    return 2.0, cubic


def antialias_matrix(length: int, out: int, kind: str) -> np.ndarray:
    """``(out, length)`` weights of torch's antialiased resampling along one axis (PIL's algorithm)."""
    support, fn = _pil_filter(kind)
    scale = length / out
    filter_scale = max(scale, 1.0)
    support *= filter_scale
    check_constant((out, length), 8, "an antialiased resize's weight matrix")   # pre-alloc
    weights = np.zeros((out, length), np.float64)
    for i in range(out):
        center = scale * (i + 0.5)
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), length)
        j = np.arange(lo, hi)
        w = fn((j - center + 0.5) / filter_scale)
        total = w.sum()
        weights[i, lo:hi] = w / total if total != 0 else w
    return weights


def _crop_box(height: int, width: int, target_h: int, target_w: int) -> tuple[int, int, int, int]:
    """Keras's centered crop with the target's aspect ratio: ``(top, left, crop_h, crop_w)``."""
    crop_h = max(min(height, int(float(width * target_h) / target_w)), 1)
    crop_w = max(min(width, int(float(height * target_w) / target_h)), 1)
    return int(float(height - crop_h) / 2), int(float(width - crop_w) / 2), crop_h, crop_w


def resize_images(x: Value, size: tuple[int, int], interpolation: str = "bilinear", antialias: bool = False,
                  crop_to_aspect_ratio: bool = False, pad_to_aspect_ratio: bool = False, fill_value: float = 0.0,
                  data_format: str = "channels_last", layer: str = "resize", cubic_coeff_a: float = -0.75,
                  cubic_exclude_outside: bool = False) -> Value:
    """``ops.image.resize`` semantics (Keras 3, torch backend) on a float graph value of rank 3 or 4.

    ``cubic_coeff_a`` is the bicubic kernel's Keys parameter: torch's -0.75 (Keras on torch), or TensorFlow's
    -0.5 (``tf.image.resize``, which also drops the taps outside the image and renormalizes:
    ``cubic_exclude_outside``)."""
    b = x.builder
    rank = len(x.shape)
    if interpolation == "bicubic" and rank == 3 and not antialias:
        # onnxruntime's cubic kernel needs the 4-D layout below: resize an image as a batch of one.
        batch = b.op("Unsqueeze", [x, _ops.ints(b, [0])], shape=(1, *x.shape))
        y = resize_images(batch, size, interpolation, antialias, crop_to_aspect_ratio, pad_to_aspect_ratio,
                          fill_value, data_format, layer, cubic_coeff_a, cubic_exclude_outside)
        return b.op("Squeeze", [y, _ops.ints(b, [0])], shape=tuple(y.shape[1:]))
    ha, wa = _spatial_axes(rank, data_format)
    shape = _ops.static_shape(x)
    height, width = shape[ha], shape[wa]
    th, tw = int(size[0]), int(size[1])
    if crop_to_aspect_ratio or pad_to_aspect_ratio:
        if height is None or width is None:
            raise ValueError(f"{layer}: crop_to_aspect_ratio / pad_to_aspect_ratio need known image sizes. "
                             f"Received: input shape {shape}")
    if crop_to_aspect_ratio:
        top, left, ch, cw = _crop_box(height, width, th, tw)
        x = b.op("Slice", [x, _ops.ints(b, [top, left]), _ops.ints(b, [top + ch, left + cw]), _ops.ints(b, [ha, wa])])
        height, width = ch, cw
    elif pad_to_aspect_ratio:
        pad_h = max(height, int(float(width * th) / tw))
        pad_w = max(width, int(float(height * tw) / th))
        top, left = int(float(pad_h - height) / 2), int(float(pad_w - width) / 2)
        begins, ends = [0] * rank, [0] * rank
        begins[ha], ends[ha], begins[wa], ends[wa] = top, top, left, left  # Keras pads both sides equally
        x = b.op("Pad", [x, _ops.ints(b, begins + ends), b.const(np.asarray(fill_value, np.float32), x.dtype)],
                 mode="constant")
        height, width = height + 2 * top, width + 2 * left
    out_shape = list(x.shape) if x.shape is not None else [None] * rank
    if out_shape:
        out_shape[ha], out_shape[wa] = th, tw
    if antialias and interpolation in ("bilinear", "bicubic") and (height is None or width is None or
                                                                    height > th or width > tw):
        if height is None or width is None:
            raise ValueError(f"{layer}: antialias=True needs known image sizes. Received: input shape {shape}")
        return _antialiased(x, (height, width), (th, tw), interpolation, (ha, wa), tuple(out_shape))
    attrs = {"bilinear": dict(mode="linear", coordinate_transformation_mode="half_pixel"),
             "bicubic": dict(mode="cubic", coordinate_transformation_mode="half_pixel",
                            cubic_coeff_a=float(cubic_coeff_a), exclude_outside=int(cubic_exclude_outside)),
             "nearest": dict(mode="nearest", coordinate_transformation_mode="half_pixel",
                             nearest_mode="round_prefer_ceil")}[interpolation]
    if interpolation == "bicubic" and rank == 4 and data_format == "channels_last":
        # onnxruntime's cubic kernel takes NCHW only: resize the channels-first view.
        # onnxruntime's cubic kernel wants the two outer axes unscaled (NCHW), and its layout optimizer moves
        # a lone Transpose back through Resize: resize (N * C, 1, H, W) planes instead.
        cf = _ops.transpose(x, (0, 3, 1, 2))
        lead = b.op("Slice", [b.op("Shape", [cf]), _ops.ints(b, [0]), _ops.ints(b, [2])])
        planes = b.op("Reshape", [cf, _ops.ints(b, [-1, 1, 0, 0])])
        sizes = b.op("Concat", [b.op("Slice", [b.op("Shape", [planes]), _ops.ints(b, [0]), _ops.ints(b, [2])]),
                                _ops.ints(b, [th, tw])], axis=0)
        y = b.op("Resize", [planes, "", "", sizes], **attrs)
        y = b.op("Reshape", [y, b.op("Concat", [lead, _ops.ints(b, [th, tw])], axis=0)],
                 shape=(out_shape[0], out_shape[3], th, tw))
        return _ops.transpose(y, (0, 2, 3, 1))
    return b.op("Resize", [x, "", "", _full_sizes(x, out_shape, ha, wa)], shape=tuple(out_shape), **attrs)


def _full_sizes(x: Value, out_shape: list, ha: int, wa: int) -> Value:
    """Resize's ``sizes`` over every axis, not two with an ``axes`` attribute: onnxruntime's layout optimizer
    (TransposeOptimizer_CPUExecutionProvider) moves a convolution's Transpose through a Resize with ``axes``
    and leaves it an empty ``sizes`` ("Conv2D -> Resizing -> Conv2D" failed to load)."""
    b = x.builder
    if all(isinstance(d, int) for d in out_shape):
        return _ops.ints(b, list(out_shape))
    shape, rank = b.op("Shape", [x]), len(out_shape)
    parts = [b.op("Slice", [shape, _ops.ints(b, [0]), _ops.ints(b, [ha])])] if ha else []
    parts.append(_ops.ints(b, [out_shape[ha], out_shape[wa]]))
    if wa + 1 < rank:
        parts.append(b.op("Slice", [shape, _ops.ints(b, [wa + 1]), _ops.ints(b, [rank])]))
    return parts[0] if len(parts) == 1 else b.op("Concat", parts, axis=0)


def _antialiased(x: Value, sizes: tuple[int, int], targets: tuple[int, int], kind: str, axes: tuple[int, int],
                 out_shape: tuple) -> Value:
    """Separable resampling by constant matrices: one MatMul per spatial axis."""
    b = x.builder
    rank = len(x.shape)
    for length, out, axis in zip(sizes, targets, axes):
        weights = antialias_matrix(length, out, kind).T.astype(np.float32)  # (length, out)
        perm = [i for i in range(rank) if i != axis] + [axis]
        moved = _ops.transpose(x, perm) @ b.const(weights, x.dtype)
        x = _ops.transpose(moved, _ops.inverse_perm(perm))
    x.shape = out_shape
    return x


def _as_float(x: Value, dtype: str) -> Value:
    if x.is_float:
        return x
    to = onnx_dtype(dtype)
    return x.builder.op("Cast", [x], to=to, shape=x.shape)


def _saturate_back(y: Value, like: Value) -> Value:
    """Round and clip a resized integer image back to its dtype (Keras's ``_saturate_cast``)."""
    b = y.builder
    info = np.iinfo(np_dtype(like.dtype))
    y = b.op("Clip", [b.op("Round", [y]), b.const(np.asarray(float(info.min), np.float32), y.dtype),
                      b.const(np.asarray(float(info.max), np.float32), y.dtype)])
    return b.op("Cast", [y], to=like.dtype)


def _f(b, value: float, like: Value) -> Value:
    return b.const(np.asarray(value, np.float32), like.dtype)


def _i(b, value: int) -> Value:
    return b.const(np.asarray(value, np.int64))


def _fix_index(b, index: Value, size: int, mode: str) -> Value:
    """Keras's index fixers: where an out-of-range sample index reads from."""
    if mode in ("constant", "nearest"):
        return b.op("Clip", [index, _i(b, 0), _i(b, size - 1)])
    if mode == "wrap":
        return b.op("Mod", [index, _i(b, size)])

    def mirror(idx: Value, n: int) -> Value:  # |(idx + s) mod 2s - s|, s = n - 1: a triangular wave
        s = n - 1
        if s == 0:
            return idx * _i(b, 0)
        return b.op("Abs", [b.op("Mod", [idx + _i(b, s), _i(b, 2 * s)]) - _i(b, s)])

    # reflect = (mirror(2 * idx + 1, 2 * size + 1) - 1) // 2; the mirrored value is >= 1, so Div floors.
    return b.op("Div", [mirror(index * _i(b, 2) + _i(b, 1), 2 * size + 1) - _i(b, 1), _i(b, 2)])


def affine_transform(images: Value, transform: Value, interpolation: str = "bilinear", fill_mode: str = "constant",
                     fill_value: float = 0.0, data_format: str = "channels_last", projective: bool = False) -> Value:
    """Keras 3's ``ops.image.affine_transform`` for a batch of images with known sizes.

    ``transform`` is ``(batch, 8)``: ``[a0, a1, a2, b0, b1, b2, c0, c1]`` maps an output pixel ``(x, y)`` to
    the input point ``(a0 x + a1 y + a2, b0 x + b1 y + b2)`` (``c0 = c1 = 0``). With ``projective`` both are
    divided by ``c0 x + c1 y + 1`` (a pixel where that is 0 gets ``fill_value``) and ``nearest`` rounds halves
    away from zero: TensorFlow's ``ImageProjectiveTransformV3``, which ``perspective_transform`` follows.
    """
    b = images.builder
    x = images if data_format == "channels_last" else _ops.transpose(images, (0, 2, 3, 1))
    _, h, w, c = _ops.static_shape(x)
    if h is None or w is None or c is None:
        raise ValueError(f"affine_transform needs images of known height, width and channels. Received shape "
                         f"{_ops.static_shape(images)}")
    # One transform for the whole batch (Keras's (8,) or (1, 8)) is repeated per image, as TensorFlow's kernel does.
    batch = b.op("Slice", [b.op("Shape", [x]), _ops.ints(b, [0]), _ops.ints(b, [1])])
    transform = b.op("Expand", [transform, b.op("Concat", [batch, _ops.ints(b, [8])], axis=0)],
                     shape=(x.shape[0], 8))
    coef = [b.op("Unsqueeze", [b.op("Gather", [transform, _i(b, k)], axis=1), _ops.ints(b, [1, 2])])
            for k in range(6)]  # each (B, 1, 1)
    rows = b.const(np.arange(h, dtype=np.float32).reshape(1, h, 1), x.dtype)
    cols = b.const(np.arange(w, dtype=np.float32).reshape(1, 1, w), x.dtype)
    a0, a1, a2, b0, b1, b2 = coef
    y_in = b1 * rows + b0 * cols + b2  # (B, H, W)
    x_in = a1 * rows + a0 * cols + a2
    if projective:
        c0, c1 = [b.op("Unsqueeze", [b.op("Gather", [transform, _i(b, k)], axis=1), _ops.ints(b, [1, 2])])
                  for k in (6, 7)]
        k = c1 * rows + c0 * cols + 1.0
        degenerate = b.op("Unsqueeze", [b.op("Equal", [k, 0.0]), _ops.ints(b, [3])])
        k = b.op("Where", [b.op("Equal", [k, 0.0]), k * 0.0 + 1.0, k], dtype=k.dtype)
        y_in, x_in = y_in / k, x_in / k
    flat = b.op("Reshape", [x, _ops.ints(b, [0, h * w, c])])

    def sample(yi: Value, xi: Value) -> Value:
        """Pixels at integer (yi, xi) (B, H, W), after the fill mode's index fixing; (B, H, W, C)."""
        fy, fx = _fix_index(b, yi, h, fill_mode), _fix_index(b, xi, w, fill_mode)
        index = b.op("Reshape", [fy * _i(b, w) + fx, _ops.ints(b, [0, h * w, 1])])
        got = b.op("GatherND", [flat, index], batch_dims=1)
        got = b.op("Reshape", [got, _ops.ints(b, [0, h, w, c])])
        if fill_mode != "constant":
            return got
        valid = b.op("And", [b.op("And", [b.op("GreaterOrEqual", [yi, _i(b, 0)]), b.op("Less", [yi, _i(b, h)])]),
                             b.op("And", [b.op("GreaterOrEqual", [xi, _i(b, 0)]), b.op("Less", [xi, _i(b, w)])])])
        valid = b.op("Unsqueeze", [valid, _ops.ints(b, [3])])
        return b.op("Where", [valid, got, _f(b, fill_value, x)], dtype=x.dtype)

    def as_int(v: Value) -> Value:
        return b.op("Cast", [v], to=_I64)

    def round_(v: Value) -> Value:
        if not projective:
            return b.op("Round", [v])
        return b.op("Sign", [v]) * b.op("Floor", [b.op("Abs", [v]) + 0.5])

    if interpolation == "nearest":
        out = sample(as_int(round_(y_in)), as_int(round_(x_in)))
    else:
        y0, x0 = b.op("Floor", [y_in]), b.op("Floor", [x_in])
        wy1, wx1 = y_in - y0, x_in - x0
        wy0, wx0 = 1.0 - wy1, 1.0 - wx1
        iy0, ix0 = as_int(y0), as_int(x0)
        iy1, ix1 = iy0 + _i(b, 1), ix0 + _i(b, 1)
        out = None
        for iy, wy in ((iy0, wy0), (iy1, wy1)):
            for ix, wx in ((ix0, wx0), (ix1, wx1)):
                term = sample(iy, ix) * b.op("Unsqueeze", [wy * wx, _ops.ints(b, [3])])
                out = term if out is None else out + term
    if projective:
        out = b.op("Where", [degenerate, _f(b, fill_value, x), out], dtype=out.dtype)
    out.shape = x.shape
    return out if data_format == "channels_last" else _ops.transpose(out, (0, 3, 1, 2))
