"""``GroupQueryAttention`` (Keras 3's ``GroupedQueryAttention``): fewer key/value heads than query heads,
each key/value head shared by ``num_query_heads // num_key_value_heads`` query heads.

It is ``MultiHeadAttention`` with its own arguments and config: the same einsum projections (``query/kernel
(dim, num_query_heads, head_dim)``, ``key`` and ``value`` with ``num_key_value_heads``), masks and numbers,
the key/value heads repeated (``repeat_interleave`` order) before the scores.
"""
from __future__ import annotations

__all__ = ["GroupedQueryAttention", "GroupQueryAttention"]

from typing import Any

from ...graph.shape_inference import fill_shapes
from ... import initializers as initializers_mod
from ... import regularizers as regularizers_mod
from ...constraints import serialize as serialize_constraint
from ...graph import emit as _ops
from ..base import auto_name
from ..keras_tensor import KerasTensor
from .multi_head_attention import MultiHeadAttention, _positive_int


class GroupQueryAttention(MultiHeadAttention):
    """Grouped-query attention (Ainslie et al., 2023), Keras 3's ``keras.layers.GroupQueryAttention``.

    Args:
        head_dim: size of each attention head.
        num_query_heads: number of query heads.
        num_key_value_heads: number of key and value heads (divides ``num_query_heads``).
        dropout, use_bias, sliding_window, use_gate, initializers, regularizers, seed: as
            ``MultiHeadAttention``.

    Example:
        >>> from onnxforge.layers import GroupQueryAttention, Input
        >>> x = Input(shape=(5, 16))
        >>> GroupQueryAttention(head_dim=4, num_query_heads=4, num_key_value_heads=2)(x, x).shape
        (None, 5, 16)
    """

    def __init__(self, head_dim: int, num_query_heads: int, num_key_value_heads: int, dropout: float = 0.0,
                 use_bias: bool = True, sliding_window: int | None = None, flash_attention: bool | None = None,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None, activity_regularizer: Any = None,
                 kernel_constraint: Any = None, bias_constraint: Any = None, use_gate: bool = False,
                 seed: int | None = None, **kwargs: Any):
        head_dim = _positive_int("head_dim", head_dim)
        num_query_heads = _positive_int("num_query_heads", num_query_heads)
        num_key_value_heads = _positive_int("num_key_value_heads", num_key_value_heads)
        if num_query_heads % num_key_value_heads != 0:
            raise ValueError("`num_query_heads` must be divisible by `num_key_value_heads`.")
        if kwargs.get("name") is None:  # Keras names it after its class, GroupedQueryAttention
            kwargs["name"] = auto_name("grouped_query_attention")
        super().__init__(num_heads=num_query_heads, key_dim=head_dim, value_dim=head_dim, dropout=dropout,
                         use_bias=use_bias, sliding_window=sliding_window, flash_attention=flash_attention,
                         kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
                         activity_regularizer=activity_regularizer, kernel_constraint=kernel_constraint,
                         bias_constraint=bias_constraint, use_gate=use_gate, seed=seed, **kwargs)
        self.head_dim, self.num_query_heads, self.num_key_value_heads = head_dim, num_query_heads, num_key_value_heads
        self.num_repeats = num_query_heads // num_key_value_heads

    def build(self, query_shape, value_shape=None, key_shape=None):
        if value_shape is not None and tuple(query_shape)[-1] != tuple(value_shape)[-1]:
            raise ValueError("The last dimension of `query_shape` and `value_shape` must be equal, but are "
                             f"{tuple(query_shape)[-1]}, {tuple(value_shape)[-1]}. Received: "
                             f"query_shape={tuple(query_shape)}, value_shape={tuple(value_shape)}")
        if len(tuple(query_shape)) != 3:
            raise ValueError(f"Layer {self.name!r} takes (batch, steps, features) inputs. "
                             f"Received: query_shape={tuple(query_shape)}")
        super().build(query_shape, value_shape, key_shape)  # key/value heads: see _projection

    def _projection(self, name, input_shape, last_dims, activation=None, bound_dims=1):
        if name in ("key", "value"):
            last_dims = [self.num_key_value_heads, self.head_dim]
        return super()._projection(name, input_shape, last_dims, activation, bound_dims)

    def _compute_attention(self, q, k, v, mask, training, return_scores):
        if self.num_repeats > 1:
            k, v = self._repeat_heads(k), self._repeat_heads(v)
        return super()._compute_attention(q, k, v, mask, training, return_scores)

    def _repeat_heads(self, x):
        """``(B, S, Hkv, D) -> (B, S, Hkv * r, D)`` with each head repeated ``r`` times in place."""
        b = x.builder
        start = len(b.nodes)
        expanded = b.op("Unsqueeze", [x, _ops.ints(b, [3])])
        tiled = b.op("Tile", [expanded, _ops.ints(b, [1, 1, 1, self.num_repeats, 1])])
        out = b.op("Reshape", [tiled, _ops.ints(b, [0, 0, self.num_query_heads, self.head_dim])])
        fill_shapes(b, start)
        return out

    def compute_output_shape(self, query_shape, value_shape=None, key_shape=None):
        if value_shape is not None and tuple(query_shape)[-1] != tuple(value_shape)[-1]:
            raise ValueError("The last dimension of `query_shape` and `value_shape` must be equal, but are "
                             f"{tuple(query_shape)[-1]}, {tuple(value_shape)[-1]}.")
        return tuple(query_shape)

    def compute_output_spec(self, query, value, key=None, return_attention_scores=False, **kwargs):
        out = KerasTensor(self.compute_output_shape(query.shape, value.shape), self.compute_dtype)
        if not return_attention_scores:
            return out
        kv_len = (value if key is None else key).shape[1]
        return out, KerasTensor((query.shape[0], self.num_query_heads, query.shape[1], kv_len), self.compute_dtype)

    def get_config(self):
        base = super().get_config()
        config = {k: base[k] for k in ("name", "trainable", "dtype") if k in base}
        if "batch_input_shape" in base:
            config["batch_input_shape"] = base["batch_input_shape"]
        config.update({
            "head_dim": self.head_dim, "num_query_heads": self.num_query_heads,
            "num_key_value_heads": self.num_key_value_heads, "use_bias": self._use_bias, "use_gate": self._use_gate,
            "sliding_window": self._sliding_window, "dropout": self._dropout,
            "kernel_initializer": initializers_mod.serialize(self._kernel_initializer),
            "bias_initializer": initializers_mod.serialize(self._bias_initializer),
            "kernel_regularizer": regularizers_mod.serialize(self._kernel_regularizer),
            "bias_regularizer": regularizers_mod.serialize(self._bias_regularizer),
            "activity_regularizer": regularizers_mod.serialize(self._activity_regularizer),
            "kernel_constraint": serialize_constraint(self._kernel_constraint),
            "bias_constraint": serialize_constraint(self._bias_constraint), "seed": self.seed})
        return config


GroupedQueryAttention = GroupQueryAttention  # Keras's class name; configs say "GroupQueryAttention"
