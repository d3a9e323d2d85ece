"""The TensorFlow tensor functions, as the ``keras.ops`` they stand for with TensorFlow's argument names and
defaults (``tf.gather``'s ``axis=0``, ``tf.split``'s sizes, ``tf.argmax``'s ``axis=0``). Each is built from
``keras.ops``, so it runs on arrays now, emits nodes in a traced step and makes a node of a functional model.

Example:
    >>> import numpy as np
    >>> reduce_mean(square(np.array([1.0, 3.0]))).tolist()
    5.0
    >>> gather(np.array([[1, 2], [3, 4]]), [1]).tolist()
    [[3, 4]]
    >>> sequence_mask([1, 3], 4).tolist()
    [[True, False, False, False], [True, True, True, False]]
"""
from __future__ import annotations

__all__ = [
    "shape", "cast", "constant", "convert_to_tensor", "reshape", "transpose", "expand_dims", "squeeze", "concat",
    "stack", "tile", "gather", "split", "where", "range", "zeros", "ones", "zeros_like", "ones_like", "fill", "eye",
    "square", "sqrt", "exp", "abs", "floor", "maximum", "minimum", "clip_by_value", "matmul", "einsum", "argmax",
    "argmin", "reduce_mean", "reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "reduce_any", "reduce_all",
    "stop_gradient", "one_hot", "equal", "not_equal", "add_n", "sequence_mask", "boolean_mask", "function",
    "newaxis", "float16", "float32", "float64", "bfloat16", "int8", "int32", "int64", "uint8", "bool", "random",
    "nn", "math",
]

import builtins
import types
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import ops as _ops
from ..eager_tensor import as_eager
from ..ops import random as _random

newaxis = None
float16, float32, float64, bfloat16 = "float16", "float32", "float64", "bfloat16"
int8, int32, int64, uint8, bool = "int8", "int32", "int64", "uint8", "bool"  # noqa: A001 (TensorFlow's names)

shape = _ops.shape
cast = _ops.cast
convert_to_tensor = _ops.convert_to_tensor
reshape = _ops.reshape
expand_dims = _ops.expand_dims
squeeze = _ops.squeeze
stack = _ops.stack
tile = _ops.tile
where = _ops.where
zeros_like, ones_like = _ops.zeros_like, _ops.ones_like
square, sqrt, exp, abs, floor = _ops.square, _ops.sqrt, _ops.exp, _ops.abs, _ops.floor  # noqa: A001
maximum, minimum = _ops.maximum, _ops.minimum
clip_by_value = _ops.clip
einsum = _ops.einsum
stop_gradient = _ops.stop_gradient
eye = _ops.eye


def constant(value: Any, dtype: Any = None, shape: Any = None, name: str | None = None) -> Any:
    """``tf.constant``: an ``EagerTensor`` (a NumPy array with ``numpy()``; broadcast to ``shape`` when given)."""
    array = np.asarray(value, dtype=dtype) if dtype is not None else np.asarray(value)
    if array.dtype == np.float64 and dtype is None:
        array = array.astype(np.float32)   # TensorFlow's default float type
    return as_eager(np.broadcast_to(array, shape).copy() if shape is not None else array)


def transpose(a: Any, perm: Any = None, conjugate: builtins.bool = False, name: str | None = None) -> Any:
    return _ops.transpose(a, perm)


def concat(values: Any, axis: int, name: str | None = None) -> Any:
    return _ops.concatenate(list(values), axis=axis)


def gather(params: Any, indices: Any, validate_indices: Any = None, axis: int | None = None, batch_dims: int = 0,
           name: str | None = None) -> Any:
    """``tf.gather``: rows of ``params`` (``axis`` 0 by default, unlike ``ops.take``)."""
    if batch_dims:
        raise NotImplementedError("tf.gather with batch_dims is not supported; use ops.take_along_axis.")
    return _ops.take(params, np.asarray(indices) if isinstance(indices, (list, tuple)) else indices,
                     axis=0 if axis is None else axis)


def split(value: Any, num_or_size_splits: Any, axis: int = 0, num: int | None = None,
          name: str | None = None) -> Any:
    """``tf.split``: a number of equal parts, or a list of part *sizes* (``ops.split`` takes cut indices)."""
    if isinstance(num_or_size_splits, (int, np.integer)):
        return _ops.split(value, int(num_or_size_splits), axis=axis)
    sizes = [int(s) for s in num_or_size_splits]
    return _ops.split(value, [int(c) for c in np.cumsum(sizes)[:-1]], axis=axis)


def range(start: Any, limit: Any = None, delta: Any = 1, dtype: Any = None, name: str | None = None) -> Any:  # noqa: A001
    return _ops.arange(start, limit, delta, dtype=dtype)


def zeros(shape: Any, dtype: Any = "float32", name: str | None = None) -> Any:
    return _ops.zeros(shape, dtype=dtype)


