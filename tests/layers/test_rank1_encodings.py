"""``multi_hot`` / ``count`` / ``tf_idf`` of a rank-1 input, compared with Keras 3 (torch backend): Keras reads a
rank-1 input as one example and returns one ``(depth,)`` vector, eagerly and in a model; ``one_hot`` encodes
each entry. Found through ``TextVectorization(split=None)`` on a list of strings; before, onnxforge encoded
each entry as its own example, ``(N, depth)``. The lookups' Keras outputs are int64 for multi_hot and count
(their symbolic dtype says float32): values are compared, not dtypes."""
from __future__ import annotations

import numpy as np
import pytest

from tests.keras_oracle.common import fkeras, keras

STRINGS = np.array(["a", "b", "z", "a"])
INTS = np.array([5, 6, 9, 5])


def _layers(mode):
    idf = {"idf_weights": [1.0, 2.0, 3.0]} if mode == "tf_idf" else {}
    cases = [("StringLookup", {"vocabulary": ["a", "b", "c"], **idf}, STRINGS),
             ("IntegerLookup", {"vocabulary": [5, 6, 7], **idf}, INTS)]
    if mode != "tf_idf":
        cases += [("CategoryEncoding", {"num_tokens": 4}, np.array([0, 1, 3, 0])),
                  ("Discretization", {"bin_boundaries": [0.0, 1.0]}, np.array([-1.0, 0.5, 2.0, 2.0]))]
    cases.append(("TextVectorization", {"vocabulary": ["a", "b", "c"], "split": None, **idf}, STRINGS))
    return cases


@pytest.mark.parametrize("mode", ["multi_hot", "count", "tf_idf", "one_hot"])
def test_rank1_input_encodings_match_keras(mode):
    for cls, kwargs, x in _layers(mode):
        if cls == "TextVectorization" and mode == "one_hot":
            continue   # not one of TextVectorization's modes
        want = keras.ops.convert_to_numpy(getattr(keras.layers, cls)(output_mode=mode, **kwargs)(x))
        got = np.asarray(getattr(fkeras.layers, cls)(output_mode=mode, **kwargs)(x))
        assert got.shape == want.shape, (cls, got.shape, want.shape)
        np.testing.assert_allclose(got, want, err_msg=cls)


@pytest.mark.parametrize("mode", ["multi_hot", "count"])
def test_rank1_model_input_matches_keras(mode):
    """``Input(shape=())``: the model's output is one vector for the batch, in Keras as here."""
    x = np.array([0, 1, 3, 0, 3], "int32")
    outs = []
    for api in (keras, fkeras):
        inputs = api.Input(shape=(), dtype="int32")
        encoded = api.layers.CategoryEncoding(num_tokens=5, output_mode=mode)(inputs)
        assert tuple(encoded.shape) == (5,)
        outs.append(np.asarray(api.Model(inputs, encoded).predict(x, verbose=0)))
    np.testing.assert_allclose(outs[1], outs[0])
