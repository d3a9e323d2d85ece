"""layers/array_attributes.py: which array attributes a traced call may have baked in, by identity."""
from __future__ import annotations

import numpy as np

import onnxforge.keras as keras
from onnxforge.layers.array_attributes import snapshot


class Holder(keras.layers.Layer):
    def __init__(self, table):
        super().__init__()
        self.table = table
        self.graph_info = (table, None)

    def call(self, x):
        return x


def test_replacing_an_array_changes_the_snapshot_and_editing_it_in_place_does_not():
    inner = Holder(np.zeros(3))
    outer = keras.Sequential([keras.Input((3,)), inner])   # a user layer inside a built-in model is visited
    before = snapshot(outer)
    inner.table[0] = 5.0
    assert snapshot(outer) == before
    inner.table = np.ones(3)
    assert snapshot(outer) != before


def test_built_in_layers_are_not_read():
    assert snapshot(keras.layers.Dense(2)) == ()


def test_the_snapshot_is_kept_until_some_layer_gets_an_array_attribute():
    # Every eager call asks for it: walking a deep model each time cost a sixth of a ResNet-50's eager call.
    inner = Holder(np.zeros(3))
    outer = keras.Sequential([keras.Input((3,)), inner])
    kept = snapshot(outer)
    inner.name_tag = "not an array"
    assert snapshot(outer) is kept
    Holder(np.zeros(2))   # any layer given an array attribute outdates every kept snapshot
    renewed = snapshot(outer)
    assert renewed is not kept and renewed == kept
    inner.graph_info = (np.ones(3), None)
    assert snapshot(outer) != kept


def test_a_new_vocabulary_is_traced_again_like_a_new_array():
    # Lookup tables are constants of the traced programs: set_vocabulary after predict reads the new one
    # (Keras on TensorFlow keeps its traced predict function's old table here; its eager call reads the new).
    text = keras.layers.TextVectorization(output_mode="int", output_sequence_length=4)
    text.adapt(["a b c"])
    inputs = keras.Input(shape=(1,), dtype="string")
    model = keras.Model(inputs, text(inputs))
    x = np.array([["a b c d"]])
    before = snapshot(model)
    np.testing.assert_array_equal(model.predict(x, verbose=0), [[4, 3, 2, 1]])
    text.set_vocabulary(["d", "c"])
    assert snapshot(model) != before
    np.testing.assert_array_equal(model.predict(x, verbose=0), [[1, 1, 3, 2]])
    np.testing.assert_array_equal(model.predict_on_batch(x), [[1, 1, 3, 2]])
