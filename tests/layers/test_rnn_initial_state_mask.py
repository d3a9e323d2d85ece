"""Recurrent layers called with ``initial_state=`` on a masked sequence (``Embedding(mask_zero=True)``), as
keras.io's seq2seq decoders are: Keras 3 passes ``mask=`` only to a call with one tensor argument, so with
initial-state tensors the steps run unmasked (outputs and returned states), while the output still carries
the input's mask downstream. An explicit ``mask=`` is still used. Before, onnxforge read the sequence's own
mask and skipped the padded steps. Compared with real Keras 3 (torch backend) on the same weights."""
from __future__ import annotations

import numpy as np
import pytest

from tests.keras_oracle.common import copy_weights, fkeras, keras, random_weights

IDS = np.array([[3, 5, 0, 0], [2, 0, 0, 0], [1, 2, 3, 4]], "int32")
STATE = np.full((3, 2), 0.3, "float32")


def _n_states(cls: str) -> int:
    return 2 if cls == "LSTM" else 1


def _decoder(api, cls: str, return_sequences: bool, bidirectional: bool = False, explicit_mask: bool = False):
    inp = api.Input((4,), dtype="int32")
    seq = api.layers.Embedding(6, 3, mask_zero=True)(inp)
    layer = getattr(api.layers, cls)(2, return_sequences=return_sequences, return_state=True)
    n = _n_states(cls) * (2 if bidirectional else 1)
    states = [api.Input((2,)) for _ in range(n)]
    kwargs = {}
    if explicit_mask:
        kwargs["mask"] = api.layers.Lambda(lambda t: api.ops.not_equal(t, 0))(inp)
    if bidirectional:
        layer = api.layers.Bidirectional(layer)
    outs = layer(seq, initial_state=states, **kwargs)
    return api.Model([inp, *states], list(outs))


def _pair(*args, **kwargs):
    want = _decoder(keras, *args, **kwargs)
    random_weights(want, seed=1)
    got = _decoder(fkeras, *args, **kwargs)
    copy_weights(want, got)
    return want, got


def _compare(want, got, n):
    feeds = [IDS] + [STATE + 0.1 * k for k in range(n)]
    expected = [keras.ops.convert_to_numpy(t) for t in want(feeds)]
    actual = got.predict(feeds, verbose=0)
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(np.asarray(a), e, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("cls", ["SimpleRNN", "GRU", "LSTM"])
def test_initial_state_drops_the_sequence_mask(cls, return_sequences):
    want, got = _pair(cls, return_sequences)
    _compare(want, got, _n_states(cls))


@pytest.mark.parametrize("cls", ["GRU", "LSTM"])
def test_bidirectional_initial_state_drops_the_sequence_mask(cls):
    want, got = _pair(cls, True, bidirectional=True)
    _compare(want, got, 2 * _n_states(cls))


def test_explicit_mask_with_initial_state_still_masks():
    want, got = _pair("LSTM", True, explicit_mask=True)
    _compare(want, got, 2)


def test_output_keeps_the_input_mask_downstream():
    """The padded steps are computed, but pooling after the layer still averages the unpadded ones only."""
    def model(api):
        inp = api.Input((4,), dtype="int32")
        states = [api.Input((2,)), api.Input((2,))]
        seq = api.layers.LSTM(2, return_sequences=True)(api.layers.Embedding(6, 3, mask_zero=True)(inp),
                                                         initial_state=states)
        return api.Model([inp, *states], api.layers.GlobalAveragePooling1D()(seq))

    want = model(keras)
    random_weights(want, seed=2)
    got = model(fkeras)
    copy_weights(want, got)
    feeds = [IDS, STATE, STATE]
    np.testing.assert_allclose(got.predict(feeds, verbose=0), keras.ops.convert_to_numpy(want(feeds)),
                               rtol=1e-5, atol=1e-6)


def test_eager_call_with_initial_state_matches_keras():
    """A subclassed decoder's eager call: ``lstm(embedded, initial_state=[h, c])``."""
    want_emb, want_lstm = keras.layers.Embedding(6, 3, mask_zero=True), keras.layers.LSTM(2, return_sequences=True)
    got_emb, got_lstm = fkeras.layers.Embedding(6, 3, mask_zero=True), fkeras.layers.LSTM(2, return_sequences=True)
    want_lstm(want_emb(IDS), initial_state=[STATE, STATE])   # builds the layers
    rng = np.random.default_rng(3)
    for layer in (want_emb, want_lstm):
        layer.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in layer.get_weights()])
    want = want_lstm(want_emb(IDS), initial_state=[STATE, STATE])
    got_emb(IDS)
    got_lstm(got_emb(IDS), initial_state=[STATE, STATE])
    got_emb.set_weights(want_emb.get_weights())
    got_lstm.set_weights(want_lstm.get_weights())
    got = got_lstm(got_emb(IDS), initial_state=[STATE, STATE])
    np.testing.assert_allclose(np.asarray(got), keras.ops.convert_to_numpy(want), rtol=1e-5, atol=1e-6)
