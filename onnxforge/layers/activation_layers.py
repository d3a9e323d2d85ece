"""Activation layers: ``ReLU``, ``LeakyReLU``, ``ELU``, ``Softmax``."""
from __future__ import annotations

__all__ = ["ReLU", "LeakyReLU", "Softmax", "ELU", "PReLU"]

from typing import Any

import numpy as np

from .. import activations as activations_mod
from .. import initializers as initializers_mod
from .. import regularizers as regularizers_mod
from .. import constraints as constraints_mod
from ..graph import emit as _ops
from .base import InputSpec, Layer
from .core import set_constraints


def _elems(shape) -> int:
    return int(np.prod([d or 1 for d in shape[1:]]))


class ReLU(Layer):
    """``max(x, 0)`` with Keras's ``max_value``, ``negative_slope`` and ``threshold``."""

    supports_masking = True

    def __init__(self, max_value: float | None = None, negative_slope: float = 0.0, threshold: float = 0.0,
                 **kwargs: Any):
        super().__init__(**kwargs)
        if max_value is not None and max_value < 0.0:
            raise ValueError(f"max_value of a ReLU layer cannot be a negative value. Received: max_value={max_value}")
        if negative_slope is None or negative_slope < 0.0:
            raise ValueError("negative_slope of a ReLU layer cannot be a negative value. "
                             f"Received: negative_slope={negative_slope}")
        if threshold is None or threshold < 0.0:
            raise ValueError(f"threshold of a ReLU layer cannot be a negative value. Received: threshold={threshold}")
        self.max_value = None if max_value is None else float(max_value)
        self.negative_slope, self.threshold = float(negative_slope), float(threshold)

    def call(self, inputs):
        return _ops.elementwise(inputs, lambda x: activations_mod.relu(
            x, negative_slope=self.negative_slope, max_value=self.max_value, threshold=self.threshold))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _count_flops(self, input_shapes, output_shapes):
        return _elems(output_shapes[0])

    def get_config(self):
        return {**super().get_config(), "max_value": self.max_value, "negative_slope": self.negative_slope,
                "threshold": self.threshold}


class LeakyReLU(Layer):
    """``x`` for ``x >= 0``, else ``negative_slope * x``; Keras 3 layer default ``negative_slope=0.3``.

    ``alpha`` (the tf.keras 2 name) is accepted too.
    """

    supports_masking = True

    def __init__(self, negative_slope: float = 0.3, **kwargs: Any):
        if "alpha" in kwargs:
            negative_slope = kwargs.pop("alpha")
        super().__init__(**kwargs)
        if negative_slope is None or negative_slope < 0.0:
            raise ValueError("The negative_slope value of a Leaky ReLU layer cannot be None or negative. "
                             f"Received: negative_slope={negative_slope}")
        self.negative_slope = float(negative_slope)

    def call(self, inputs):
        return _ops.elementwise(inputs, lambda x: activations_mod.leaky_relu(x, self.negative_slope))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _count_flops(self, input_shapes, output_shapes):
        return _elems(output_shapes[0])

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


