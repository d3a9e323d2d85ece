"""``keras.Operation`` and ``keras.Function``: Keras 3's base class of ops and layers, and a callable graph of
``KerasTensor``\\s.

Every onnxforge layer is a ``keras.Operation`` (``isinstance(layer, keras.Operation)``). A subclass writes
``call``; called on arrays it computes, on ``KerasTensor``\\s it adds a node to a functional graph (it is a
``Layer`` without weights underneath; a ``compute_output_spec`` it defines is not needed, the output's shape is
traced). ``Function(inputs, outputs)`` runs the graph between symbolic ``keras.Input``\\s and any tensors
computed from them, as Keras's does, on onnxforge's functional model.

Example:
    >>> import numpy as np
    >>> from onnxforge import keras
    >>> a, b = keras.Input((2,)), keras.Input((2,))
    >>> fn = keras.Function([a, b], keras.ops.add(a, b))
    >>> np.asarray(fn([np.ones((1, 2)), np.ones((1, 2))])).tolist()
    [[2.0, 2.0]]
"""
from __future__ import annotations

__all__ = ["Operation", "Function"]

import warnings
from typing import Any

from ..layers import Layer


class _AnyOperation(type):
    """``isinstance(layer, keras.Operation)`` holds for every onnxforge layer, as Keras's layers are operations."""

    def __instancecheck__(cls, obj: Any) -> bool:
        if cls is Operation:
            return isinstance(obj, Layer)
        return type.__instancecheck__(cls, obj)


class Operation(Layer, metaclass=_AnyOperation):
    """Base class of a stateless op: subclass it and write ``call``.

    Example:
        >>> import numpy as np
        >>> from onnxforge import keras
        >>> class Double(keras.Operation):
        ...     def call(self, x):
        ...         return x * 2
        >>> np.asarray(Double()(np.ones(2, "float32"))).tolist()
        [2.0, 2.0]
    """

    def __init__(self, name: str | None = None, **kwargs: Any):
        super().__init__(name=name, **kwargs)


class Function:
    """The computation from ``inputs`` (``keras.Input`` tensors or bare ``KerasTensor``s) to ``outputs``
    (tensors derived from them).

    Args:
        inputs: a ``KerasTensor`` or a list / dict of them.
        outputs: a ``KerasTensor`` or a list / dict of them.
        name: the function's name.

    Calling it with arrays in the structure of ``inputs`` returns arrays in the structure of ``outputs``.
    """

    def __init__(self, inputs: Any, outputs: Any, name: str | None = None):
        from ..layers.input_layer import InputLayer
        from ..layers.keras_tensor import KerasTensor, flatten
        from ..models import Model

        self.name = name or "function"
        self._inputs_struct, self._outputs_struct = inputs, outputs
        for t in flatten(inputs):
            if isinstance(t, KerasTensor) and t._keras_history is None:
                # A bare ``KerasTensor(shape)`` that ops were applied to: Keras takes it as an input as it is;
                # here an InputLayer adopts it, so the model's graph search stops at it.
                InputLayer(input_tensor=t)
        with warnings.catch_warnings():
            # Keras's Function maps a dict of inputs by its keys, whatever the tensors' names (a Model warns).
            warnings.filterwarnings("ignore", message="When providing `inputs` as a dict")
            self._model = Model(inputs=inputs, outputs=outputs, name=self.name)

    @property
    def inputs(self) -> list:
        return list(self._model.inputs)

    @property
    def outputs(self) -> list:
        return list(self._model.outputs)

    @property
    def operations(self) -> list:
        """The graph's operations in order: its input layers, then each layer or op applied."""
        return list(self._model.layers)

    def __call__(self, inputs: Any) -> Any:
        return self._model(inputs)

    def __repr__(self) -> str:
        return f"<Function name={self.name}>"
