"""Layer configs hold shapes as tuples, as Keras 3's do: programs compare them with tuple literals
(keras.io's ConvMixer looks for ``layer.get_config()["kernel_size"] == (5, 5)``)."""
from __future__ import annotations

import pytest

from tests.keras_oracle.common import keras, fkeras

CASES = {
    "DepthwiseConv2D": lambda L: L.DepthwiseConv2D(5, dilation_rate=2),
    "Conv2D": lambda L: L.Conv2D(3, 5, strides=2),
    "Conv1D": lambda L: L.Conv1D(2, 3),
    "Conv2DTranspose": lambda L: L.Conv2DTranspose(2, 3, output_padding=1, strides=2),
    "SeparableConv2D": lambda L: L.SeparableConv2D(2, 3),
    "MaxPooling2D": lambda L: L.MaxPooling2D(2),
    "AveragePooling1D": lambda L: L.AveragePooling1D(2),
    "Cropping2D": lambda L: L.Cropping2D(1),
    "Cropping1D": lambda L: L.Cropping1D(2),
    "ZeroPadding2D": lambda L: L.ZeroPadding2D(1),
    "ZeroPadding1D": lambda L: L.ZeroPadding1D(1),
    "UpSampling2D": lambda L: L.UpSampling2D(2),
    "Reshape": lambda L: L.Reshape((2, 3)),
    "Permute": lambda L: L.Permute((2, 1)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_shape_entries_are_tuples_like_keras(name):
    ours, theirs = CASES[name](fkeras.layers).get_config(), CASES[name](keras.layers).get_config()
    for key, value in theirs.items():
        if isinstance(value, tuple):
            assert ours[key] == value and type(ours[key]) is tuple, (key, ours[key], value)


def test_input_layer_batch_shape_is_a_tuple():
    assert fkeras.layers.InputLayer(shape=(3,)).get_config()["batch_shape"] == \
        keras.layers.InputLayer(shape=(3,)).get_config()["batch_shape"] == (None, 3)


def test_input_layer_and_sequential_configs_have_keras_keys():
    # keras.io "Save, serialize and export": programs print and compare model.get_config() with Keras's.
    ours = fkeras.layers.InputLayer(shape=(3,), name="i").get_config()
    theirs = keras.layers.InputLayer(shape=(3,), name="i").get_config()
    assert ours == theirs
    assert fkeras.layers.InputLayer(shape=(3,), optional=True).get_config()["optional"] is True
    ours = fkeras.Sequential([fkeras.Input((4,)), fkeras.layers.Dense(1)], name="s").get_config()
    theirs = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)], name="s").get_config()
    assert sorted(ours) == sorted(theirs) and ours["dtype"] == theirs["dtype"]
    assert fkeras.Sequential.from_config(ours).get_config()["dtype"] == ours["dtype"]
