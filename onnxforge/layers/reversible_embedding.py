"""``ReversibleEmbedding``: an ``Embedding`` that can also project vectors back to vocabulary logits
(``reverse=True``), with tied (the transposed embeddings) or separate weights, as Keras 3's layer."""
from __future__ import annotations

__all__ = ["ReversibleEmbedding"]

from typing import Any

from ..graph.value import onnx_dtype
from .core import Embedding
from .keras_tensor import KerasTensor


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

    def _keras_saved_variables(self):    # Keras appends the untied reverse table after the embeddings
        return super()._keras_saved_variables() + [v for v in (getattr(self, "reverse_embeddings", None),)
                                                    if v is not None]

    def build(self, input_shape=None):
        super().build(input_shape)
        if not self.tie_weights:
            self.reverse_embeddings = self.add_weight(shape=(self.output_dim, self.input_dim),
                                                      initializer=self.embeddings_initializer,
                                                      name="reverse_embeddings")

    def call(self, inputs, reverse=False):
        if not reverse:
            return super().call(inputs)
        b = inputs.builder
        if self.tie_weights:
            kernel = b.op("Transpose", [self._lora_weight()], perm=[1, 0])
        else:
            kernel = self.reverse_embeddings
        x = inputs
        if self.reverse_dtype is not None:
            to = onnx_dtype(self.reverse_dtype)
            x, kernel = b.op("Cast", [x], to=to), b.op("Cast", [kernel], to=to)
        logits = x @ kernel
        if self.logit_soft_cap is not None:
            cap = float(self.logit_soft_cap)
            logits = b.op("Tanh", [logits * (1.0 / cap)]) * cap
        return logits

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
