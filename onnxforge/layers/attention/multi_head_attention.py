"""``MultiHeadAttention`` with Keras 3's arguments, masks, einsum weight layouts and numbers.

Weights (Keras order and shapes, for ``(batch, T, dim)`` inputs): ``query/kernel (dim, heads, key_dim)``,
``query/bias (heads, key_dim)``, ``key/...``, (``gate/...`` with ``use_gate``), ``value/kernel
(dim, heads, value_dim)``, ``value/bias``, ``attention_output/kernel (heads, value_dim, out)``,
``attention_output/bias (out,)``. Rank-3 inputs use MatMuls over ``(batch, heads, T, S)`` scores; other
ranks and ``attention_axes`` use ONNX ``Einsum`` with Keras's equations.

Masking follows Keras 3: Keras masks of ``query`` / ``value`` / ``key`` (from ``Embedding(mask_zero=True)``),
``attention_mask`` (broadcast over the heads), ``use_causal_mask`` and ``sliding_window`` are combined with
AND. Like Keras on its torch backend, rank-3 inputs without dropout or returned scores follow
``ops.dot_product_attention`` (masked logits get a very large negative bias, so a fully masked query row
averages the values), and the other paths follow the ``Softmax`` layer (masked probabilities are zero).
"""
from __future__ import annotations

__all__ = ["MultiHeadAttention"]

import math
import string
from typing import Any

import numpy as np

from ...graph.shape_inference import fill_shapes
from ... import initializers as initializers_mod
from ... import regularizers as regularizers_mod
from ...constraints import check_constraint, serialize as serialize_constraint
from ...graph import Value
from ...graph import emit as _ops
from ...ops._util import as_value
from ..base import Layer
from ..einsum_dense import EinsumDense
from ..keras_tensor import KerasTensor
from ..recurrent.masking import get_keras_mask, set_keras_mask
from ..recurrent.rnn import prefix_weight_names
from ..regularization import Dropout
from ..activation_layers import Softmax
from . import _common as C


def _letters(i: int) -> str:
    return string.ascii_lowercase[i]


def projection_equation(free_dims: int, bound_dims: int, output_dims: int) -> tuple[str, str, int]:
    """``(equation, bias_axes, output_rank)`` of a projection that keeps ``free_dims`` leading axes,
    contracts ``bound_dims`` and adds ``output_dims`` (Keras's MultiHeadAttention projections)."""
    free = "".join(_letters(i) for i in range(free_dims))
    bound = "".join(_letters(free_dims + i) for i in range(bound_dims))
    out = "".join(_letters(free_dims + bound_dims + i) for i in range(output_dims))
    return f"{free}{bound},{bound}{out}->{free}{out}", out, len(free + out)


def attention_equations(rank: int, attn_axes: tuple[int, ...]) -> tuple[str, str, int]:
    """``(key·query equation, scores·value equation, scores rank)`` for projected tensors of ``rank``
    ``(batch, <other dims>, <attention dims>, heads, channels)``; the scores are laid out as
    ``(<batch dims incl. heads>, <query attention dims>, <key attention dims>)``."""
    target = "".join(_letters(i) for i in range(rank))
    batch_dims = [i for i in range(rank) if i not in attn_axes and i != rank - 1]
    source, extra = "", rank
    for i in range(rank):
        if i in batch_dims or i == rank - 1:
            source += target[i]
        else:
            source += _letters(extra)
            extra += 1
    product = "".join([target[i] for i in batch_dims] + [target[i] for i in attn_axes] +
                      [source[i] for i in attn_axes])
    return f"{source},{target}->{product}", f"{product},{source}->{target}", len(product)


def _positive_int(arg: str, value: Any, optional: bool = False) -> int | None:
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"Received an invalid value for argument `{arg}`, expected a positive integer"
                         f"{' or `None`' if optional else ''}. Received: {arg}={value!r}")
    return int(value)


def _shape_of(x: Any) -> tuple | None:
    if isinstance(x, KerasTensor):
        return x.shape
    if isinstance(x, Value):
        return _ops.static_shape(x)
    return None


