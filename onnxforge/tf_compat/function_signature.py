"""``tf.function(input_signature=...)``: the arguments checked against the signature's ``TensorSpec``s before
the function is traced or run, as TensorFlow binds them.

An argument must match its spec's dtype and every known dim (``None`` matches any size); Python numbers and
lists become tensors of the spec's dtype. A mismatch, or more arguments than specs, raises TensorFlow's
``TypeError`` ("Binding inputs to tf.function failed ...") naming the argument, what was received and what
the signature expects. NumPy arrays and Python values are cast to the spec's dtype first, as TensorFlow
converts them; a tensor of another dtype is refused.

Example:
    >>> import numpy as np
    >>> from onnxforge.utils.tensor_spec import TensorSpec
    >>> bind(lambda x: x, [TensorSpec([None], "int32")], ([1, 2],), {})[0][0].dtype.name
    'int32'
"""
from __future__ import annotations

__all__ = ["bind", "with_signature", "SignedFunction"]

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..utils.tensor_spec import TensorSpec
from ..variables import Variable
from . import nest


def _fits(spec: TensorSpec, value: Any) -> bool:
    shape = tuple(np.shape(value.numpy() if isinstance(value, Variable) else value))
    if spec.shape is not None and (len(shape) != len(spec.shape)
                                   or any(s is not None and s != d for s, d in zip(spec.shape, shape))):
        return False
    return np.dtype(value.dtype).name == np.dtype(spec.numpy_dtype()).name


def _bind_one(fn: Callable[..., Any], index: int, spec: Any, value: Any) -> Any:
    if not isinstance(spec, TensorSpec):   # a nested signature: bind leaf by leaf
        specs, values = nest.flatten(spec), nest.flatten(value)
        if len(specs) != len(values):
            raise TypeError(f"Binding inputs to tf.function {fn.__name__!r} failed: argument {index} has "
                            f"{len(values)} tensors, the input_signature {len(specs)}. Received: {value!r}")
        return nest.pack_sequence_as(spec, [_bind_one(fn, index, s, v) for s, v in zip(specs, values)])
    if not hasattr(value, "dtype") or type(value) is np.ndarray or isinstance(value, np.generic):
        # Python numbers, lists and NumPy arrays are converted to the spec's dtype (TensorFlow casts them);
        # tensors and Variables must have it already.
        value = np.asarray(value).astype(spec.numpy_dtype(), copy=False)
    if not _fits(spec, value):
        got = tuple(np.shape(value.numpy() if isinstance(value, Variable) else value))
        raise TypeError(f"Binding inputs to tf.function {fn.__name__!r} failed: argument {index} of shape {got} "
                        f"and dtype {np.dtype(value.dtype).name} does not match the input_signature's "
                        f"TensorSpec(shape={spec.shape}, dtype={spec.dtype}).")
    return value


def bind(fn: Callable[..., Any], signature: Sequence[Any], args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """``args`` and ``kwargs`` checked against ``signature`` (one spec, or nested specs, per argument)."""
    if kwargs:   # keyword arguments take their place among the positional ones, by the function's parameters
        import inspect
        bound = inspect.signature(fn).bind(*args, **kwargs)
        args, kwargs = tuple(bound.args), dict(bound.kwargs)
    if len(args) > len(signature):
        raise TypeError(f"Binding inputs to tf.function {fn.__name__!r} failed: too many positional arguments. "
                        f"Received {len(args)}, the input_signature has {len(signature)}.")
    return tuple(_bind_one(fn, i, spec, a) for i, (spec, a) in enumerate(zip(signature, args))), kwargs


class SignedFunction:
    """A compiled ``tf.function`` called only with arguments that ``bind`` accepted; as a method, the signature
    describes the arguments after ``self`` (TensorFlow's)."""

    def __init__(self, compiled: Callable[..., Any], fn: Callable[..., Any], signature: Sequence[Any]):
        self._compiled, self.python_function, self.input_signature = compiled, fn, tuple(signature)
        functools.update_wrapper(self, fn)

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self
        return SignedFunction(self._compiled.__get__(obj, objtype), self.python_function.__get__(obj, objtype),
                              self.input_signature)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        args, kwargs = bind(self.python_function, self.input_signature, args, kwargs)
        return self._compiled(*args, **kwargs)

    def get_concrete_function(self, *args: Any, **kwargs: Any) -> Any:
        """The trace for the signature (arguments, if given, must fit it)."""
        if args or kwargs:
            args, kwargs = bind(self.python_function, self.input_signature, args, kwargs)
            return self._compiled.get_concrete_function(*args, **kwargs)
        return self._compiled.get_concrete_function(*self.input_signature)

    def experimental_get_tracing_count(self) -> int:
        return self._compiled.experimental_get_tracing_count()


def with_signature(compiled: Callable[..., Any], fn: Callable[..., Any], signature: Sequence[Any]) -> Any:
    """``compiled`` wrapped so that each call is checked against ``signature`` first."""
    return SignedFunction(compiled, fn, signature)
