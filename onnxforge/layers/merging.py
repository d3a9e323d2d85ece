"""Merging layers: ``Add``, ``Subtract``, ``Multiply``, ``Average``, ``Maximum``, ``Minimum``, ``Concatenate``.

Elementwise merges broadcast like Keras: non-batch dims right-aligned, a lower-rank input expanded at axis
1. When every input is the same pending layout transpose (two conv branches of a residual block), the merge
runs on the untransposed values.
"""
from __future__ import annotations

__all__ = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot"]

from typing import Any

import numpy as np
import onnx

from ..backend_config import floatx
from ..graph import emit as _ops
from ..graph.value import broadcast_shapes, onnx_dtype
from ..ops._util import cast_value, promote
from .base import Layer


def _same_perm_sources(values: list) -> tuple[list, tuple | None]:
    """The untransposed inputs and their shared perm, when all inputs are the same kind of transpose."""
    peeled = [_ops.peel(v) for v in values]
    perms = {p for _, p in peeled}
    if len(perms) == 1 and None not in perms:
        return [s for s, _ in peeled], perms.pop()
    return values, None


def _common_type(values: list) -> list:
    """The inputs in the one type Keras's ops give them (int32 + int32 stays int32, int + float -> float)."""
    return promote(values[0].builder, *values) if len({v.dtype for v in values}) > 1 else values


def _keras_int32(values: list) -> list:
    """Integer and bool inputs as int32, the type Keras's ``batch_dot`` answers them in on torch."""
    return [v if v.is_float else cast_value(v, onnx.TensorProto.INT32) for v in values]


class _Merge(Layer):
    _min_inputs = 1
    # Keras's merge layers compute integers as integers (eagerly, Add of int32 arrays is int32); only floating
    # inputs are cast to the compute dtype.
    _autocast = False

    def _check_list(self, input_shape: Any) -> list:
        if not isinstance(input_shape, (list, tuple)) or not input_shape or \
                not all(isinstance(s, (list, tuple)) for s in input_shape):
            raise ValueError(f"A merge layer ({self.name!r}) should be called on a list of inputs. "
                             f"Received: input_shape={input_shape!r} (not a list of shapes)")
        if len(input_shape) < self._min_inputs:
            raise ValueError(f"A `{type(self).__name__}` layer ({self.name!r}) should be called on a list of at "
                             f"least {self._min_inputs} inputs. Received: {len(input_shape)} inputs.")
        return [tuple(s) for s in input_shape]

    def _output_dtype(self, input_dtypes):
        # Keras's symbolic answer is the compute dtype whatever the inputs (its eager answer follows them).
        return "string" if "string" in input_dtypes else self.compute_dtype

    def _count_flops(self, input_shapes, output_shapes):
        return 0

    def compute_mask(self, inputs, mask=None):
        """Keras: a step survives the merge only if every input's mask keeps it."""
        masks = [m for m in (mask or []) if m is not None] if isinstance(mask, (list, tuple)) else \
            ([] if mask is None else [mask])
        if not masks:
            return None
        out = masks[0]
        for m in masks[1:]:
            out = out.builder.op("And", [out, m], shape=out.shape)
        return out


def _broadcast(layer: str, a: tuple, b: tuple) -> tuple:
    """Keras's elementwise output shape of non-batch dims ``a`` and ``b`` (right-aligned)."""
    if len(a) < len(b):
        a, b = b, a
    out = list(a[: len(a) - len(b)])
    for i, j in zip(a[len(a) - len(b):], b):
        if i is None or j is None:
            out.append(None)   # Keras's merge layers: unknown whenever one side is unknown
        elif i == 1:
            out.append(j)
        elif j == 1 or i == j:
            out.append(i)
        else:
            raise ValueError(f"Inputs have incompatible shapes. Received shapes {a} and {b} (layer {layer!r})")
    return tuple(out)