def ones(shape: Any, dtype: Any = "float32", name: str | None = None) -> Any:
    return _ops.ones(shape, dtype=dtype)


def fill(dims: Any, value: Any, name: str | None = None) -> Any:
    return _ops.full(dims, value)


def matmul(a: Any, b: Any, transpose_a: builtins.bool = False, transpose_b: builtins.bool = False,
           name: str | None = None, **kwargs: Any) -> Any:
    if transpose_a:
        a = _ops.swapaxes(a, -1, -2)
    if transpose_b:
        b = _ops.swapaxes(b, -1, -2)
    return _ops.matmul(a, b)


def argmax(input: Any, axis: int | None = None, output_type: Any = "int64", name: str | None = None) -> Any:  # noqa: A002
    """``tf.argmax``: along ``axis`` 0 by default (TensorFlow's rule)."""
    return _ops.cast(_ops.argmax(input, axis=0 if axis is None else axis), output_type)


def argmin(input: Any, axis: int | None = None, output_type: Any = "int64", name: str | None = None) -> Any:  # noqa: A002
    return _ops.cast(_ops.argmin(input, axis=0 if axis is None else axis), output_type)


def _reduction(fn: Callable[..., Any]) -> Callable[..., Any]:
    def reduce(input_tensor: Any, axis: Any = None, keepdims: builtins.bool = False, name: str | None = None) -> Any:
        return fn(input_tensor, axis=axis, keepdims=keepdims)

    reduce.__name__ = f"reduce_{fn.__name__}"
    return reduce


reduce_mean = _reduction(_ops.mean)
reduce_sum = _reduction(_ops.sum)
reduce_max = _reduction(_ops.max)
reduce_min = _reduction(_ops.min)
reduce_prod = _reduction(_ops.prod)
reduce_any = _reduction(_ops.any)
reduce_all = _reduction(_ops.all)


def one_hot(indices: Any, depth: int, on_value: Any = None, off_value: Any = None, axis: int = -1,
            dtype: Any = "float32", name: str | None = None) -> Any:
    out = _ops.one_hot(indices, depth, axis=axis, dtype=dtype)
    if on_value is not None or off_value is not None:
        on = 1.0 if on_value is None else on_value
        off = 0.0 if off_value is None else off_value
        out = out * (on - off) + off
    return out


def equal(x: Any, y: Any, name: str | None = None) -> Any:
    """``tf.equal``: elementwise ``x == y`` (broadcasting), a bool tensor."""
    return _ops.equal(x, y)


def not_equal(x: Any, y: Any, name: str | None = None) -> Any:
    """``tf.not_equal``: elementwise ``x != y`` (broadcasting), a bool tensor."""
    return _ops.not_equal(x, y)


def add_n(inputs: Any, name: str | None = None) -> Any:
    """``tf.add_n``: the elementwise sum of a list of tensors of one shape (no broadcasting, as TensorFlow)."""
    inputs = list(inputs)
    if not inputs:
        raise ValueError("Inputs must be an iterable of at least one Tensor/IndexedSlices with the same dtype and "
                         "shape. Received: inputs=[]")
    shapes = {tuple(np.shape(t)) for t in inputs if isinstance(t, (np.ndarray, list, builtins.float, builtins.int))}
    if len(shapes) > 1:
        raise ValueError(f"tf.add_n: every input must have the same shape. Received shapes {sorted(shapes)}")
    total = inputs[0]
    for t in inputs[1:]:
        total = _ops.add(total, t)
    return total if len(inputs) > 1 else _ops.convert_to_tensor(total)


def sequence_mask(lengths: Any, maxlen: Any = None, dtype: Any = "bool", name: str | None = None) -> Any:
    """``tf.sequence_mask``: ``mask[..., j] = j < lengths[...]``, ``maxlen`` wide (default: the longest)."""
    lengths = _ops.convert_to_tensor(lengths) if isinstance(lengths, (list, tuple, builtins.int)) else lengths
    if maxlen is None:
        maxlen = _ops.max(lengths)
    positions = _ops.arange(0, maxlen, 1, dtype="int64")
    mask = _ops.less(positions, _ops.expand_dims(_ops.cast(lengths, "int64"), -1))
    return mask if _dtype_name(dtype) == "bool" else _ops.cast(mask, dtype)


