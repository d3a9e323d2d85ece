"""RandomCrop: random windows in training, Keras's documented crop-and-resize otherwise."""
from __future__ import annotations

import os

import numpy as np
import pytest

import onnxforge.keras as fkeras

os.environ.setdefault("KERAS_BACKEND", "torch")

X = np.arange(3 * 7 * 6 * 2, dtype="float32").reshape(3, 7, 6, 2)


def _window(out, x):
    """The (top, left) of ``out`` inside ``x`` (every image cropped at the same place), or None."""
    h, w = out.shape[1:3]
    for top in range(x.shape[1] - h + 1):
        for left in range(x.shape[2] - w + 1):
            if np.array_equal(out, x[:, top:top + h, left:left + w]):
                return top, left
    return None


def test_training_crops_one_random_window_per_batch_covering_every_position():
    layer = fkeras.layers.RandomCrop(4, 3, seed=3)
    seen = set()
    for _ in range(250):   # all 16 positions are then seen with probability > 0.9999
        out = np.asarray(layer(X, training=True))
        assert out.shape == (3, 4, 3, 2)
        where = _window(out, X)
        assert where is not None, "the crop is not a window of the input shared by the batch"
        seen.add(where)
    assert seen == {(t, l) for t in range(4) for l in range(4)}


def test_inference_is_keras_documented_crop_to_aspect_and_resize():
    keras = pytest.importorskip("keras")
    layer = fkeras.layers.RandomCrop(4, 3)
    want = keras.ops.convert_to_numpy(keras.ops.image.resize(X, (4, 3), crop_to_aspect_ratio=True))
    np.testing.assert_allclose(np.asarray(layer(X, training=False)), want, rtol=1e-5, atol=1e-4)
    same = fkeras.layers.RandomCrop(7, 6)
    np.testing.assert_array_equal(np.asarray(same(X, training=False)), X)


def test_in_a_model_it_trains_predicts_and_round_trips_its_config():
    inp = fkeras.Input((7, 6, 2))
    crop = fkeras.layers.RandomCrop(5, 5, seed=1, name="crop")
    model = fkeras.Model(inp, fkeras.layers.Dense(1)(fkeras.layers.Flatten()(crop(inp))))
    assert model.output.shape == (None, 1)
    model.compile(optimizer="sgd", loss="mse")
    model.fit(X, np.zeros((3, 1)), verbose=0, epochs=2)
    assert model.predict(X, verbose=0).shape == (3, 1)
    again = fkeras.layers.RandomCrop.from_config(crop.get_config())
    assert (again.height, again.width, again.seed) == (5, 5, 1)
    with pytest.raises(ValueError, match="height"):
        fkeras.layers.RandomCrop(0, 3)
