"""keras.io "Next-Frame Video Prediction with Convolutional LSTMs": three ``ConvLSTM2D`` layers
(``return_sequences=True``, ReLU activation, 5x5 / 3x3 / 1x1 kernels, ``padding="same"``) on an ``Input``
with an unknown number of frames, ``BatchNormalization`` after the first two, a ``Conv3D`` sigmoid head,
``keras.losses.binary_crossentropy`` (the function, not the class) with Adam; ``fit`` with validation data
and the page's ``EarlyStopping`` / ``ReduceLROnPlateau`` callbacks, then the page's frame-by-frame
extrapolation loop (``predict`` on a growing clip, keep the last frame, ``np.concatenate``).

Shrunk: 8x8 frames, 6-frame clips of a moving square (the page's Moving MNIST shifted by one frame into
``x`` / ``y``), 4 filters.

Tolerance: Keras's initial weights copied; no randomness. Predictions, one Adam step and the reloaded model
agree to float32 order (rtol 1e-4); the recurrence over 5 steps and BatchNormalization's batch statistics
amplify summation-order noise in Adam's first step (a weight moves by ``lr * g / (|g| + eps)`` whatever
``g``'s size), so the after-step comparison gets rtol 1e-3. The short fit (2 epochs) is compared on its
loss history to 1e-3 relative, the extrapolated frames to 1e-3 absolute.
"""
from __future__ import annotations

import numpy as np

from .equal_weights import compare, load_in_keras, predict_fit_reload
from .harness import run_both, workdir

FRAMES, SIZE, FILTERS = 6, 8, 4


def moving_squares(n: int, seed: int) -> np.ndarray:
    """``(n, FRAMES, SIZE, SIZE, 1)`` uint8 clips of a 3x3 square moving one pixel a frame."""
    rng = np.random.default_rng(seed)
    clips = np.zeros((n, FRAMES, SIZE, SIZE, 1), "uint8")
    for i in range(n):
        r, c = rng.integers(0, SIZE - 3, 2)
        dr, dc = rng.choice([-1, 0, 1], 2)
        for t in range(FRAMES):
            rr, cc = (r + dr * t) % (SIZE - 2), (c + dc * t) % (SIZE - 2)
            clips[i, t, rr:rr + 3, cc:cc + 3, 0] = 255
    return clips


def create_shifted_frames(data):
    x = data[:, 0: data.shape[1] - 1, :, :]
    y = data[:, 1: data.shape[1], :, :]
    return x, y


def conv_lstm(keras, data, init, tmp_path):
    layers = keras.layers
    keras.utils.set_random_seed(3)
    train_dataset, val_dataset = data
    x_train, y_train = create_shifted_frames(train_dataset)
    x_val, y_val = create_shifted_frames(val_dataset)

    inp = layers.Input(shape=(None, *x_train.shape[2:]))
    x = layers.ConvLSTM2D(filters=FILTERS, kernel_size=(5, 5), padding="same", return_sequences=True,
                          activation="relu")(inp)
    x = layers.BatchNormalization()(x)
    x = layers.ConvLSTM2D(filters=FILTERS, kernel_size=(3, 3), padding="same", return_sequences=True,
                          activation="relu")(x)
    x = layers.BatchNormalization()(x)
    x = layers.ConvLSTM2D(filters=FILTERS, kernel_size=(1, 1), padding="same", return_sequences=True,
                          activation="relu")(x)
    x = layers.Conv3D(filters=1, kernel_size=(3, 3, 3), activation="sigmoid", padding="same")(x)
    model = keras.models.Model(inp, x)
    init(model)
    model.compile(loss=keras.losses.binary_crossentropy, optimizer=keras.optimizers.Adam())
    out = predict_fit_reload(keras, model, x_train[:4], y_train[:4], workdir(keras, tmp_path))

    early_stopping = keras.callbacks.EarlyStopping(monitor="val_loss", patience=10)
    reduce_lr = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", patience=5)
    history = model.fit(x_train, y_train, batch_size=4, epochs=2, validation_data=(x_val, y_val),
                        callbacks=[early_stopping, reduce_lr], verbose=0)
    out["history"] = np.array([history.history["loss"], history.history["val_loss"]])

    example = val_dataset[0]
    frames = example[:3, ...]
    for _ in range(3):
        new_prediction = model.predict(np.expand_dims(frames, axis=0), verbose=0)
        new_prediction = np.squeeze(new_prediction, axis=0)
        predicted_frame = np.expand_dims(new_prediction[-1, ...], axis=0)
        frames = np.concatenate((frames, predicted_frame), axis=0)
    out["extrapolated"] = frames[3:]
    return out


def test_conv_lstm(tmp_path):
    train = moving_squares(8, 0) / 255
    val = moving_squares(4, 1) / 255
    want, got = run_both(conv_lstm, (train, val), copy_weights=True, tmp_path=tmp_path)
    compare(want, got, fit_rtol=1e-3)
    np.testing.assert_allclose(got["history"], want["history"], rtol=1e-3)
    assert got["extrapolated"].shape == (3, SIZE, SIZE, 1)
    np.testing.assert_allclose(got["extrapolated"], want["extrapolated"], atol=1e-3)
    load_in_keras(got["path"], create_shifted_frames(train)[0][:4], got["reloaded"])
