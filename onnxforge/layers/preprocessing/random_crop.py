"""``RandomCrop``: a random ``(height, width)`` window in training programs.

In training, one window position is drawn per batch (Keras draws one offset pair for the batch) from the
program's RNG, uniform over the valid positions. Otherwise (inference, or images not larger than the
window) the layer does what Keras documents: the largest central window of the target aspect ratio,
resized to ``(height, width)`` (bilinear) — an identity for images already of that size. Keras 3.15 on
torch returns inference inputs uncropped, which contradicts both its documentation and its own
``compute_output_shape``; onnxforge keeps the documented, shape-consistent behaviour.

Example:
    >>> from onnxforge.layers import Input, RandomCrop
    >>> RandomCrop(4, 4)(Input(shape=(6, 6, 3))).shape
    (None, 4, 4, 3)
"""
from __future__ import annotations

__all__ = ["RandomCrop"]

import random
from typing import Any

import numpy as np
import onnx

from ...tracing import current_trace
from ...graph import emit as _ops
from ..base import Layer
from ..seed_state import LayerSeedGenerator
from ..reshaping import normalize_data_format
from .image import resize_images

_I64 = onnx.TensorProto.INT64


class RandomCrop(Layer):
    """Randomly crops images to ``(height, width)`` during training (see the module docstring)."""

    _data_layer = True  # inside a Dataset.map its inputs take the compute dtype first (layers/host_inputs.py)

    def __init__(self, height: int, width: int, seed: int | None = None, data_format: str | None = None,
                 name: str | None = None, **kwargs: Any):
        super().__init__(name=name, **kwargs)
        for arg, value in (("height", height), ("width", width)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"RandomCrop: `{arg}` must be a positive integer. Received: {arg}={value!r}")
        self.height, self.width = int(height), int(width)
        # Keras draws the config's seed from Python's ``random`` and then, for an unseeded layer, the generator's
        # own: two draws, which a program's later ``random.randint`` sees.
        self.seed = seed if seed is not None else random.randint(1, int(1e9))
        self.generator = LayerSeedGenerator(seed)   # listed in `variables` as Keras's (see layers/seed_state.py)
        self.data_format = normalize_data_format(data_format)

    def _axes(self, rank: int) -> tuple[int, int]:
        return (rank - 3, rank - 2) if self.data_format == "channels_last" else (rank - 2, rank - 1)

    def call(self, inputs, training=True):
        x = inputs
        if x.dtype not in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE):
            x = x.builder.op("Cast", [x], to=onnx.TensorProto.FLOAT, shape=x.shape)
        b = x.builder
        rank = len(x.shape)
        ha, wa = self._axes(rank)
        shape = _ops.static_shape(x)
        h, w = shape[ha], shape[wa]
        if h is None or w is None:
            raise ValueError(f"RandomCrop {self.name!r} requires the input to have a fully defined height and "
                             f"width. Received: images.shape={shape}")
        if training and h > self.height and w > self.width:
            # One uniform pair per batch: the first image's draws, scaled to the valid start positions.
            first = b.op("Slice", [x, _ops.ints(b, [0] * rank), _ops.ints(b, [1] * rank), _ops.ints(b, list(range(rank)))],
                         shape=(1,) * rank)
            ctx = current_trace()
            starts = []
            for span in (h - self.height + 1, w - self.width + 1):
                u = b.op("Reshape", [ctx.random_uniform(first), _ops.ints(b, [1])], shape=(1,))
                starts.append(b.op("Cast", [b.op("Floor", [u * float(span)])], to=_I64, shape=(1,)))
            start = b.op("Concat", starts, axis=0, shape=(2,))
            end = start + _ops.ints(b, [self.height, self.width])
            out = b.op("Slice", [x, start, end, _ops.ints(b, [ha, wa])])
            out_shape = list(shape)
            out_shape[ha], out_shape[wa] = self.height, self.width
            out.shape = tuple(out_shape)
            return out
        if (h, w) == (self.height, self.width):
            return x
        return resize_images(x, (self.height, self.width), "bilinear", crop_to_aspect_ratio=True,
                             data_format=self.data_format, layer=f"RandomCrop {self.name!r}")

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        ha, wa = self._axes(len(shape))
        shape[ha], shape[wa] = self.height, self.width
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width, "seed": self.seed,
                "data_format": self.data_format}
