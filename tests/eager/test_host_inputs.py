"""Layers called on what Keras 3 accepts besides numpy: nested lists of Python scalars and tensors of other
frameworks holding values (they were refused with a TypeError)."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge.keras as keras
from onnxforge.layers.host_inputs import host_arrays


def test_nested_lists_of_scalars_become_one_array():
    np.testing.assert_allclose(keras.layers.Rescaling(2.0)([[1.0, 2.0]]), [[2.0, 4.0]])
    vectorize = keras.layers.TextVectorization()
    vectorize.adapt(np.array(["the cat sat", "the dog"]))
    np.testing.assert_array_equal(vectorize(["the cat"]), vectorize(np.array(["the cat"])))


def test_lists_of_arrays_stay_lists():
    out = keras.layers.Concatenate()([np.ones((1, 2), np.float32), np.zeros((1, 1), np.float32)])
    np.testing.assert_array_equal(out, [[1.0, 1.0, 0.0]])
    pair = host_arrays([np.ones(2), [1.0, 2.0]])
    assert isinstance(pair, list) and isinstance(pair[1], np.ndarray)


def test_torch_tensor_inputs():
    torch = pytest.importorskip("torch")
    dense = keras.layers.Dense(2, kernel_initializer="ones", bias_initializer="zeros")
    x = torch.ones(1, 3, requires_grad=True)
    np.testing.assert_allclose(dense(x), [[3.0, 3.0]])


def test_other_objects_still_get_the_clear_error():
    with pytest.raises(TypeError, match="called on object values"):
        keras.layers.Dense(2)(object())
