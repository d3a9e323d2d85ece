"""Keras masks in traced graphs, and the ``Masking`` layer.

Masks live in a side table per builder (``onnxforge.keras_masks``, re-exported here):
``set_keras_mask(value, mask)`` after a layer produced ``value``, ``get_keras_mask(value)`` when the next
layer wants it. The recurrent layers read the table when ``call`` gets no explicit ``mask=``, and write it for their outputs (Keras's
``compute_mask``). A model tracer propagates masks for every other layer the Keras way::

    mask = layer.compute_mask(inputs, previous_mask)   # for layers that define compute_mask
    set_keras_mask(outputs, mask)
"""
from __future__ import annotations

__all__ = ["Masking", "set_keras_mask", "get_keras_mask"]

from typing import Any

import onnx

from ...graph import Value
from ...graph import emit as _ops
from ...keras_masks import get_keras_mask, set_keras_mask
from ..base import Layer


class Masking(Layer):
    """Masks time steps whose features all equal ``mask_value``: they are zeroed and flagged as skipped.

    The output mask ``(batch, time)`` is ``any(inputs != mask_value, axis=-1)``; recurrent layers downstream
    leave their state unchanged on masked steps.

    Example:
        >>> from onnxforge.layers import Input
        >>> from onnxforge.layers.recurrent import Masking
        >>> Masking(mask_value=0.0)(Input(shape=(5, 3))).shape
        (None, 5, 3)
    """

    supports_masking = True

    def __init__(self, mask_value: float = 0.0, **kwargs: Any):
        super().__init__(**kwargs)
        try:
            self.mask_value = float(mask_value)
        except (TypeError, ValueError):
            raise ValueError(f"Layer {self.name}: `mask_value` must be a number. Received: "
                             f"mask_value={mask_value!r}") from None

    def _keep(self, inputs: Value) -> Value:
        """``any(inputs != mask_value, axis=-1, keepdims=True)`` as 0/1 in the input dtype."""
        b = inputs.builder
        differs = b.op("Not", [b.op("Equal", [inputs, self.mask_value])])
        flags = b.op("Cast", [differs], to=inputs.dtype)
        return _ops.reduce("ReduceMax", flags, [-1], keepdims=True)

    def call(self, inputs):
        if inputs.rank is not None and inputs.rank < 2:
            raise ValueError(f"Layer {self.name!r} expects inputs of rank >= 2 (batch, time, ...). "
                             f"Received: shape={inputs.shape}")
        keep = self._keep(inputs)
        out = inputs * keep
        out.shape = inputs.shape
        set_keras_mask(out, self._mask_from(keep))
        return out

    def _mask_from(self, keep: Value) -> Value:
        b = keep.builder
        flags = b.op("Greater", [keep, 0.0])
        shape = None if keep.shape is None else keep.shape[:-1]
        return b.op("Squeeze", [flags, _ops.ints(b, [-1])], dtype=onnx.TensorProto.BOOL, shape=shape)

    def compute_mask(self, inputs: Value, mask: Any = None) -> Value:
        return self._mask_from(self._keep(inputs))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "mask_value": self.mask_value}
