"""Keras masks travel through traced models: Embedding(mask_zero) -> mask-aware layers downstream."""
from __future__ import annotations

import numpy as np
import pytest

from onnxforge import layers as L
from onnxforge.layers.recurrent import LSTM
from onnxforge.models import Input, Model, Sequential
from tests.layers.helpers import run


def _ids(seed=0):
    ids = np.random.default_rng(seed).integers(1, 6, (3, 5)).astype(np.int32)
    ids[0, 3:] = 0
    ids[2, 1] = 0
    return ids


def test_mask_flows_through_dense_to_global_average_pooling():
    model = Sequential([Input(shape=(5,), dtype="int32"), L.Embedding(6, 3, mask_zero=True),
                        L.Dense(4, activation="tanh"), L.Dropout(0.5), L.GlobalAveragePooling1D()])
    emb, dense = model.layers[0], model.layers[1]
    ids = _ids()
    k, b = dense.get_weights()
    h = np.tanh(emb.get_weights()[0][ids] @ k + b)
    keep = (ids != 0)[..., None]
    np.testing.assert_allclose(run(model, ids), (h * keep).sum(1) / keep.sum(1), rtol=1e-5, atol=1e-6)
    # Without mask_zero every step counts.
    plain = Sequential([Input(shape=(5,), dtype="int32"), L.Embedding(6, 3), L.GlobalMaxPooling1D()])
    np.testing.assert_allclose(run(plain, ids), plain.layers[0].get_weights()[0][ids].max(1), rtol=1e-6)


def test_global_max_pooling_leaves_the_mask_out_like_keras():
    """Keras 2 and 3: GlobalMaxPooling1D takes no mask, so padded steps take part in the max (Keras 3 warns)."""
    model = Sequential([Input(shape=(5,), dtype="int32"), L.Embedding(6, 3, mask_zero=True), L.GlobalMaxPooling1D()])
    emb = model.layers[0]
    weights = emb.get_weights()[0]
    weights[0] = 5.0                                    # the padding row is the largest: it wins the max
    emb.set_weights([weights])
    ids = _ids(1)
    with pytest.warns(UserWarning, match="does not support masking"):
        got = run(model, ids)
    np.testing.assert_allclose(got, weights[ids].max(1), rtol=1e-6)
    keras = pytest.importorskip("keras")
    if keras.backend.backend() == "torch":
        reference = keras.Sequential([keras.Input((5,), dtype="int32"), keras.layers.Embedding(6, 3, mask_zero=True),
                                      keras.layers.GlobalMaxPooling1D()])
        reference.set_weights([weights])
        with pytest.warns(UserWarning, match="does not support masking"):
            np.testing.assert_allclose(got, reference.predict(ids, verbose=0), rtol=1e-6)


def test_embedding_mask_reaches_a_recurrent_layer_like_an_explicit_mask():
    ids = _ids(2)
    emb = L.Embedding(6, 3, mask_zero=True)
    lstm = LSTM(4)
    x = Input(shape=(5,), dtype="int32")
    implicit = Model(x, lstm(emb(x)))

    e = Input(shape=(5, 3))
    m = Input(shape=(5,), dtype="bool")
    explicit = Model([e, m], lstm(e, mask=m))
    vectors = emb.get_weights()[0][ids]
    np.testing.assert_allclose(run(implicit, ids), run(explicit, vectors, ids != 0), rtol=1e-5, atol=1e-6)
    unmasked = Model(e, lstm(e))
    assert not np.allclose(run(unmasked, vectors), run(implicit, ids), atol=1e-4)


def test_add_merges_masks():
    a, b = Input(shape=(4,), dtype="int32"), Input(shape=(4,), dtype="int32")
    ea, eb = L.Embedding(5, 2, mask_zero=True), L.Embedding(5, 2, mask_zero=True)
    out = L.GlobalAveragePooling1D()(L.Add()([ea(a), eb(b)]))
    model = Model([a, b], out)
    ia = np.array([[1, 2, 0, 0], [3, 3, 3, 3]], np.int32)
    ib = np.array([[1, 0, 2, 2], [4, 1, 0, 1]], np.int32)
    summed = ea.get_weights()[0][ia] + eb.get_weights()[0][ib]
    keep = ((ia != 0) & (ib != 0))[..., None]
    np.testing.assert_allclose(run(model, ia, ib), (summed * keep).sum(1) / keep.sum(1), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- masks on KerasTensors
def test_keras_tensors_carry_masks_while_the_model_is_built():
    """Keras 3 keeps each functional tensor's mask as ``_keras_mask`` and feeds it to ``call(mask=...)`` while
    building, so a layer that needs its mask (the masking guide's TemporalSoftmax) sees it from the start."""
    import onnxforge.keras as keras

    seen = []

    class TemporalSoftmax(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.supports_masking = True

        def call(self, inputs, mask=None):
            seen.append(mask is not None)
            weights = keras.ops.expand_dims(keras.ops.cast(mask, "float32"), -1)
            exp = keras.ops.exp(inputs) * weights
            return exp / keras.ops.sum(exp, axis=1, keepdims=True)

    inputs = keras.Input(shape=(None,), dtype="int32")
    embedded = keras.layers.Embedding(input_dim=10, output_dim=4, mask_zero=True)(inputs)
    assert embedded._keras_mask.shape == (None, None) and embedded._keras_mask.dtype == "bool"
    dense = keras.layers.Dense(1)(embedded)
    assert dense._keras_mask is embedded._keras_mask or dense._keras_mask.shape == (None, None)
    outputs = TemporalSoftmax()(dense)
    assert seen == [True]
    assert not hasattr(keras.layers.LSTM(2)(embedded), "_keras_mask")   # the sequence is consumed
    model = keras.Model(inputs, outputs)
    y = model.predict(np.array([[1, 2, 0], [3, 0, 0]], np.int32), verbose=0)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-6)
    assert y[0, 2, 0] == 0.0 and y[1, 1, 0] == 0.0 and y[1, 2, 0] == 0.0


def test_eager_calls_carry_masks_layer_to_layer():
    """Keras attaches the output mask to an eager tensor (``_keras_mask``) and the next eager layer call uses
    it: an LSTM after Masking, called layer by layer, equals the same layers in a model."""
    import onnxforge.keras as keras

    ids = keras.utils.pad_sequences([[7, 6, 3], [7, 8, 3, 5, 9]], padding="post")
    embedding = keras.layers.Embedding(input_dim=10, output_dim=2, mask_zero=True)
    np.testing.assert_array_equal(embedding(ids)._keras_mask, ids != 0)
    np.testing.assert_array_equal(embedding.compute_mask(ids), ids != 0)
    x = np.random.default_rng(0).random((2, 4, 2)).astype(np.float32)
    x[0, 2:] = 0.0
    masking, lstm = keras.layers.Masking(0.0), keras.layers.LSTM(2, return_sequences=True)
    eager = lstm(masking(x))
    model = keras.Sequential([keras.Input((4, 2)), masking, lstm])
    np.testing.assert_allclose(eager, model.predict(x, verbose=0), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(eager[0, 2], eager[0, 1])   # masked steps repeat the last valid output
    np.testing.assert_array_equal(eager._keras_mask, np.any(x != 0, axis=-1))
