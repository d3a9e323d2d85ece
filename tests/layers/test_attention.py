"""MultiHeadAttention, Attention, AdditiveAttention and EinsumDense against real Keras 3 (torch backend):
weights (paths, shapes, order), outputs, configs, masks and one training step (gradients)."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
pytest.importorskip("keras")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

from tests.layers.keras_parity import check_layer_parity  # noqa: E402

R = np.random.default_rng(0)
SEQ = R.normal(size=(3, 5, 8)).astype("float32")
SEQ2 = R.normal(size=(3, 4, 6)).astype("float32")
TOKENS = np.array([[3, 1, 4, 0, 0], [2, 7, 1, 8, 2], [5, 0, 0, 0, 0]], "int32")


def _self_attention(**kwargs):
    call = kwargs.pop("call", {})

    def make(keras):
        x = keras.Input((5, 8))
        return keras.Model(x, keras.layers.MultiHeadAttention(**kwargs)(x, x, **call))
    return make


@pytest.mark.parametrize("kwargs", [
    dict(num_heads=2, key_dim=4),
    dict(num_heads=3, key_dim=2, value_dim=5, output_shape=6),
    dict(num_heads=2, key_dim=4, use_bias=False, call=dict(use_causal_mask=True)),
    dict(num_heads=2, key_dim=3, dropout=0.3),              # explicit-softmax path at inference
    dict(num_heads=2, key_dim=3, use_gate=True, sliding_window=2),
], ids=["basic", "value_dim_output_shape", "causal_no_bias", "dropout_path", "gate_sliding_window"])
def test_self_attention_matches_keras_and_trains(kwargs):
    # With dropout the training step draws different random numbers than Keras: outputs only.
    check_layer_parity(_self_attention(**kwargs), SEQ, train=not kwargs.get("dropout"))


def test_cross_attention_with_key_mask_and_scores():
    def make(keras):
        q, v, k = keras.Input((5, 8)), keras.Input((4, 6)), keras.Input((4, 3))
        mask = keras.Input((5, 4), dtype="bool")
        out, scores = keras.layers.MultiHeadAttention(2, 3, name="mha")(
            q, v, key=k, attention_mask=mask, return_attention_scores=True)
        return keras.Model([q, v, k, mask], [out, scores])
    mask = R.uniform(size=(3, 5, 4)) > 0.3
    mask[:, :, 0] = True
    check_layer_parity(make, [SEQ, SEQ2, SEQ2[..., :3], mask])


def test_padding_masks_from_embedding_reach_the_attention_and_train():
    def make(keras):
        t = keras.Input((5,), dtype="int32")
        e = keras.layers.Embedding(10, 8, mask_zero=True)(t)
        a = keras.layers.MultiHeadAttention(2, 4)(e, e)
        return keras.Model(t, keras.layers.GlobalAveragePooling1D()(a))
    check_layer_parity(make, TOKENS, train=True, native=True)


def test_attention_axes_on_images_uses_keras_einsum_layout():
    def make(keras):
        x = keras.Input((3, 4, 5))
        return keras.Model(x, keras.layers.MultiHeadAttention(2, 3, attention_axes=(1, 2))(x, x))
    check_layer_parity(make, R.normal(size=(2, 3, 4, 5)).astype("float32"), train=True)


@pytest.mark.parametrize("kwargs", [dict(), dict(use_scale=True), dict(score_mode="concat", use_scale=True)])
def test_attention_layer_matches_keras(kwargs):
    def make(keras):
        q, v = keras.Input((5, 8)), keras.Input((4, 8))
        return keras.Model([q, v], keras.layers.Attention(**kwargs)([q, v], use_causal_mask=False))
    check_layer_parity(make, [SEQ, SEQ2[..., :2].repeat(4, -1)], train=True)


def test_additive_attention_with_masks_matches_keras():
    def make(keras):
        t = keras.Input((5,), dtype="int32")
        e = keras.layers.Embedding(10, 6, mask_zero=True)(t)
        a = keras.layers.AdditiveAttention()([e, e], use_causal_mask=True)
        return keras.Model(t, keras.layers.GlobalAveragePooling1D()(a))
    check_layer_parity(make, TOKENS, train=True, native=True)


@pytest.mark.parametrize("equation,output_shape,bias_axes,shape", [
    ("ab,bc->ac", 4, "c", (6,)),
    ("abc,cde->abde", (None, 2, 3), "de", (5, 6)),
    ("...b,bc->...c", 4, None, (5, 6)),
    ("abc,cd->abd", (5, 4), "d", (5, 6)),
    ("abc,bcd->ad", 3, "d", (5, 6)),      # not a plain product: an ONNX Einsum
    ("abc...,cd->abd...", (5, 4), "d", (5, 6, 2)),
])
def test_einsum_dense_matches_keras(equation, output_shape, bias_axes, shape):
    def make(keras):
        x = keras.Input(shape)
        return keras.Model(x, keras.layers.EinsumDense(equation, output_shape, bias_axes=bias_axes,
                                                       activation="tanh")(x))
    check_layer_parity(make, R.normal(size=(3, *shape)).astype("float32"), train=True)


@pytest.mark.parametrize("kwargs,call", [
    (dict(head_dim=3, num_query_heads=4, num_key_value_heads=2), {}),
    (dict(head_dim=2, num_query_heads=3, num_key_value_heads=1, use_bias=False), dict(use_causal_mask=True)),
    (dict(head_dim=3, num_query_heads=2, num_key_value_heads=2, use_gate=True, sliding_window=2), {}),
])
def test_group_query_attention_matches_keras_and_trains(kwargs, call):
    def make(keras):
        x = keras.Input((5, 8))
        return keras.Model(x, keras.layers.GroupQueryAttention(**kwargs)(x, x, **call))
    check_layer_parity(make, SEQ, train=True)
