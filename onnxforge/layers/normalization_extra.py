"""``GroupNormalization``, ``UnitNormalization`` and ``RMSNormalization`` (Keras 3 formulas and weights).

All three are plain arithmetic (ReduceMean / ReduceSum, Sqrt, Reciprocal, Mul, Reshape), so gradients come
from the elementwise, reduction and shape rules.
"""
from __future__ import annotations

__all__ = ["GroupNormalization", "UnitNormalization", "RMSNormalization"]

from typing import Any

import numpy as np

from .. import initializers as initializers_mod
from .. import regularizers as regularizers_mod
from .. import constraints as constraints_mod
from ..graph import emit as _ops
from ._math import l2_normalize
from .base import InputSpec, Layer
from .core import set_constraints


def _axes_list(axis: Any) -> list[int]:
    return [int(a) for a in axis] if isinstance(axis, (list, tuple)) else [int(axis)]


def _check_axes(layer: Layer, axis: Any, rank: int) -> list[int]:
    out = []
    for a in _axes_list(axis):
        if not -rank <= a < rank:
            raise ValueError(f"Axis {a} is out of bounds for input shape of rank {rank} (layer {layer.name!r}). "
                             f"Received: axis={axis}")
        out.append(a % rank)
    return sorted(out)


class GroupNormalization(Layer):
    """Normalizes each example over groups of channels (Wu & He, 2018), Keras 3's ``GroupNormalization``.

    The ``axis`` channels are split into ``groups`` (``-1``: one group per channel, instance
    normalization); mean and variance run over each group and all other non-batch axes. Weights:
    ``gamma (channels,)`` then ``beta (channels,)``.

    Example:
        >>> from onnxforge.layers import GroupNormalization, Input
        >>> GroupNormalization(groups=2)(Input(shape=(5, 5, 4))).shape
        (None, 5, 5, 4)
    """

    supports_masking = True

    def __init__(self, groups: int = 32, axis: int = -1, epsilon: float = 1e-3, center: bool = True,
                 scale: bool = True, beta_initializer: Any = "zeros", gamma_initializer: Any = "ones",
                 beta_regularizer: Any = None, gamma_regularizer: Any = None, beta_constraint: Any = None,
                 gamma_constraint: Any = None, **kwargs: Any):
        super().__init__(**kwargs)
        if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or (groups <= 0 and groups != -1):
            raise ValueError(f"Layer {self.name!r}: `groups` must be a positive integer or -1. Received: groups={groups!r}")
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ValueError(f"Layer {self.name!r}: `axis` must be an integer. Received: axis={axis!r}")
        set_constraints(self, beta_constraint=beta_constraint, gamma_constraint=gamma_constraint)
        self.groups, self.axis, self.epsilon = int(groups), int(axis), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers_mod.get(beta_initializer)
        self.gamma_initializer = initializers_mod.get(gamma_initializer)
        self.beta_regularizer = regularizers_mod.get(beta_regularizer)
        self.gamma_regularizer = regularizers_mod.get(gamma_regularizer)

    def build(self, input_shape):
        _check_axes(self, self.axis, len(input_shape))   # a clear error, not an IndexError, for a bad config
        dim = input_shape[self.axis]
        if dim is None:
            raise ValueError(f"Axis {self.axis} of input tensor should have a defined dimension but the layer "
                             f"received an input with shape {tuple(input_shape)}.")
        if self.groups == -1:
            self.groups = dim
        if dim < self.groups:
            raise ValueError(f"Number of groups ({self.groups}) cannot be more than the number of channels ({dim}).")
        if dim % self.groups != 0:
            raise ValueError(f"Number of groups ({self.groups}) must be a multiple of the number of channels ({dim}).")
        self.input_spec = InputSpec(ndim=len(input_shape), axes={self.axis: dim})
        self.gamma = (self.add_weight(shape=(dim,), name="gamma", initializer=self.gamma_initializer,
                                      regularizer=self.gamma_regularizer,
                                      constraint=self.gamma_constraint) if self.scale else None)
        self.beta = (self.add_weight(shape=(dim,), name="beta", initializer=self.beta_initializer,
                                     regularizer=self.beta_regularizer,
                                     constraint=self.beta_constraint) if self.center else None)

    def call(self, inputs):
        b = inputs.builder
        rank = len(inputs.shape)
        axis = self.axis % rank
        channels = _ops.static_shape(inputs)[axis]
        shape = b.op("Shape", [inputs])
        # (..., C, ...) -> (..., G, C / G, ...): the dynamic dims are read from the input's shape.
        pieces = []
        if axis > 0:
            pieces.append(b.op("Slice", [shape, _ops.ints(b, [0]), _ops.ints(b, [axis])]))
        pieces.append(_ops.ints(b, [self.groups, channels // self.groups]))
        if axis + 1 < rank:
            pieces.append(b.op("Slice", [shape, _ops.ints(b, [axis + 1]), _ops.ints(b, [rank])]))
        grouped = b.op("Reshape", [inputs, b.op("Concat", pieces, axis=0)])
        axes = [i for i in range(1, rank + 1) if i != axis]
        # Keras (torch backend): variance = E[x²] - E[x]².
        mean = _ops.reduce("ReduceMean", grouped, axes, keepdims=True)
        variance = _ops.reduce("ReduceMean", grouped * grouped, axes, keepdims=True) - mean * mean
        inv = b.op("Reciprocal", [b.op("Sqrt", [variance + self.epsilon])])
        y = b.op("Reshape", [(grouped - mean) * inv, shape])
        bshape = _ops.ints(b, [channels if i == axis else 1 for i in range(rank)])
        if self.gamma is not None:
            y = y * b.op("Reshape", [self.gamma, bshape])
        if self.beta is not None:
            y = y + b.op("Reshape", [self.beta, bshape])
        return y

    def compute_output_shape(self, input_shape):
        _check_axes(self, self.axis, len(input_shape))
        return tuple(input_shape)

    def _count_flops(self, input_shapes, output_shapes):
        return 7 * int(np.prod([d or 1 for d in input_shapes[0][1:]]))

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "axis": self.axis, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale,
                "beta_initializer": initializers_mod.serialize(self.beta_initializer),
                "gamma_initializer": initializers_mod.serialize(self.gamma_initializer),
                "beta_regularizer": regularizers_mod.serialize(self.beta_regularizer),
                "gamma_regularizer": regularizers_mod.serialize(self.gamma_regularizer),
                "beta_constraint": constraints_mod.serialize(self.beta_constraint),
                "gamma_constraint": constraints_mod.serialize(self.gamma_constraint)}


class UnitNormalization(Layer):
    """Scales each example to unit L2 norm over ``axis`` (an int or a list): ``x * min(1 / norm(x), 1e12)``.

    Example:
        >>> from onnxforge.layers import Input, UnitNormalization
        >>> UnitNormalization()(Input(shape=(3,))).shape
        (None, 3)
    """

    supports_masking = True

    def __init__(self, axis: Any = -1, **kwargs: Any):
        super().__init__(**kwargs)
        if not isinstance(axis, (int, np.integer, list, tuple)):
            raise TypeError(f"Invalid value for `axis` argument: expected an int or a list/tuple of ints. "
                            f"Received: axis={axis}")
        self.axis = [int(a) for a in axis] if isinstance(axis, (list, tuple)) else int(axis)

    def call(self, inputs):
        return l2_normalize(inputs, _check_axes(self, self.axis, len(inputs.shape)), 1e-12)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class RMSNormalization(Layer):
    """``x * rsqrt(mean(x², axis) + epsilon) * scale`` (Keras 3's ``RMSNormalization``); weight ``scale``
    shaped like the normalized axes.

    Example:
        >>> from onnxforge.layers import Input, RMSNormalization
        >>> RMSNormalization()(Input(shape=(4, 6))).shape
        (None, 4, 6)
    """

    def __init__(self, axis: Any = -1, epsilon: float = 1e-6, **kwargs: Any):
        super().__init__(**kwargs)
        self.axis = [int(a) for a in axis] if isinstance(axis, (list, tuple)) else int(axis)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        axes = _check_axes(self, self.axis, len(input_shape))
        shape = tuple(input_shape[a] for a in axes)
        if any(d is None for d in shape):
            raise ValueError(f"Layer {self.name!r}: the normalized axes must have known sizes. "
                             f"Received: input_shape={tuple(input_shape)}")
        self.scale = self.add_weight(name="scale", shape=shape, initializer="ones")

    def call(self, x):
        b = x.builder
        rank = len(x.shape)
        axes = _check_axes(self, self.axis, rank)
        mean_square = _ops.reduce("ReduceMean", x * x, axes, keepdims=True)
        y = x * b.op("Reciprocal", [b.op("Sqrt", [mean_square + self.epsilon])])
        shape = _ops.static_shape(x)
        return y * b.op("Reshape", [self.scale, _ops.ints(b, [shape[i] if i in axes else 1 for i in range(rank)])])

    def compute_output_shape(self, input_shape):
        _check_axes(self, self.axis, len(input_shape))
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon}
