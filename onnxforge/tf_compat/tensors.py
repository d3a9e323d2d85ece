"""The TensorFlow tensor functions, as the ``keras.ops`` they stand for with TensorFlow's argument names and
defaults (``tf.gather``'s ``axis=0``, ``tf.split``'s sizes, ``tf.argmax``'s ``axis=0``). Each is built from
``keras.ops``, so it runs on arrays now, emits nodes in a traced step and makes a node of a functional model.

Example:
    >>> import numpy as np
    >>> reduce_mean(np.array([1.0, 9.0])).tolist()
    5.0
    >>> gather(np.array([[1, 2], [3, 4]]), [1]).tolist()
    [[3, 4]]
    >>> sequence_mask([1, 3], 4).tolist()
    [[True, False, False, False], [True, True, True, False]]
"""
from __future__ import annotations

__all__ = [
    "shape", "cast", "constant", "convert_to_tensor", "reshape", "transpose", "expand_dims", "squeeze", "concat",
    "stack", "tile", "gather", "split", "range", "zeros", "ones", "zeros_like", "ones_like", "fill",
    "clip_by_value", "matmul", "einsum", "argmax",
    "argmin", "reduce_mean", "reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "reduce_any", "reduce_all",
    "stop_gradient", "custom_gradient", "identity", "one_hot", "equal", "not_equal", "add_n", "sequence_mask", "boolean_mask", "function",
    "newaxis", "float16", "float32", "float64", "bfloat16", "int8", "int32", "int64", "uint8", "bool",
]

import builtins
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx

from .. import ops as _ops
from ..eager_tensor import as_eager
from ..trace_state import active_trace
from .errors import InvalidArgumentError, UnimplementedError

newaxis = None
float16, float32, float64, bfloat16 = "float16", "float32", "float64", "bfloat16"
int8, int32, int64, uint8, bool = "int8", "int32", "int64", "uint8", "bool"  # noqa: A001 (TensorFlow's names)

class ShapeDim(builtins.int):
    """A static dimension read from ``tf.shape`` while tracing: an ``int`` for every use (reshapes, arithmetic,
    indexing), marked as what it is in TensorFlow, an element of a shape tensor, so that a layer takes it as a
    positional argument (keras.io's FocalNet passes ``height, width, channels = tf.shape(x)[1:]`` on), which
    Keras refuses for a Python number (layers/host_inputs.py)."""

    _tensor_dim = True


def shape(input: Any, out_type: Any = "int32", name: str | None = None) -> Any:  # noqa: A002
    """``tf.shape``: the dimensions of ``input``, a tuple of ints (static, ``ShapeDim``) and scalar tensors
    (run-time), which indexes, slices and feeds ``tf.zeros`` / ``tf.random.*`` as TensorFlow's int32 shape
    tensor does. Of a concrete array it is a 1-D ``out_type`` tensor, as TensorFlow's eager ``tf.shape``."""
    dims = _ops.shape(input)
    if active_trace() is None and type(input).__name__ != "KerasTensor" \
            and all(isinstance(d, (builtins.int, np.integer)) for d in dims):
        return as_eager(np.asarray(dims, dtype=_dtype_name(out_type)))
    return tuple(ShapeDim(d) if isinstance(d, (builtins.int, np.integer)) and not isinstance(d, builtins.bool)
                 else d for d in dims)


def cast(x: Any, dtype: Any, name: str | None = None) -> Any:
    """``tf.cast``; to ``tf.string`` only a string tensor casts (unchanged), as in TensorFlow. A ``SparseTensor``
    casts its values (keras.io's handwriting recognition: ``tf.cast(tf.sparse.from_dense(labels), tf.int64)``)."""
    from .sparse import SparseTensor

    if isinstance(x, SparseTensor):
        return SparseTensor(x.indices, np.asarray(cast(x.values, dtype)), x.dense_shape)
    if isinstance(dtype, str) and dtype == "string":
        if _is_string(x):
            return x
        raise UnimplementedError(f"tf.cast: casting {getattr(x, 'dtype', type(x).__name__)} to string is not "
                                 "supported (nor in TensorFlow): format numbers with tf.strings.as_string.")
    if isinstance(dtype, str) and dtype in ("complex64", "complex128"):
        from .signal_host import to_complex   # host arrays only: graphs have no complex dtype

        return to_complex(x, dtype)
    return _ops.cast(x, dtype)


