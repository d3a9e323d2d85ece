"""3-D pooling (``MaxPooling3D``, ``AveragePooling3D``, ``GlobalAveragePooling3D``, ``GlobalMaxPooling3D``)
and Keras 3's adaptive pooling (``AdaptiveAveragePooling1D/2D/3D``, ``AdaptiveMaxPooling1D/2D/3D``).

Adaptive pooling uses PyTorch's bins (what Keras 3 computes on every backend): output step ``i`` of an axis
of length ``L`` pools input steps ``floor(i * L / out)`` to ``ceil((i + 1) * L / out)``. Bins are separable
per axis: averages are one ``MatMul`` by a constant bin matrix per axis, maxima a ``ReduceMax`` per bin.
The spatial sizes must be known when the model is built.
"""
from __future__ import annotations

__all__ = ["MaxPooling3D", "AveragePooling3D", "GlobalAveragePooling3D", "GlobalMaxPooling3D", "MaxPool3D",
           "AvgPool3D", "GlobalAvgPool3D", "GlobalMaxPool3D", "AdaptiveAveragePooling1D",
           "AdaptiveAveragePooling2D", "AdaptiveAveragePooling3D", "AdaptiveMaxPooling1D", "AdaptiveMaxPooling2D",
           "AdaptiveMaxPooling3D"]

import math
from typing import Any

import numpy as np

from ..graph.shape_inference import fill_shapes
from ..graph.size_limits import charge_graph
from ..graph import emit as _ops
from .base import InputSpec, Layer
from .pooling import _GlobalPooling, _Pooling
from .reshaping import normalize_data_format, normalize_tuple


class MaxPooling3D(_Pooling):
    """Max over ``pool_size`` windows of a 5-D input (``strides`` defaults to ``pool_size``)."""

    def __init__(self, pool_size: Any = (2, 2, 2), strides: Any = None, padding: str = "valid",
                 data_format: str | None = None, **kwargs: Any):
        super().__init__(3, pool_size, strides, padding, data_format, **kwargs)


class AveragePooling3D(_Pooling):
    """Mean over ``pool_size`` windows of a 5-D input; ``"same"`` windows average their real inputs only."""

    _op = "AveragePool"

    def __init__(self, pool_size: Any, strides: Any = None, padding: str = "valid",
                 data_format: str | None = None, **kwargs: Any):
        super().__init__(3, pool_size, strides, padding, data_format, **kwargs)


class GlobalAveragePooling3D(_GlobalPooling):
    """Mean over the three spatial axes."""

    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs: Any):
        super().__init__(3, data_format, keepdims, **kwargs)


class GlobalMaxPooling3D(_GlobalPooling):
    """Max over the three spatial axes."""

    _op = "ReduceMax"

    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs: Any):
        super().__init__(3, data_format, keepdims, **kwargs)


MaxPool3D, AvgPool3D = MaxPooling3D, AveragePooling3D
GlobalAvgPool3D, GlobalMaxPool3D = GlobalAveragePooling3D, GlobalMaxPooling3D


#: The largest bin matrix (length x output steps, float32) an average pooling axis may build: the sizes come
#: from a config, and a checkpoint of a few KB could otherwise ask for gigabytes at the first call.
MAX_BIN_MATRIX_BYTES = 64 * 2**20