class _ElementwiseMerge(_Merge):
    _op = "Add"
    #: The ONNX op on bools (Keras's torch ops: True + True is True, max is or, product is and).
    _bool_op: str | None = "Or"

    def build(self, input_shape):
        self.compute_output_shape(input_shape)  # validates broadcasting while the model is built
        self.built = True

    def compute_output_shape(self, input_shape):
        shapes = self._check_list(input_shape)
        out = shapes[0][1:]
        for s in shapes[1:]:
            out = _broadcast(self.name, out, s[1:])
        # A batch of 1 broadcasts against the traced batch (keras.io's Perceiver adds its (1, latent, dim)
        # latent array to a batch of attention outputs); different known batches are unknown, as in Keras.
        batches = {s[0] for s in shapes}
        if batches == {1}:
            return (1, *out)
        known = batches - {None, 1}
        return (known.pop() if len(known) == 1 and None not in batches else None, *out)

    def _combine(self, values: list) -> Any:
        b = values[0].builder
        op = self._op
        if values[0].dtype == onnx.TensorProto.BOOL:
            if self._bool_op is None:
                raise TypeError(f"Layer {self.name!r} ({type(self).__name__}) cannot combine bool inputs, as "
                                f"Keras cannot subtract bools. Cast them to an integer or float dtype first.")
            op = self._bool_op
        out = values[0]
        for v in values[1:]:
            out = b.op(op, [out, v])
        return out

    def call(self, inputs):
        values = _common_type(list(inputs))
        rank = max(len(v.shape) for v in values)
        if all(len(v.shape) == rank for v in values):
            sources, perm = _same_perm_sources(values)
            if perm is not None:
                out = self._combine(sources)
                out.shape = broadcast_shapes(*(v.shape for v in sources))   # a batch of 1 broadcasts
                return _ops.transpose(out, perm)
        # Keras expands lower-rank inputs at axis 1 until all ranks match.
        expanded = []
        for v in values:
            if len(v.shape) < rank:
                axes = list(range(1, 1 + rank - len(v.shape)))
                v = v.builder.op("Unsqueeze", [v, _ops.ints(v.builder, axes)])
            expanded.append(v)
        return self._combine(expanded)

    def _count_flops(self, input_shapes, output_shapes):
        return (len(input_shapes) - 1) * int(np.prod([d or 1 for d in output_shapes[0][1:]]))


class Add(_ElementwiseMerge):
    """Sum of a list of inputs (same shape, or broadcastable).

    Example:
        >>> from onnxforge.layers import Add, Input
        >>> a, b = Input(shape=(4,)), Input(shape=(4,))
        >>> Add()([a, b]).shape
        (None, 4)
    """

    _op = "Add"


class Multiply(_ElementwiseMerge):
    """Elementwise product of a list of inputs."""

    _op = "Mul"
    _bool_op = "And"


class Maximum(_ElementwiseMerge):
    """Elementwise maximum of a list of inputs."""

    _op = "Max"
    _bool_op = "Or"


class Minimum(_ElementwiseMerge):
    """Elementwise minimum of a list of inputs."""

    _op = "Min"
    _bool_op = "And"


class Subtract(_ElementwiseMerge):
    """``inputs[0] - inputs[1]`` (exactly two inputs)."""

    _op = "Sub"
    _bool_op = None
    _min_inputs = 2

    def compute_output_shape(self, input_shape):
        if isinstance(input_shape, (list, tuple)) and len(input_shape) != 2:
            raise ValueError(f"A `Subtract` layer ({self.name!r}) should be called on exactly 2 inputs. "
                             f"Received: {len(input_shape)} inputs.")
        return super().compute_output_shape(input_shape)


class Average(_ElementwiseMerge):
    """Elementwise mean of a list of inputs."""

    def _combine(self, values):
        # Keras adds (bools: or), then divides by the count: integers and bools give floatx.
        total = super()._combine(values)
        if not total.is_float:
            total = cast_value(total, onnx_dtype(floatx()))
        return total * (1.0 / len(values))


