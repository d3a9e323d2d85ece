"""Regularization layers: ``Dropout`` and ``GaussianNoise`` (active only in training programs).

Noise comes from ``current_trace().random_uniform(like)``: the compiler owns the program's RNG state, so a
layer never needs its own seed in the graph (``seed`` is kept for config compatibility).
"""
from __future__ import annotations

__all__ = ["Dropout", "GaussianNoise", "standard_normal"]

import math
from typing import Any


from ..graph import Value
from ..tracing import current_trace
from ..graph import emit as _ops
from .base import Layer
from .seed_state import LayerSeedGenerator


def standard_normal(like: Value) -> Value:
    """N(0, 1) noise shaped like ``like``, from two uniforms of the program's RNG (Box-Muller)."""
    ctx = current_trace()
    b = like.builder
    u1, u2 = ctx.random_uniform(like), ctx.random_uniform(like)
    # 1 - u1 lies in (0, 1]: the log stays finite.
    radius = b.op("Sqrt", [b.op("Log", [1.0 - u1]) * -2.0])
    return radius * b.op("Cos", [u2 * (2.0 * math.pi)])


def _check_rate(name: str, rate: Any) -> float:
    if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0 <= rate <= 1:
        raise ValueError(f"Invalid value received for argument `rate` of layer {name}. Expected a float value "
                         f"between 0 and 1. Received: rate={rate!r}")
    return float(rate)


class Dropout(Layer):
    """Zeroes inputs with probability ``rate`` in training and scales the rest by ``1 / (1 - rate)``.

    Args:
        rate: fraction of inputs to drop, in ``[0, 1]``.
        noise_shape: shape of the binary mask, broadcast against the input (``None`` entries take the
            input's dim), e.g. ``(None, 1, features)`` to drop the same features at every step.
        seed: accepted for compatibility; randomness comes from the compiled program.
    """

    supports_masking = True

    def __init__(self, rate: float, noise_shape: Any = None, seed: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.rate = _check_rate(self.name, rate)
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self.seed = seed
        if self.rate > 0:   # listed in `variables` as Keras lists it (see seed_state.py)
            self.seed_generator = LayerSeedGenerator(seed)

    def _drop(self, x: Value, like: Value) -> Value:
        b = x.builder
        u = current_trace().random_uniform(like)
        if self.rate >= 1.0:
            return x * 0.0
        keep = b.op("Cast", [b.op("GreaterOrEqual", [u, self.rate])], to=x.dtype)
        # One Mul by the scaled mask: the gradient is the same mask, no division in the backward pass.
        return x * (keep * (1.0 / (1.0 - self.rate)))

    def call(self, inputs, training=False):
        if not training or self.rate == 0.0:
            return inputs
        if self.noise_shape is None:
            return _ops.elementwise(inputs, lambda x: self._drop(x, x))
        if len(self.noise_shape) != len(inputs.shape):
            raise ValueError(f"Layer {self.name!r}: noise_shape must have the input's rank {len(inputs.shape)}. "
                             f"Received: noise_shape={self.noise_shape}")
        # A tensor shaped like the mask: the input sliced to length 1 on the broadcast axes.
        axes = [i for i, d in enumerate(self.noise_shape) if d == 1 and inputs.shape[i] != 1]
        like = inputs
        if axes:
            b = inputs.builder
            shape = tuple(1 if i in axes else d for i, d in enumerate(inputs.shape))
            like = b.op("Slice", [inputs, _ops.ints(b, [0] * len(axes)), _ops.ints(b, [1] * len(axes)),
                                  _ops.ints(b, axes)], shape=shape)
        return self._drop(inputs, like)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _count_flops(self, input_shapes, output_shapes):
        return 0  # identity at inference

    def get_config(self):
        noise = None if self.noise_shape is None else list(self.noise_shape)
        return {**super().get_config(), "rate": self.rate, "noise_shape": noise, "seed": self.seed}


class GaussianNoise(Layer):
    """Adds zero-mean Gaussian noise with standard deviation ``stddev`` in training.

    The normal samples are made from two uniforms with the Box-Muller transform (standard ops only).
    """

    supports_masking = True

    def __init__(self, stddev: float, seed: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        if not isinstance(stddev, (int, float)) or isinstance(stddev, bool) or stddev < 0:
            raise ValueError(f"Invalid value received for argument `stddev` of layer {self.name}. Expected a "
                             f"non-negative float. Received: stddev={stddev!r}")
        self.stddev = float(stddev)
        self.seed = seed
        if self.stddev > 0:
            self.seed_generator = LayerSeedGenerator(seed)

    def _noisy(self, x: Value) -> Value:
        return x + standard_normal(x) * self.stddev

    def call(self, inputs, training=False):
        if not training or self.stddev == 0.0:
            return inputs
        return _ops.elementwise(inputs, self._noisy)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _count_flops(self, input_shapes, output_shapes):
        return 0  # identity at inference

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}

