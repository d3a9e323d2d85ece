"""More regularization layers (Keras 3): ``SpatialDropout1D/2D/3D``, ``GaussianDropout``, ``AlphaDropout``
(active only in training programs, drawing from the program's RNG like ``Dropout``) and
``ActivityRegularization`` (an L1/L2 penalty on its inputs, added to the loss).
"""
from __future__ import annotations

__all__ = ["SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianDropout", "AlphaDropout",
           "ActivityRegularization"]

import math
from typing import Any

from .. import regularizers as regularizers_mod
from ..tracing import current_trace
from ..graph import emit as _ops
from .base import InputSpec, Layer
from .seed_state import LayerSeedGenerator
from .regularization import Dropout, _check_rate, standard_normal
from .reshaping import normalize_data_format


class _SpatialDropout(Dropout):
    """Drops whole feature maps: one keep/drop draw per (example, channel)."""

    _rank = 1

    def __init__(self, rate: float, data_format: str | None = None, seed: int | None = None, **kwargs: Any):
        super().__init__(rate, seed=seed, **kwargs)
        self.data_format = normalize_data_format(data_format)
        self.input_spec = InputSpec(ndim=self._rank + 2)

    def call(self, inputs, training=False):
        if not training or self.rate == 0.0:
            return inputs
        rank = self._rank + 2
        spatial = range(1, rank - 1) if self.data_format == "channels_last" else range(2, rank)
        b = inputs.builder
        axes = list(spatial)
        shape = None if inputs.shape is None else tuple(1 if i in axes else d for i, d in enumerate(inputs.shape))
        like = b.op("Slice", [inputs, _ops.ints(b, [0] * len(axes)), _ops.ints(b, [1] * len(axes)),
                              _ops.ints(b, axes)], shape=shape)
        return self._drop(inputs, like)

    def get_config(self):
        config = super().get_config()
        config.pop("noise_shape")
        config.pop("trainable")  # Keras's spatial dropouts leave it out of their config
        config["data_format"] = self.data_format
        return config


class SpatialDropout1D(_SpatialDropout):
    """Dropout of whole channels of ``(batch, steps, channels)``: noise shape ``(batch, 1, channels)``."""

    _rank = 1

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any):
        super().__init__(rate, None, seed, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.pop("data_format")
        return config


class SpatialDropout2D(_SpatialDropout):
    """Dropout of whole feature maps of 4-D inputs (noise shape ``(batch, 1, 1, channels)``).

    Example:
        >>> from onnxforge.layers import Input, SpatialDropout2D
        >>> SpatialDropout2D(0.2)(Input(shape=(8, 8, 3))).shape
        (None, 8, 8, 3)
    """

    _rank = 2


class SpatialDropout3D(_SpatialDropout):
    """Dropout of whole feature maps of 5-D inputs."""

    _rank = 3


class GaussianDropout(Layer):
    """Multiplies inputs by ``N(1, rate / (1 - rate))`` noise in training (Keras 3's ``GaussianDropout``)."""

    supports_masking = True

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.rate = _check_rate(self.name, rate)
        self.seed = seed
        if self.rate > 0:   # listed in `variables` as Keras lists it (see seed_state.py)
            self.seed_generator = LayerSeedGenerator(seed)

    def call(self, inputs, training=False):
        if not training or self.rate == 0.0:
            return inputs
        stddev = math.sqrt(self.rate / (1.0 - self.rate)) if self.rate < 1.0 else float("inf")
        return _ops.elementwise(inputs, lambda x: x * (standard_normal(x) * stddev + 1.0))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _count_flops(self, input_shapes, output_shapes):
        return 0

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class AlphaDropout(Layer):
    """Dropout that keeps the mean and variance of SELU activations (Keras 3's ``AlphaDropout``): dropped
    inputs are set to ``-alpha * scale`` of SELU, then an affine map restores the statistics."""

    supports_masking = True

    def __init__(self, rate: float, noise_shape: Any = None, seed: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.rate = _check_rate(self.name, rate)
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self.seed = seed
        if self.rate > 0:
            self.seed_generator = LayerSeedGenerator(seed)

    def call(self, inputs, training=False):
        if not training or self.rate == 0.0:
            return inputs
        b = inputs.builder
        like = inputs
        if self.noise_shape is not None:
            axes = [i for i, d in enumerate(self.noise_shape) if d == 1 and inputs.shape[i] != 1]
            if axes:
                shape = tuple(1 if i in axes else d for i, d in enumerate(inputs.shape))
                like = b.op("Slice", [inputs, _ops.ints(b, [0] * len(axes)), _ops.ints(b, [1] * len(axes)),
                                      _ops.ints(b, axes)], shape=shape)
        alpha, scale = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
        alpha_p = -alpha * scale
        kept = b.op("Cast", [b.op("GreaterOrEqual", [current_trace().random_uniform(like), self.rate])],
                    to=inputs.dtype)
        a = ((1 - self.rate) * (1 + self.rate * alpha_p ** 2)) ** -0.5
        shift = -a * alpha_p * self.rate
        x = inputs * kept + (1.0 - kept) * alpha_p
        return x * a + shift

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _count_flops(self, input_shapes, output_shapes):
        return 0

    def get_config(self):
        noise = None if self.noise_shape is None else list(self.noise_shape)
        return {**super().get_config(), "rate": self.rate, "seed": self.seed, "noise_shape": noise}


class ActivityRegularization(Layer):
    """Passes inputs through and adds ``l1 * sum(|x|) + l2 * sum(x²)`` (over the batch size) to the loss.

    Example:
        >>> from onnxforge.layers import ActivityRegularization, Input
        >>> ActivityRegularization(l2=0.01)(Input(shape=(3,))).shape
        (None, 3)
    """

    supports_masking = True

    def __init__(self, l1: float = 0.0, l2: float = 0.0, **kwargs: Any):
        kwargs.pop("activity_regularizer", None)  # always L1L2(l1, l2), as Keras
        super().__init__(activity_regularizer=regularizers_mod.L1L2(l1=l1, l2=l2), **kwargs)
        self.l1, self.l2 = float(l1), float(l2)

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _count_flops(self, input_shapes, output_shapes):
        return 0

    def get_config(self):
        config = super().get_config()
        config.pop("activity_regularizer", None)
        return {**config, "l1": self.l1, "l2": self.l2}
