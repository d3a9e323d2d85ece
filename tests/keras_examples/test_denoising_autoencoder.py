"""keras.io "Convolutional autoencoder for image denoising": a Conv2D / MaxPooling2D(padding="same")
encoder and a strided Conv2DTranspose decoder trained with binary cross-entropy, first to reconstruct
digits and then to map noisy digits to clean ones; denoised test digits come from ``predict``.

Tolerance: Keras's initial weights copied, the same noisy data (drawn once with numpy), ``shuffle=False``
and no randomness in training: the same float32 computation up to summation order, so every loss and
the denoising error agree within 1% of Keras's.
"""
from __future__ import annotations

import numpy as np

from .harness import assert_close, mnist, run_both


def preprocess(array):
    """Normalizes the supplied array and reshapes it."""
    array = array.astype("float32") / 255.0
    return np.reshape(array, (len(array), 28, 28, 1))


def noise(array, rng):
    """Adds random noise to each image in the supplied array."""
    noisy_array = array + 0.4 * rng.normal(loc=0.0, scale=1.0, size=array.shape)
    return np.clip(noisy_array, 0.0, 1.0).astype("float32")


def denoising_autoencoder(keras, data, init):
    (train_data, _), (test_data, _) = data
    layers = keras.layers
    keras.utils.set_random_seed(2)
    train_data, test_data = preprocess(train_data), preprocess(test_data)
    rng = np.random.default_rng(0)
    noisy_train_data, noisy_test_data = noise(train_data, rng), noise(test_data, rng)

    input = layers.Input(shape=(28, 28, 1))
    x = layers.Conv2D(8, (3, 3), activation="relu", padding="same")(input)
    x = layers.MaxPooling2D((2, 2), padding="same")(x)
    x = layers.Conv2D(8, (3, 3), activation="relu", padding="same")(x)
    x = layers.MaxPooling2D((2, 2), padding="same")(x)
    x = layers.Conv2DTranspose(8, (3, 3), strides=2, activation="relu", padding="same")(x)
    x = layers.Conv2DTranspose(8, (3, 3), strides=2, activation="relu", padding="same")(x)
    x = layers.Conv2D(1, (3, 3), activation="sigmoid", padding="same")(x)
    autoencoder = keras.Model(input, x)
    init(autoencoder)
    autoencoder.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")

    first = autoencoder.fit(x=train_data, y=train_data, epochs=2, batch_size=16, shuffle=False,
                            validation_data=(test_data, test_data), verbose=0)
    second = autoencoder.fit(x=noisy_train_data, y=train_data, epochs=2, batch_size=16, shuffle=False,
                             validation_data=(noisy_test_data, test_data), verbose=0)
    predictions = autoencoder.predict(noisy_test_data, verbose=0)
    return {"reconstruction_val_loss": first.history["val_loss"][-1],
            "denoising_loss": second.history["loss"][-1],
            "denoising_val_loss": second.history["val_loss"][-1],
            "denoised_mse": float(np.mean((predictions - test_data) ** 2))}


def test_denoising_autoencoder():
    want, got = run_both(denoising_autoencoder, mnist(600, 200), copy_weights=True)
    assert_close(want, got, rtol=0.01)
    black_mse = float(np.mean(preprocess(mnist(600, 200)[1][0]) ** 2))
    # Learning (four epochs, not the tutorial's hundred): strokes drawn, closer to the digits than black.
    assert want["denoised_mse"] < black_mse and want["denoising_val_loss"] < 0.55
