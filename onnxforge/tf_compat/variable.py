"""``tf.Variable``: onnxforge's ``Variable`` made with TensorFlow's arguments.

TensorFlow's ``tf.Variable(initial_value, trainable=None, ..., name=None, dtype=None, ...)`` needs no name
and infers the dtype (a Python float is float32, an int int32, an array keeps its own); onnxforge's
``Variable(value, name, ...)`` needs a name (it names the program state) and defaults to float32. This
subclass takes TensorFlow's arguments and gives each unnamed variable a distinct name (``Variable``,
``Variable_1``, ...), as TensorFlow 1 graphs did. ``isinstance(layer.kernel, tf.Variable)`` holds for every
onnxforge Variable, as it does for TensorFlow's.

Example:
    >>> import numpy as np
    >>> v = Variable(1.0)
    >>> v.dtype.name, v.trainable, Variable(np.zeros(2)).dtype.name, Variable(3).dtype.name
    ('float32', True, 'float64', 'int32')
"""
from __future__ import annotations

__all__ = ["Variable"]

import itertools
from typing import Any

import numpy as np

from .. import variables as _variables
from ..graph import Value
from ..graph.folding import known_value

_unnamed = itertools.count()


class _VariableType(type):
    """``isinstance`` / ``issubclass`` against ``tf.Variable`` accept every onnxforge Variable."""

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, _variables.Variable)

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, _variables.Variable)


def _tensorflow_dtype(value: Any) -> Any:
    """The dtype TensorFlow gives ``value``: arrays keep theirs, Python floats are float32, ints int32."""
    if hasattr(value, "dtype"):
        return np.dtype(value.dtype)
    array = np.asarray(value)
    if array.dtype == np.float64:
        return np.dtype(np.float32)
    return np.dtype(np.int32) if array.dtype == np.int64 else array.dtype


def _concrete_initial_value(value: Value) -> np.ndarray:
    """The value of a graph tensor made while tracing (a Keras layer's ``build`` runs inside its first traced
    call: TensorFlow's modules guide makes ``tf.Variable(tf.zeros([n]))`` there), when constants alone give it."""
    known = known_value(value)
    if known is None:
        raise TypeError(f"tf.Variable: initial_value {value.name!r} is a graph tensor computed while tracing (a "
                        "random draw or a value of the inputs, e.g. tf.random.normal in a layer's build()), so it "
                        "has no value yet. Give a NumPy array or an initializer (self.add_weight(shape, "
                        "initializer='random_normal')), or create the Variable outside the traced call.")
    return np.asarray(known)


class Variable(_variables.Variable, metaclass=_VariableType):
    """``tf.Variable(initial_value, trainable=True, name=None, dtype=None, shape=None, constraint=None)``.

    ``validate_shape``, ``caching_device``, ``synchronization``, ``aggregation`` and
    ``experimental_enable_variable_lifting`` only place or share the variable in TensorFlow and are
    accepted; ``variable_def`` / ``import_scope`` (TensorFlow 1 protos) are refused. ``constraint`` (a
    projection the optimizer applies after each update) becomes ``variable.constraint``.
    A second positional string is read as the name, as onnxforge's own ``Variable(value, name)``.
    """

    def __init__(self, initial_value: Any = None, trainable: Any = None, validate_shape: bool = True,
                 caching_device: Any = None, name: str | None = None, variable_def: Any = None, dtype: Any = None,
                 import_scope: Any = None, constraint: Any = None, synchronization: Any = None,
                 aggregation: Any = None, shape: Any = None, experimental_enable_variable_lifting: bool = True,
                 **kwargs: Any):
        if isinstance(trainable, str):   # onnxforge's Variable(value, "name") order
            trainable, name = None, trainable
        for arg, value in (("variable_def", variable_def), ("import_scope", import_scope)):
            if value is not None:
                raise NotImplementedError(f"tf.Variable: {arg} is not supported. Received: {arg}={value!r}")
        if initial_value is None:
            raise ValueError("tf.Variable: initial_value must be specified.")
        if callable(initial_value):
            initial_value = initial_value()
        if isinstance(initial_value, Value):
            initial_value = _concrete_initial_value(initial_value)
        if hasattr(initial_value, "numpy") and not isinstance(initial_value, np.ndarray):
            initial_value = initial_value.numpy()
        dtype = _tensorflow_dtype(initial_value) if dtype is None else np.dtype(dtype)
        if name is None:
            count = next(_unnamed)
            name = "Variable" if count == 0 else f"Variable_{count}"
        super().__init__(initial_value, name=name, trainable=True if trainable is None else bool(trainable),
                         dtype=dtype, **kwargs)
        self.constraint = constraint
        if shape is not None and tuple(shape) != self.shape and None not in tuple(shape):
            raise ValueError(f"tf.Variable: initial_value has shape {self.shape}, not shape={tuple(shape)}.")

    @property
    def name(self) -> str:
        """TensorFlow's ``variable.name`` holds the whole path (``"dense/kernel"``, without TensorFlow's ``:0``),
        not Keras 3's last part."""
        return self.path

    # TensorFlow's assignments return the Variable (``v.assign_add(1).numpy()``, chained calls); onnxforge's
    # return None on the host. Inside a traced program the graph's result is kept.
    def assign(self, value: Any, use_locking: Any = None, name: Any = None, read_value: bool = True) -> Any:
        """``assign(value)``: replace the value; the Variable itself is returned (TensorFlow's)."""
        out = super().assign(value)
        return self if out is None else out

    def assign_add(self, delta: Any, use_locking: Any = None, name: Any = None, read_value: bool = True) -> Any:
        """``assign_add(delta)``: add ``delta`` in place; the Variable itself is returned."""
        out = super().assign_add(delta)
        return self if out is None else out

    def assign_sub(self, delta: Any, use_locking: Any = None, name: Any = None, read_value: bool = True) -> Any:
        """``assign_sub(delta)``: subtract ``delta`` in place; the Variable itself is returned."""
        out = super().assign_sub(delta)
        return self if out is None else out

    def read_value(self) -> Any:
        """The current value as a tensor (a graph value inside a trace), which a later assignment leaves as is.

        Example:
            >>> v = Variable(1.0)
            >>> before = v.read_value()
            >>> float(v.assign_add(1.0).read_value()), float(before)
            (2.0, 1.0)
        """
        value = self._operand()
        return value.copy() if isinstance(value, np.ndarray) else value
