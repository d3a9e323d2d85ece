"""Helpers on graph values shared by the losses and the metrics: reductions, casts, ranks, eager runs."""
from __future__ import annotations

__all__ = ["EPSILON"]

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx

from .. import backend_config
from ..graph import GraphBuilder, Value, broadcast_shapes, np_dtype, onnx_dtype


#: Keras's fuzz factor (``keras.backend.epsilon()``): probabilities are clipped to [EPSILON, 1 - EPSILON].
EPSILON = 1e-7

_FLOAT = onnx.TensorProto.FLOAT


# ------------------------------------------------------------------------------------------ graph math
# Small helpers shared by losses and metrics. They keep static shapes on the values they make, because
# Keras's rank rules (squeeze or expand a trailing 1) are decided while tracing.
def _rank(v: Value) -> int | None:
    return None if v.shape is None else len(v.shape)


def _drop(shape: tuple | None, axis: int) -> tuple | None:
    if shape is None:
        return None
    axis = axis % len(shape)
    return shape[:axis] + shape[axis + 1:]


def _axes(b: GraphBuilder, axes: list[int]) -> Value:
    return b.const(np.asarray(axes, np.int64))


def reduce(op: str, x: Value, axis: int | list[int] | None, keepdims: bool = False) -> Value:
    """``op`` (ReduceSum, ReduceMean, ...) over ``axis`` (``None``: all axes)."""
    b = x.builder
    if axis is None:
        shape = None if x.shape is None else (tuple(1 for _ in x.shape) if keepdims else ())
        return b.op(op, [x], keepdims=int(keepdims), dtype=x.dtype, shape=shape)
    axes = [axis] if isinstance(axis, int) else list(axis)
    shape = x.shape
    if shape is not None:
        norm = {a % len(shape) for a in axes}
        shape = tuple((1 if i in norm else d) for i, d in enumerate(shape) if keepdims or i not in norm)
    return b.op(op, [x, _axes(b, axes)], keepdims=int(keepdims), dtype=x.dtype, shape=shape)


def squeeze(x: Value, axis: int) -> Value:
    return x.builder.op("Squeeze", [x, _axes(x.builder, [axis])], dtype=x.dtype, shape=_drop(x.shape, axis))


def expand_dims(x: Value, axis: int) -> Value:
    shape = None
    if x.shape is not None:
        pos = axis if axis >= 0 else len(x.shape) + 1 + axis
        shape = x.shape[:pos] + (1,) + x.shape[pos:]
    return x.builder.op("Unsqueeze", [x, _axes(x.builder, [axis])], dtype=x.dtype, shape=shape)


def _elem_type(dtype: str) -> int:
    return onnx.TensorProto.BFLOAT16 if dtype == "bfloat16" else onnx_dtype(dtype)


def cast(x: Value, elem_type: int) -> Value:
    if x.dtype == elem_type:
        return x
    return x.builder.op("Cast", [x], to=elem_type, shape=x.shape)


_FLOATING = (_FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16)


def floating(x: Value) -> Value:
    """``x`` as float32 when it holds integers or booleans: Keras's regression losses take the mean (or the
    log) of ``y_pred``, which Keras promotes to floatx, so ``mse([[0, 1]], [[1, 1]])`` is 0.5, not 0."""
    return x if x.dtype in _FLOATING else cast(x, _FLOAT)


def _like(x: Value, shape: tuple | None) -> Value:
    """Set a static shape on a freshly made elementwise value (the builder records dtypes only)."""
    if x.shape is None:
        x.shape = shape
    return x


def elementwise(op: str, *inputs: Any, shape: tuple | None = None, **attrs: Any) -> Value:
    """One elementwise op, its output shaped like the first Value input unless ``shape`` is given."""
    first = next(i for i in inputs if isinstance(i, Value))
    out = first.builder.op(op, list(inputs), **attrs)
    if shape is None:  # the broadcast of the operands: gradients undo broadcasting from these shapes
        shapes = [i.shape if isinstance(i, Value) else np.shape(i) for i in inputs]
        shape = broadcast_shapes(*shapes) if all(s is not None for s in shapes) else first.shape
    return _like(out, shape)


def batch_size(x: Value, elem_type: int = _FLOAT) -> Value:
    """The leading dimension of ``x`` as a scalar of ``elem_type``."""
    b = x.builder
    n = b.op("Gather", [b.op("Shape", [x]), b.const(np.asarray(0, np.int64))], axis=0, shape=())
    return cast(n, elem_type)


def squeeze_or_expand_to_same_rank(x1: Value, x2: Value, expand_rank_1: bool = True) -> tuple[Value, Value]:
    """Keras's rule: if ranks differ by one and the longer ends in 1, squeeze it (or expand a rank-1 one)."""
    r1, r2 = _rank(x1), _rank(x2)
    if r1 is None or r2 is None or r1 == r2:
        return x1, x2
    if r1 == r2 + 1 and x1.shape[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = expand_dims(x2, -1)
        else:
            x1 = squeeze(x1, -1)
    if r2 == r1 + 1 and x2.shape[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = expand_dims(x1, -1)
        else:
            x2 = squeeze(x2, -1)
    return x1, x2


def _probabilities(y_pred: Value, axis: int) -> Value:
    """Keras's treatment of ``from_logits=False`` categorical outputs: renormalize by the sum over
    ``axis`` (so scores that do not sum to 1 still form a distribution), then clip to [eps, 1 - eps]."""
    total = reduce("ReduceSum", y_pred, axis, keepdims=True)
    p = elementwise("Div", y_pred, total)
    eps = backend_config.epsilon()
    return elementwise("Clip", p, np.asarray(eps, np_dtype(y_pred.dtype)),
                       np.asarray(1.0 - eps, np_dtype(y_pred.dtype)))


def _num_classes(b: GraphBuilder, y: Value, axis: int) -> Value:
    """The size of ``axis`` of ``y`` as an int64 tensor of shape (1,) (static when known)."""
    if y.shape is not None and isinstance(y.shape[axis], int):
        return b.const(np.asarray([y.shape[axis]], np.int64))
    return b.op("Gather", [b.op("Shape", [y]), b.const(np.asarray([axis], np.int64))], axis=0)


# ------------------------------------------------------------------------------------------ eager calls
def _is_symbolic(*xs: Any) -> bool:
    return any(isinstance(x, Value) for x in xs)


def _loss_array(a: Any) -> Any:
    """Integer and bool arrays as int64, float64 arrays as they are (Keras's loss functions compute in their
    dtype; Loss objects cast to their own), the rest as float32 (Keras's floatx); an array already of one of
    those dtypes is passed as it is, so an eager GradientTape links it to the call that produced it."""
    arr = a if isinstance(a, np.ndarray) else np.asarray(a)
    if arr.dtype == np.float64 and isinstance(a, np.ndarray) and arr.ndim:
        return arr
    want = np.int64 if arr.dtype.kind in "iub" else np.float32
    return arr if arr.dtype == want else arr.astype(want)


def run_eagerly(fn: Callable[..., Any], *arrays: Any, **kwargs: Any) -> Any:
    """``fn`` (written on graph values) run now on ``arrays`` by the eager executor: one program per
    signature, compiled once; an open eager GradientTape records the run.

    Integer arrays enter as int64, float64 NumPy arrays as float64, everything else as float32 (Keras's floatx). ``fn`` returns a Value or
    a list of Values; the result has the same structure, as EagerTensors.
    """
    from ..tracing import eager_executor

    args = tuple(None if a is None else _loss_array(a) for a in arrays)
    return eager_executor().run_function(fn, args, kwargs)