def _is_string(x: Any) -> bool:
    if isinstance(x, (str, bytes)):
        return True
    dtype = getattr(x, "dtype", None)
    if isinstance(dtype, np.dtype):
        return dtype.kind in "USO"
    return dtype == onnx.TensorProto.STRING


def convert_to_tensor(value: Any, dtype: Any = None, dtype_hint: Any = None, name: str | None = None) -> Any:
    """``tf.convert_to_tensor``: Python floats become float32 and Python ints int32 (TensorFlow's defaults,
    or ``dtype_hint``), arrays keep their dtype (pandas frames and series too, as TensorFlow's)."""
    if not isinstance(value, np.ndarray) and hasattr(value, "to_numpy") and hasattr(value, "iloc"):
        value = value.to_numpy()   # a pandas Series of float64 stays float64 (Keras's conversion gives floatx)
    if dtype is None and not hasattr(value, "dtype"):
        return constant(value, dtype=dtype_hint)
    return _ops.convert_to_tensor(value, dtype=dtype)


def reshape(tensor: Any, shape: Any, name: str | None = None) -> Any:
    """``tf.reshape``: a shape whose size cannot hold ``tensor``'s elements raises
    ``tf.errors.InvalidArgumentError`` now, with TensorFlow's message, not when onnxruntime loads the graph."""
    shape = tuple(shape) if isinstance(shape, list) else shape
    _check_reshape(tensor, shape)
    return _ops.reshape(tensor, shape)


def _check_reshape(tensor: Any, shape: Any) -> None:
    dims = getattr(tensor, "shape", None) if hasattr(tensor, "shape") else np.shape(tensor)
    if dims is None or not isinstance(shape, tuple) or not all(isinstance(d, (int, np.integer)) for d in dims) \
            or not all(isinstance(d, (int, np.integer)) for d in shape):
        return   # a run-time dim (None, or a traced value's symbolic "batch"): onnxruntime's Reshape checks it
    have, want = int(np.prod(dims, dtype=np.int64)), int(np.prod([d for d in shape if d != -1], dtype=np.int64))
    unknown = builtins.sum(1 for d in shape if d == -1)
    if unknown > 1 or any(d < -1 for d in shape):
        raise InvalidArgumentError(f"tf.reshape: only one dim may be -1 and none below it. Received: shape={shape}")
    if (unknown == 0 and have != want) or (unknown == 1 and (want == 0 or have % want)):
        kind = "a multiple of " if unknown else ""
        raise InvalidArgumentError(f"Input to reshape is a tensor with {have} values, but the requested shape "
                                   f"requires {kind}{want}. Received: shape={list(shape)} for a tensor of shape "
                                   f"{list(dims)}.")


def expand_dims(input: Any, axis: int, name: str | None = None) -> Any:  # noqa: A002
    return _ops.expand_dims(input, axis)


def squeeze(input: Any, axis: Any = None, name: str | None = None) -> Any:  # noqa: A002
    return _ops.squeeze(input, axis=tuple(axis) if isinstance(axis, list) else axis)


def stack(values: Any, axis: int = 0, name: str | None = None) -> Any:
    return _ops.stack(list(values), axis=axis)


def tile(input: Any, multiples: Any, name: str | None = None) -> Any:  # noqa: A002
    return _ops.tile(input, multiples)


def zeros_like(input: Any, dtype: Any = None, name: str | None = None) -> Any:  # noqa: A002
    return _ops.zeros_like(input, dtype=dtype)


def ones_like(input: Any, dtype: Any = None, name: str | None = None) -> Any:  # noqa: A002
    return _ops.ones_like(input, dtype=dtype)


def clip_by_value(t: Any, clip_value_min: Any, clip_value_max: Any, name: str | None = None) -> Any:
    return _ops.clip(t, clip_value_min, clip_value_max)


