"""Pooling layers: windowed (``MaxPooling1D/2D``, ``AveragePooling1D/2D``) and global.

Keras ``"same"`` average pooling divides by the number of real (unpadded) inputs in each window, which is
ONNX ``AveragePool`` with ``count_include_pad=0``; the odd padding pixel goes at the end (TensorFlow's rule).
Where the padding is uneven, Keras 3 on its torch backend repeats the edge values instead (and counts
them), so onnxforge does the same: an ``edge`` ``Pad`` before a valid ``AveragePool``.
"""
from __future__ import annotations

__all__ = ["MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D", "GlobalAveragePooling1D",
           "GlobalAveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
           "MaxPool1D", "MaxPool2D", "AvgPool1D", "AvgPool2D", "GlobalAvgPool1D", "GlobalAvgPool2D",
           "GlobalMaxPool1D", "GlobalMaxPool2D"]

import warnings
from typing import Any

import numpy as np

from ..ops import _conv_utils as cu
from ..graph import emit as _ops
from .base import InputSpec, Layer
from .reshaping import normalize_data_format, normalize_tuple


class _Pooling(Layer):
    _op = "MaxPool"

    def __init__(self, rank: int, pool_size: Any, strides: Any = None, padding: str = "valid",
                 data_format: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.rank = rank
        self.pool_size = normalize_tuple(pool_size, rank, "pool_size")
        self.strides = self.pool_size if strides is None else normalize_tuple(strides, rank, "strides")
        self.padding = cu.check_padding(self.name, padding, ("valid", "same"))
        self.data_format = normalize_data_format(data_format)
        self.input_spec = InputSpec(ndim=rank + 2)

    def _spatial(self, shape):
        return tuple(shape[1:-1]) if self.data_format == "channels_last" else tuple(shape[2:])

    def compute_output_shape(self, input_shape):
        spatial = tuple(cu.conv_output_length(n, k, self.padding, s)
                        for n, k, s in zip(self._spatial(input_shape), self.pool_size, self.strides))
        if any(n is not None and n <= 0 for n in spatial):
            raise ValueError(f"Layer {self.name!r}: computed output size would be negative. Received "
                             f"input_shape={tuple(input_shape)}, pool_size={self.pool_size}, "
                             f"strides={self.strides}, padding={self.padding!r}")
        if self.data_format == "channels_last":
            return (input_shape[0], *spatial, input_shape[-1])
        return (input_shape[0], input_shape[1], *spatial)

    def build(self, input_shape):
        self.compute_output_shape(input_shape)  # reject windows larger than the input while building
        self.built = True

    def call(self, inputs):
        x = cu.to_channels_first(inputs, self.data_format)
        shape = _ops.static_shape(x)
        if x.shape is not None:
            cu.require_windows(self, x.shape[2:], self.pool_size, (1,) * self.rank, self.padding)
        attrs = cu.padding_attrs(shape[2:], self.pool_size, self.strides, (1,) * self.rank, self.padding)
        if self._op == "AveragePool":
            attrs["count_include_pad"] = 0
            pads = attrs.get("pads")
            if pads is not None and pads[:self.rank] != pads[self.rank:]:
                # Keras 3 (torch backend) pads uneven "same" windows by repeating the edge values, which
                # then count in the mean; even pads are left out of it (count_include_pad=0).
                b = x.builder
                padded = None if x.shape is None else (*x.shape[:2], *(
                    d + p + q if isinstance(d, int) else None
                    for d, p, q in zip(x.shape[2:], pads[:self.rank], pads[self.rank:])))
                x = b.op("Pad", [x, _ops.ints(b, [0, 0, *pads[:self.rank], 0, 0, *pads[self.rank:]])], mode="edge",
                         shape=padded)
                attrs["pads"] = [0] * (2 * self.rank)
        spatial = tuple(cu.conv_output_length(n, k, self.padding, s)
                        for n, k, s in zip(shape[2:], self.pool_size, self.strides))
        y = x.builder.op(self._op, [x], kernel_shape=list(self.pool_size), strides=list(self.strides),
                         shape=(x.shape[0], x.shape[1], *spatial), **attrs)
        return cu.to_channels_last(y, self.data_format)

    def _count_flops(self, input_shapes, output_shapes):
        return int(np.prod([d or 1 for d in output_shapes[0][1:]])) * int(np.prod(self.pool_size))

    def get_config(self):
        return {**super().get_config(), "pool_size": tuple(self.pool_size), "strides": tuple(self.strides),
                "padding": self.padding, "data_format": self.data_format}


class MaxPooling1D(_Pooling):
    """Max over windows of ``pool_size`` steps (``strides`` defaults to ``pool_size``)."""

    def __init__(self, pool_size: Any = 2, strides: Any = None, padding: str = "valid",
                 data_format: str | None = None, **kwargs: Any):
        super().__init__(1, pool_size, strides, padding, data_format, **kwargs)


class MaxPooling2D(_Pooling):
    """Max over ``pool_size`` windows (``strides`` defaults to ``pool_size``).

    Example:
        >>> from onnxforge.layers import MaxPooling2D, Input
        >>> MaxPooling2D()(Input(shape=(5, 5, 3))).shape
        (None, 2, 2, 3)
    """

    def __init__(self, pool_size: Any = (2, 2), strides: Any = None, padding: str = "valid",
                 data_format: str | None = None, **kwargs: Any):
        super().__init__(2, pool_size, strides, padding, data_format, **kwargs)


class AveragePooling1D(_Pooling):
    """Mean over windows of ``pool_size`` steps; ``"same"`` windows average their real inputs only."""

    _op = "AveragePool"

    def __init__(self, pool_size: Any = 2, strides: Any = None, padding: str = "valid",
                 data_format: str | None = None, **kwargs: Any):
        super().__init__(1, pool_size, strides, padding, data_format, **kwargs)


class AveragePooling2D(_Pooling):
    """Mean over ``pool_size`` windows; ``"same"`` windows average their real inputs only."""

    _op = "AveragePool"

    def __init__(self, pool_size: Any = (2, 2), strides: Any = None, padding: str = "valid",
                 data_format: str | None = None, **kwargs: Any):
        super().__init__(2, pool_size, strides, padding, data_format, **kwargs)


class _GlobalPooling(Layer):
    _op = "ReduceMean"

    def __init__(self, rank: int, data_format: str | None = None, keepdims: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        self.rank = rank
        self.data_format = normalize_data_format(data_format)
        self.keepdims = bool(keepdims)
        self.input_spec = InputSpec(ndim=rank + 2)

    def _axes(self) -> list[int]:
        return list(range(1, self.rank + 1)) if self.data_format == "channels_last" else \
            list(range(2, self.rank + 2))

    def compute_mask(self, inputs, mask=None):
        return None  # the steps axis is gone

    def call(self, inputs, mask=None):
        axes = self._axes()
        if mask is not None and self.rank == 1:
            if self._op != "ReduceMax":
                return self._masked(inputs, mask, axes[0])
            # Keras 2 and 3 leave the mask out of GlobalMaxPooling1D (padded steps take part in the max);
            # Keras 3 says so with this warning.
            warnings.warn(f"Layer '{self.name}' (of type {type(self).__name__}) was passed an input with a mask "
                          "attached to it. However, this layer does not support masking and will therefore "
                          "destroy the mask information. Downstream layers will not see the mask.", stacklevel=2)
        src, perm = _ops.peel(inputs)
        if perm is not None:
            # Reduce the untransposed value when the surviving axes keep their order (NCHW -> NC).
            kept = [perm[i] for i in range(len(perm)) if i not in axes]
            if self.keepdims:
                return _ops.transpose(_ops.reduce(self._op, src, [perm[a] for a in axes], True), perm)
            if kept == sorted(kept):
                return _ops.reduce(self._op, src, [perm[a] for a in axes], False)
        return _ops.reduce(self._op, inputs, axes, self.keepdims)

    def _masked(self, inputs, mask, axis):
        """Keras's GlobalAveragePooling1D: padded steps are left out of the mean."""
        b = inputs.builder
        feature_axis = 2 if self.data_format == "channels_last" else 1
        keep = b.op("Unsqueeze", [b.op("Cast", [mask], to=inputs.dtype), _ops.ints(b, [feature_axis])])
        total = _ops.reduce("ReduceSum", inputs * keep, [axis], self.keepdims)
        return total / _ops.reduce("ReduceSum", keep, [axis], self.keepdims)

    def compute_output_shape(self, input_shape):
        axes = self._axes()
        if self.keepdims:
            return tuple(1 if i in axes else d for i, d in enumerate(input_shape))
        return tuple(d for i, d in enumerate(input_shape) if i not in axes)

    def _count_flops(self, input_shapes, output_shapes):
        return int(np.prod([d or 1 for d in input_shapes[0][1:]]))

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format, "keepdims": self.keepdims}


class GlobalAveragePooling1D(_GlobalPooling):
    """Mean over the steps axis."""

    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs: Any):
        super().__init__(1, data_format, keepdims, **kwargs)


class GlobalAveragePooling2D(_GlobalPooling):
    """Mean over both spatial axes: ``(batch, h, w, c) -> (batch, c)``."""

    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs: Any):
        super().__init__(2, data_format, keepdims, **kwargs)


class GlobalMaxPooling1D(_GlobalPooling):
    """Max over the steps axis."""

    _op = "ReduceMax"

    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs: Any):
        super().__init__(1, data_format, keepdims, **kwargs)


class GlobalMaxPooling2D(_GlobalPooling):
    """Max over both spatial axes."""

    _op = "ReduceMax"

    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs: Any):
        super().__init__(2, data_format, keepdims, **kwargs)


# Keras's short aliases.
MaxPool1D, MaxPool2D, AvgPool1D, AvgPool2D = MaxPooling1D, MaxPooling2D, AveragePooling1D, AveragePooling2D
GlobalAvgPool1D, GlobalAvgPool2D = GlobalAveragePooling1D, GlobalAveragePooling2D
GlobalMaxPool1D, GlobalMaxPool2D = GlobalMaxPooling1D, GlobalMaxPooling2D
