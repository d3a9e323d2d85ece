"""``AugMix`` (Hendrycks et al. 2020) as Keras 3.15 builds it: ``num_chains`` chains of ``chain_depth`` steps,
each step one augmentation drawn from Keras's list (or none), the chains mixed by Dirichlet(``alpha``) weights
and the mix blended with the original by a Beta(``alpha``, ``alpha``) weight, all drawn once per call for the
whole batch; the result is clipped to ``value_range``. Training only.

Keras picks each step's augmentation with Python's ``random`` when it traces; here each step draws it in the
graph (the augmentation list plus "none", uniformly) so that every training step picks anew: every candidate is
computed and the drawn one kept with ``Where``, as ``RandAugment`` does. The Gamma draws behind the Dirichlet
and Beta weights use Marsaglia and Tsang's method on a fixed number of candidates (the first accepted one;
shape below 1 boosted by ``U^(1/alpha)``), so the graph has no loop.
"""
from __future__ import annotations

__all__ = ["AugMix", "gamma_draw"]

import math
from typing import Any

import numpy as np
import onnx

from ...graph import Value
from ...graph import emit as _ops
from ...tracing import current_trace
from .augmentation import RandomBrightness, RandomContrast, RandomRotation, RandomTranslation
from .color_adjust import RandomColorDegeneration, RandomSharpness
from .image_base import ImageAugmentationLayer, factor_pair, value_range_pair
from .random_shear import RandomShear
from .tone import AutoContrast, Equalization, RandomPosterization, Solarization

# Marsaglia-Tsang accepts at least 95% of candidates for shape >= 1: 16 all fail with probability < 1e-20.
_CANDIDATES = 16


def gamma_draw(like: Value, alpha: float) -> Value:
    """One ``Gamma(alpha, 1)`` sample per element of ``like`` (a float tensor of any shape)."""
    b = like.builder
    ctx = current_trace()
    shape = b.op("Concat", [b.op("Shape", [like]), _ops.ints(b, [_CANDIDATES])], axis=0)
    many = b.op("Expand", [b.op("Unsqueeze", [like * 0.0, _ops.ints(b, [-1])]), shape],
                shape=(*like.shape, _CANDIDATES) if like.shape is not None else None)
    boosted = alpha + 1.0 if alpha < 1.0 else alpha
    d = boosted - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    u1, u2, u3 = ctx.random_uniform(many), ctx.random_uniform(many), ctx.random_uniform(many)
    z = b.op("Sqrt", [b.op("Log", [1.0 - u1]) * -2.0]) * b.op("Cos", [u2 * (2.0 * math.pi)])
    base = z * c + 1.0
    v = base * base * base
    positive = b.op("Greater", [v, 0.0])
    log_v = b.op("Log", [b.op("Max", [v, b.const(np.float32(1e-30), v.dtype)])])
    bound = z * z * 0.5 + d - v * d + log_v * d
    accepted = b.op("And", [positive, b.op("Less", [b.op("Log", [u3 + 1e-30]), bound])])
    first = b.op("ArgMax", [b.op("Cast", [accepted], to=onnx.TensorProto.INT32)], axis=-1, keepdims=1)
    picked = b.op("Squeeze", [b.op("GatherElements", [v, first], axis=-1), _ops.ints(b, [-1])]) * d
    any_accepted = b.op("Squeeze", [b.op("GatherElements", [accepted, first], axis=-1), _ops.ints(b, [-1])])
    sample = b.op("Where", [any_accepted, picked, like * 0.0 + d], dtype=like.dtype)
    if alpha < 1.0:
        u = ctx.random_uniform(like)
        sample = sample * b.op("Pow", [u + 1e-30, like * 0.0 + 1.0 / alpha])
    return _ops.set_shape(sample, like.shape)


