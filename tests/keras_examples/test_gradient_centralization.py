"""keras.io "Gradient Centralization for Better Training Performance" (Keras 3 version): a ``tf.data`` pipeline
(``map`` with a ``Rescaling`` layer, ``shuffle``, ``batch``, a second ``map`` applying ``RandomFlip`` /
``RandomRotation`` / ``RandomZoom`` to batches, ``prefetch(AUTOTUNE)``), the page's Sequential CNN (five
``Conv2D`` / ``MaxPooling2D`` stages, the first with ``input_shape=``, ``Dropout``, ``Flatten``, ``Dense``), a
``TimeHistory`` callback, and the same model compiled and fitted again with an ``RMSprop`` subclass.

The page's ``GCRMSprop`` overrides ``get_gradients``, a tf.keras 2 hook that Keras 3's ``fit`` never calls, so
it trains exactly as ``RMSprop`` (checked: the method is not called in either framework). The centring it
means to do is written here too the way Keras 3 takes it, as an override of ``apply(grads,
trainable_variables)`` that subtracts each kernel gradient's mean over all but its last axis before
``super().apply``; the model is compiled and fitted a third time with it.

Written against ``tf_data`` and ``keras``: real Keras 3 (torch backend) reads real TensorFlow's ``tf.data``
(``from tensorflow import data as tf_data``, as on the page), onnxforge its own ``onnxforge.data``. Shrunk:
94x94 images (the smallest that survives five valid 3x3 convolutions and 2x pools), 8 training images of
two classes, batches of 4, one epoch per fit.

Tolerance: Keras's initial weights copied. The fits read the pipeline without shuffle and augmentation, and
the Dropout rate is 0 (the page's 0.5 draws each framework's own masks), so the three fits are deterministic.
Each compile starts a fresh RMSprop, whose first step is about ``lr * sign(g) / sqrt(1 - rho)``: weights with
near-zero gradients move by a full step either way on float32 summation-order noise, so the two frameworks
drift apart by ~3e-4 per fit, plain RMSprop as much as the centralized ones (seen: 2e-5, 3e-4, 7e-4 on
predictions that moved by 0.03-0.06; with 16 images 1e-4, 1e-3, 1.7e-3). Losses agree to 1e-3 relative,
predictions to 2e-3 absolute; that the override runs at all is checked by its call count (once per trace
in onnxforge, once per step in Keras) and, exactly, by ``tests/compiler/test_overridden_apply.py``. The augmented
pipeline is run for one batch in each framework: its own random flips, rotations and zooms, so only its shape
and range are compared.
"""
from __future__ import annotations

from time import time

import numpy as np
import pytest

import onnxforge

from .harness import fkeras, keras as real_keras, to_numpy

SIZE = 94


