"""``ContrastLimitedAdaptiveHistogramEqualization`` (CLAHE), Keras 3.15's layer, in standard ONNX ops.

On a 0-255 scale (mapped from ``value_range`` and back, as Keras does), the image is padded to a whole number of
``tile_grid_size`` tiles (mirrored, edge included: NumPy's ``"symmetric"``, by ``Gather`` with indices computed
at trace time), and each tile's 256-bin histogram per channel is counted with ``ScatterElements(reduction="add")``.
Each histogram is clipped at ``clip_limit * tile_pixels / 256`` with the excess spread evenly over the bins, and
its normalised cumulative sum is the tile's lookup table. A pixel's value is the bilinear blend of the four
nearest tiles' tables (the tile grid edge-padded by one), read by ``Gather`` at the pixel's integer level; the
blend positions and weights depend only on the image size, so they are constants. As in Keras it applies at
inference too, and an integer image comes back in its own dtype (truncated).

The numbers are those of Keras on its TensorFlow backend. Its torch backend differs in two places (backend
artefacts, not the layer's definition): its ``one_hot`` counts in int64, so the clip limit is rounded down to an
integer, and its ``"symmetric"`` pad repeats the edge row instead of mirroring; where neither matters (whole
tiles, an integral limit) the two backends and this layer agree.
"""
from __future__ import annotations

__all__ = ["ContrastLimitedAdaptiveHistogramEqualization"]

from typing import Any

import numpy as np
import onnx

from ...graph import Value
from ...graph import emit as _ops
from .image_base import ImageAugmentationLayer, to_range, value_range_pair

_F32, _I64 = onnx.TensorProto.FLOAT, onnx.TensorProto.INT64
_LEVELS = 256


