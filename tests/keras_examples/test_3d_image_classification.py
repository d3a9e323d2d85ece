"""keras.io "3D Image Classification from CT Scans": volumes normalized to [0, 1] on the host, a ``tf.data``
pipeline (``from_tensor_slices``, ``shuffle``, ``map``, ``batch``, ``prefetch``) whose training ``map`` calls a
``@tf.function`` that rotates the volume with ``scipy.ndimage.rotate`` through ``tf.numpy_function`` at a
``random.choice`` angle, then ``tf.expand_dims`` for the channel; a 3D CNN of four ``Conv3D`` / ``MaxPool3D`` /
``BatchNormalization`` blocks, ``GlobalAveragePooling3D``, ``Dense`` / ``Dropout`` and a sigmoid ``Dense``;
Adam on an ``ExponentialDecay`` schedule, ``"acc"`` metric, ``ModelCheckpoint("....h5", save_best_only=True)``
and ``EarlyStopping(monitor="val_acc")``; then ``load_weights`` of the best checkpoint and one prediction.

Written against ``tf`` and ``keras``: real Keras 3 (torch backend) takes real TensorFlow's ``tf.data`` and
``tf.function`` for its input pipeline (Keras 3 reads ``tf.data`` datasets on every backend); onnxforge runs
with ``import onnxforge as tf``. Shrunk: 46^3 volumes (the smallest that survives four valid 3x3x3
convolutions and 2x pools), 8 training and 4 validation scans of a bright blob left or right, filters 4-4-8-8,
Dense 16.

Tolerance: Keras's initial weights copied. ``predict`` / one ``train_on_batch`` / the reloaded ``.keras`` file
on the validation batch agree to float32 order (rtol 1e-4; the training step's Dropout is at rate 0 here so
the step is deterministic, the page's 0.3 is used for ``fit``). The rotation through ``tf.numpy_function``
is the same SciPy call on the same ``random`` draw in both: equal to 1e-6. ``fit`` shuffles with each
framework's own shuffle, rotates by its own angle draws and drops with its own Dropout masks, and batches of
2 through BatchNormalization make its losses swing by 0.3 between such runs in Keras alone: its 2 epochs are
checked for the same history keys and plausible binary cross-entropies (in (0, 2)); the best checkpoint restored by ``load_weights`` predicts as the same
file loaded in real Keras (onnxforge's ``.h5`` is an ordinary Keras file), to 1e-5.
"""
from __future__ import annotations

import random

import numpy as np
import pytest
from scipy import ndimage

import onnxforge

from .equal_weights import compare, predict_fit_reload
from .harness import fkeras, keras as real_keras, to_numpy, workdir

SIZE = 46


