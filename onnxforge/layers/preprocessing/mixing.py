"""Batch-mixing augmentations of Keras 3: ``MixUp`` and ``CutMix``.

Both pair each image with another of the batch (a random permutation: the order of per-image uniforms,
``TopK``) and mix with a ``Beta(a, a)`` weight per image. Called on ``{"images": ..., "labels": ...}`` they mix
the labels with the same weights and permutation, as Keras does; on a plain tensor they mix the images only
(so as the first layer of a model they leave the targets alone, as in Keras).

Beta draws use Jöhnk's method in log space on a fixed number of candidate pairs per image: for
``U, V ~ U(0, 1)``, ``x = log U / a``, ``y = log V / a``, a pair is accepted when ``logaddexp(x, y) <= 0`` and then
gives ``exp(x - logaddexp(x, y)) ~ Beta(a, a)``. The first accepted candidate is taken; the count is chosen so
that all of them fail with probability below 1e-6 (the mean, 1/2, is used then).
"""
from __future__ import annotations

__all__ = ["MixUp", "CutMix", "beta_draw", "batch_permutation"]

import math
from typing import Any

import numpy as np
import onnx

from ...graph import Value
from ...graph import emit as _ops
from ...tracing import current_trace
from .image_base import ImageAugmentationLayer, factor_pair

_I64 = onnx.TensorProto.INT64


def _per_image(images: Value, count: int = 1) -> Value:
    """A ``(B, count)`` template for per-image uniforms."""
    b = images.builder
    first = b.op("Slice", [images, _ops.ints(b, [0, 0, 0]), _ops.ints(b, [1, 1, 1]), _ops.ints(b, [1, 2, 3])])
    flat = b.op("Reshape", [first, _ops.ints(b, [-1, 1])], shape=(images.shape[0], 1))
    return flat if count == 1 else b.op("Tile", [flat, _ops.ints(b, [1, count])], shape=(images.shape[0], count))


def _candidates(alpha_max: float) -> int:
    """Jöhnk's candidates for ``Beta(a, a)``, ``a <= alpha_max``: acceptance is ``Γ(a+1)² / Γ(2a+1)``."""
    accept = math.exp(2 * math.lgamma(alpha_max + 1) - math.lgamma(2 * alpha_max + 1))
    if accept >= 1.0:
        return 1
    return int(min(512, max(1, math.ceil(math.log(1e-6) / math.log1p(-accept)))))


def beta_draw(images: Value, alpha: Value | float, alpha_max: float) -> Value:
    """One ``Beta(alpha, alpha)`` draw per image, shaped ``(B, 1)``."""
    b = images.builder
    n = _candidates(alpha_max)
    ctx = current_trace()
    like = _per_image(images, n)
    tiny = 1e-30   # log(0) guard: U is in [0, 1)
    x = b.op("Log", [ctx.random_uniform(like) + tiny]) / alpha
    y = b.op("Log", [ctx.random_uniform(like) + tiny]) / alpha
    top = b.op("Max", [x, y])
    lse = top + b.op("Log", [b.op("Exp", [b.op("Min", [x, y]) - top]) + 1.0])
    value = b.op("Exp", [x - lse])
    accepted = b.op("LessOrEqual", [lse, 0.0])
    # The first accepted candidate: ArgMax returns the first maximum.
    first = b.op("ArgMax", [b.op("Cast", [accepted], to=onnx.TensorProto.INT32)], axis=1, keepdims=1)
    picked = b.op("GatherElements", [value, first], axis=1)
    any_accepted = _ops.reduce("ReduceMax", b.op("Cast", [accepted], to=onnx.TensorProto.FLOAT), [1], True)
    return b.op("Where", [b.op("Greater", [any_accepted, 0.5]), picked, b.const(np.float32(0.5), picked.dtype)],
                dtype=picked.dtype, shape=(images.shape[0], 1))


def batch_permutation(images: Value) -> Value:
    """A uniformly random permutation of the batch (the sort order of one uniform per image), int64 ``(B,)``."""
    b = images.builder
    u = b.op("Reshape", [current_trace().random_uniform(_per_image(images)), _ops.ints(b, [-1])])
    k = b.op("Shape", [u])
    _, order = b.op("TopK", [u, k], axis=0, largest=1, sorted=1, outputs=2)
    order.dtype = _I64
    return order


def _mix(x: Value, weight: Value, order: Value) -> Value:
    """``weight * x + (1 - weight) * x[order]`` with ``weight`` broadcast over the trailing axes."""
    b = x.builder
    rank = len(x.shape)
    w = b.op("Reshape", [weight, _ops.ints(b, [-1] + [1] * (rank - 1))])
    if w.dtype != x.dtype:
        w = b.op("Cast", [w], to=x.dtype)
    other = b.op("Gather", [x, order], axis=0, shape=x.shape)
    return _ops.set_shape(w * x + (1.0 - w) * other, x.shape)


