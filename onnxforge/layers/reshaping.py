"""Reshaping layers: ``Flatten``, ``Reshape``, ``Permute``, ``ZeroPadding2D``, ``UpSampling2D``."""
from __future__ import annotations

__all__ = ["Flatten", "Reshape", "Permute", "ZeroPadding2D", "UpSampling2D", "normalize_data_format",
           "normalize_tuple"]

from typing import Any

import numpy as np

from . import _ops
from .base import InputSpec, Layer


def normalize_data_format(value: Any) -> str:
    """``"channels_last"`` (the default) or ``"channels_first"``."""
    if value is None:
        return "channels_last"
    data_format = str(value).lower()
    if data_format not in ("channels_first", "channels_last"):
        raise ValueError("The `data_format` argument must be one of {'channels_first', 'channels_last'}. "
                         f"Received: data_format={value!r}")
    return data_format


def normalize_tuple(value: Any, n: int, name: str, allow_zero: bool = False) -> tuple[int, ...]:
    """An int or ``n`` ints as a tuple of ``n`` positive (or non-negative) ints, Keras-style errors."""
    values = (value,) * n if isinstance(value, (int, np.integer)) else tuple(value)
    ok = len(values) == n and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values)
    if ok and all(v > 0 or (allow_zero and v == 0) for v in values):
        return tuple(int(v) for v in values)
    req = "non-negative" if allow_zero else "positive"
    raise ValueError(f"The `{name}` argument must be a tuple of {n} {req} integers (or one integer). "
                     f"Received: {name}={value!r}")


class _ShapeLayer(Layer):
    """Layers that only move data: integer inputs stay integers."""

    _autocast = False

    def _output_dtype(self, input_dtypes):
        return input_dtypes[0] or self.compute_dtype

    def _count_flops(self, input_shapes, output_shapes):
        return 0


def _prod(dims) -> int | None:
    return None if any(d is None for d in dims) else int(np.prod(dims, dtype=np.int64))


class Flatten(_ShapeLayer):
    """Flattens all but the batch dim, in Keras (channels_last, row-major) order.

    With ``data_format="channels_first"`` the input is moved to channels_last first, so weights of the
    next layer are the same in either layout (as Keras).
    """

    def __init__(self, data_format: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.data_format = normalize_data_format(data_format)
        self.input_spec = InputSpec(min_ndim=1)

    def call(self, inputs):
        x = inputs
        rank = len(x.shape)
        if self.data_format == "channels_first" and rank > 2:
            x = _ops.transpose(x, (0, *range(2, rank), 1))
        size = _prod(_ops.static_shape(x)[1:])
        target = [-1, size] if size is not None else [0, -1]
        return x.builder.op("Reshape", [x, _ops.ints(x.builder, target)])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], _prod(input_shape[1:]))

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


class Reshape(_ShapeLayer):
    """Reshapes the non-batch dims to ``target_shape`` (one entry may be ``-1``)."""

    def __init__(self, target_shape: Any, **kwargs: Any):
        super().__init__(**kwargs)
        target = tuple(target_shape)
        if not all(isinstance(d, (int, np.integer)) and (d > 0 or d == -1) for d in target):
            raise ValueError(f"Layer {self.name!r}: `target_shape` must hold positive integers and at most one -1. "
                             f"Received: target_shape={target_shape!r}")
        if sum(1 for d in target if d == -1) > 1:
            raise ValueError("There must be at most one unknown dimension (-1) in target_shape. "
                             f"Received: target_shape={target_shape!r}")
        self.target_shape = tuple(int(d) for d in target)

    def _resolved(self, input_shape) -> tuple:
        size = _prod(input_shape[1:])
        known = int(np.prod([d for d in self.target_shape if d != -1], dtype=np.int64))
        if -1 not in self.target_shape:
            if size is not None and size != known:
                raise ValueError(f"Layer {self.name!r}: the total size of the tensor must be unchanged. Received: "
                                 f"input_shape={tuple(input_shape)}, target_shape={self.target_shape}")
            return self.target_shape
        if size is None:
            return tuple(None if d == -1 else d for d in self.target_shape)
        if known == 0 or size % known:
            raise ValueError(f"Layer {self.name!r}: the total size of the tensor must be unchanged. Received: "
                             f"input_shape={tuple(input_shape)}, target_shape={self.target_shape}")
        return tuple(size // known if d == -1 else d for d in self.target_shape)

    def build(self, input_shape):
        self._resolved(input_shape)  # validates the sizes while the model is built
        self.built = True

    def call(self, inputs):
        resolved = self._resolved(_ops.static_shape(inputs))
        target = [0, *(-1 if d is None else d for d in resolved)]
        return inputs.builder.op("Reshape", [inputs, _ops.ints(inputs.builder, target)])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self._resolved(input_shape))

    def get_config(self):
        return {**super().get_config(), "target_shape": tuple(self.target_shape)}


class Permute(_ShapeLayer):
    """Permutes the non-batch dims; ``dims`` is 1-indexed (``(2, 1)`` swaps the two non-batch axes)."""

    def __init__(self, dims: Any, **kwargs: Any):
        super().__init__(**kwargs)
        dims = tuple(dims)
        if sorted(dims) != list(range(1, len(dims) + 1)):
            raise ValueError("Invalid permutation argument `dims` for Permute Layer. The set of indices in `dims` "
                             f"must be consecutive and start from 1. Received dims={dims}")
        self.dims = tuple(int(d) for d in dims)
        self.input_spec = InputSpec(ndim=len(self.dims) + 1)

    def call(self, inputs):
        return _ops.transpose(inputs, (0, *self.dims))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *(input_shape[d] for d in self.dims))

    def get_config(self):
        return {**super().get_config(), "dims": tuple(self.dims)}