def ct_like(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` Hounsfield-like volumes (air around -1000, a blob at +300 left or right) and their 0/1 labels."""
    rng = np.random.default_rng(seed)
    volumes = rng.normal(-900, 80, (n, SIZE, SIZE, SIZE)).astype("float32")
    labels = np.arange(n) % 2
    for v, label in zip(volumes, labels):
        c = SIZE // 4 if label == 0 else 3 * SIZE // 4
        v[SIZE // 3: 2 * SIZE // 3, c - 5: c + 5, SIZE // 3: 2 * SIZE // 3] = 300
    return volumes, labels


def normalize(volume):
    min = -1000
    max = 400
    volume[volume < min] = min
    volume[volume > max] = max
    volume = (volume - min) / (max - min)
    volume = volume.astype("float32")
    return volume


def ct_scans(keras, data, init, tmp_path, tf, dropout_rate=0.3):
    layers = keras.layers
    keras.utils.set_random_seed(5)
    (x_train, y_train), (x_val, y_val) = data
    x_train = np.array([normalize(v.copy()) for v in x_train])
    x_val = np.array([normalize(v.copy()) for v in x_val])
    out = {}

    @tf.function
    def rotate(volume):
        """Rotate the volume by a few degrees"""

        def scipy_rotate(volume):
            angles = [-20, -10, -5, 5, 10, 20]
            angle = random.choice(angles)
            volume = ndimage.rotate(volume, angle, reshape=False)
            volume[volume < 0] = 0
            volume[volume > 1] = 1
            return volume

        augmented_volume = tf.numpy_function(scipy_rotate, [volume], tf.float32)
        return augmented_volume

    def train_preprocessing(volume, label):
        volume = rotate(volume)
        volume = tf.expand_dims(volume, axis=3)
        return volume, label

    def validation_preprocessing(volume, label):
        volume = tf.expand_dims(volume, axis=3)
        return volume, label

    random.seed(11)
    out["rotated"] = np.asarray(rotate(x_train[0]))

    train_loader = tf.data.Dataset.from_tensor_slices((x_train, y_train))
    validation_loader = tf.data.Dataset.from_tensor_slices((x_val, y_val))
    batch_size = 2
    train_dataset = train_loader.shuffle(len(x_train)).map(train_preprocessing).batch(batch_size).prefetch(2)
    validation_dataset = (validation_loader.shuffle(len(x_val)).map(validation_preprocessing).batch(batch_size)
                          .prefetch(2))

    data = train_dataset.take(1)
    images, labels = list(data)[0]
    images = images.numpy()
    out["image_shape"] = images[0].shape

    def get_model(width=128, height=128, depth=64, dropout=0.3):
        inputs = keras.Input((width, height, depth, 1))
        x = inputs
        for filters in (4, 4, 8, 8):
            x = layers.Conv3D(filters=filters, kernel_size=3, activation="relu")(x)
            x = layers.MaxPool3D(pool_size=2)(x)
            x = layers.BatchNormalization()(x)
        x = layers.GlobalAveragePooling3D()(x)
        x = layers.Dense(units=16, activation="relu")(x)
        x = layers.Dropout(dropout)(x)
        outputs = layers.Dense(units=1, activation="sigmoid")(x)
        return keras.Model(inputs, outputs, name="3dcnn")

    folder = workdir(keras, tmp_path)
    exact = get_model(width=SIZE, height=SIZE, depth=SIZE, dropout=0.0)
    init(exact)
    exact.compile(loss="binary_crossentropy", optimizer=keras.optimizers.Adam(1e-3), metrics=["acc"])
    out.update(predict_fit_reload(keras, exact, x_val[..., None], y_val.astype("float32"), folder))

    model = get_model(width=SIZE, height=SIZE, depth=SIZE, dropout=dropout_rate)
    init(model)
    initial_learning_rate = 0.0001
    lr_schedule = keras.optimizers.schedules.ExponentialDecay(initial_learning_rate, decay_steps=100000,
                                                              decay_rate=0.96, staircase=True)
    model.compile(loss="binary_crossentropy", optimizer=keras.optimizers.Adam(learning_rate=lr_schedule),
                  metrics=["acc"])
    checkpoint = str(folder / "3d_image_classification.h5")
    checkpoint_cb = keras.callbacks.ModelCheckpoint(checkpoint, save_best_only=True)
    early_stopping_cb = keras.callbacks.EarlyStopping(monitor="val_acc", patience=15)
    model.fit(train_dataset, validation_data=validation_dataset, epochs=2, shuffle=True, verbose=0,
              callbacks=[checkpoint_cb, early_stopping_cb])
    out["history"] = {k: np.array(v) for k, v in model.history.history.items()}

    model.load_weights(checkpoint)
    prediction = model.predict(np.expand_dims(x_val[0], axis=0), verbose=0)[0]
    out["scores"] = np.array([1 - prediction[0], prediction[0]])
    out["checkpoint"] = checkpoint
    out["x_val"] = x_val
    return out


def test_3d_image_classification(tmp_path):
    tf = pytest.importorskip("tensorflow")
    data = ct_like(8, 0), ct_like(4, 1)
    initial = []

    def record(model):
        initial.append(model.get_weights())

    def apply(model):
        model.set_weights(initial.pop(0))

    want = ct_scans(real_keras, data, record, tmp_path, tf)
    got = ct_scans(fkeras, data, apply, tmp_path, onnxforge)
    np.testing.assert_allclose(got["rotated"], want["rotated"], atol=1e-6, err_msg="scipy rotation")
    assert np.abs(want["rotated"] - normalize(data[0][0][0].copy())).max() > 0.1, "the volume was rotated"
    assert got["image_shape"] == want["image_shape"] == (SIZE, SIZE, SIZE, 1)
    compare(want, got)
    assert sorted(got["history"]) == sorted(want["history"]) == ["acc", "loss", "val_acc", "val_loss"]
    for run in (want, got):
        for key in ("loss", "val_loss"):   # binary cross-entropy of a barely trained net: near ln 2
            assert run["history"][key].shape == (2,) and ((run["history"][key] > 0) & (run["history"][key] < 2)).all()
    assert abs(got["scores"].sum() - 1) < 1e-6
    restored = real_keras.models.load_model(got["checkpoint"])
    x0 = got["x_val"][:1, ..., None]
    np.testing.assert_allclose(to_numpy(restored.predict(x0, verbose=0))[0, 0], got["scores"][1], atol=1e-5)