class MixUp(ImageAugmentationLayer):
    """MixUp (Zhang et al. 2018): each image becomes ``w x_i + (1 - w) x_j`` with ``w ~ Beta(alpha, alpha)``
    and ``j`` a random permutation of the batch; labels of a ``{"images", "labels"}`` dict mix alike.

    Example:
        >>> import numpy as np
        >>> from onnxforge.layers import MixUp
        >>> data = {"images": np.random.rand(4, 8, 8, 3).astype("float32"),
        ...         "labels": np.eye(4, dtype="float32")}
        >>> out = MixUp(alpha=0.2)(data, training=True)
        >>> bool(np.allclose(out["labels"].sum(axis=1), 1.0))
        True
    """

    def __init__(self, alpha: float = 0.2, data_format: str | None = None, seed: int | None = None,
                 **kwargs: Any):
        super().__init__(data_format, seed, **kwargs)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha <= 0:
            raise ValueError(f"MixUp: `alpha` must be a positive number. Received: alpha={alpha}")
        self.alpha = alpha

    def _draw(self, images):
        return beta_draw(images, float(self.alpha), float(self.alpha)), batch_permutation(images)

    def _transform(self, images, params):
        return _mix(images, *params)

    def _transform_labels(self, labels, params):
        if labels.dtype not in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16):
            labels = labels.builder.op("Cast", [labels], to=onnx.TensorProto.FLOAT, shape=labels.shape)
        return _mix(labels, *params)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


class CutMix(ImageAugmentationLayer):
    """CutMix (Yun et al. 2019): pastes into each image a box of another image of the batch (a random
    permutation); the box covers ``1 - w`` of the area, ``w ~ Beta(a, a)``, ``a ~ U(factor)`` once per batch.
    Labels of a ``{"images", "labels"}`` dict mix with the box's true area, as Keras 3's ``CutMix``. Single
    images pass through.

    Example:
        >>> from onnxforge.layers import Input, CutMix
        >>> CutMix(1.0)(Input(shape=(8, 8, 3))).shape
        (None, 8, 8, 3)
    """

    def __init__(self, factor: Any = 1.0, seed: int | None = None, data_format: str | None = None,
                 **kwargs: Any):
        super().__init__(data_format, seed, **kwargs)
        self.factor = factor_pair(factor, (0, 1))

    def call(self, inputs, training=True):
        images = inputs["images"] if isinstance(inputs, dict) else inputs
        if len(images.shape) == 3:
            return inputs  # Keras draws no transformation for a single image
        return super().call(inputs, training=training)

    def _draw(self, images):
        b = images.builder
        h, w = self._hw(images)
        ctx = current_trace()
        # One alpha per batch: the first image's uniform, broadcast.
        first = b.op("Slice", [_per_image(images), _ops.ints(b, [0]), _ops.ints(b, [1]), _ops.ints(b, [0])],
                     shape=(1, 1))
        alpha = ctx.random_uniform(first) * float(self.factor[1] - self.factor[0]) + float(self.factor[0]) + 1e-6
        weight = beta_draw(images, alpha, float(self.factor[1]) + 1e-6)
        ratio = b.op("Sqrt", [1.0 - weight])
        bounds = []
        for length in (w, h):
            crop = ratio * float(length)
            start = ctx.random_uniform(_per_image(images)) * (float(length) - crop)
            bounds += [start, start + crop]
        x0, x1, y0, y1 = bounds
        area = 1.0 - (x1 - x0) * (y1 - y0) / float(w * h)
        return bounds, area, batch_permutation(images)

    def _transform(self, images, params):
        (x0, x1, y0, y1), _, order = params
        b = images.builder
        h, w = self._hw(images)
        last = self.data_format == "channels_last"
        grid_y = b.const(np.arange(h, dtype=np.float32).reshape((1, h, 1, 1) if last else (1, 1, h, 1)))
        grid_x = b.const(np.arange(w, dtype=np.float32).reshape((1, 1, w, 1) if last else (1, 1, 1, w)))

        def box(v):
            return b.op("Reshape", [v, _ops.ints(b, [-1, 1, 1, 1])])
        inside = b.op("And", [b.op("And", [b.op("GreaterOrEqual", [grid_x, box(x0)]), b.op("Less", [grid_x, box(x1)])]),
                              b.op("And", [b.op("GreaterOrEqual", [grid_y, box(y0)]), b.op("Less", [grid_y, box(y1)])])])
        other = b.op("Gather", [images, order], axis=0, shape=images.shape)
        return b.op("Where", [inside, other, images], dtype=images.dtype, shape=images.shape)

    def _transform_labels(self, labels, params):
        _, area, order = params
        if labels.dtype not in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16):
            labels = labels.builder.op("Cast", [labels], to=onnx.TensorProto.FLOAT, shape=labels.shape)
        return _mix(labels, area, order)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor)}
