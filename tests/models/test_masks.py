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
