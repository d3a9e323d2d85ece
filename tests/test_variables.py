"""``Variable.path`` has Keras 3's meaning (the layers' names and the weight's, joined by "/"), checked against
real Keras 3 on the models where the two agree (a layer built on its own, a functional model, an RNN's cell)."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")

import onnxforge.keras as fkeras  # noqa: E402


def _functional(lib):
    x = lib.Input((4, 3))
    h = lib.layers.LSTM(2, name="lstm", return_sequences=True)(x)
    return lib.Model(x, lib.layers.Dense(1, name="head")(h))


def test_path_is_the_full_name():
    dense = fkeras.layers.Dense(2, name="d1")
    dense.build((None, 3))
    assert [w.path for w in dense.weights] == ["d1/kernel", "d1/bias"]
    assert [w.path for w in _functional(fkeras).weights] == [
        "lstm/lstm_cell/kernel", "lstm/lstm_cell/recurrent_kernel", "lstm/lstm_cell/bias", "head/kernel", "head/bias"]


def test_path_matches_keras():
    keras = pytest.importorskip("keras")
    dense = {lib: lib.layers.Dense(2, name="d1") for lib in (keras, fkeras)}
    for layer in dense.values():
        layer.build((None, 3))
    assert [w.path for w in dense[fkeras].weights] == [w.path for w in dense[keras].weights]
    assert [w.path for w in _functional(fkeras).weights] == [w.path for w in _functional(keras).weights]
    assert np.array_equal(dense[fkeras].kernel.numpy().shape, (3, 2))