class ZeroPadding2D(_ShapeLayer):
    """Pads rows and columns with zeros: ``padding`` is an int, ``(rows, cols)`` or
    ``((top, bottom), (left, right))``."""

    def __init__(self, padding: Any = (1, 1), data_format: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.data_format = normalize_data_format(data_format)
        if isinstance(padding, (int, np.integer)):
            pads = ((padding, padding), (padding, padding))
        elif len(padding) == 2 and all(isinstance(p, (int, np.integer)) for p in padding):
            pads = ((padding[0], padding[0]), (padding[1], padding[1]))
        elif len(padding) == 2:
            pads = tuple(normalize_tuple(p, 2, "padding", allow_zero=True) for p in padding)
        else:
            pads = None
        if pads is None or any(int(v) < 0 for p in pads for v in p):
            raise ValueError("`padding` should be an int, a tuple of 2 non-negative ints or a tuple of 2 tuples "
                             f"of 2 non-negative ints. Received: padding={padding!r}")
        self.padding = tuple(tuple(int(v) for v in p) for p in pads)
        self.input_spec = InputSpec(ndim=4)

    def _spatial_axes(self) -> tuple[int, int]:
        return (1, 2) if self.data_format == "channels_last" else (2, 3)

    def call(self, inputs):
        src, perm = _ops.peel(inputs)
        begins, ends = [0] * 4, [0] * 4
        for axis, (before, after) in zip(self._spatial_axes(), self.padding):
            at = perm[axis] if perm is not None else axis  # the same axis in the untransposed value
            begins[at], ends[at] = before, after
        b = inputs.builder
        out = b.op("Pad", [src, _ops.ints(b, begins + ends)], mode="constant")
        if src.shape is not None:
            out.shape = tuple(d + begins[i] + ends[i] if isinstance(d, int) else d for i, d in enumerate(src.shape))
        return out if perm is None else _ops.transpose(out, perm)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        for axis, (before, after) in zip(self._spatial_axes(), self.padding):
            shape[axis] = None if shape[axis] is None else shape[axis] + before + after
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "padding": tuple(tuple(p) for p in self.padding), "data_format": self.data_format}


class UpSampling2D(_ShapeLayer):
    """Repeats rows and columns ``size`` times (``"nearest"``) or resizes bilinearly (``"bilinear"``).

    Nearest upsampling of known spatial sizes is a Reshape / Expand / Reshape (differentiable with the
    shape rules); other cases use ONNX ``Resize``.
    """

    def __init__(self, size: Any = (2, 2), data_format: str | None = None, interpolation: str = "nearest",
                 **kwargs: Any):
        super().__init__(**kwargs)
        self.data_format = normalize_data_format(data_format)
        self.size = normalize_tuple(size, 2, "size")
        if interpolation not in ("nearest", "bilinear"):
            raise ValueError("`interpolation` argument should be one of: 'nearest', 'bilinear'. "
                             f"Received: interpolation={interpolation!r}")
        self.interpolation = interpolation
        self.input_spec = InputSpec(ndim=4)

    def call(self, inputs):
        x, layout = inputs, self.data_format
        src, perm = _ops.peel(inputs)
        if layout == "channels_last" and perm == (0, 2, 3, 1):
            x, layout = src, "channels_first"  # work in the NCHW value a conv produced
        out = self._upsample(x, layout)
        return _ops.transpose(out, (0, 2, 3, 1)) if x is not inputs else out

    def _upsample(self, x, layout):
        b = x.builder
        sh, sw = self.size
        shape = _ops.static_shape(x)
        if layout == "channels_last":
            n, h, w, c = shape
            split, tile, out_shape = [-1, h, 1, w, 1, c], [1, 1, sh, 1, sw, 1], (x.shape[0], None, None, c)
            scales = [1.0, sh, sw, 1.0]
        else:
            n, c, h, w = shape
            split, tile, out_shape = [-1, c, h, 1, w, 1], [1, 1, 1, sh, 1, sw], (x.shape[0], c, None, None)
            scales = [1.0, 1.0, sh, sw]
        hw = (None if h is None else h * sh, None if w is None else w * sw)
        out_shape = tuple(hw[0] if i == (1 if layout == "channels_last" else 2) else
                          hw[1] if i == (2 if layout == "channels_last" else 3) else d for i, d in enumerate(out_shape))
        if self.interpolation == "nearest" and None not in (h, w, c):
            expanded = b.op("Expand", [b.op("Reshape", [x, _ops.ints(b, split)]), _ops.ints(b, tile)])
            final = [-1, *(d for d in out_shape[1:])]
            return b.op("Reshape", [expanded, _ops.ints(b, final)], shape=out_shape)
        attrs = ({"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
                 if self.interpolation == "nearest" else
                 {"mode": "linear", "coordinate_transformation_mode": "half_pixel"})
        scales_v = b.const(np.asarray(scales, np.float32))
        return b.op("Resize", [x, "", scales_v], shape=out_shape, **attrs)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        axes = (1, 2) if self.data_format == "channels_last" else (2, 3)
        for axis, s in zip(axes, self.size):
            shape[axis] = None if shape[axis] is None else shape[axis] * s
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "size": tuple(self.size), "data_format": self.data_format,
                "interpolation": self.interpolation}
