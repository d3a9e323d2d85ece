"""Deterministic image preprocessing: ``Rescaling``, ``Resizing`` and ``CenterCrop`` (Keras 3 on torch).

``Resizing`` is an ONNX ``Resize`` over the two spatial axes with the numbers of Keras's torch backend:
``bilinear`` and ``bicubic`` (``cubic_coeff_a=-0.75``) with half-pixel centers (``align_corners=False``),
``nearest`` as torch's ``nearest-exact`` (half-pixel, halves rounded up). ``antialias=True`` (which torch
computes with PIL's filters, not ONNX's) is built from per-axis resampling matrices for known sizes.
``crop_to_aspect_ratio`` / ``pad_to_aspect_ratio`` crop or pad the centered box first, as Keras does.
"""
from __future__ import annotations

__all__ = ["Rescaling", "Resizing", "CenterCrop", "resize_images", "antialias_matrix"]

import math
from typing import Any

import numpy as np
import onnx

from ...graph import Value
from .. import _ops
from ..base import InputSpec, Layer
from ..reshaping import normalize_data_format

_INTERPOLATIONS = ("bilinear", "nearest", "bicubic")


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
                  data_format: str = "channels_last", layer: str = "resize") -> Value:
    """``ops.image.resize`` semantics (Keras 3, torch backend) on a float graph value of rank 3 or 4."""
    b = x.builder
    rank = len(x.shape)
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
             "bicubic": dict(mode="cubic", coordinate_transformation_mode="half_pixel", cubic_coeff_a=-0.75),
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
    return b.op("Resize", [x, "", "", _ops.ints(b, [th, tw])], axes=[ha, wa], shape=tuple(out_shape), **attrs)


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
    to = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    return x.builder.op("Cast", [x], to=to, shape=x.shape)


def _saturate_back(y: Value, like: Value) -> Value:
    """Round and clip a resized integer image back to its dtype (Keras's ``_saturate_cast``)."""
    b = y.builder
    info = np.iinfo(onnx.helper.tensor_dtype_to_np_dtype(like.dtype))
    y = b.op("Clip", [b.op("Round", [y]), b.const(np.asarray(float(info.min), np.float32), y.dtype),
                      b.const(np.asarray(float(info.max), np.float32), y.dtype)])
    return b.op("Cast", [y], to=like.dtype)


