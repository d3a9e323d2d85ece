"""Core ops (``keras.ops.core``): dtype casts, shapes, and ``stop_gradient``.

Example:
    >>> import numpy as np
    >>> from onnxforge import ops
    >>> ops.shape(np.zeros((2, 3)))
    (2, 3)
    >>> ops.cast(np.array([1.7, -0.2]), "int64").tolist()
    [1, 0]
"""
from __future__ import annotations

__all__ = ["cast", "convert_to_tensor", "convert_to_numpy", "shape", "stop_gradient", "is_tensor", "cond",
           "stopped_outputs", "custom_gradient"]

from collections.abc import Callable
from typing import Any

import numpy as np

from ..eager_tensor import EagerTensor, as_eager
from ..graph import Value
from ..graph.stopped import stop_gradient_value, stopped_outputs
from ..variables import Variable
from ._util import (_active_trace, _has_keras_tensor, _host_array, as_value, builder_of, cast_value, dtype_enum,
                    is_functional_tensor, record_dim, symbolic)
from .traced_flow import is_traced, lowering

_INT32 = 6   # onnx.TensorProto.INT32

@symbolic
def cast(x: Any, dtype: Any) -> Value:
    """``x`` converted to ``dtype`` (``"float32"``, ``"int64"``, ``"bool"``, ...); float to int truncates."""
    b = builder_of(x)
    return cast_value(as_value(x, b), dtype_enum(dtype))


@symbolic
def _convert_to_tensor(x: Any, dtype: Any = None, sparse: Any = None) -> Value:
    b = builder_of(x)
    if dtype is None and isinstance(x, Value) and x.weak:
        return cast_value(x, _INT32)   # a dim of ops.shape: Keras converts the Python int it has to int32
    return as_value(x, b, dtype=dtype)


def convert_to_tensor(x: Any, dtype: Any = None, sparse: Any = None, ragged: Any = None) -> Any:
    """A tensor for ``x``: in a trace a graph value (numbers and arrays become constants), outside one an
    ``EagerTensor``. Python floats, float lists and NumPy float64 scalars become float32 (floatx) unless
    ``dtype`` says otherwise; a float64 NumPy array stays float64 outside a trace, as in Keras. ``ragged`` is
    Keras's argument; onnxforge's tensors are all dense, so it changes nothing."""
    if isinstance(x, Variable) and _active_trace() is None:
        x = x.numpy()   # a Variable's current value, as Keras converts one outside a trace
    if builder_of(x) is not None:
        return _convert_to_tensor(x, dtype=dtype, sparse=sparse)
    if dtype is None and isinstance(x, np.ndarray) and x.dtype == np.float64:
        return EagerTensor(x)
    return EagerTensor(_host_array(x, None if dtype is None else dtype_enum(dtype)))


def convert_to_numpy(x: Any) -> np.ndarray:
    """A host array; symbolic tensors have no value while tracing and raise an error that says why."""
    return np.asarray(x)


def is_tensor(x: Any) -> bool:
    """Whether ``x`` is a tensor: a symbolic graph value, or the ``EagerTensor`` of an eager call."""
    return isinstance(x, (Value, EagerTensor))


def shape(x: Any) -> tuple:
    """The shape of ``x`` as a tuple: static dims are ints, dynamic ones (the batch) are int64 scalar
    tensors usable in other ops' shapes, e.g. ``ops.zeros((ops.shape(x)[0], 1))``.

    A tensor of unknown rank gives its 1-D shape tensor instead of a tuple.
    """
    if hasattr(x, "__onnx_value__") and not isinstance(x, Value):
        if _active_trace() is None:
            return tuple(x.shape)
        x = x.__onnx_value__()
    if not isinstance(x, Value):
        return tuple(np.shape(x))
    b = x.builder
    if x.shape is None:
        return b.op("Shape", [x])
    full = None
    dims: list[Any] = []
    for i, d in enumerate(x.shape):
        if isinstance(d, int):
            dims.append(d)
            continue
        full = full if full is not None else b.op("Shape", [x], shape=(len(x.shape),))
        dim = b.op("Gather", [full, b.const(np.asarray(i, np.int64))], axis=0, shape=())
        record_dim(dim, d)
        dim.weak = True   # Keras has a Python int here: it must not widen the int32 tensors it meets to int64
        dims.append(dim)
    return tuple(dims)


def stop_gradient(variable: Any) -> Any:
    """The same values, seen as a constant by ``GradientTape.gradient`` (no gradient flows through).

    Example:
        >>> import onnxforge as tf
        >>> x = tf.Variable(3.0)
        >>> with tf.GradientTape() as tape:
        ...     z = x * x + stop_gradient(x * 2.0)
        >>> float(tape.gradient(z, x))
        6.0
    """
    if builder_of(variable) is None and not _has_keras_tensor(variable):
        # Eager: a fresh array no recorded run produced, so an eager GradientTape links nothing through it.
        value = variable.numpy() if isinstance(variable, Variable) else np.asarray(variable)
        return as_eager(np.array(value, copy=True))
    return _stop_gradient(variable)


@symbolic
def _stop_gradient(variable: Any) -> Value:
    b = builder_of(variable)
    return stop_gradient_value(b, as_value(variable, b))


def cond(pred: Any, true_fn: Callable[[], Any], false_fn: Callable[[], Any]) -> Any:
    """``true_fn()`` if ``pred`` else ``false_fn()``. A Python or array ``pred`` picks the branch now; a traced
    one (``ops.sum(x) > 0`` in a layer's ``call()``) becomes one ONNX ``If`` running only the branch taken,
    gradients included (``ops/traced_flow.py``).

    Example:
        >>> import numpy as np
        >>> float(cond(np.sum(np.float32([1.0, -3.0])) > 0, lambda: np.float32(1.0), lambda: np.float32(2.0)))
        2.0
    """
    if is_traced(pred):
        b = builder_of(pred)
        return lowering()["cond"](as_value(pred, b), true_fn, false_fn)
    if is_functional_tensor(pred):
        raise TypeError("ops.cond on a functional-API tensor (keras.Input or a layer output) is not supported: "
                        f"received pred={pred!r}. Call it inside a layer's call(), where it becomes an ONNX If.")
    return true_fn() if pred else false_fn()


from .custom_gradients import custom_gradient  # noqa: E402  (keras.ops.core.custom_gradient)
