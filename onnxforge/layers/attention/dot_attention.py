"""``Attention`` (Luong, dot-product) and ``AdditiveAttention`` (Bahdanau) layers, Keras 3 semantics.

Both take ``[query, value]`` or ``[query, value, key]`` (``(batch, T, dim)``, ``(batch, S, dim)``); Keras
masks of the inputs (``mask=[query_mask, value_mask]``) keep padded keys out of the softmax (scores get
``-1e9``) and zero the outputs of padded queries.
"""
from __future__ import annotations

__all__ = ["Attention", "AdditiveAttention"]

from typing import Any

import numpy as np

from ...graph import Value
from ...graph.value import broadcast_shapes
from ...tracing import current_trace
from ...graph import emit as _ops
from ..base import Layer
from ..seed_state import LayerSeedGenerator
from . import _common as C


class Attention(Layer):
    """Dot-product attention: ``softmax(query · keyᵀ [· scale]) · value`` (Keras 3 ``keras.layers.Attention``).

    Args:
        use_scale: learn a scalar ``scale`` multiplying the scores.
        score_mode: ``"dot"`` or ``"concat"`` (``concat_score_weight · sum(tanh(query + key))``).
        dropout: dropout rate on the attention weights (training only).
        seed: kept in the config.

    Call arguments: ``inputs=[query, value(, key)]``, ``mask=[query_mask, value_mask]``,
    ``return_attention_scores=False``, ``use_causal_mask=False``, ``training``.

    Example:
        >>> from onnxforge.layers import Attention, Input
        >>> q, v = Input(shape=(4, 8)), Input(shape=(6, 8))
        >>> Attention()([q, v]).shape
        (None, 4, 8)
    """

    supports_masking = True

    def __init__(self, use_scale: bool = False, score_mode: str = "dot", dropout: float = 0.0,
                 seed: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.use_scale = bool(use_scale)
        self.score_mode = score_mode
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1:
            raise ValueError(f"Layer {self.name!r}: `dropout` must be a float in [0, 1]. Received: dropout={dropout!r}")
        self.dropout = float(dropout)
        self.seed = seed
        if self.dropout > 0:   # listed in `variables` as Keras lists it (see layers/seed_state.py)
            self.seed_generator = LayerSeedGenerator(seed)
        if self.score_mode not in ("dot", "concat"):
            raise ValueError("Invalid value for argument score_mode. Expected one of {'dot', 'concat'}. "
                             f"Received: score_mode={score_mode}")

    def _validate_inputs(self, inputs: Any, mask: Any = None) -> None:
        name = type(self).__name__
        if not isinstance(inputs, (list, tuple)) or (inputs and isinstance(inputs[0], (int, type(None)))):
            raise ValueError(f"{name} layer must be called on a list of inputs, namely [query, value] or "
                             f"[query, value, key]. Received: inputs={inputs}.")
        if not 2 <= len(inputs) <= 3:
            raise ValueError(f"{name} layer accepts inputs list of length 2 or 3, namely [query, value] or "
                             f"[query, value, key]. Received length: {len(inputs)}.")
        if mask is not None and (not isinstance(mask, (list, tuple)) or not 2 <= len(mask) <= 3):
            raise ValueError(f"{name} layer mask must be a list, namely [query_mask, value_mask]. "
                             f"Received: mask={mask}.")

    def build(self, input_shape):
        self._validate_inputs(input_shape)
        self.scale = self.add_weight(name="scale", shape=(), initializer="ones") if self.use_scale else None
        self.concat_score_weight = (self.add_weight(name="concat_score_weight", shape=(), initializer="ones")
                                    if self.score_mode == "concat" else None)

    def _calculate_scores(self, query: Value, key: Value) -> Value:
        b = query.builder
        if self.score_mode == "dot":
            scores = query @ _ops.transpose(key, (*range(len(key.shape) - 2), len(key.shape) - 1, len(key.shape) - 2))
            return scores * self.scale if self.scale is not None else scores
        q = b.op("Unsqueeze", [query, _ops.ints(b, [-2])])  # (B, T, 1, dim)
        k = b.op("Unsqueeze", [key, _ops.ints(b, [-3])])    # (B, 1, S, dim)
        total = q + k
        if self.scale is not None:
            total = total * self.scale
        return _ops.reduce("ReduceSum", b.op("Tanh", [total]), [-1], keepdims=False) * self.concat_score_weight

    def call(self, inputs, mask=None, training=False, return_attention_scores=False, use_causal_mask=False):
        self._validate_inputs(inputs, mask)
        q, v = inputs[0], inputs[1]
        k = inputs[2] if len(inputs) > 2 else v
        q_mask = mask[0] if mask else None
        v_mask = mask[1] if mask else None
        b = q.builder
        scores = self._calculate_scores(q, k)
        scores_mask = None
        if v_mask is not None:
            scores_mask = b.op("Unsqueeze", [C.as_bool(v_mask), _ops.ints(b, [-2])])  # (B, 1, S)
        if use_causal_mask:
            causal = C.causal_mask(b, C.seq_len(q, -2), C.seq_len(k, -2))
            scores_mask = C.both(scores_mask, causal)
        if scores_mask is not None:
            # Keras: scores - 1e9 where masked (not a fill), then a plain softmax.
            pad = b.op("Cast", [b.op("Not", [scores_mask])], to=scores.dtype)
            scores = scores - pad * 1.0e9
        weights = b.op("Softmax", [scores], axis=-1)
        dropped = weights
        if training and self.dropout > 0:
            keep = b.op("Cast", [b.op("GreaterOrEqual", [current_trace().random_uniform(weights), self.dropout])],
                        to=weights.dtype)
            dropped = weights * (keep * (1.0 / (1.0 - self.dropout)))
        out = dropped @ v
        if q_mask is not None:
            keep_q = b.op("Unsqueeze", [C.as_bool(q_mask), _ops.ints(b, [-1])])
            out = b.op("Where", [keep_q, out, b.const(np.asarray(0.0, np.float32), out.dtype)], dtype=out.dtype)
        return (out, weights) if return_attention_scores else out

    def compute_mask(self, inputs, mask=None):
        if mask is None or not isinstance(mask, (list, tuple)) or mask[0] is None:
            return None
        return mask[0]

    def compute_output_shape(self, input_shape):
        # The leading (batch) dims broadcast as the matmuls do: keras.io's Perceiver attends from a latent
        # array of batch 1 (``ops.expand_dims(weight, 0)``) to a batch of images.
        q, v = tuple(input_shape[0]), tuple(input_shape[1])
        k = tuple(input_shape[2]) if len(input_shape) > 2 else v
        lead = broadcast_shapes(q[:-2], k[:-2], v[:-2]) if len(q) == len(k) == len(v) >= 2 else None
        return (*(q[:-2] if lead is None else lead), *q[-2:-1], v[-1])

    def compute_output_spec(self, inputs, mask=None, return_attention_scores=False, training=None,
                            use_causal_mask=False):
        from ..keras_tensor import KerasTensor

        self._validate_inputs(inputs, mask)
        q, v = inputs[0], inputs[1]
        k = inputs[2] if len(inputs) > 2 else v
        out = KerasTensor(self.compute_output_shape([q.shape, v.shape, k.shape]), self.compute_dtype)
        if return_attention_scores:
            return out, KerasTensor((*out.shape[:-1], k.shape[-2]), self.compute_dtype)
        return out

    def get_config(self):
        return {**super().get_config(), "use_scale": self.use_scale, "score_mode": self.score_mode,
                "dropout": self.dropout, "seed": self.seed}


class AdditiveAttention(Attention):
    """Additive (Bahdanau) attention: scores ``sum(scale * tanh(query + key), -1)``; ``scale`` is a learned
    ``(dim,)`` vector when ``use_scale`` (the default).

    Example:
        >>> from onnxforge.layers import AdditiveAttention, Input
        >>> q, v = Input(shape=(4, 8)), Input(shape=(6, 8))
        >>> AdditiveAttention()([q, v]).shape
        (None, 4, 8)
    """

    def __init__(self, use_scale: bool = True, dropout: float = 0.0, **kwargs: Any):
        super().__init__(use_scale=use_scale, dropout=dropout, **kwargs)

    def build(self, input_shape):
        self._validate_inputs(input_shape)
        dim = tuple(input_shape[0])[-1]
        self.scale = (self.add_weight(name="scale", shape=(dim,), initializer="glorot_uniform")
                      if self.use_scale else None)
        self.concat_score_weight = None

    def _calculate_scores(self, query: Value, key: Value) -> Value:
        b = query.builder
        q = b.op("Unsqueeze", [query, _ops.ints(b, [-2])])
        k = b.op("Unsqueeze", [key, _ops.ints(b, [-3])])
        t = b.op("Tanh", [q + k])
        if self.scale is not None:
            t = t * self.scale
        return _ops.reduce("ReduceSum", t, [-1], keepdims=False)

    def get_config(self):
        config = super().get_config()
        del config["score_mode"]
        return config
