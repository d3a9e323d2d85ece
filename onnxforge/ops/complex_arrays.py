"""Complex NumPy arrays through the ops on the host (a ``Dataset.map`` function, eager code).

onnxruntime has no complex kernels and onnxforge's graphs no complex dtype, so an op given a complex array
runs as two real ones when it is linear over the reals: once on the real parts, once on the imaginary parts
with every other floating operand zeroed (``add(c, r)``: ``re + r`` and ``im + 0``), and the halves are joined.
That covers the structural ops (reshape, transpose, slicing, concatenation, gathers ...) and sums; any other op
refuses a complex array, naming itself. Inside a model, complex values are pairs of real tensors
(``keras.ops.fft`` / ``stft`` take and return ``(real, imag)``).

Example:
    >>> import numpy as np
    >>> from onnxforge import ops
    >>> ops.expand_dims(np.array([1 + 2j, 3j], np.complex64), -1).tolist()
    [[(1+2j)], [3j]]
"""
from __future__ import annotations

__all__ = ["is_complex", "run_split", "view_as_complex", "view_as_real"]

from collections.abc import Callable
from typing import Any

import numpy as np

from ._util import _leaves, _map

# Ops linear over the reals in every floating operand (the rest of their arguments are shapes, axes, indices).
_SPLITTABLE = frozenset({
    "reshape", "transpose", "expand_dims", "squeeze", "concatenate", "stack", "tile", "broadcast_to", "take",
    "take_along_axis", "flip", "roll", "repeat", "moveaxis", "swapaxes", "split", "array_split", "slice",
    "dynamic_slice", "get_item", "getitem", "ravel", "flatten", "unstack", "gather", "gather_nd", "reverse",
    "add", "subtract", "negative", "sum", "mean", "cumsum", "diagonal", "trace", "triu", "tril", "hstack",
    "vstack", "append", "rot90", "matrix_transpose", "copy", "identity", "convert_to_tensor",
})


def is_complex(x: Any) -> bool:
    """Whether ``x`` is a complex array or number."""
    return isinstance(x, np.ndarray) and np.iscomplexobj(x) or isinstance(x, (complex, np.complexfloating))


def _part(x: Any, imaginary: bool) -> Any:
    if is_complex(x):
        part = np.imag(x) if imaginary else np.real(x)
        return np.ascontiguousarray(part) if isinstance(part, np.ndarray) else part
    if imaginary and isinstance(x, np.ndarray) and x.dtype.kind == "f":
        return np.zeros_like(x)
    if imaginary and isinstance(x, float) and not isinstance(x, bool):
        return 0.0
    return x


def run_split(name: str, fn: Callable[..., Any], args: tuple, kwargs: dict,
              run: Callable[[Callable[..., Any], tuple, dict], Any]) -> Any:
    """``fn(*args, **kwargs)`` for complex arguments, through ``run`` on the real and imaginary halves."""
    if name not in _SPLITTABLE:
        raise TypeError(f"ops.{name} received a complex array. onnxforge computes complex numbers on the host only "
                        "for structural ops and sums (onnxruntime has no complex kernels); keep the real and "
                        "imaginary parts as two real tensors (keras.ops.fft / stft take and give (real, imag)).")
    dtypes = [leaf.dtype for leaf in _leaves((args, kwargs)) if isinstance(leaf, np.ndarray) and np.iscomplexobj(leaf)]
    complex_dtype = np.result_type(*dtypes) if dtypes else np.complex128
    real = run(fn, *_map(lambda x: _part(x, False), (args, kwargs)))
    imag = run(fn, *_map(lambda x: _part(x, True), (args, kwargs)))

    def join(re: Any, im: Any) -> Any:
        if isinstance(re, (list, tuple)):
            return type(re)(join(r, i) for r, i in zip(re, im))
        joined = (np.asarray(re) + 1j * np.asarray(im)).astype(complex_dtype)
        return joined.view(type(re)) if isinstance(re, np.ndarray) and joined.ndim else joined

    return join(real, imag)


def _host_array(x: Any, op: str) -> np.ndarray:
    from ..graph import Value   # a traced value has a .numpy() that refuses: name the real limit instead

    if isinstance(x, Value) or (not isinstance(x, (np.ndarray, list, tuple, int, float, complex, np.generic))
                                and not hasattr(x, "numpy")):
        raise TypeError(f"ops.{op}: onnxforge's graphs have no complex dtype, so {op} runs on concrete arrays only "
                        f"(eager code, a Dataset.map function). Received: {type(x).__name__}")
    return np.asarray(x.numpy() if hasattr(x, "numpy") and not isinstance(x, np.ndarray) else x)


def view_as_complex(x: Any) -> np.ndarray:
    """``keras.ops.view_as_complex``: a float array whose last axis is ``(real, imag)`` as complex numbers."""
    array = _host_array(x, "view_as_complex")
    if array.ndim == 0 or array.shape[-1] != 2 or array.dtype.kind != "f":
        raise ValueError("ops.view_as_complex expects a float array whose last dimension is 2 (real, imag). "
                         f"Received: shape={array.shape}, dtype={array.dtype}")
    kind = np.complex128 if array.dtype == np.float64 else np.complex64
    return (array[..., 0] + 1j * array[..., 1]).astype(kind)


def view_as_real(x: Any) -> np.ndarray:
    """``keras.ops.view_as_real``: a complex array as floats with a last axis of ``(real, imag)``."""
    array = _host_array(x, "view_as_real")
    if not np.iscomplexobj(array):
        raise ValueError(f"ops.view_as_real expects a complex array. Received: dtype={array.dtype}")
    return np.stack([array.real, array.imag], axis=-1)