def adaptive_bins(length: int, out: int) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` of each output step: PyTorch's (and Keras 3's) adaptive pooling bins."""
    return [(math.floor(i * length / out), math.ceil((i + 1) * length / out)) for i in range(out)]


class _AdaptivePooling(Layer):
    _rank = 1
    _max = False

    def __init__(self, output_size: Any, data_format: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.output_size = normalize_tuple(output_size, self._rank, "output_size")
        self.data_format = normalize_data_format(data_format)
        self.input_spec = InputSpec(ndim=self._rank + 2)

    def _axes(self) -> list[int]:
        return list(range(1, self._rank + 1)) if self.data_format == "channels_last" else \
            list(range(2, self._rank + 2))

    def build(self, input_shape):
        for axis, out in zip(self._axes(), self.output_size):
            if input_shape[axis] is None:
                raise ValueError(f"Layer {self.name!r}: adaptive pooling needs known spatial sizes. Received: "
                                 f"input_shape={tuple(input_shape)}")
            self._check_bin_matrix(input_shape[axis], out, input_shape)

    def _check_bin_matrix(self, length: int, out: int, input_shape: Any) -> None:
        """Refuse, naming the layer, a bin matrix over MAX_BIN_MATRIX_BYTES: checked when built and again when
        called, since a loaded model may be called on other sizes than its build config's."""
        if not self._max and length * out * 4 > MAX_BIN_MATRIX_BYTES:
            raise ValueError(f"Layer {self.name!r}: averaging {length} steps into {out} bins takes a {length} x "
                             f"{out} float32 bin matrix, over the {MAX_BIN_MATRIX_BYTES // 2**20} MiB this layer may "
                             f"build. Received: input_shape={tuple(input_shape)}, output_size={tuple(self.output_size)}")

    def compute_output_shape(self, input_shape):
        if self.data_format == "channels_last":
            return (input_shape[0], *self.output_size, input_shape[-1])
        return (input_shape[0], input_shape[1], *self.output_size)

    def call(self, inputs):
        x = inputs
        for axis, out in zip(self._axes(), self.output_size):
            x = self._pool_axis(x, axis, out)
        return x

    def _pool_axis(self, x, axis: int, out: int):
        b = x.builder
        start = len(b.nodes)
        length = _ops.static_shape(x)[axis]
        self._check_bin_matrix(length, out, tuple(x.shape))
        if self._max:   # a Slice and a ReduceMax per bin: a loaded config's bins are bounded before being listed
            charge_graph(0, len(b.nodes) + 2 * out, f"{out} max-pooling bins")
        bins = adaptive_bins(length, out)
        if self._max:
            parts = [_ops.reduce("ReduceMax", b.op("Slice", [x, _ops.ints(b, [s]), _ops.ints(b, [e]),
                                                             _ops.ints(b, [axis])]), [axis], keepdims=True)
                     for s, e in bins]
            y = parts[0] if len(parts) == 1 else b.op("Concat", parts, axis=axis)
        else:
            weights = np.zeros((length, out), np.float32)
            for i, (s, e) in enumerate(bins):
                weights[s:e, i] = 1.0 / (e - s)
            rank = len(x.shape)
            perm = [i for i in range(rank) if i != axis] + [axis]
            moved = _ops.transpose(x, perm)
            y = _ops.transpose(moved @ b.const(weights, x.dtype), _ops.inverse_perm(perm))
        fill_shapes(b, start)  # the next axis reads this one's shape
        return y

    def _count_flops(self, input_shapes, output_shapes):
        return int(np.prod([d or 1 for d in input_shapes[0][1:]]))

    def get_config(self):
        return {**super().get_config(), "output_size": tuple(self.output_size), "data_format": self.data_format}


class AdaptiveAveragePooling1D(_AdaptivePooling):
    """Averages ``(batch, steps, channels)`` into ``output_size`` bins (PyTorch's bin edges).

    Example:
        >>> from onnxforge.layers import AdaptiveAveragePooling1D, Input
        >>> AdaptiveAveragePooling1D(3)(Input(shape=(10, 2))).shape
        (None, 3, 2)
    """

    _rank = 1


class AdaptiveAveragePooling2D(_AdaptivePooling):
    """Averages the two spatial axes into an ``output_size`` grid of bins."""

    _rank = 2


class AdaptiveAveragePooling3D(_AdaptivePooling):
    """Averages the three spatial axes into an ``output_size`` grid of bins."""

    _rank = 3


class AdaptiveMaxPooling1D(_AdaptivePooling):
    """Max over ``output_size`` bins of the steps axis."""

    _rank = 1
    _max = True


class AdaptiveMaxPooling2D(_AdaptivePooling):
    """Max over an ``output_size`` grid of bins of the two spatial axes."""

    _rank = 2
    _max = True


class AdaptiveMaxPooling3D(_AdaptivePooling):
    """Max over an ``output_size`` grid of bins of the three spatial axes."""

    _rank = 3
    _max = True