class ELU(Layer):
    """``x`` for ``x > 0``, else ``alpha * (exp(x) - 1)``."""

    supports_masking = True

    def __init__(self, alpha: float = 1.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.alpha = float(alpha)

    def call(self, inputs):
        return _ops.elementwise(inputs, lambda x: activations_mod.elu(x, self.alpha))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _count_flops(self, input_shapes, output_shapes):
        return _elems(output_shapes[0])

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


class Softmax(Layer):
    """Softmax along ``axis`` (an int or a list of ints, default ``-1``).

    An optional ``mask`` (broadcastable to the inputs; bool, or > 0.5) excludes entries as Keras 3 does:
    they get ``-1e9`` before the softmax and ``0`` after it (so a fully masked row is all zeros).
    """

    supports_masking = True

    def __init__(self, axis: Any = -1, **kwargs: Any):
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            self.axis: Any = [int(a) for a in axis]
        else:
            self.axis = int(axis)

    def _axes(self, rank: int) -> list[int]:
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        for a in axes:
            if not -rank <= a < rank:
                raise ValueError(f"Layer {self.name!r}: axis={self.axis} is out of range for input rank {rank}.")
        return sorted(a % rank for a in axes)

    def call(self, inputs, mask=None):
        from .attention._common import as_bool, masked_softmax

        rank = len(inputs.shape)
        axes = self._axes(rank)
        if mask is not None:
            if mask.rank is not None and mask.rank > rank:
                raise ValueError("The `mask` must be broadcastable to `inputs` and must not have more dimensions. "
                                 f"Received: inputs.shape={_ops.static_shape(inputs)}, "
                                 f"mask.shape={_ops.static_shape(mask)}")
            m_shape, i_shape = _ops.static_shape(mask), _ops.static_shape(inputs)
            if m_shape is not None and i_shape is not None:
                for m, i in zip(m_shape[::-1], i_shape[::-1]):
                    if m is not None and i is not None and m not in (1, i):
                        raise ValueError("The `mask` must be broadcastable to `inputs`. Each mask dimension must be "
                                         f"1 or match the corresponding input dimension. Received: "
                                         f"inputs.shape={i_shape}, mask.shape={m_shape}")
            return masked_softmax(inputs, as_bool(mask), axes)
        if len(axes) > 1:
            return masked_softmax(inputs, None, axes)
        x, perm = _ops.peel(inputs)
        axis = axes[0]
        y = activations_mod.softmax(x, axis=perm[axis] if perm is not None else axis)
        return y if perm is None else _ops.transpose(y, perm)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _count_flops(self, input_shapes, output_shapes):
        return 3 * _elems(output_shapes[0])

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class PReLU(Layer):
    """Parametric ReLU: ``relu(x) - alpha * relu(-x)`` with a learned ``alpha`` shaped like the input
    (without the batch dim; ``shared_axes`` get size 1), as Keras 3's ``PReLU``.

    Example:
        >>> from onnxforge.layers import Input, PReLU
        >>> layer = PReLU(shared_axes=[1, 2])
        >>> _ = layer(Input(shape=(4, 4, 3))); layer.alpha.shape
        (1, 1, 3)
    """

    supports_masking = True

    def __init__(self, alpha_initializer: Any = "Zeros", alpha_regularizer: Any = None, alpha_constraint: Any = None,
                 shared_axes: Any = None, **kwargs: Any):
        super().__init__(**kwargs)
        set_constraints(self, alpha_constraint=alpha_constraint)
        self.alpha_initializer = initializers_mod.get(alpha_initializer)
        self.alpha_regularizer = regularizers_mod.get(alpha_regularizer)
        if shared_axes is None:
            self.shared_axes = None
        else:
            self.shared_axes = [int(a) for a in (shared_axes if isinstance(shared_axes, (list, tuple))
                                                 else [shared_axes])]

    def build(self, input_shape):
        shape = list(input_shape[1:])
        for i in self.shared_axes or ():
            if not 1 <= i < len(input_shape):
                raise ValueError(f"Layer {self.name!r}: shared axis {i} is out of range for input_shape "
                                 f"{tuple(input_shape)} (axes count from 1, after the batch).")
            shape[i - 1] = 1
        if any(d is None for d in shape):
            raise ValueError(f"Layer {self.name!r}: `alpha` needs known input dims (or share the unknown ones with "
                             f"`shared_axes`). Received: input_shape={tuple(input_shape)}")
        self.alpha = self.add_weight(shape=tuple(shape), name="alpha", initializer=self.alpha_initializer,
                                     regularizer=self.alpha_regularizer, constraint=self.alpha_constraint)
        axes = {i: input_shape[i] for i in range(1, len(input_shape)) if i not in (self.shared_axes or ())}
        self.input_spec = InputSpec(ndim=len(input_shape), axes=axes if self.shared_axes else {})

    def call(self, inputs):
        b = inputs.builder
        return b.op("Relu", [inputs]) - self.alpha * b.op("Relu", [-inputs])

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _count_flops(self, input_shapes, output_shapes):
        return 3 * _elems(output_shapes[0])

    def get_config(self):
        return {**super().get_config(),
                "alpha_initializer": initializers_mod.serialize(self.alpha_initializer),
                "alpha_regularizer": regularizers_mod.serialize(self.alpha_regularizer),
                "alpha_constraint": constraints_mod.serialize(self.alpha_constraint), "shared_axes": self.shared_axes}