def einsum(equation: str, *inputs: Any, **kwargs: Any) -> Any:
    """``tf.einsum``: ``kwargs`` (``optimize``, ``name``) only tune or name the op in TensorFlow."""
    return _ops.einsum(equation, *inputs)


def stop_gradient(input: Any, name: str | None = None) -> Any:  # noqa: A002
    return _ops.stop_gradient(input)


def identity(input: Any, name: str | None = None) -> Any:  # noqa: A002
    """``tf.identity``: the same values as a new tensor (an ``Identity`` node in a graph, a copy eagerly)."""
    return _ops.copy(input)


def custom_gradient(f: Callable[..., Any] | None = None) -> Any:
    """``tf.custom_gradient``: ``f(*args)`` returns ``(y, grad)`` and gradients through it come from
    ``grad(*dys)`` (``grad(*dys, variables=...)`` returning ``(input_grads, variable_grads)`` when ``f``
    reads trainable Variables); usable bare or called with no function (``@tf.custom_gradient()``)."""
    if f is None:
        return _ops.custom_gradient
    return _ops.custom_gradient(f)


def _decoded(array: np.ndarray) -> np.ndarray:
    """Byte strings as ``str``, the form onnxforge's string ops and text layers take; bytes that are not UTF-8
    stay bytes."""
    if array.dtype.kind != "S" and not (array.dtype == object and array.size
                                        and any(isinstance(v, bytes) for v in array.flat)):
        return array
    try:
        texts = [v.decode("utf-8") if isinstance(v, bytes) else v for v in array.flat]
    except UnicodeDecodeError:
        return array
    return np.asarray(texts).reshape(array.shape)


def constant(value: Any, dtype: Any = None, shape: Any = None, name: str | None = None) -> Any:
    """``tf.constant``: an ``EagerTensor`` (a NumPy array with ``numpy()``; broadcast to ``shape`` when given).
    Text, ``str`` or UTF-8 ``bytes``, is held as ``str`` (see ``eager_tensor``): ``.numpy()`` gives ``bytes``."""
    if dtype in ("string", str, bytes):
        dtype = None
    array = np.asarray(value, dtype=dtype) if dtype is not None else np.asarray(value)
    array = _decoded(array)
    if dtype is None and not isinstance(value, np.ndarray | np.generic) and not hasattr(value, "__array__"):
        # TensorFlow's types for Python numbers: float32 and int32 (NumPy's would be float64 and int64). An
        # array-like (a pandas DataFrame: the pandas tutorial's convert_to_tensor) keeps its NumPy dtype.
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        elif array.dtype == np.int64 and array.size and -2**31 <= array.min() and array.max() < 2**31:
            array = array.astype(np.int32)
    return as_eager(np.broadcast_to(array, shape).copy() if shape is not None else array)


def transpose(a: Any, perm: Any = None, conjugate: builtins.bool = False, name: str | None = None) -> Any:
    return _ops.transpose(a, perm)


def concat(values: Any, axis: int, name: str | None = None) -> Any:
    return _ops.concatenate(list(values), axis=axis)


def gather(params: Any, indices: Any, validate_indices: Any = None, axis: int | None = None, batch_dims: int = 0,
           name: str | None = None) -> Any:
    """``tf.gather``: rows of ``params`` (``axis`` 0 by default, unlike ``ops.take``)."""
    if batch_dims:
        from .gather_batched import gather_batched   # one gather per batch entry: keras.io's masked autoencoder
        return gather_batched(params, indices, axis=batch_dims if axis is None else axis, batch_dims=batch_dims)
    indices = np.asarray(indices) if isinstance(indices, (list, tuple, int, np.integer)) else indices
    axis = 0 if axis is None else axis
    dims = getattr(params, "shape", None)
    if isinstance(indices, np.ndarray) and dims is not None and len(dims) and isinstance(dims[axis], int):
        # TensorFlow's CPU kernel refuses an index outside [0, n), negative ones too.
        bad = np.flatnonzero((indices < 0) | (indices >= dims[axis]))
        if bad.size:
            position = list(np.unravel_index(bad[0], indices.shape)) if indices.ndim else []
            raise InvalidArgumentError(f"tf.gather: indices{position} = {int(indices.flat[bad[0]])} is not in "
                                       f"[0, {dims[axis]}) (params of shape {list(dims)}, axis={axis}).")
    return _ops.take(params, indices, axis=axis)


