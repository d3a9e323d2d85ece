"""The seed tutorial's Keras MNIST CNN runs unchanged under ``import onnxforge as tf``."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf


def _seed_model():
    # Verbatim from the seed tutorial (only the import differs).
    model = tf.keras.Sequential([
        tf.keras.layers.Conv2D(32, 3, padding='same', input_shape=(28, 28, 1)),
        tf.keras.layers.Activation('relu'),
        tf.keras.layers.MaxPooling2D(pool_size=(2, 2)),
        tf.keras.layers.Conv2D(64, 3, padding='same'),
        tf.keras.layers.Activation('relu'),
        tf.keras.layers.MaxPooling2D(pool_size=(2, 2)),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(128),
        tf.keras.layers.Activation('relu'),
        tf.keras.layers.Dense(10)])
    return model


def test_seed_code_runs_unchanged_and_warns_about_logits():
    (x_train, y_train), (x_test, y_test) = tf.keras.datasets.mnist.load_data()
    x_train = x_train[:256].reshape(-1, 28, 28, 1).astype("float32") / 255.0
    y_train = y_train[:256]
    x_test = x_test[:64].reshape(-1, 28, 28, 1).astype("float32") / 255.0
    y_test = y_test[:64]
    model = _seed_model()
    last = model.layers[-1].name  # "dense_1" in a fresh session; names count up across tests
    with pytest.warns(UserWarning, match=rf"layer '{last}' \(Dense\).*from_logits=True"):
        model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
    history = model.fit(x_train, y_train, batch_size=128, epochs=2, validation_data=(x_test, y_test), verbose=0)
    assert sorted(history.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert len(history.history["loss"]) == 2
    assert all(np.isfinite(history.history["loss"]))
    assert model.count_params() == 421_642  # the tutorial's parameter count


def test_seed_keras_semantics_for_logits_as_probabilities():
    """With from_logits=False, Keras divides the scores by their sum and clips to [1e-7, 1 - 1e-7]."""
    model = tf.keras.Sequential([tf.keras.layers.Dense(3, input_shape=(2,), use_bias=False)])
    model.set_weights([np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 4.0]], np.float32)])
    with pytest.warns(UserWarning):
        model.compile(optimizer='sgd', loss='sparse_categorical_crossentropy')
    x = np.array([[1.0, 1.0], [2.0, 0.5]], np.float32)
    y = np.array([2, 0])
    scores = x @ model.get_weights()[0]
    probs = np.clip(scores / scores.sum(axis=1, keepdims=True), 1e-7, 1 - 1e-7)
    expected = float(np.mean(-np.log(probs[np.arange(2), y])))
    assert model.evaluate(x, y, verbose=0) == pytest.approx(expected, rel=1e-5)
