"""StackedRNNCells (and RNN given a list of cells) against real Keras 3 on the same weights: outputs, the
per-cell states of return_state, initial states, one SGD training step, and the config both ways."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

import onnxforge  # noqa: E402
from onnxforge.saving import deserialize_keras_object, serialize_keras_object  # noqa: E402

X = np.random.default_rng(3).standard_normal((3, 5, 4)).astype("float32")


def _stacked(lib, as_list: bool, **rnn_kwargs):
    cells = [lib.layers.LSTMCell(6), lib.layers.GRUCell(3), lib.layers.SimpleRNNCell(2)]
    return lib.layers.RNN(cells if as_list else lib.layers.StackedRNNCells(cells), **rnn_kwargs)


@pytest.mark.parametrize("as_list", [False, True], ids=["StackedRNNCells", "list_of_cells"])
def test_outputs_and_per_cell_states_match_keras(as_list):
    def make(lib):
        x = lib.Input((5, 4))
        seq, (h1, c1), h2, h3 = _stacked(lib, as_list, return_sequences=True, return_state=True)(x)
        return lib.Model(x, [seq, h1, c1, h2, h3])
    theirs, ours = make(keras), make(onnxforge)
    assert [w.shape for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
    ours.set_weights(theirs.get_weights())
    want = [keras.ops.convert_to_numpy(t) for t in theirs(X)]
    got = ours.predict(X, verbose=0)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def _structure(t):
    return [_structure(s) for s in t] if isinstance(t, (list, tuple)) else tuple(t.shape)


def test_eager_call_gives_one_list_per_cell_as_keras():
    """Keras 3 returns ``[out, [h1, c1], [h2], [h3]]`` from a call on tensors (every cell's states as a list),
    but ``[out, [h1, c1], h2, h3]`` on a functional model's inputs: onnxforge does both."""
    layers = {lib: _stacked(lib, True, return_state=True) for lib in (keras, onnxforge)}
    want, got = _structure(layers[keras](X)), _structure(layers[onnxforge](X))
    assert got == want == [(3, 2), [(3, 6), (3, 6)], [(3, 3)], [(3, 2)]]
    x = {lib: lib.Input((5, 4)) for lib in (keras, onnxforge)}
    symbolic = {lib: _structure(_stacked(lib, True, return_state=True)(x[lib])) for lib in (keras, onnxforge)}
    assert symbolic[onnxforge] == symbolic[keras] == [(None, 2), [(None, 6), (None, 6)], (None, 3), (None, 2)]
    out, *states = layers[onnxforge](X)
    again = onnxforge.layers.RNN([onnxforge.layers.LSTMCell(6), onnxforge.layers.GRUCell(3),
                                  onnxforge.layers.SimpleRNNCell(2)])(X, initial_state=states)
    assert again.shape == (3, 2)


def test_initial_states_per_cell_match_keras():
    rng = np.random.default_rng(1)
    h1, c1, h2, h3 = (rng.standard_normal((3, n)).astype("float32") for n in (6, 6, 3, 2))

    def make(lib):
        x, a, b, c, d = lib.Input((5, 4)), lib.Input((6,)), lib.Input((6,)), lib.Input((3,)), lib.Input((2,))
        return lib.Model([x, a, b, c, d], _stacked(lib, False)(x, initial_state=[[a, b], c, d]))
    theirs, ours = make(keras), make(onnxforge)
    ours.set_weights(theirs.get_weights())
    want = keras.ops.convert_to_numpy(theirs([X, h1, c1, h2, h3]))
    np.testing.assert_allclose(ours.predict([X, h1, c1, h2, h3], verbose=0), want, rtol=1e-5, atol=1e-6)


def test_one_sgd_step_matches_keras():
    y = np.random.default_rng(2).standard_normal((3, 1)).astype("float32")

    def make(lib):
        x = lib.Input((5, 4))
        model = lib.Model(x, lib.layers.Dense(1)(_stacked(lib, True)(x)))
        model.compile(optimizer=lib.optimizers.SGD(0.1), loss="mse")
        return model
    theirs, ours = make(keras), make(onnxforge)
    ours.set_weights(theirs.get_weights())
    loss_theirs, loss_ours = theirs.train_on_batch(X, y), ours.train_on_batch(X, y)
    np.testing.assert_allclose(loss_ours, loss_theirs, rtol=1e-5)
    for g, w in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_config_round_trips_both_ways():
    ours = onnxforge.layers.StackedRNNCells([onnxforge.layers.LSTMCell(4), onnxforge.layers.GRUCell(2)])
    back = deserialize_keras_object(serialize_keras_object(ours))
    assert [type(c).__name__ for c in back.cells] == ["LSTMCell", "GRUCell"] and back.cells[1].units == 2
    theirs = keras.saving.deserialize_keras_object(serialize_keras_object(ours))
    assert [type(c).__name__ for c in theirs.cells] == ["LSTMCell", "GRUCell"]
    from_keras = deserialize_keras_object(keras.saving.serialize_keras_object(theirs))
    assert isinstance(from_keras, onnxforge.layers.StackedRNNCells) and from_keras.cells[0].units == 4


def test_bad_cells_and_dropout_are_refused_with_the_layer_named():
    with pytest.raises(ValueError, match="non-empty list of cells"):
        onnxforge.layers.StackedRNNCells([])
    with pytest.raises(ValueError, match="state_size"):
        onnxforge.layers.StackedRNNCells([onnxforge.layers.Dense(2)])
    x = onnxforge.Input((5, 4))
    model = onnxforge.Model(x, onnxforge.layers.RNN([onnxforge.layers.LSTMCell(3, dropout=0.5),
                                                     onnxforge.layers.GRUCell(2)], name="stack")(x))
    with pytest.raises(NotImplementedError, match="'lstm_cell.*dropout=0.5"):
        model.compile(optimizer="sgd", loss="mse")  # the training program is built here, before onnxruntime