def boolean_mask(tensor: Any, mask: Any, axis: int | None = None, name: str | None = None) -> Any:
    """``tf.boolean_mask``: the entries of ``tensor`` where ``mask`` (rank k, shaped like ``tensor``'s axes
    ``axis`` to ``axis + k - 1``) is true, those k axes flattened into one. The result's length depends on the
    data: in a traced step it is a run-time dimension (reduce it, as a masked loss does)."""
    mask = np.asarray(mask) if isinstance(mask, (list, tuple)) else mask
    axis = 0 if axis is None else builtins.int(axis)
    dims, k = _ops.shape(tensor), len(_ops.shape(mask))
    if not isinstance(dims, tuple) or k == 0 or axis < 0 or axis + k > len(dims):
        raise ValueError(f"tf.boolean_mask needs a mask of rank 1 or more that fits tensor's axes from `axis` on, "
                         f"and a tensor of known rank. Received: mask rank {k}, axis={axis}, tensor shape {dims}")
    static = _ops.shape(mask)
    if any(isinstance(a, builtins.int) and isinstance(b, builtins.int) and a != b
           for a, b in zip(dims[axis:axis + k], static)):
        raise ValueError(f"tf.boolean_mask: mask shape {static} does not match tensor shape {dims} at axis {axis}")
    flat = _ops.reshape(tensor, dims[:axis] + (-1,) + dims[axis + k:]) if k > 1 else tensor
    keep = _ops.nonzero(_ops.reshape(mask, (-1,)))[0]
    return _ops.take(flat, keep, axis=axis)


def _dtype_name(dtype: Any) -> str:
    return dtype if isinstance(dtype, str) else np.dtype(dtype).name


def function(func: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
    """``tf.function``: ``func`` traced once per input signature into one ONNX program run by onnxruntime
    (``onnxforge.trainer.compiled_function``), so a training loop written with ``GradientTape`` and
    ``optimizer.apply_gradients`` runs as TensorFlow's guide writes it. ``input_signature``, ``jit_compile``,
    ``reduce_retracing`` and ``autograph`` are accepted and have no effect (each new array shape is traced).

    Example:
        >>> import numpy as np
        >>> @function
        ... def double(x):
        ...     return x * 2
        >>> double(np.arange(3, dtype=np.float32)).tolist()
        [0.0, 2.0, 4.0]
    """
    from ..trainer.compiled_function import compile_function
    from .config import functions_run_eagerly

    if func is None:
        return lambda f: compile_function(f, functions_run_eagerly)
    return compile_function(func, functions_run_eagerly)


random = types.SimpleNamespace(
    uniform=lambda shape, minval=0.0, maxval=None, dtype="float32", seed=None, name=None: _random.uniform(
        shape, minval=minval, maxval=1.0 if maxval is None else maxval, dtype=dtype, seed=seed),
    normal=lambda shape, mean=0.0, stddev=1.0, dtype="float32", seed=None, name=None: _random.normal(
        shape, mean=mean, stddev=stddev, dtype=dtype, seed=seed),
    set_seed=lambda seed: np.random.seed(seed),
)

nn = types.SimpleNamespace(
    relu=_ops.relu, relu6=_ops.relu6, sigmoid=_ops.sigmoid, tanh=_ops.tanh, elu=_ops.elu, selu=_ops.selu,
    gelu=lambda features, approximate=False, name=None: _ops.gelu(features, approximate=approximate),
    silu=_ops.silu, swish=_ops.silu, softplus=_ops.softplus, leaky_relu=lambda features, alpha=0.2, name=None:
    _ops.leaky_relu(features, negative_slope=alpha),
    softmax=lambda logits, axis=-1, name=None: _ops.softmax(logits, axis=axis),
    log_softmax=lambda logits, axis=-1, name=None: _ops.log_softmax(logits, axis=axis),
    moments=lambda x, axes, keepdims=False, name=None: _ops.moments(x, axes, keepdims=keepdims),
    l2_normalize=lambda x, axis=None, epsilon=1e-12, name=None: _ops.normalize(x, axis=-1 if axis is None else axis,
                                                                              epsilon=epsilon),
    sigmoid_cross_entropy_with_logits=lambda labels=None, logits=None, name=None: _ops.binary_crossentropy(
        labels, logits, from_logits=True),
)

math = types.SimpleNamespace(
    reduce_mean=reduce_mean, reduce_sum=reduce_sum, reduce_max=reduce_max, reduce_min=reduce_min,
    reduce_prod=reduce_prod, reduce_any=reduce_any, reduce_all=reduce_all, log=_ops.log, exp=_ops.exp,
    sqrt=_ops.sqrt, square=_ops.square, abs=_ops.abs, maximum=_ops.maximum, minimum=_ops.minimum,
    equal=_ops.equal, not_equal=_ops.not_equal, greater=_ops.greater, less=_ops.less, floor=_ops.floor,
    ceil=_ops.ceil, round=_ops.round, sigmoid=_ops.sigmoid, tanh=_ops.tanh, pow=_ops.power, log1p=_ops.log1p,
    argmax=argmax, argmin=argmin, l2_normalize=nn.l2_normalize, reduce_logsumexp=_reduction(_ops.logsumexp),
    cumsum=lambda x, axis=0, exclusive=False, reverse=False, name=None: _ops.cumsum(x, axis=axis),
    divide_no_nan=_ops.divide_no_nan, top_k=lambda input, k=1, sorted=True, name=None: _ops.top_k(input, k, sorted),
)
