"""An eager call without ``training`` gives each layer its ``call()`` default, as Keras 3's call context does:
augmentation layers augment (``train_ds.map(lambda x, y: (data_augmentation(x), y))`` on keras.io), Dropout
and BatchNormalization stay in inference mode; ``predict`` is always inference."""
from __future__ import annotations

import numpy as np

import onnxforge as of

keras = of.keras
X = np.random.default_rng(0).random((4, 8, 8, 3)).astype(np.float32)


def test_augmentation_applies_in_eager_calls_unless_training_false():
    augment = keras.Sequential([keras.layers.RandomFlip("horizontal"), keras.layers.RandomRotation(0.2)])
    assert not np.allclose(np.asarray(augment(X)), X)
    np.testing.assert_array_equal(np.asarray(augment(X, training=False)), X)
    # Each image keeps its orientation with probability 1/4: 4 images stay as they are once in 256 runs.
    many = np.random.default_rng(1).random((32, 8, 8, 3)).astype(np.float32)
    assert not np.allclose(np.asarray(keras.layers.RandomFlip()(many)), many)


def test_other_layers_keep_inference_defaults():
    np.testing.assert_array_equal(np.asarray(keras.layers.Dropout(0.5)(X)), X)
    bn = keras.layers.BatchNormalization()
    np.testing.assert_allclose(np.asarray(bn(X)), X / np.sqrt(1 + 1e-3), rtol=1e-6)   # moving stats 0 / 1
    assert np.all(bn.moving_mean.numpy() == 0)


def test_in_a_model_eager_calls_augment_and_predict_does_not():
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.RandomFlip(), keras.layers.Conv2D(2, 3)])
    calls = [np.asarray(model(X)) for _ in range(4)]
    assert any(not np.allclose(calls[0], c) for c in calls[1:])
    np.testing.assert_array_equal(model.predict(X, verbose=0), model.predict(X, verbose=0))
    np.testing.assert_array_equal(np.asarray(model(X, training=False)), model.predict(X, verbose=0))
