"""``layers.ContrastLimitedAdaptiveHistogramEqualization`` against Keras 3.15: on the torch backend where its
arithmetic is the layer's (whole tiles, integral clip limits), and with its TensorFlow backend ops for
mirrored padding and fractional limits, where Keras's torch backend rounds and edge-pads. Before, onnxforge had
no such layer."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from tests.keras_oracle.common import fkeras, keras

CLAHE = "ContrastLimitedAdaptiveHistogramEqualization"


def _image(shape, value_range=(0, 255), seed=0):
    x = np.random.default_rng(seed).uniform(0, 255, shape).astype(np.float32)
    return (x / 255.0 * (value_range[1] - value_range[0]) + value_range[0]).astype(np.float32)


@pytest.mark.parametrize("shape,kwargs", [
    ((2, 32, 32, 3), {"tile_grid_size": (2, 2)}),
    ((2, 32, 48, 3), {"tile_grid_size": (2, 3), "clip_limit": 2.0}),
    ((1, 6, 5, 1), {"clip_limit": 0}),
    ((2, 15, 12, 2), {"tile_grid_size": (3, 4), "clip_limit": 0}),
    ((2, 3, 32, 32), {"tile_grid_size": (2, 2), "data_format": "channels_first"}),
    ((2, 32, 32, 3), {"tile_grid_size": (2, 2), "value_range": (0, 1)}),
    ((32, 32, 3), {"tile_grid_size": (2, 2), "value_range": (-1, 1), "clip_limit": -1}),
])
def test_matches_keras_torch(shape, kwargs):
    x = _image(shape, kwargs.get("value_range", (0, 255)))
    want = keras.ops.convert_to_numpy(getattr(keras.layers, CLAHE)(**kwargs)(x))
    got = np.asarray(getattr(fkeras.layers, CLAHE)(**kwargs)(x))
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)


def test_integer_images_stay_integers():
    x = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3)).astype(np.int32)
    want = keras.ops.convert_to_numpy(getattr(keras.layers, CLAHE)(tile_grid_size=(2, 2))(x))
    got = np.asarray(getattr(fkeras.layers, CLAHE)(tile_grid_size=(2, 2))(x))
    assert got.dtype == want.dtype == np.int32
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("shape,kwargs", [
    ((1, 13, 10, 1), {"tile_grid_size": (3, 4), "clip_limit": 0}),
    ((2, 13, 10, 2), {"tile_grid_size": (3, 4), "clip_limit": 1.7}),
    ((1, 20, 18, 3), {}),
])
def test_padding_and_fractional_clip_limits_match_keras_tensorflow(shape, kwargs):
    """Keras's own layer with its TensorFlow backend ops (the switch Keras makes inside ``tf.data``)."""
    tf = pytest.importorskip("tensorflow")
    x = _image(shape, seed=len(kwargs))
    layer = getattr(keras.layers, CLAHE)(**kwargs)
    layer.backend.set_backend("tensorflow")
    try:
        want = layer.transform_images(tf.constant(x)).numpy()
    finally:
        layer.backend.reset()
    got = np.asarray(getattr(fkeras.layers, CLAHE)(**kwargs)(x))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)


def test_in_a_model_and_config_round_trip(tmp_path):
    layer = getattr(fkeras.layers, CLAHE)(tile_grid_size=(2, 3), clip_limit=2.5, value_range=(0, 1))
    inputs = fkeras.Input((20, 18, 3))
    model = fkeras.Model(inputs, layer(inputs))
    x = _image((2, 20, 18, 3), (0, 1))
    np.testing.assert_allclose(model.predict(x, verbose=0), np.asarray(layer(x)), rtol=1e-6, atol=1e-6)
    model.export(tmp_path / "m.onnx")
    onnx.checker.check_model(onnx.load(tmp_path / "m.onnx"), full_check=True)
    config = layer.get_config()
    theirs = getattr(keras.layers, CLAHE).from_config(config)
    assert (tuple(theirs.tile_grid_size), theirs.clip_limit) == ((2, 3), 2.5)
    again = getattr(fkeras.layers, CLAHE).from_config(config)
    assert again.tile_grid_size == (2, 3) and again.value_range == [0, 1]


def test_errors():
    with pytest.raises(ValueError, match="tile_grid_size"):
        getattr(fkeras.layers, CLAHE)(tile_grid_size=(0, 2))
    with pytest.raises(ValueError, match="value_range"):
        getattr(fkeras.layers, CLAHE)(value_range=(0, 1, 2))
    inputs = fkeras.Input((None, None, 3))
    model = fkeras.Model(inputs, getattr(fkeras.layers, CLAHE)()(inputs))
    with pytest.raises(ValueError, match="known height, width and channels"):
        model.predict(_image((1, 8, 8, 3)), verbose=0)