def split(value: Any, num_or_size_splits: Any, axis: int = 0, num: int | None = None,
          name: str | None = None) -> Any:
    """``tf.split``: a number of equal parts, or a list of part *sizes* (``ops.split`` takes cut indices)."""
    if isinstance(num_or_size_splits, (int, np.integer)):
        return _ops.split(value, int(num_or_size_splits), axis=axis)
    sizes = [int(s) for s in num_or_size_splits]
    return _ops.split(value, [int(c) for c in np.cumsum(sizes)[:-1]], axis=axis)


def range(start: Any, limit: Any = None, delta: Any = 1, dtype: Any = None, name: str | None = None) -> Any:  # noqa: A001
    """``tf.range``: int32 for Python int bounds, float32 for Python floats (TensorFlow's inferred types)."""
    if dtype is None:
        bounds = [b for b in (start, limit, delta) if b is not None]
        if all(isinstance(b, builtins.int) and not isinstance(b, builtins.bool) for b in bounds):
            dtype = "int32"
        elif all(isinstance(b, (builtins.int, builtins.float)) for b in bounds):
            dtype = "float32"
        else:   # a tensor bound: TensorFlow counts in its dtype (``tf.range(n)`` of an int64 n is int64)
            dtype = _tf_dtype(next(b for b in bounds if not isinstance(b, (builtins.int, builtins.float))))
    return _ops.arange(start, limit, delta, dtype=dtype)


def _tf_dtype(value: Any) -> Any:
    """The dtype TensorFlow gives ``value``: a tensor's or array's own, int32 / float32 / bool for Python
    numbers (NumPy would say int64 / float64)."""
    if isinstance(value, builtins.bool):
        return "bool"
    if isinstance(value, builtins.int):
        return "int32" if -2 ** 31 <= value < 2 ** 31 else "int64"
    if isinstance(value, builtins.float):
        return "float32"
    if getattr(value, "weak", False):
        return "int32"   # a run-time dim of tf.shape, an int32 tensor in TensorFlow
    return getattr(value, "dtype", None) or np.asarray(value).dtype


def zeros(shape: Any, dtype: Any = "float32", name: str | None = None) -> Any:
    return _ops.zeros(shape, dtype=dtype)


def ones(shape: Any, dtype: Any = "float32", name: str | None = None) -> Any:
    return _ops.ones(shape, dtype=dtype)


def fill(dims: Any, value: Any, name: str | None = None) -> Any:
    """``tf.fill``: ``value`` repeated over ``dims`` (a string ``value`` gives a string tensor)."""
    if isinstance(value, (str, bytes)) and active_trace() is None:
        return constant(value, shape=tuple(int(d) for d in np.asarray(dims).reshape(-1)))
    # TensorFlow's fill has the value's dtype (``keras.ops.full`` would give floatx).
    dtype = _tf_dtype(value) if np.ndim(value) == 0 or hasattr(value, "dtype") else constant(value).dtype
    return _ops.full(dims, value, dtype=dtype)


def matmul(a: Any, b: Any, transpose_a: builtins.bool = False, transpose_b: builtins.bool = False,
           adjoint_a: builtins.bool = False, adjoint_b: builtins.bool = False, a_is_sparse: builtins.bool = False,
           b_is_sparse: builtins.bool = False, output_type: Any = None, grad_a: builtins.bool = False,
           grad_b: builtins.bool = False, name: str | None = None) -> Any:
    """``tf.matmul``: the adjoint of a real matrix is its transpose; ``*_is_sparse`` and ``grad_*`` are only
    performance hints in TensorFlow; ``output_type`` (int8 products into int32) is not supported."""
    if output_type is not None:
        raise NotImplementedError(f"tf.matmul with output_type is not supported. Received: output_type={output_type}")
    if any("complex" in _ops.dtype(t) for t in (a, b) if hasattr(t, "dtype")) and (adjoint_a or adjoint_b):
        raise NotImplementedError("tf.matmul: adjoint_a / adjoint_b of complex matrices are not supported.")
    transpose_a, transpose_b = transpose_a or adjoint_a, transpose_b or adjoint_b
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