def _blend_positions(size: int, tile: int, grid: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each padded row (or column): the padded-grid indices of the two tiles it blends and the second's weight,
    in float32 as Keras computes them."""
    pos = (np.arange(size, dtype=np.float32) - np.float32(tile / 2.0)) / np.float32(tile) + np.float32(1.0)
    low = np.floor(pos)
    weight = (pos - low).astype(np.float32)
    first = np.clip(low, 0, grid + 1).astype(np.int64)
    second = np.clip(low + 1.0, 0, grid + 1).astype(np.int64)
    return first, second, weight


def _clip(x: Value, low: float, high: float) -> Value:
    b = x.builder
    return b.op("Clip", [x, b.const(np.float32(low)), b.const(np.float32(high))], shape=x.shape)


class ContrastLimitedAdaptiveHistogramEqualization(ImageAugmentationLayer):
    """Contrast-limited adaptive histogram equalization per channel (Keras 3's
    ``ContrastLimitedAdaptiveHistogramEqualization``), applied in training and at inference alike.

    Args:
        value_range: the images' value range (default ``(0, 255)``).
        clip_limit: histogram clip, in multiples of a flat histogram's bin height (0 or less: no clipping).
        tile_grid_size: ``(rows, columns)`` of tiles.
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Example:
        >>> import numpy as np
        >>> layer = ContrastLimitedAdaptiveHistogramEqualization(tile_grid_size=(2, 2))
        >>> np.asarray(layer(np.random.default_rng(0).uniform(0, 255, (1, 8, 8, 3)).astype("float32"))).shape
        (1, 8, 8, 3)
    """

    _draws = False   # deterministic: Keras gives it no SeedGenerator (layers/seed_state.py)

    _ALWAYS = True
    _autocast = False   # an integer image stays one (Keras casts the result back to the input's dtype)

    def __init__(self, value_range: Any = (0, 255), clip_limit: float = 4.0, tile_grid_size: Any = (8, 8),
                 data_format: str | None = None, **kwargs: Any):
        super().__init__(data_format, None, **kwargs)
        self.value_range = value_range_pair(value_range)
        self.clip_limit = float(clip_limit)
        grid = tuple(tile_grid_size) if isinstance(tile_grid_size, (tuple, list)) else ()
        if len(grid) != 2 or any(isinstance(g, bool) or not isinstance(g, (int, np.integer)) or g < 1 for g in grid):
            raise ValueError(f"ContrastLimitedAdaptiveHistogramEqualization {self.name!r}: `tile_grid_size` must be "
                             f"two positive integers. Received: tile_grid_size={tile_grid_size!r}")
        self.tile_grid_size = (int(grid[0]), int(grid[1]))

    def _prepare(self, images: Value) -> Value:
        return images   # cast in _transform, which casts back to the input's dtype as Keras does

    def _transform(self, images: Value, params: Any) -> Value:
        b = images.builder
        dtype = images.dtype
        x = images if dtype == _F32 else b.op("Cast", [images], to=_F32, shape=images.shape)
        if self._channel_axis() == 1:
            x = _ops.transpose(x, (0, 2, 3, 1))
        shape = _ops.static_shape(x)
        if shape is None or any(d is None for d in shape[1:]):
            raise ValueError(f"ContrastLimitedAdaptiveHistogramEqualization {self.name!r} needs images of known "
                             f"height, width and channels. Received shape {shape}")
        out = self._clahe(to_range(x, self.value_range, (0, 255)), *shape[1:])
        out = to_range(out, (0, 255), self.value_range)
        if self._channel_axis() == 1:
            out = _ops.transpose(out, (0, 3, 1, 2))
        return out if dtype == _F32 else b.op("Cast", [out], to=dtype, shape=images.shape)

    def _clahe(self, x: Value, height: int, width: int, channels: int) -> Value:
        b = x.builder
        (grid_h, grid_w), levels = self.tile_grid_size, _LEVELS
        tile_h, tile_w = -(-height // grid_h), -(-width // grid_w)
        full_h, full_w = tile_h * grid_h, tile_w * grid_w
        # Mirror-pad the bottom and right edges up to whole tiles.
        if full_h != height:
            rows = np.pad(np.arange(height), (0, full_h - height), mode="symmetric")
            x = b.op("Gather", [x, b.const(rows.astype(np.int64))], axis=1)
        if full_w != width:
            cols = np.pad(np.arange(width), (0, full_w - width), mode="symmetric")
            x = b.op("Gather", [x, b.const(cols.astype(np.int64))], axis=2)
        levels_of = b.op("Clip", [b.op("Cast", [x], to=_I64), b.const(np.int64(0)), b.const(np.int64(levels - 1))])
        # Histograms: the pixel (n, i*tile_h + r, j*tile_w + s, c) counts in bin
        # (((n * grid_h + i) * grid_w + j) * channels + c) * levels + level.
        tiles = np.arange(grid_h * grid_w * channels, dtype=np.int64).reshape(grid_h, grid_w, channels)
        tile_of = np.repeat(np.repeat(tiles, tile_h, axis=0), tile_w, axis=1)          # (full_h, full_w, channels)
        batch = b.op("Gather", [b.op("Shape", [x]), _ops.ints(b, [0])], axis=0)
        per_image = grid_h * grid_w * channels * levels
        image = b.op("Range", [b.const(np.int64(0)), b.op("Squeeze", [batch, _ops.ints(b, [0])]),
                               b.const(np.int64(1))], dtype=_I64)
        image = b.op("Reshape", [image, _ops.ints(b, [-1, 1, 1, 1])])
        index = image * per_image + b.const(tile_of * levels) + levels_of
        flat = b.op("Reshape", [index, _ops.ints(b, [-1])])
        # ConstantOfShape's default fill is a float32 zero.
        ones = b.op("ConstantOfShape", [b.op("Shape", [flat])], dtype=_F32) + 1.0
        zeros = b.op("ConstantOfShape", [batch * per_image], dtype=_F32)
        hist = b.op("ScatterElements", [zeros, flat, ones], axis=0, reduction="add")
        hist = b.op("Reshape", [hist, _ops.ints(b, [-1, grid_h, grid_w, channels, levels])])
        area = float(tile_h * tile_w)
        if self.clip_limit > 0:
            clipped = b.op("Min", [hist, b.const(np.float32(self.clip_limit * area / levels))])
            excess = _ops.reduce("ReduceSum", hist - clipped, [4], True)
            hist = clipped + excess / float(levels)
        cdf = b.op("CumSum", [hist, b.const(np.int64(4))])
        cdf_min = _ops.reduce("ReduceMin", cdf, [4], True)
        denominator = b.const(np.float32(area)) - cdf_min
        denominator = b.op("Where", [b.op("Equal", [denominator, 0.0]), 1.0, denominator])
        table = _clip((cdf - cdf_min) * 255.0 / denominator, 0.0, 255.0)
        # One tile of edge padding all round, so that the outer half-tiles blend with themselves.
        table = b.op("Pad", [table, _ops.ints(b, [0, 1, 1, 0, 0, 0, 1, 1, 0, 0])], mode="edge")
        table = b.op("Reshape", [table, _ops.ints(b, [-1])])
        y0, y1, wy = _blend_positions(full_h, tile_h, grid_h)
        x0, x1, wx = _blend_positions(full_w, tile_w, grid_w)
        stride_x = channels * levels
        stride_y = stride_x * (grid_w + 2)
        base = image * (stride_y * (grid_h + 2)) + b.const(np.arange(channels, dtype=np.int64) * levels) + levels_of

        def read(rows: np.ndarray, cols: np.ndarray) -> Value:
            offset = rows[:, None, None] * stride_y + cols[None, :, None] * stride_x
            return b.op("Gather", [table, base + b.const(offset.astype(np.int64))], axis=0)

        wx_c = b.const(wx[None, :, None])
        wy_c = b.const(wy[:, None, None])
        top = read(y0, x0) * (1.0 - wx_c) + read(y0, x1) * wx_c
        bottom = read(y1, x0) * (1.0 - wx_c) + read(y1, x1) * wx_c
        out = top * (1.0 - wy_c) + bottom * wy_c
        out = b.op("Slice", [out, _ops.ints(b, [0, 0]), _ops.ints(b, [height, width]), _ops.ints(b, [1, 2])])
        return _ops.set_shape(out, (None, height, width, channels))

    def get_config(self):
        config = {**super().get_config(), "value_range": list(self.value_range), "clip_limit": self.clip_limit,
                  "tile_grid_size": list(self.tile_grid_size)}
        config.pop("seed")
        return config
