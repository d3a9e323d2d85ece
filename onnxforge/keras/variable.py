"""``keras.Variable``: Keras 3's constructor over onnxforge's ``Variable``.

Keras 3 builds a variable from an initializer and a shape, or from a value, and infers the dtype
(``keras.Variable(np.zeros(3))`` is float64, ``keras.Variable(1.0)`` floatx); onnxforge's own ``Variable``
(which ``import onnxforge as tf`` also serves as ``tf.Variable``) takes a value and a name. Every onnxforge
``Variable`` is an instance of this class (``isinstance(layer.kernel, keras.Variable)``), as every weight is one
in Keras.

Example:
    >>> import numpy as np
    >>> from onnxforge.keras import Variable
    >>> v = Variable(initializer="ones", shape=(2,), name="scale")
    >>> v.name, v.dtype, v.numpy().tolist()
    ('scale', dtype('float32'), [1.0, 1.0])
    >>> Variable(np.zeros(3)).dtype
    dtype('float64')
"""
from __future__ import annotations

__all__ = ["Variable"]

from typing import Any

import numpy as np

from .. import initializers
from ..backend_config import floatx
from ..layers.keras_tensor import standardize_dtype
from ..variables import Variable as _Variable
from .scopes import current_path


class _AnyVariable(type):
    """Makes every onnxforge ``Variable`` (a layer weight, an optimizer slot) an instance of ``keras.Variable``."""

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, _Variable)

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, _Variable)


def _initial_value(initializer: Any, shape: Any, dtype: Any) -> np.ndarray:
    if isinstance(initializer, str) or (callable(initializer) and not isinstance(initializer, np.ndarray)):
        if shape is None:
            raise ValueError("When creating a Variable from an initializer, the `shape` argument should be "
                             f"specified. Received: initializer={initializer} and shape={shape}")
        dtype = standardize_dtype(dtype)
        return np.asarray(initializers.get(initializer)(tuple(shape), dtype=dtype), dtype=dtype)
    if dtype is not None:
        value = np.asarray(initializer, dtype=standardize_dtype(dtype))
    elif isinstance(initializer, (np.ndarray, np.generic)):
        value = np.asarray(initializer)  # an array keeps its dtype (float64 stays float64, as in Keras)
    else:
        # Python numbers and lists: floats become floatx, integers int32 (Keras's standardize_dtype).
        value = np.asarray(initializer)
        if value.dtype.kind == "f":
            value = value.astype(floatx())
        elif value.dtype.kind in "iu":
            value = value.astype(np.int32)
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise ValueError(f"Initial value has shape {value.shape}, but the variable's shape is {tuple(shape)}. "
                         f"Received: shape={shape}")
    return value


class Variable(_Variable, metaclass=_AnyVariable):
    """A Keras 3 variable: ``Variable(initializer, shape=None, dtype=None, trainable=True, name=None)``.

    Args:
        initializer: an initial value (array, number, nested list), or an initializer (name, instance or
            callable ``(shape, dtype) -> array``) applied to ``shape``.
        shape: the variable's shape; required with an initializer.
        dtype: default: the value's own dtype for arrays, floatx for Python floats, int32 for Python ints.
        trainable: whether optimizers update it (a layer holding it lists it in ``trainable_weights``).
        autocast: whether a mixed-precision layer reads it cast to its compute dtype.
        name: default ``"variable"``, made unique (``"variable_1"``); may not contain ``/``.
    """

    def __init__(self, initializer: Any, shape: Any = None, dtype: Any = None, trainable: bool = True,
                 autocast: bool = True, aggregation: str = "none", synchronization: str = "auto",
                 name: str | None = None, **kwargs: Any):
        unknown = [k for k in kwargs if k != "layout"]
        if unknown:
            raise TypeError(f"Variable.__init__() got an unexpected keyword argument {unknown[0]!r}")
        if name is not None and (not isinstance(name, str) or "/" in name):
            raise ValueError("Argument `name` must be a string and cannot contain character `/`. "
                             f"Received: name={name}")
        value = _initial_value(initializer, shape, dtype)
        super().__init__(value, name=name, trainable=bool(trainable), dtype=value.dtype, autocast=autocast)
        scope = current_path()
        if scope:   # keras.name_scope: the path starts with the open scopes' names
            self.path = f"{scope}/{self.path}"