def _reduction(fn: Callable[..., Any], tf_name: str | None = None) -> Callable[..., Any]:
    def reduce(input_tensor: Any, axis: Any = None, keepdims: builtins.bool = False, name: str | None = None) -> Any:
        axis = tuple(axis) if isinstance(axis, list) else axis
        if not hasattr(input_tensor, "dtype"):   # a Python list: int32 / float32, as TensorFlow converts it
            input_tensor = constant(input_tensor)
        out = fn(input_tensor, axis=axis, keepdims=keepdims)
        # TensorFlow keeps an integer input's type (reduce_mean truncates); eager ops widen int32 to int64.
        kind = _ops.dtype(input_tensor) if hasattr(input_tensor, "dtype") else None
        if kind and kind.startswith(("int", "uint")) and _ops.dtype(out) != kind:
            out = _ops.cast(out, kind)
        return out

    reduce.__name__ = reduce.__qualname__ = tf_name or f"reduce_{fn.__name__}"
    return reduce


reduce_mean = _reduction(_ops.mean)
reduce_sum = _reduction(_ops.sum)
reduce_max = _reduction(_ops.max)
reduce_min = _reduction(_ops.min)
reduce_prod = _reduction(_ops.prod)
reduce_any = _reduction(_ops.any)
reduce_all = _reduction(_ops.all)


def one_hot(indices: Any, depth: int, on_value: Any = None, off_value: Any = None, axis: int | None = None,
            dtype: Any = None, name: str | None = None) -> Any:
    """``tf.one_hot``: ``on_value`` at each index, ``off_value`` elsewhere; the dtype is ``dtype``, else that
    of ``on_value`` / ``off_value``, else float32 (TensorFlow's rule)."""
    if dtype is None:
        given = [v for v in (on_value, off_value) if v is not None]
        dtype = constant(given[0]).dtype.name if given else "float32"
    indices = np.asarray(indices) if isinstance(indices, (list, tuple)) else indices
    hot = _ops.cast(_ops.one_hot(indices, depth, axis=-1 if axis is None else axis), "bool")
    on = _ops.cast(1 if on_value is None else on_value, dtype)
    off = _ops.cast(0 if off_value is None else off_value, dtype)
    return _ops.cast(_ops.where(hot, on, off), dtype)   # eager ops widen int32 to int64


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
    ``optimizer.apply_gradients`` runs as TensorFlow's guide writes it. ``input_signature`` is checked on
    each call (``function_signature``); ``jit_compile`` and ``autograph`` are accepted and have no effect.
    Each new array shape is traced, unless ``reduce_retracing`` (``experimental_relax_shapes``) asks for one
    trace with unknown dims; ``get_concrete_function`` returns one trace (``concrete_function``).

    Example:
        >>> import numpy as np
        >>> @function
        ... def double(x):
        ...     return x * 2
        >>> double(np.arange(3, dtype=np.float32)).tolist()
        [0.0, 2.0, 4.0]
    """
    from ..trainer.compiled_function import CompiledFunction
    from .concrete_function import Function
    from .config import functions_run_eagerly

    from .function_signature import with_signature

    signature = kwargs.get("input_signature")

    def make(f: Callable[..., Any]) -> Any:
        compiled = f if isinstance(f, CompiledFunction) else Function(f, functions_run_eagerly)
        if isinstance(compiled, Function):
            compiled.autograph = builtins.bool(kwargs.get("autograph", True))
            compiled.reduce_retracing = builtins.bool(kwargs.get("reduce_retracing")
                                                      or kwargs.get("experimental_relax_shapes"))
        return compiled if signature is None else with_signature(compiled, f, signature)

    return make if func is None else make(func)

