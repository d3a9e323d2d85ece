"""``ReversibleEmbedding``: an ``Embedding`` that can also project vectors back to vocabulary logits
(``reverse=True``), with tied (the transposed embeddings) or separate weights, as Keras 3's layer."""
from __future__ import annotations

__all__ = ["ReversibleEmbedding"]

from typing import Any

import numpy as np

from ..graph import emit as _ops
from ..graph.value import onnx_dtype
from .core import Embedding
from .keras_tensor import KerasTensor
from .quantization import abs_max_quantize_numpy, dequantized, quantizable, quantize_inputs


@quantizable
class ReversibleEmbedding(Embedding):
    """Token ids to vectors, and (``reverse=True``) vectors to logits over the vocabulary.

    Args:
        input_dim, output_dim, embeddings_initializer, embeddings_regularizer, mask_zero: as ``Embedding``.
        tie_weights: reuse the embeddings (transposed) for the reverse projection; otherwise a separate
            ``reverse_embeddings (output_dim, input_dim)`` weight.
        reverse_dtype: dtype of the reverse product (``None``: the layer's).
        logit_soft_cap: bound the logits to ``±cap`` with ``tanh(logits / cap) * cap``.

    Example:
        >>> from onnxforge.layers import Input, ReversibleEmbedding
        >>> emb = ReversibleEmbedding(100, 8)
        >>> h = emb(Input(shape=(5,), dtype="int32"))
        >>> emb(h, reverse=True).shape
        (None, 5, 100)
    """

    def __init__(self, input_dim: int, output_dim: int, tie_weights: bool = True,
                 embeddings_initializer: Any = "uniform", embeddings_regularizer: Any = None,
                 embeddings_constraint: Any = None, mask_zero: bool = False, reverse_dtype: Any = None,
                 logit_soft_cap: float | None = None, **kwargs: Any):
        super().__init__(input_dim, output_dim, embeddings_initializer=embeddings_initializer,
                         embeddings_regularizer=embeddings_regularizer, embeddings_constraint=embeddings_constraint,
                         mask_zero=mask_zero, **kwargs)
        self.tie_weights = bool(tie_weights)
        self.reverse_dtype = reverse_dtype
        self.logit_soft_cap = logit_soft_cap

    _supports_int4 = False   # Keras's int4 ReversibleEmbedding packs its reverse table too: not computed here

    def _keras_saved_variables(self):    # Keras appends the untied reverse table (and its scale) after the embeddings
        return super()._keras_saved_variables() + [v for v in (getattr(self, "reverse_embeddings", None),
                                                               getattr(self, "reverse_embeddings_scale", None))
                                                    if v is not None]

    def _int8_build(self, shape):
        """Keras's int8 ``ReversibleEmbedding``: the untied reverse table becomes int8 too, one scale per
        vocabulary entry (quantized over ``output_dim``, axis 0)."""
        super()._int8_build(shape)
        if self.tie_weights:
            return
        old = self.__dict__.get("reverse_embeddings")
        values = None
        if old is not None:     # quantize(): the float table is replaced
            values = abs_max_quantize_numpy(np.asarray(old.numpy(), np.float32), 0)
            self._drop_weight(old, "reverse_embeddings")
        with self._state_unlocked():
            self.reverse_embeddings = self.add_weight(shape=(self.output_dim, self.input_dim), initializer="zeros",
                                                      name="reverse_embeddings", dtype="int8", trainable=False)
            self.reverse_embeddings_scale = self.add_weight(shape=(self.input_dim,), initializer="ones",
                                                            name="reverse_embeddings_scale", trainable=False)
        if values is not None:
            self.reverse_embeddings.assign(values[0])
            self.reverse_embeddings_scale.assign(np.squeeze(values[1], axis=0))

    def build(self, input_shape=None):
        super().build(input_shape)
        if not self.tie_weights and self.quantization_mode is None:
            self.reverse_embeddings = self.add_weight(shape=(self.output_dim, self.input_dim),
                                                      initializer=self.embeddings_initializer,
                                                      name="reverse_embeddings")

    def call(self, inputs, reverse=False):
        if not reverse:
            return super().call(inputs)
        b = inputs.builder
        if self.quantization_mode == "int8":
            return self._soft_cap(self._int8_reverse(inputs))
        if self.tie_weights:
            kernel = b.op("Transpose", [self._lora_weight()], perm=[1, 0])
        else:
            kernel = self.reverse_embeddings
        x = inputs
        if self.reverse_dtype is not None:
            to = onnx_dtype(self.reverse_dtype)
            x, kernel = b.op("Cast", [x], to=to), b.op("Cast", [kernel], to=to)
        return self._soft_cap(x @ kernel)

    def _soft_cap(self, logits):
        if self.logit_soft_cap is not None:
            cap = float(self.logit_soft_cap)
            logits = logits.builder.op("Tanh", [logits * (1.0 / cap)]) * cap
        return logits

    def _int8_reverse(self, x):
        """Keras's int8 reverse projection: per-token quantized inputs times the int8 table, divided by both
        scales. Keras gives it no custom gradient, so (as there) the inputs' gradient through the rounding is 0."""
        if self.tie_weights:
            kernel, scale = _ops.transpose(self.embeddings.__onnx_value__(), (1, 0)), self.embeddings_scale
        else:
            kernel, scale = self.reverse_embeddings.__onnx_value__(), self.reverse_embeddings_scale
        xq, x_scale = quantize_inputs(x, [-1])
        return (xq @ dequantized(kernel, x)) / (x_scale * scale)

    def compute_mask(self, inputs, mask=None):
        if getattr(inputs, "dtype", None) is not None and getattr(inputs, "is_float", False):
            return None  # the reverse direction carries no mask
        return super().compute_mask(inputs, mask)

    def _annotate_output_shapes(self, first, shapes, outputs):
        return  # the direction decides the shape; ONNX inference fills it in

    def compute_output_shape(self, input_shape, reverse=False):
        shape = list(input_shape)
        if reverse:
            shape[-1] = self.input_dim
        else:
            shape.append(self.output_dim)
        return tuple(shape)

    def compute_output_spec(self, inputs, reverse=False):
        return KerasTensor(self.compute_output_shape(inputs.shape, reverse), self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "tie_weights": self.tie_weights, "reverse_dtype": self.reverse_dtype,
                "logit_soft_cap": self.logit_soft_cap}
