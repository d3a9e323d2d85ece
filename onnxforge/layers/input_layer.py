"""``Input`` / ``InputLayer``: where a functional model's symbolic tensors start."""
from __future__ import annotations

__all__ = ["InputLayer", "Input"]

import warnings
from typing import Any

from .base import Layer, auto_name
from .keras_tensor import KerasTensor, Node, standardize_dtype


class InputLayer(Layer):
    """The layer behind ``Input``: no weights, one node without inputs, one output tensor.

    Args:
        shape: shape without the batch dim (``None`` for unknown dims).
        batch_size: optional fixed batch size.
        dtype: input dtype (default ``keras.config.floatx()``; integer for ``Embedding`` inputs).
        batch_shape: the full shape including the batch dim (instead of ``shape`` / ``batch_size``).
        name: the input's name (default ``input_layer``, ``input_layer_1``, ...).
        input_tensor: an existing KerasTensor this layer adopts as its output (it becomes a model input, as
            in Keras 3; ``clone_model(..., input_tensors=...)`` builds on it).
    """

    #: Keras never gives an InputLayer a path (no weights live under it).
    path = None

    def __init__(self, shape: Any = None, batch_size: int | None = None, dtype: Any = None,
                 sparse: bool | None = None, ragged: bool | None = None, batch_shape: Any = None,
                 input_tensor: Any = None, optional: bool = False, name: str | None = None, **kwargs: Any):
        if sparse:
            raise NotImplementedError("Sparse inputs are not supported by onnxforge. Received: sparse=True")
        if ragged:   # Keras itself takes ragged inputs on TensorFlow only
            raise NotImplementedError("Ragged inputs are not supported by onnxforge. Received: ragged=True")
        optional = bool(optional)
        # Keras 3 still reads tf.keras 2's names (with a deprecation warning for input_shape).
        if "input_shape" in kwargs:
            warnings.warn("Argument `input_shape` is deprecated. Use `shape` instead.", stacklevel=2)
            shape = kwargs.pop("input_shape")
        if "batch_input_shape" in kwargs:
            batch_shape = kwargs.pop("batch_input_shape")
        if input_tensor is not None:
            shape, batch_size, batch_shape, dtype = _adopt(input_tensor, shape, batch_size, batch_shape, dtype)
        if shape is not None and batch_shape is not None:
            raise ValueError("You cannot pass both `shape` and `batch_shape` at the same time.")
        if batch_shape is None:
            if shape is None:
                raise ValueError("You must pass a `shape` argument. Received: shape=None")
            batch_shape = (batch_size, *_standardize_shape(shape))
        batch_shape = _standardize_shape(batch_shape)
        super().__init__(name=name or auto_name("input_layer"), **kwargs)
        # Keras keeps the input's dtype apart from the layer's policy: floatx() unless given.
        self._input_dtype = standardize_dtype(dtype.name if hasattr(dtype, "compute_dtype") else dtype)
        self.batch_shape = batch_shape
        self.sparse = False
        self.optional = optional
        self.built = True
        tensor = input_tensor if input_tensor is not None else KerasTensor(batch_shape, self.dtype, name=self.name)
        Node(self, (), {}, tensor)
        self._output_tensor = tensor

    @property
    def dtype(self) -> str:
        return self._input_dtype

    def call(self, inputs: Any) -> Any:
        return inputs

    def _count_flops(self, input_shapes, output_shapes):
        return 0

    def get_config(self) -> dict:
        return {"batch_shape": tuple(self.batch_shape), "dtype": self.dtype, "sparse": False, "ragged": False,
                "name": self.name, "optional": self.optional}

    @property
    def output(self) -> KerasTensor:
        return self._output_tensor


def _adopt(tensor: Any, shape: Any, batch_size: Any, batch_shape: Any, dtype: Any) -> tuple:
    """The batch shape and dtype of an adopted ``input_tensor``, refusing arguments that contradict them."""
    if not isinstance(tensor, KerasTensor):
        raise ValueError(f"Argument `input_tensor` must be a KerasTensor. Received invalid type: "
                         f"input_tensor={tensor!r} (of type {type(tensor).__name__})")
    given = tuple(tensor.shape)
    checks = (("batch_size", batch_size, batch_size is not None and (not given or given[0] != batch_size)),
              ("shape", shape, shape is not None and tuple(shape) != given[1:]),
              ("batch_shape", batch_shape, batch_shape is not None and tuple(batch_shape) != given),
              ("dtype", dtype, dtype is not None and standardize_dtype(dtype) != tensor.dtype))
    for arg, value, bad in checks:
        if bad:
            raise ValueError(f"When providing the `input_tensor` argument, you cannot provide an incompatible "
                             f"`{arg}` argument. Received: {arg}={value!r}, input_tensor={tensor!r}")
    return None, None, given, tensor.dtype


def _standardize_shape(shape: Any) -> tuple:
    """Keras 3's check of a shape: an iterable of non-negative ints (or ``None``); ``shape=2`` is refused."""
    if not isinstance(shape, tuple) and not hasattr(shape, "__iter__"):
        raise ValueError(f"Cannot convert '{shape}' to a shape.")
    dims = []
    for d in shape:
        if d is not None:
            if isinstance(d, (str, float)):   # refused even where int() would take them, as Keras does
                raise ValueError(f"Cannot convert '{shape}' to a shape. Found invalid dimension '{d}' of type "
                                 f"'{type(d)}'. ")
            try:
                d = int(d)
            except Exception as e:
                raise ValueError(f"Cannot convert '{shape}' to a shape. Found invalid dimension '{d}' of type "
                                 f"'{type(d)}'. ") from e
            if d < 0:
                raise ValueError(f"Cannot convert '{shape}' to a shape. Negative dimensions are not allowed.")
        dims.append(d)
    return tuple(dims)


def Input(shape: Any = None, batch_size: int | None = None, dtype: Any = None, sparse: bool | None = None,
          ragged: bool | None = None, batch_shape: Any = None, name: str | None = None, tensor: Any = None,
          optional: bool = False) -> KerasTensor:
    """A symbolic model input (Keras's ``keras.Input``).

    Example:
        >>> from onnxforge.layers import Input
        >>> x = Input(shape=(28, 28, 1), name="image")
        >>> x.shape, x.dtype, x.name
        ((None, 28, 28, 1), 'float32', 'image')
    """
    layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, sparse=sparse, ragged=ragged,
                       batch_shape=batch_shape, name=name, input_tensor=tensor, optional=optional)
    return layer.output