class Concatenate(_Merge):
    """Concatenates a list of inputs along ``axis`` (default ``-1``); other dims must match."""

    def __init__(self, axis: int = -1, **kwargs: Any):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def _norm(self, shapes: list) -> int:
        rank = len(shapes[0])
        if any(len(s) != rank for s in shapes) or not -rank <= self.axis < rank:
            raise ValueError(f"A `Concatenate` layer ({self.name!r}) requires inputs with matching shapes except "
                             f"for the concatenation axis. Received: input_shape={shapes}")
        return self.axis % rank

    def build(self, input_shape):
        self.compute_output_shape(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        shapes = self._check_list(input_shape)
        axis = self._norm(shapes)
        out = list(shapes[0])
        for s in shapes[1:]:
            for i, d in enumerate(s):
                if i == axis:
                    out[i] = None if out[i] is None or d is None else out[i] + d
                elif out[i] is None:
                    out[i] = d
                elif d is not None and d != out[i]:
                    raise ValueError(f"A `Concatenate` layer ({self.name!r}) requires inputs with matching shapes "
                                     f"except for the concatenation axis. Received: input_shape={shapes}")
        return tuple(out)

    def call(self, inputs):
        values = _common_type(list(inputs))
        axis = self.axis % len(values[0].shape)
        sources, perm = _same_perm_sources(values)
        b = values[0].builder
        if perm is not None:
            out = b.op("Concat", sources, axis=perm[axis])
            return _ops.transpose(out, perm)
        return b.op("Concat", values, axis=axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class Dot(_Merge):
    """Batch-wise dot product of two inputs along ``axes`` (Keras's ``batch_dot``); ``normalize=True``
    L2-normalizes both along those axes first (cosine similarity).

    The output keeps ``x``'s other axes, then ``y``'s other non-batch axes; a rank-1 result becomes
    ``(batch, 1)``.

    Example:
        >>> from onnxforge.layers import Dot, Input
        >>> a, b = Input(shape=(4,)), Input(shape=(4,))
        >>> Dot(axes=1, normalize=True)([a, b]).shape
        (None, 1)
    """

    supports_masking = True

    def __init__(self, axes: Any, normalize: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        if not isinstance(axes, int):
            if not isinstance(axes, (list, tuple)):
                raise TypeError(f"Invalid type for argument `axes`: it should be a list or an int. Received: axes={axes}")
            if len(axes) != 2:
                raise ValueError(f"Invalid format for argument `axes`: it should contain two elements. "
                                 f"Received: axes={axes}")
            if not all(isinstance(a, int) for a in axes):
                raise ValueError(f"Invalid format for argument `axes`: list elements should be integers. "
                                 f"Received: axes={axes}")
            axes = list(axes)
        self.axes = axes
        self.normalize = bool(normalize)

    def _resolved(self, ranks: tuple[int, int]) -> list[int]:
        if isinstance(self.axes, int):
            axes = [self.axes % ranks[0], self.axes % ranks[1]] if self.axes < 0 else [self.axes] * 2
        else:
            axes = [a % r if a < 0 else a for a, r in zip(self.axes, ranks)]
        if 0 in axes:
            raise ValueError(f"Layer {self.name!r}: cannot perform batch_dot over axis 0 (the batch axis). "
                             f"Received: axes={self.axes}")
        return axes

    def _shapes(self, input_shape: Any) -> tuple[tuple, tuple]:
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2 or \
                not all(isinstance(s, (list, tuple)) for s in input_shape):
            raise ValueError(f"A `Dot` layer should be called on a list of 2 inputs. Received: input_shape={input_shape}")
        return tuple(input_shape[0]), tuple(input_shape[1])

    def build(self, input_shape):
        s1, s2 = self._shapes(input_shape)
        a1, a2 = self._resolved((len(s1), len(s2)))
        if s1[a1] is not None and s2[a2] is not None and s1[a1] != s2[a2]:
            raise ValueError(f"Incompatible input shapes: axis values {s1[a1]} (at axis {a1}) != {s2[a2]} (at axis "
                             f"{a2}). Full input shapes: {s1}, {s2}")

    def compute_output_shape(self, input_shape):
        s1, s2 = (list(s) for s in self._shapes(input_shape))
        a1, a2 = self._resolved((len(s1), len(s2)))
        s1.pop(a1)
        s2.pop(a2)
        out = s1 + s2[1:]
        return tuple(out + [1] if len(out) == 1 else out)

    def compute_mask(self, inputs, mask=None):
        return None

    def call(self, inputs):
        if len(inputs) != 2:
            raise ValueError(f"A `Dot` layer should be called on exactly 2 inputs. Received: inputs={inputs}")
        from ._math import l2_normalize

        boolean = all(v.dtype == onnx.TensorProto.BOOL for v in inputs)
        x, y = _common_type(_keras_int32(list(inputs)))
        nx, ny = len(x.shape), len(y.shape)
        a1, a2 = self._resolved((nx, ny))
        if self.normalize:
            if not x.is_float:
                x, y = (cast_value(v, onnx_dtype(floatx())) for v in (x, y))
            x, y = l2_normalize(x, [a1], 1e-7), l2_normalize(y, [a2], 1e-7)
        out = self._dot(x, y, nx, ny, a1, a2)
        # Keras's bool dot is an "any" of the products: a nonzero int32 count reads True.
        return cast_value(out, onnx.TensorProto.BOOL) if boolean and not self.normalize else out

    @staticmethod
    def _dot(x: Any, y: Any, nx: int, ny: int, a1: int, a2: int) -> Any:
        b = x.builder
        if nx == 2 and ny == 2:
            return _ops.reduce("ReduceSum", x * y, [1], keepdims=True)
        # batch_dot as one Einsum: x's labels, y's batch label shared and its axis a2 contracted with x's a1.
        letters = "abcdefghijklmnopqrstuvwxyz"
        xs = letters[:nx]
        ylab = ["a"] + [letters[nx + i] for i in range(ny - 1)]
        ylab[a2] = xs[a1]
        out = "".join(c for i, c in enumerate(xs) if i != a1) + "".join(c for i, c in enumerate(ylab) if i not in (0, a2))
        y_out = b.op("Einsum", [x, y], equation=f"{xs},{''.join(ylab)}->{out}")
        if len(out) == 1:
            y_out = b.op("Unsqueeze", [y_out, _ops.ints(b, [1])])
        return y_out

    def _count_flops(self, input_shapes, output_shapes):
        return 2 * int(np.prod([d or 1 for d in input_shapes[0][1:]]))

    def get_config(self):
        return {**super().get_config(), "axes": self.axes, "normalize": self.normalize}
