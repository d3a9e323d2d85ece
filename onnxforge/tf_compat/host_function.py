"""``tf.numpy_function`` and ``tf.py_function``: arbitrary Python (SciPy, OpenCV, NumPy) run on concrete arrays.

keras.io's data pipelines wrap host code this way, often inside a ``tf.function`` that a ``Dataset.map`` calls
(the 3D CT-scan example rotates volumes with ``scipy.ndimage.rotate``). An ONNX program cannot call back into
Python, so these run where the values are concrete: eagerly, in a ``Dataset.map`` function, or in a
``tf.function`` that then runs as plain Python. Tracing one raises ``HostFunctionInTrace``; ``tf.function``
catches it and runs that function eagerly from then on (``trainer.compiled_function``), so the program behaves as
under TensorFlow, where the call is a host op inside the graph. Inside a model's compiled step there is nowhere
to fall back to, and the error says so.

Example:
    >>> import numpy as np
    >>> numpy_function(lambda a: np.flip(a).copy(), [np.arange(3.0)], "float32").tolist()
    [2.0, 1.0, 0.0]
"""
from __future__ import annotations

__all__ = ["numpy_function", "py_function", "HostFunctionInTrace"]

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..eager_tensor import EagerTensor
from ..graph import Value
from ..trace_state import active_trace
from ..trainer.compiled_function import HostFunctionInTrace


def _arrays(inp: Any, fn: str, func: Callable[..., Any]) -> list[np.ndarray]:
    values = list(inp) if isinstance(inp, (list, tuple)) else [inp]
    if active_trace() is not None or any(isinstance(v, Value) or type(v).__name__ == "KerasTensor" for v in values):
        name = getattr(func, "__name__", repr(func))
        raise HostFunctionInTrace(
            f"tf.{fn}({name}) runs Python on concrete arrays, so it cannot be part of an ONNX program. In a "
            f"tf.function it makes that function run eagerly; inside a model's call or compiled train step it is "
            f"refused: call it in a Dataset.map function or in eager code. Received: inp={values!r}")
    return [np.asarray(v.numpy() if hasattr(v, "numpy") else v) for v in values]


def _outputs(result: Any, Tout: Any, fn: str) -> Any:
    """``result`` as eager tensors of ``Tout``'s dtypes (one dtype: one tensor; a list: a list)."""
    if Tout is None:
        return None
    if isinstance(Tout, (list, tuple)):
        results = list(result) if isinstance(result, (list, tuple)) else [result]
        if len(results) != len(Tout):
            raise ValueError(f"tf.{fn}: the function returned {len(results)} values and Tout names {len(Tout)}. "
                             f"Received: Tout={list(Tout)!r}")
        return [_cast(r, t) for r, t in zip(results, Tout)]
    return _cast(result, Tout)


def _cast(value: Any, dtype: Any) -> EagerTensor:
    value = value.numpy() if hasattr(value, "numpy") else value
    name = dtype if isinstance(dtype, str) else np.dtype(dtype).name
    if name == "string":
        return EagerTensor(np.asarray(value, dtype=object))
    return EagerTensor(np.asarray(value).astype(name, copy=False))


def _decorator(host: Callable[..., Any], Tout: Any, fn: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """TensorFlow's decorator form (``@tf.py_function(Tout=tf.float32)``): the decorated function takes the
    tensors as its arguments and runs through ``host``."""
    if Tout is None:
        raise TypeError(f"tf.{fn}: used as a decorator (no func), it needs Tout.")

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def call(*args: Any) -> Any:
            return host(func, list(args), Tout)
        return call

    return decorate


def numpy_function(func: Callable[..., Any] | None = None, inp: Sequence[Any] | None = None, Tout: Any = None,
                   stateful: bool = True, name: str | None = None) -> Any:
    """``tf.numpy_function``: ``func`` called with ``inp`` as NumPy arrays; its result(s) as ``Tout``. Without
    ``func`` (``@tf.numpy_function(Tout=...)``), a decorator."""
    if func is None:
        return _decorator(numpy_function, Tout, "numpy_function")
    return _outputs(func(*_arrays(inp, "numpy_function", func)), Tout, "numpy_function")


def py_function(func: Callable[..., Any] | None = None, inp: Sequence[Any] | None = None, Tout: Any = None,
                name: str | None = None) -> Any:
    """``tf.py_function``: ``func`` called with ``inp`` as eager tensors; its result(s) as ``Tout``. Without
    ``func`` (``@tf.py_function(Tout=...)``, TensorFlow's tf.function guide), a decorator."""
    if func is None:
        return _decorator(py_function, Tout, "py_function")
    args = [EagerTensor(a) for a in _arrays(inp, "py_function", func)]
    return _outputs(func(*args), Tout, "py_function")
