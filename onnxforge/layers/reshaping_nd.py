"""Reshaping layers beyond 2-D images: ``RepeatVector``, ``Cropping1D/2D/3D``, ``ZeroPadding1D/3D``,
``UpSampling1D/3D`` (Keras 3 arguments, defaults and output shapes).

Cropping is a ``Slice`` and padding a ``Pad``; nearest upsampling repeats each step with an
``Unsqueeze`` / ``Expand`` / ``Reshape``, all of which have gradient rules.
"""
from __future__ import annotations

__all__ = ["RepeatVector", "Cropping1D", "Cropping2D", "Cropping3D", "ZeroPadding1D", "ZeroPadding3D",
           "UpSampling1D", "UpSampling3D"]

from typing import Any

import numpy as np

from . import _ops
from .base import InputSpec
from .core import check_positive_int
from .reshaping import _ShapeLayer, normalize_data_format, normalize_tuple


def _pairs(layer: str, arg: str, value: Any, n: int) -> tuple[tuple[int, int], ...]:
    """An int, ``n`` ints (symmetric) or ``n`` pairs as ``n`` (before, after) pairs of non-negative ints."""
    def bad() -> ValueError:
        return ValueError(f"Layer {layer!r}: `{arg}` should be an int, a tuple of {n} ints or a tuple of {n} tuples of "
                          f"2 non-negative ints. Received: {arg}={value!r}")

    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        pairs = ((int(value), int(value)),) * n
    elif isinstance(value, (list, tuple)) and len(value) == n:
        pairs = tuple((int(v), int(v)) if isinstance(v, (int, np.integer)) else
                      tuple(normalize_tuple(v, 2, arg, allow_zero=True)) for v in value)
    elif n == 1 and isinstance(value, (list, tuple)) and len(value) == 2 and \
            all(isinstance(v, (int, np.integer)) for v in value):
        pairs = ((int(value[0]), int(value[1])),)
    else:
        raise bad()
    if any(v < 0 for p in pairs for v in p):
        raise bad()
    return pairs


def _spatial_axes(rank: int, data_format: str) -> list[int]:
    return list(range(1, rank + 1)) if data_format == "channels_last" else list(range(2, rank + 2))


class RepeatVector(_ShapeLayer):
    """Repeats a ``(batch, features)`` input ``n`` times: ``(batch, n, features)``.

    Example:
        >>> from onnxforge.layers import Input, RepeatVector
        >>> RepeatVector(3)(Input(shape=(4,))).shape
        (None, 3, 4)
    """

    def __init__(self, n: int, **kwargs: Any):
        super().__init__(**kwargs)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise TypeError(f"Expected an integer value for `n`, got {type(n)}.")
        self.n = int(n)
        self.input_spec = InputSpec(ndim=2)

    def call(self, inputs):
        b = inputs.builder
        x = b.op("Unsqueeze", [inputs, _ops.ints(b, [1])])
        return b.op("Expand", [x, _ops.ints(b, [1, self.n, 1])])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n, input_shape[1])

    def get_config(self):
        return {**super().get_config(), "n": self.n}