class _ImageLayer(Layer):
    _autocast = False  # integer images stay integers until the layer decides

    def __init__(self, data_format: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.data_format = normalize_data_format(data_format)
        self.input_spec = InputSpec(min_ndim=3, max_ndim=4)

    def _hw_axes(self, rank: int) -> tuple[int, int]:
        return _spatial_axes(rank, self.data_format)

    def _count_flops(self, input_shapes, output_shapes):
        return int(np.prod([d or 1 for d in output_shapes[0][1:]]))

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


class Rescaling(Layer):
    """``inputs * scale + offset`` in the layer's float dtype (``scale`` and ``offset`` may be per-channel
    lists), Keras 3's ``Rescaling``.

    Example:
        >>> from onnxforge.layers import Input, Rescaling
        >>> Rescaling(1.0 / 255)(Input(shape=(4, 4, 3), dtype="uint8")).dtype
        'float32'
    """

    supports_masking = True

    def __init__(self, scale: Any, offset: Any = 0.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.scale, self.offset = scale, offset

    def call(self, inputs):
        b = inputs.builder
        scale = np.asarray(self.scale, np.float64)
        offset = np.asarray(self.offset, np.float64)
        return inputs * b.const(scale.astype(self.compute_dtype)) + b.const(offset.astype(self.compute_dtype))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _count_flops(self, input_shapes, output_shapes):
        return 2 * int(np.prod([d or 1 for d in output_shapes[0][1:]]))

    def get_config(self):
        def plain(v: Any) -> Any:
            return np.asarray(v).tolist() if isinstance(v, (np.ndarray, list, tuple)) else float(v)
        return {**super().get_config(), "scale": plain(self.scale), "offset": plain(self.offset)}


class Resizing(_ImageLayer):
    """Resizes images to ``(height, width)`` (Keras 3's ``Resizing``; see the module notes for the numbers).

    Example:
        >>> from onnxforge.layers import Input, Resizing
        >>> Resizing(8, 6)(Input(shape=(4, 4, 3))).shape
        (None, 8, 6, 3)
    """

    def __init__(self, height: int, width: int, interpolation: str = "bilinear", crop_to_aspect_ratio: bool = False,
                 pad_to_aspect_ratio: bool = False, fill_mode: str = "constant", fill_value: float = 0.0,
                 antialias: bool = False, data_format: str | None = None, **kwargs: Any):
        super().__init__(data_format, **kwargs)
        for arg, v in (("height", height), ("width", width)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
                raise ValueError(f"Layer {self.name!r}: `{arg}` must be a positive integer. Received: {arg}={v!r}")
        if interpolation not in _INTERPOLATIONS:
            raise ValueError(f"Invalid value for argument `interpolation`. Expected one of {_INTERPOLATIONS} (what "
                             f"Keras 3 on torch and ONNX Resize share). Received: interpolation={interpolation!r}")
        if fill_mode != "constant":
            raise ValueError(f"Invalid value for argument `fill_mode`. Only `'constant'` is supported. "
                             f"Received: fill_mode={fill_mode}")
        if pad_to_aspect_ratio and crop_to_aspect_ratio:
            raise ValueError("Only one of `pad_to_aspect_ratio` & `crop_to_aspect_ratio` can be `True`.")
        self.height, self.width = int(height), int(width)
        self.interpolation = interpolation
        self.crop_to_aspect_ratio, self.pad_to_aspect_ratio = bool(crop_to_aspect_ratio), bool(pad_to_aspect_ratio)
        self.fill_mode, self.fill_value = fill_mode, float(fill_value)
        self.antialias = bool(antialias)

    def call(self, inputs):
        x = _as_float(inputs, self.compute_dtype)
        y = resize_images(x, (self.height, self.width), self.interpolation, self.antialias, self.crop_to_aspect_ratio,
                          self.pad_to_aspect_ratio, self.fill_value, self.data_format, f"Resizing {self.name!r}")
        return y if inputs.is_float else _saturate_back(y, inputs)

    def _output_dtype(self, input_dtypes):
        return input_dtypes[0] or self.compute_dtype

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        ha, wa = self._hw_axes(len(shape))
        shape[ha], shape[wa] = self.height, self.width
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width,
                "interpolation": self.interpolation, "crop_to_aspect_ratio": self.crop_to_aspect_ratio,
                "pad_to_aspect_ratio": self.pad_to_aspect_ratio, "fill_mode": self.fill_mode,
                "fill_value": self.fill_value, "antialias": self.antialias}


class CenterCrop(_ImageLayer):
    """Crops the central ``(height, width)`` region; an image smaller than that is first cropped to the
    target aspect ratio and resized (bilinear), as Keras's ``smart_resize``. Output is float.

    Example:
        >>> from onnxforge.layers import CenterCrop, Input
        >>> CenterCrop(2, 3)(Input(shape=(5, 5, 1))).shape
        (None, 2, 3, 1)
    """

    def __init__(self, height: int, width: int, data_format: str | None = None, **kwargs: Any):
        super().__init__(data_format, **kwargs)
        self.height, self.width = int(height), int(width)

    def call(self, inputs):
        x = _as_float(inputs, self.compute_dtype)
        b = x.builder
        rank = len(x.shape)
        ha, wa = self._hw_axes(rank)
        shape = _ops.static_shape(x)
        h, w = shape[ha], shape[wa]
        if h is None or w is None:
            raise ValueError(f"CenterCrop {self.name!r} needs known image sizes. Received: input shape {shape}")
        if h >= self.height and w >= self.width:
            top, left = (h - self.height) // 2, (w - self.width) // 2
            return b.op("Slice", [x, _ops.ints(b, [top, left]), _ops.ints(b, [top + self.height, left + self.width]),
                                  _ops.ints(b, [ha, wa])])
        return resize_images(x, (self.height, self.width), "bilinear", crop_to_aspect_ratio=True,
                             data_format=self.data_format, layer=f"CenterCrop {self.name!r}")

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        ha, wa = self._hw_axes(len(shape))
        shape[ha], shape[wa] = self.height, self.width
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width}
