"""Deterministic image preprocessing: ``Rescaling``, ``Resizing`` and ``CenterCrop`` (Keras 3 on torch).

``Resizing`` is an ONNX ``Resize`` over the two spatial axes with the numbers of Keras's torch backend:
``bilinear`` and ``bicubic`` (``cubic_coeff_a=-0.75``) with half-pixel centers (``align_corners=False``),
``nearest`` as torch's ``nearest-exact`` (half-pixel, halves rounded up). ``antialias=True`` (which torch
computes with PIL's filters, not ONNX's) is built from per-axis resampling matrices for known sizes.
``crop_to_aspect_ratio`` / ``pad_to_aspect_ratio`` crop or pad the centered box first, as Keras does.
"""
from __future__ import annotations

__all__ = ["Rescaling", "Resizing", "CenterCrop"]

from typing import Any

import numpy as np

from ...graph import emit as _ops
from ..base import InputSpec, Layer
from ..reshaping import normalize_data_format
from ...ops._image_kernels import _as_float, _saturate_back, _spatial_axes, resize_images


_INTERPOLATIONS = ("bilinear", "nearest", "bicubic")


class _ImageLayer(Layer):
    _autocast = False  # integer images stay integers until the layer decides
    _data_layer = True  # inside a Dataset.map its inputs take the compute dtype first (layers/host_inputs.py)

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
    _data_layer = True

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

    # An eager call keeps a uint8 / int8 / int16 image's dtype (the graph computes in floats and casts back).
    _keeps_integer_dtype = True

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