class AugMix(ImageAugmentationLayer):
    """Mixes ``num_chains`` randomly augmented copies of the batch with Dirichlet(``alpha``) weights and blends
    the mix with the original by a Beta(``alpha``, ``alpha``) weight, as Keras 3's ``AugMix``: the steps come
    from shear, translation, rotation, posterization, solarization, auto-contrast and equalization (plus
    brightness, colour degeneration, contrast and sharpness with ``all_ops``), each of strength ``factor``.

    Example:
        >>> import numpy as np
        >>> from onnxforge.layers import AugMix
        >>> images = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype(np.float32)
        >>> out = AugMix(num_chains=2, chain_depth=1)(images, training=True)
        >>> out.shape, bool(out.min() >= 0 and out.max() <= 255)
        (TensorShape([2, 8, 8, 3]), True)
    """

    def __init__(self, value_range: Any = (0, 255), num_chains: int = 3, chain_depth: int = 3, factor: Any = 0.3,
                 alpha: float = 1.0, all_ops: bool = True, interpolation: str = "bilinear", seed: int | None = None,
                 data_format: str | None = None, **kwargs: Any):
        super().__init__(data_format, seed, **kwargs)
        for name, value in (("num_chains", num_chains), ("chain_depth", chain_depth)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"AugMix: `{name}` must be a positive integer. Received: {name}={value!r}")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha <= 0:
            raise ValueError(f"AugMix: `alpha` must be a positive number. Received: alpha={alpha!r}")
        value_range_pair(value_range)
        self.value_range = list(value_range)
        self.num_chains, self.chain_depth = int(num_chains), int(chain_depth)
        self.factor = factor_pair(factor, (0, 1))
        self.alpha, self.all_ops, self.interpolation = float(alpha), bool(all_ops), interpolation
        f, vr, fmt = self.factor, self.value_range, data_format
        self._augmentations = [
            RandomShear(x_factor=f, y_factor=f, interpolation=interpolation, seed=seed, data_format=fmt),
            RandomTranslation(height_factor=f, width_factor=f, interpolation=interpolation, seed=seed,
                              data_format=fmt),
            RandomRotation(factor=f, interpolation=interpolation, seed=seed, data_format=fmt),
            RandomPosterization(factor=max(1, int(8 * f[1])), value_range=vr, seed=seed, data_format=fmt),
            Solarization(addition_factor=f, threshold_factor=f, value_range=vr, seed=seed, data_format=fmt),
            AutoContrast(value_range=vr, data_format=fmt),
            Equalization(value_range=vr, data_format=fmt),
        ]
        if self.all_ops:
            self._augmentations += [
                RandomBrightness(factor=f, value_range=vr, seed=seed, data_format=fmt),
                RandomColorDegeneration(factor=f, value_range=vr, seed=seed, data_format=fmt),
                RandomContrast(factor=f, value_range=vr, seed=seed, data_format=fmt),
                RandomSharpness(factor=f, value_range=vr, seed=seed, data_format=fmt),
            ]

    def _batch_scalars(self, images: Value, count: int) -> Value:
        """A ``(count,)`` float template: draws made once per call for the whole batch."""
        b = images.builder
        rank = len(images.shape)
        first = b.op("Slice", [images, _ops.ints(b, [0] * rank), _ops.ints(b, [1] * rank),
                               _ops.ints(b, list(range(rank)))])
        return b.op("Expand", [b.op("Reshape", [first * 0.0, _ops.ints(b, [1])]), _ops.ints(b, [count])],
                    shape=(count,))

    def _draw(self, images):
        ctx = current_trace()
        gammas = gamma_draw(self._batch_scalars(images, self.num_chains), self.alpha)
        chain_weights = gammas / _ops.reduce("ReduceSum", gammas, [0], True)
        pair = gamma_draw(self._batch_scalars(images, 2), self.alpha)       # Beta(a, a) = X / (X + Y)
        b = images.builder
        x = b.op("Slice", [pair, _ops.ints(b, [0]), _ops.ints(b, [1])])
        blend = x / _ops.reduce("ReduceSum", pair, [0], True)
        choices = ctx.random_uniform(self._batch_scalars(images, self.num_chains * self.chain_depth))
        choices = b.op("Floor", [choices * float(len(self._augmentations) + 1)])   # the last value: no step
        steps = [[[op._draw(images) for op in self._augmentations] for _ in range(self.chain_depth)]
                 for _ in range(self.num_chains)]
        return chain_weights, blend, choices, steps

    def _transform(self, images, params):
        chain_weights, blend, choices, steps = params
        b = images.builder
        mixed = None
        for chain in range(self.num_chains):
            x = images
            for depth in range(self.chain_depth):
                k = chain * self.chain_depth + depth
                picked = b.op("Slice", [choices, _ops.ints(b, [k]), _ops.ints(b, [k + 1])])
                for index, (op, p) in enumerate(zip(self._augmentations, steps[chain][depth])):
                    out = op._transform(x, p)
                    x = b.op("Where", [b.op("Equal", [picked, float(index)]), out, x], dtype=x.dtype,
                             shape=images.shape)
            weight = b.op("Slice", [chain_weights, _ops.ints(b, [chain]), _ops.ints(b, [chain + 1])])
            mixed = x * weight if mixed is None else mixed + x * weight
        out = images * blend + mixed * (1.0 - blend)
        low, high = (b.const(np.float32(v), images.dtype) for v in self.value_range)
        return _ops.set_shape(b.op("Min", [b.op("Max", [out, low]), high]), images.shape)

    def get_config(self):
        return {**super().get_config(), "value_range": list(self.value_range), "num_chains": self.num_chains,
                "chain_depth": self.chain_depth, "factor": list(self.factor), "alpha": self.alpha,
                "all_ops": self.all_ops, "interpolation": self.interpolation}
