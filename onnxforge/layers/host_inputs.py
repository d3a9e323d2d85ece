"""What a layer call accepts besides symbolic tensors and numpy arrays, as Keras 3 does: nested lists of
Python scalars and other frameworks' tensors holding values, turned into numpy arrays before dispatch.

Example:
    >>> host_arrays([[1.0, 2.0]]).shape
    (1, 2)
"""
from __future__ import annotations

__all__ = ["host_arrays", "read_variable_inputs", "call_arguments", "wrap_compute_mask"]

import functools
from typing import Any

import numpy as np

from ..graph import Value
from ..tracing import active_trace, eager_executor
from ..variables import Variable
from .keras_tensor import KerasTensor, flatten

_SCALARS = (bool, int, float, complex, str, bytes, np.generic)


def _all_scalars(x: Any) -> bool:
    if isinstance(x, (list, tuple)):
        return all(_all_scalars(i) for i in x)
    return isinstance(x, _SCALARS)


def host_arrays(x: Any) -> Any:
    """A layer's inputs as Keras 3 accepts them, with other frameworks' tensors and nested lists of Python
    scalars (``layer([[1.0, 2.0]])``, ``vectorize(["the cat"])``) turned into numpy arrays; symbolic
    tensors, arrays and other structures are left as they are."""
    if isinstance(x, (np.str_, np.bytes_)):
        # One string element (a ``Dataset.map`` over a string column) is a 0-d string array to the layer.
        return np.asarray(x)
    if isinstance(x, (KerasTensor, Value, np.ndarray, np.generic, Variable)) or x is None:
        return x   # a Variable stays one: a GradientTape follows it into the call (read_variable_inputs)
    if isinstance(x, (list, tuple)):
        if x and _all_scalars(x):
            return np.asarray(x)
        return type(x)(host_arrays(i) for i in x) if type(x) in (list, tuple) else x
    if isinstance(x, dict):
        return {k: host_arrays(v) for k, v in x.items()}
    to_numpy = getattr(x, "numpy", None)
    if callable(to_numpy) and hasattr(x, "__array__"):   # a TensorFlow, PyTorch or JAX tensor on the host
        detach = getattr(x, "detach", None)
        try:
            return np.asarray((detach().cpu() if callable(detach) else x).numpy())
        except Exception:   # a symbolic tensor (inside tf.function) has no value: the caller names it
            return x
    if hasattr(x, "__array__"):
        # Keras 3 converts whatever offers ``__array__``: a pandas Series or ``df["tag"].values`` (a pandas
        # StringArray under pandas 3), as keras.io's video classification page gives its StringLookup.
        try:
            return np.asarray(x)
        except Exception:   # an array-like that cannot give its values: the caller names it
            return x
    return x


def read_variable_inputs(args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Variables among a layer's call arguments (``model(tf.Variable(x))`` under a ``GradientTape``, as
    TensorFlow's tutorials take gradients with respect to inputs): read in the graph being traced, so that
    an eager call's program takes them as state it reads, which the tape links to the Variable."""
    if active_trace() is None or not any(isinstance(t, Variable) for t in flatten((args, kwargs))):
        return args, kwargs
    from .keras_tensor import map_structure

    return map_structure(lambda t: t.__onnx_value__() if isinstance(t, Variable) else t, (args, kwargs))


def call_arguments(layer: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """A layer call's arguments ready for dispatch: the first as ``host_arrays`` makes it, Variables read
    (``read_variable_inputs``), and Keras 3's refusal of a Python scalar passed positionally after it:
    tf.keras 2's ``self.augmenter(images, training)`` must say ``training=training`` (a layer that sets
    ``_allow_non_tensor_positional_args``, as the preprocessing layers do, is exempt as in Keras). Keras's
    DataLayer preprocessing layers (``_keras_data_layer``) take the input alone positionally, as its ``__call__``."""
    if getattr(layer, "_keras_data_layer", False) and len(args) > 1:
        raise TypeError(f"{type(layer).__name__}.__call__() takes 2 positional arguments but {len(args) + 1} were "
                        "given: pass the other arguments by keyword (training=...).")
    if not getattr(layer, "_allow_non_tensor_positional_args", False):
        for arg in flatten(tuple(args[1:])):
            # A static dim from tf.shape is a tensor in TensorFlow (tf_compat.tensors.ShapeDim): taken.
            if isinstance(arg, (bool, int, float, complex, str, bytes)) and not getattr(arg, "_tensor_dim", False):
                raise ValueError("Only input tensors may be passed as positional arguments. The following "
                                 f"argument value should be passed as a keyword argument: {arg} (of type {type(arg)})")
    first = args[0]
    if getattr(layer, "_allow_non_tensor_positional_args", False) and isinstance(first, (str, bytes, int, float)):
        # Keras's lookup, hashing and TextVectorization layers convert any non-tensor input themselves:
        # ``vectorizer(x["movie_title"])`` on one element of ``Dataset.as_numpy_iterator()`` (a Python bytes).
        first = np.asarray(first)
    return read_variable_inputs((host_arrays(first),) + tuple(args[1:]), kwargs)


def wrap_compute_mask(cls: type) -> None:
    """Let ``cls.compute_mask`` (written on graph values) take arrays too, as Keras's does on eager tensors:
    ``Embedding(mask_zero=True).compute_mask(ids)`` runs as a compiled eager function."""
    original = cls.__dict__.get("compute_mask")
    if original is None or getattr(original, "_wrapped_compute_mask", False):
        return

    @functools.wraps(original)
    def compute_mask(self: Any, inputs: Any, mask: Any = None) -> Any:
        leaves = flatten((inputs, mask))
        if any(isinstance(t, (Value, KerasTensor)) for t in leaves) or \
                not any(isinstance(t, np.ndarray) for t in leaves):
            return original(self, inputs, mask)
        bound = self.__dict__.get("_eager_compute_mask")
        if bound is None:   # one function object per layer: the eager cache is keyed by it
            bound = self.__dict__["_eager_compute_mask"] = functools.partial(original, self)
        return eager_executor().run_function(bound, (host_arrays(inputs), mask), {})

    compute_mask._wrapped_compute_mask = True  # type: ignore[attr-defined]
    cls.compute_mask = compute_mask  # type: ignore[attr-defined]


def pipeline_inputs(layer: Any, args: tuple) -> tuple:
    """``args`` with the first argument's numeric arrays in the layer's compute dtype, when ``layer`` is a Keras
    data layer (image preprocessing, ``Rescaling``; or a ``Sequential`` starting with one) called inside a
    ``Dataset.map``: Keras 3 converts a data layer's inputs so in tf.data, and Resizing of uint8 images there
    gives float32 (float16 under mixed_float16) where an eager call keeps the integers."""
    from ..trace_state import in_data_pipeline
    from .keras_tensor import map_structure

    inner = getattr(layer, "layers", None) if type(layer).__name__ == "Sequential" else None
    data_layer = getattr(layer, "_data_layer", False) or bool(inner) and getattr(inner[0], "_data_layer", False)
    if not data_layer or not args or not in_data_pipeline():
        return args
    dtype = np.dtype(layer.compute_dtype)

    def convert(a: Any) -> Any:
        numeric = isinstance(a, (np.ndarray, np.generic)) and np.asarray(a).dtype.kind in "biuf"
        return np.asarray(a).astype(dtype) if numeric else a

    return (map_structure(convert, args[0]), *args[1:])