class MultiHeadAttention(Layer):
    """Multi-head attention (Vaswani et al., 2017), Keras 3's ``keras.layers.MultiHeadAttention``.

    Args:
        num_heads: number of attention heads.
        key_dim: size of each head for query and key.
        value_dim: size of each head for value (default ``key_dim``).
        dropout: dropout rate on the attention probabilities (training only).
        use_bias: whether the projections have biases.
        output_shape: the output's trailing shape (default: the query's last dim).
        attention_axes: the axes attention runs over (default: all but batch, heads and features).
        sliding_window: restrict each query position to keys within ``sliding_window - 1`` steps.
        use_gate: gate the attention output by ``sigmoid(query projection)``.
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer, activity_regularizer:
            passed to the projections.
        seed: kept in the config (the compiled program owns the dropout randomness).

    Call arguments: ``query``, ``value``, ``key=None``, ``attention_mask=None`` (bool ``(B, T, S)``, 1 =
    attend), ``return_attention_scores=False``, ``training=None``, ``use_causal_mask=False``.

    Example:
        >>> from onnxforge.layers import Input, MultiHeadAttention
        >>> x = Input(shape=(6, 16))
        >>> MultiHeadAttention(num_heads=2, key_dim=8)(x, x).shape
        (None, 6, 16)
    """

    supports_masking = True

    def __init__(self, num_heads: int, key_dim: int, value_dim: int | None = None, dropout: float = 0.0,
                 use_bias: bool = True, output_shape: Any = None, attention_axes: Any = None,
                 sliding_window: int | None = None, flash_attention: bool | None = None,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None, activity_regularizer: Any = None,
                 kernel_constraint: Any = None, bias_constraint: Any = None, use_gate: bool = False,
                 seed: int | None = None, **kwargs: Any):
        self._num_heads = _positive_int("num_heads", num_heads)
        self._key_dim = _positive_int("key_dim", key_dim)
        self._value_dim = _positive_int("value_dim", value_dim, optional=True) or self._key_dim
        super().__init__(**kwargs)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1:
            raise ValueError(f"Layer {self.name!r}: `dropout` must be a float in [0, 1]. Received: dropout={dropout!r}")
        if flash_attention and dropout > 0.0:
            raise ValueError("Dropout is not supported when flash attention is enabled. Please set dropout to 0.0 to "
                             "use flash attention.")
        self._kernel_constraint = check_constraint(self.name, "kernel_constraint", kernel_constraint)
        self._bias_constraint = check_constraint(self.name, "bias_constraint", bias_constraint)
        self._dropout = float(dropout)
        self._use_bias, self._use_gate = bool(use_bias), bool(use_gate)
        if output_shape:
            if isinstance(output_shape, (int, np.integer)):
                output_shape = (int(output_shape),)
            try:
                output_shape = tuple(int(d) for d in output_shape)
            except TypeError:
                raise ValueError(f"Invalid `output_shape`: {output_shape}. When specified, the `output_shape` "
                                 "should be of type tuple, list, or int.") from None
        self._output_shape = output_shape or None
        if isinstance(attention_axes, (int, np.integer)):
            attention_axes = (int(attention_axes),)
        elif attention_axes is not None and not isinstance(attention_axes, (list, tuple)):
            raise ValueError(f"`attention_axes` must be an int, list, or tuple.Received: attention_axes={attention_axes}")
        self._attention_axes = None if attention_axes is None else tuple(int(a) for a in attention_axes)
        self._sliding_window = _positive_int("sliding_window", sliding_window, optional=True) \
            if sliding_window is not None else None
        self._kernel_initializer = initializers_mod.get(kernel_initializer)
        self._bias_initializer = initializers_mod.get(bias_initializer)
        self._kernel_regularizer = regularizers_mod.get(kernel_regularizer)
        self._bias_regularizer = regularizers_mod.get(bias_regularizer)
        self._activity_regularizer = regularizers_mod.get(activity_regularizer)
        self.seed = seed
        self._inverse_sqrt_key_dim = 1.0 / math.sqrt(float(self._key_dim))

    # ------------------------------------------------------------------ properties (Keras's)
    num_heads = property(lambda self: self._num_heads)
    key_dim = property(lambda self: self._key_dim)
    value_dim = property(lambda self: self._value_dim)
    dropout = property(lambda self: self._dropout)
    use_bias = property(lambda self: self._use_bias)
    attention_axes = property(lambda self: self._attention_axes)
    query_dense = property(lambda self: self._query_dense)
    key_dense = property(lambda self: self._key_dense)
    value_dense = property(lambda self: self._value_dense)
    output_dense = property(lambda self: self._output_dense)

    # ------------------------------------------------------------------ building
    def _sublayer_kwargs(self) -> dict:
        # Fresh initializer copies: an unseeded initializer gives the same values at every call.
        return dict(kernel_initializer=self._kernel_initializer.clone(),
                    bias_initializer=self._bias_initializer.clone(), kernel_regularizer=self._kernel_regularizer,
                    bias_regularizer=self._bias_regularizer, activity_regularizer=self._activity_regularizer,
                    kernel_constraint=self._kernel_constraint, bias_constraint=self._bias_constraint,
                    dtype=self.dtype)

    def _projection(self, name: str, input_shape: tuple, last_dims: list[int], activation: Any = None,
                    bound_dims: int = 1) -> EinsumDense:
        equation, bias_axes, out_rank = projection_equation(len(input_shape) - bound_dims, bound_dims,
                                                            len(last_dims))
        layer = EinsumDense(equation, output_shape=[None] * (out_rank - 1 - len(last_dims)) + list(last_dims),
                            bias_axes=bias_axes if self._use_bias else None, activation=activation, name=name,
                            **self._sublayer_kwargs())
        layer.build(input_shape)
        return layer

    def build(self, query_shape, value_shape=None, key_shape=None):
        if value_shape is None:
            raise ValueError(f"Layer {self.name!r} is built from the shapes of query and value: call it on "
                             "(query, value[, key]) or call build(query_shape, value_shape).")
        query_shape, value_shape = tuple(query_shape), tuple(value_shape)
        key_shape = value_shape if key_shape is None else tuple(key_shape)
        if value_shape[1:-1] != key_shape[1:-1]:
            raise ValueError("All dimensions of `value` and `key`, except the last one, must be equal. Received: "
                             f"value_shape={value_shape} and key_shape={key_shape}")
        for arg, shape in (("query", query_shape), ("value", value_shape), ("key", key_shape)):
            if len(shape) < 3 or shape[-1] is None:
                raise ValueError(f"Layer {self.name!r}: `{arg}` must have rank >= 3 and a known last dim. "
                                 f"Received: {arg}_shape={shape}")
        # Attribute order is Keras's weight order: query, key, (gate), value, attention_output.
        self._query_dense = self._projection("query", query_shape, [self._num_heads, self._key_dim])
        self._key_dense = self._projection("key", key_shape, [self._num_heads, self._key_dim])
        if self._use_gate:
            self._gate_dense = self._projection("gate", query_shape, [self._num_heads, self._value_dim],
                                                activation="sigmoid")
        self._value_dense = self._projection("value", value_shape, [self._num_heads, self._value_dim])
        rank = len(query_shape) + 1  # projected: (..., heads, channels)
        axes = self._attention_axes or tuple(range(1, rank - 2))
        self._attention_axes = tuple(a if a >= 0 else (rank - 1) + a for a in axes)
        if any(not 1 <= a <= rank - 3 for a in self._attention_axes):   # else the einsum equations index past
            raise ValueError(f"Layer {self.name!r}: `attention_axes` must name query axes other than the batch "
                             f"and feature axes (1 to {rank - 3}, or negative). Received: attention_axes={axes} "
                             f"for a query of shape {tuple(query_shape)}")
        self._dot_product_equation, self._combine_equation, scores_rank = attention_equations(
            rank, self._attention_axes)
        self._scores_rank = scores_rank
        self._norm_axes = tuple(range(scores_rank - len(self._attention_axes), scores_rank))
        self._softmax = Softmax(axis=list(self._norm_axes), dtype=self.dtype)
        self._dropout_layer = Dropout(rate=self._dropout, dtype=self.dtype, seed=self.seed)
        out_dims = list(self._output_shape) if self._output_shape else [query_shape[-1]]
        projected = list(self._query_dense.compute_output_shape(query_shape))
        projected[-1] = self._value_dim
        self._output_dense = self._projection("attention_output", tuple(projected), out_dims, bound_dims=2)
        for layer in self._flat_sublayers():
            prefix_weight_names(layer, self.name)

    def build_from_config(self, config: dict | None) -> None:
        if not config or self.built:
            return
        if "shapes_dict" in config:
            self.build(**{k: tuple(v) for k, v in config["shapes_dict"].items()})
        elif "input_shape" in config:
            self.build(tuple(config["input_shape"]), tuple(config["input_shape"]))

    # ------------------------------------------------------------------ calling
    def __call__(self, query: Any = None, value: Any = None, key: Any = None, **kwargs: Any) -> Any:
        if query is None:
            query = kwargs.pop("inputs", None)
        if query is None or value is None:
            raise TypeError(f"Layer {self.name!r} (MultiHeadAttention) must be called with `query` and `value`. "
                            f"Received: query={query!r}, value={value!r}")
        if not self.built:
            shapes = [_shape_of(t) for t in (query, value, key)]
            if shapes[0] is not None and shapes[1] is not None:
                self.build(shapes[0], shapes[1], shapes[2])
                self.built = True
        if key is not None:
            kwargs["key"] = key
        return super().__call__(query, value, **kwargs)

    def compute_mask(self, inputs, mask=None):
        return None  # call() attaches the query's mask to the output itself

    def compute_output_shape(self, query_shape, value_shape=None, key_shape=None):
        query_shape = tuple(query_shape)
        if value_shape is not None and key_shape is not None and tuple(value_shape)[1:-1] != tuple(key_shape)[1:-1]:
            raise ValueError("All dimensions of `value` and `key`, except the last one, must be equal. Received: "
                             f"value_shape={tuple(value_shape)} and key_shape={tuple(key_shape)}")
        return query_shape[:-1] + self._output_shape if self._output_shape else query_shape

    def compute_output_spec(self, query, value, key=None, return_attention_scores=False, **kwargs):
        out = KerasTensor(self.compute_output_shape(query.shape, value.shape, None if key is None else key.shape),
                          self.compute_dtype)
        if not return_attention_scores:
            return out
        batch = [query.shape[0]] + [query.shape[a] for a in range(1, len(query.shape) - 1)
                                    if a not in self._attention_axes]
        scores = (*batch[:1], *batch[1:], self._num_heads,
                  *(query.shape[a] for a in self._attention_axes), *(value.shape[a] for a in self._attention_axes))
        # Keras's score layout puts the heads after the other batch dims: (batch, <other>, heads, T.., S..).
        return out, KerasTensor(scores, self.compute_dtype)

    def _attention_mask(self, query: Value, value: Value, query_mask, value_mask, key_mask, attention_mask,
                        use_causal_mask: bool) -> Value | None:
        b = query.builder
        start = len(b.nodes)
        auto = None
        if query_mask is not None:
            auto = b.op("Unsqueeze", [C.as_bool(query_mask), _ops.ints(b, [-1])])  # (B, T, 1)
        for m in (value_mask, key_mask):
            if m is not None:
                auto = C.both(auto, b.op("Unsqueeze", [C.as_bool(m), _ops.ints(b, [-2])]))  # (B, 1, S)
        t, s = C.seq_len(query, 1), C.seq_len(value, 1)
        if use_causal_mask:
            auto = C.both(auto, C.causal_mask(b, t, s))
        if self._sliding_window is not None:
            auto = C.both(auto, C.band_mask(b, t, s, self._sliding_window))
        if attention_mask is not None:
            # A mask the program built once outside the model (``1 - ops.eye(n)``, a NumPy array) reaches the
            # functional graph as a constant, not a traced value.
            attention_mask = C.as_bool(as_value(attention_mask, b))
        mask = C.both(attention_mask, auto)
        fill_shapes(b, start)
        return mask

    def call(self, query, value, key=None, query_mask=None, value_mask=None, key_mask=None, attention_mask=None,
             return_attention_scores=False, training=None, use_causal_mask=False):
        if key is None:
            key = value
        else:
            key_mask = key_mask if key_mask is not None else get_keras_mask(key)
        query_mask = get_keras_mask(query)
        value_mask = value_mask if value_mask is not None else get_keras_mask(value)
        mask = self._attention_mask(query, value, query_mask, value_mask, key_mask, attention_mask,
                                    bool(use_causal_mask))
        gate = self._gate_dense(query) if self._use_gate else None
        q = self._query_dense(query)
        k = self._key_dense(key)
        v = self._value_dense(value)
        out, scores = self._compute_attention(q, k, v, mask, bool(training), bool(return_attention_scores))
        if gate is not None:
            out = out * gate
            fill_shapes(out.builder, len(out.builder.nodes) - 1)
        out = self._output_dense(out)
        if query_mask is not None:
            set_keras_mask(out, query_mask)
        return (out, scores) if return_attention_scores else out

    def _compute_attention(self, q: Value, k: Value, v: Value, mask: Value | None, training: bool,
                           return_scores: bool) -> tuple[Value, Value]:
        b = q.builder
        start = len(b.nodes)
        rank = len(q.shape)
        # Keras (torch backend) routes this case through dot_product_attention.
        sdpa = not (self._dropout > 0.0 or return_scores or rank != 4)
        if rank == 4:  # (B, T, N, H): MatMuls over (B, N, T, S)
            if sdpa:
                logits = (_ops.transpose(q, (0, 2, 1, 3)) @ _ops.transpose(k, (0, 2, 3, 1))) * \
                    self._inverse_sqrt_key_dim
            else:
                logits = _ops.transpose(q * self._inverse_sqrt_key_dim, (0, 2, 1, 3)) @ \
                    _ops.transpose(k, (0, 2, 3, 1))
        else:
            logits = b.op("Einsum", [k, q * self._inverse_sqrt_key_dim], equation=self._dot_product_equation)
        if mask is not None:
            mask = C.expand_mask(mask, self._scores_rank, -len(self._attention_axes) * 2 - 1)
        if sdpa:
            probs = C.masked_softmax(logits, mask, self._norm_axes, additive=True, fill=C.SDPA_NEGATIVE,
                                      rank=self._scores_rank)
        else:
            probs = C.masked_softmax(logits, mask, self._norm_axes, rank=self._scores_rank)
        fill_shapes(b, start)  # sub-layers read the shapes of what they get
        dropped = self._dropout_layer(probs, training=training) if self._dropout > 0.0 else probs
        if rank == 4:
            out = _ops.transpose(dropped @ _ops.transpose(v, (0, 2, 1, 3)), (0, 2, 1, 3))
        else:
            out = b.op("Einsum", [dropped, v], equation=self._combine_equation)
        fill_shapes(b, start)  # the output projection reads the rank
        return out, probs

    def _masked_softmax(self, attention_scores: Value, attention_mask: Any = None) -> Value:
        """Keras's softmax step for subclasses that override ``_compute_attention`` (keras.io's locality
        self-attention calls it): the mask gains the head and query axes it lacks, masked scores give 0."""
        b = attention_scores.builder
        start = len(b.nodes)
        if attention_mask is not None:
            attention_mask = C.expand_mask(C.as_bool(as_value(attention_mask, b)), len(attention_scores.shape),
                                           -len(self._attention_axes) * 2 - 1)
        probs = C.masked_softmax(attention_scores, attention_mask, self._norm_axes,
                                 rank=len(attention_scores.shape))
        fill_shapes(b, start)
        return probs

    def get_config(self):
        return {**super().get_config(), "num_heads": self._num_heads, "key_dim": self._key_dim,
                "value_dim": self._value_dim, "dropout": self._dropout, "use_bias": self._use_bias,
                "use_gate": self._use_gate,
                "output_shape": list(self._output_shape) if self._output_shape else None,
                "attention_axes": list(self._attention_axes) if self._attention_axes is not None else None,
                "sliding_window": self._sliding_window,
                "kernel_initializer": initializers_mod.serialize(self._kernel_initializer),
                "bias_initializer": initializers_mod.serialize(self._bias_initializer),
                "kernel_regularizer": regularizers_mod.serialize(self._kernel_regularizer),
                "bias_regularizer": regularizers_mod.serialize(self._bias_regularizer),
                "activity_regularizer": regularizers_mod.serialize(self._activity_regularizer),
                "kernel_constraint": serialize_constraint(self._kernel_constraint),
                "bias_constraint": serialize_constraint(self._bias_constraint), "seed": self.seed}