class _Cropping(_ShapeLayer):
    _rank = 2

    def __init__(self, cropping: Any, data_format: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.data_format = normalize_data_format(data_format)
        self.cropping = _pairs(self.name, "cropping", cropping, self._rank)
        self.input_spec = InputSpec(ndim=self._rank + 2)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        for axis, (a, b) in zip(_spatial_axes(self._rank, self.data_format), self.cropping):
            if shape[axis] is not None:
                shape[axis] -= a + b
                if shape[axis] <= 0:
                    raise ValueError(f"Layer {self.name!r}: `cropping` {self.cropping} leaves nothing of "
                                     f"input_shape={tuple(input_shape)}.")
        return tuple(shape)

    def build(self, input_shape):
        self.compute_output_shape(input_shape)  # reject croppings larger than the input while building

    def call(self, inputs):
        b = inputs.builder
        axes = _spatial_axes(self._rank, self.data_format)
        starts = [a for a, _ in self.cropping]
        # A negative end counts from the back: dynamic sizes crop without reading the shape.
        ends = [-e if e else np.iinfo(np.int64).max for _, e in self.cropping]
        return b.op("Slice", [inputs, _ops.ints(b, starts), _ops.ints(b, ends), _ops.ints(b, axes)])

    def get_config(self):
        cropping = tuple(tuple(p) for p in self.cropping)
        return {**super().get_config(), "cropping": cropping, "data_format": self.data_format}


class Cropping1D(_Cropping):
    """Crops steps of a ``(batch, steps, features)`` input: ``cropping`` is an int or ``(start, end)``."""

    _rank = 1

    def __init__(self, cropping: Any = (1, 1), **kwargs: Any):
        super().__init__(cropping, None, **kwargs)
        self.input_spec = InputSpec(ndim=3)

    def get_config(self):
        config = super().get_config()
        config.pop("data_format")
        config["cropping"] = tuple(self.cropping[0])
        return config


class Cropping2D(_Cropping):
    """Crops rows and columns: ``cropping`` is an int, ``(rows, cols)`` or ``((top, bottom), (left, right))``.

    Example:
        >>> from onnxforge.layers import Cropping2D, Input
        >>> Cropping2D(((1, 0), (2, 2)))(Input(shape=(6, 8, 3))).shape
        (None, 5, 4, 3)
    """

    _rank = 2

    def __init__(self, cropping: Any = ((0, 0), (0, 0)), data_format: str | None = None, **kwargs: Any):
        super().__init__(cropping, data_format, **kwargs)


class Cropping3D(_Cropping):
    """Crops the three spatial axes of a 5-D input."""

    _rank = 3

    def __init__(self, cropping: Any = ((1, 1), (1, 1), (1, 1)), data_format: str | None = None, **kwargs: Any):
        super().__init__(cropping, data_format, **kwargs)


class _ZeroPadding(_ShapeLayer):
    _rank = 1

    def __init__(self, padding: Any, data_format: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.data_format = normalize_data_format(data_format)
        self.padding = _pairs(self.name, "padding", padding, self._rank)
        self.input_spec = InputSpec(ndim=self._rank + 2)

    def call(self, inputs):
        rank = self._rank + 2
        begins, ends = [0] * rank, [0] * rank
        for axis, (a, b) in zip(_spatial_axes(self._rank, self.data_format), self.padding):
            begins[axis], ends[axis] = a, b
        b = inputs.builder
        return b.op("Pad", [inputs, _ops.ints(b, begins + ends)], mode="constant")

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        for axis, (a, b) in zip(_spatial_axes(self._rank, self.data_format), self.padding):
            shape[axis] = None if shape[axis] is None else shape[axis] + a + b
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "padding": tuple(tuple(p) for p in self.padding), "data_format": self.data_format}


class ZeroPadding1D(_ZeroPadding):
    """Pads steps with zeros: ``padding`` is an int or ``(start, end)``."""

    _rank = 1

    def __init__(self, padding: Any = 1, data_format: str | None = None, **kwargs: Any):
        super().__init__(padding, data_format, **kwargs)

    def get_config(self):
        return {**super().get_config(), "padding": tuple(self.padding[0])}


class ZeroPadding3D(_ZeroPadding):
    """Pads the three spatial axes of a 5-D input with zeros."""

    _rank = 3

    def __init__(self, padding: Any = ((1, 1), (1, 1), (1, 1)), data_format: str | None = None, **kwargs: Any):
        super().__init__(padding, data_format, **kwargs)


def _repeat(x, axes: list[int], sizes: tuple[int, ...]):
    """Repeat each element ``size`` times along each axis (nearest upsampling), in standard ops."""
    b = x.builder
    for axis, size in zip(axes, sizes):
        if size == 1:
            continue
        rank = len(x.shape)
        reps = [1] * (rank + 1)
        reps[axis + 1] = size
        tiled = b.op("Tile", [b.op("Unsqueeze", [x, _ops.ints(b, [axis + 1])]), _ops.ints(b, reps)])
        # The axis merged with its copies: the input's shape with that dim times `size` (works for
        # dynamic sizes too).
        factors = [1] * rank
        factors[axis] = size
        target = b.op("Mul", [b.op("Shape", [x]), _ops.ints(b, factors)])
        shape = None if x.shape is None else tuple(
            (d * size if isinstance(d, int) else None) if i == axis else d for i, d in enumerate(x.shape))
        x = b.op("Reshape", [tiled, target], shape=shape)
    return x


class UpSampling1D(_ShapeLayer):
    """Repeats each step ``size`` times: ``(batch, steps, features) -> (batch, steps * size, features)``."""

    def __init__(self, size: int = 2, **kwargs: Any):
        super().__init__(**kwargs)
        self.size = check_positive_int(self.name, "size", size)
        self.input_spec = InputSpec(ndim=3)

    def call(self, inputs):
        return _repeat(inputs, [1], (self.size,))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], None if input_shape[1] is None else input_shape[1] * self.size, input_shape[2])

    def get_config(self):
        return {**super().get_config(), "size": self.size}


class UpSampling3D(_ShapeLayer):
    """Repeats the three spatial axes of a 5-D input ``size`` times (nearest)."""

    def __init__(self, size: Any = (2, 2, 2), data_format: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.data_format = normalize_data_format(data_format)
        self.size = normalize_tuple(size, 3, "size")
        self.input_spec = InputSpec(ndim=5)

    def call(self, inputs):
        return _repeat(inputs, _spatial_axes(3, self.data_format), self.size)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        for axis, s in zip(_spatial_axes(3, self.data_format), self.size):
            shape[axis] = None if shape[axis] is None else shape[axis] * s
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "size": tuple(self.size), "data_format": self.data_format}