def horses_or_humans(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uint8 RGB images: class 1 has a bright upright figure in the middle, class 0 a wide dark shape."""
    rng = np.random.default_rng(seed)
    images = rng.integers(60, 140, (n, SIZE, SIZE, 3)).astype("uint8")
    labels = np.arange(n) % 2
    for image, label in zip(images, labels):
        if label:
            image[20:80, 40:55] = 230
        else:
            image[50:70, 10:85] = 20
    return images, labels


def gradient_centralization(keras, data, init, tf_data, dropout=0.5):
    layers = keras.layers
    ops = keras.ops
    RMSprop = keras.optimizers.RMSprop
    keras.utils.set_random_seed(17)
    x_train, y_train = data
    batch_size = 4
    AUTOTUNE = tf_data.AUTOTUNE
    train_raw = tf_data.Dataset.from_tensor_slices((x_train, y_train))

    rescale = layers.Rescaling(1.0 / 255)
    data_augmentation = [layers.RandomFlip("horizontal_and_vertical"), layers.RandomRotation(0.3),
                         layers.RandomZoom(0.2)]

    def apply_aug(x):
        for aug in data_augmentation:
            x = aug(x)
        return x

    def prepare(ds, shuffle=False, augment=False):
        ds = ds.map(lambda x, y: (rescale(x), y), num_parallel_calls=AUTOTUNE)
        if shuffle:
            ds = ds.shuffle(1024)
        ds = ds.batch(batch_size)
        if augment:
            ds = ds.map(lambda x, y: (apply_aug(x), y), num_parallel_calls=AUTOTUNE)
        return ds.prefetch(buffer_size=AUTOTUNE)

    out = {}
    augmented, _ = next(iter(prepare(train_raw, shuffle=True, augment=True)))
    out["augmented"] = np.asarray(to_numpy(augmented))
    train_ds = prepare(train_raw)

    model = keras.Sequential([
        layers.Conv2D(16, (3, 3), activation="relu", input_shape=(SIZE, SIZE, 3)),
        layers.MaxPooling2D(2, 2),
        layers.Conv2D(32, (3, 3), activation="relu"),
        layers.Dropout(dropout),
        layers.MaxPooling2D(2, 2),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.Dropout(dropout),
        layers.MaxPooling2D(2, 2),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.MaxPooling2D(2, 2),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.MaxPooling2D(2, 2),
        layers.Flatten(),
        layers.Dropout(dropout),
        layers.Dense(512, activation="relu"),
        layers.Dense(1, activation="sigmoid"),
    ])
    init(model)
    get_gradients_calls = []

    class GCRMSprop(RMSprop):
        def get_gradients(self, loss, params):
            get_gradients_calls.append(1)
            grads = []
            gradients = super().get_gradients()
            for grad in gradients:
                grad_len = len(grad.shape)
                if grad_len > 1:
                    axis = list(range(grad_len - 1))
                    grad -= ops.mean(grad, axis=axis, keep_dims=True)
                grads.append(grad)
            return grads

    apply_calls = []

    class GCRMSpropApply(RMSprop):
        def apply(self, grads, trainable_variables=None):
            apply_calls.append(1)
            centralized = []
            for grad in grads:
                grad_len = len(grad.shape)
                if grad_len > 1:
                    axis = list(range(grad_len - 1))
                    grad = grad - ops.mean(grad, axis=axis, keepdims=True)
                centralized.append(grad)
            return super().apply(centralized, trainable_variables)

    class TimeHistory(keras.callbacks.Callback):
        def on_train_begin(self, logs={}):
            self.times = []

        def on_epoch_begin(self, batch, logs={}):
            self.epoch_time_start = time()

        def on_epoch_end(self, batch, logs={}):
            self.times.append(time() - self.epoch_time_start)

    histories = {}
    for name, optimizer in (("no_gc", RMSprop(learning_rate=1e-4)), ("gc", GCRMSprop(learning_rate=1e-4)),
                            ("gc_apply", GCRMSpropApply(learning_rate=1e-4))):
        time_callback = TimeHistory()
        model.compile(loss="binary_crossentropy", optimizer=optimizer, metrics=["accuracy"])
        history = model.fit(train_ds, epochs=1, verbose=0, callbacks=[time_callback])
        histories[name] = history.history
        out[f"{name}_times"] = len(time_callback.times)
        out[f"{name}_loss"] = history.history["loss"][-1]
        out[f"{name}_accuracy"] = history.history["accuracy"][-1]
        out[f"{name}_predict"] = np.asarray(to_numpy(model.predict(x_train[:8] / 255, verbose=0)))
    out["get_gradients_calls"] = len(get_gradients_calls)
    out["apply_calls"] = len(apply_calls)
    return out


def test_gradient_centralization():
    tf = pytest.importorskip("tensorflow")
    data = horses_or_humans(8, 0)
    initial = []
    want = gradient_centralization(real_keras, data, lambda m: initial.append(m.get_weights()), tf.data,
                                   dropout=0.0)
    got = gradient_centralization(fkeras, data, lambda m: m.set_weights(initial[0]), onnxforge.data,
                                  dropout=0.0)
    assert want["get_gradients_calls"] == got["get_gradients_calls"] == 0
    assert want["apply_calls"] == 2 and got["apply_calls"] >= 1
    for name in ("no_gc", "gc", "gc_apply"):
        assert got[f"{name}_times"] == want[f"{name}_times"] == 1
        assert abs(got[f"{name}_loss"] - want[f"{name}_loss"]) <= 1e-3 * abs(want[f"{name}_loss"]), name
        assert got[f"{name}_accuracy"] == pytest.approx(want[f"{name}_accuracy"]), name
        np.testing.assert_allclose(got[f"{name}_predict"], want[f"{name}_predict"], atol=2e-3,
                                   err_msg=name)
    assert got["augmented"].shape == want["augmented"].shape == (4, SIZE, SIZE, 3)
    for run in (want, got):
        assert 0 <= run["augmented"].min() and run["augmented"].max() <= 1 + 1e-6
