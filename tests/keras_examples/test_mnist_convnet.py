"""keras.io "Simple MNIST convnet": Conv2D / MaxPooling2D / Dropout on real digits, one-hot labels from
``keras.utils.to_categorical``, ``validation_split``, ``evaluate``.

Tolerance: both start from Keras's initial weights (copied), but Dropout draws different masks in each
framework and ``fit`` shuffles with each framework's generator. Over four seeds from the same weights,
Keras scored test accuracy 0.864-0.870, validation accuracy 0.853-0.880 and test loss 0.581-0.601;
onnxforge 0.858-0.870, 0.847-0.887 and 0.580-0.605. Bounds: test accuracy within 0.04, validation
accuracy within 0.06, test loss within 10%, and both learn (over 0.8 on held-out digits; chance is 0.1).
"""
from __future__ import annotations

import numpy as np

from .harness import assert_band, assert_close, mnist, run_both


def mnist_convnet(keras, data, init):
    (x_train, y_train), (x_test, y_test) = data
    layers = keras.layers
    keras.utils.set_random_seed(1337)
    num_classes, input_shape = 10, (28, 28, 1)
    x_train = np.expand_dims(x_train.astype("float32") / 255, -1)
    x_test = np.expand_dims(x_test.astype("float32") / 255, -1)
    y_train = keras.utils.to_categorical(y_train, num_classes)
    y_test = keras.utils.to_categorical(y_test, num_classes)

    model = keras.Sequential([
        keras.Input(shape=input_shape),
        layers.Conv2D(8, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Conv2D(16, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(num_classes, activation="softmax"),
    ])
    init(model)
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    history = model.fit(x_train, y_train, batch_size=32, epochs=3, validation_split=0.1, verbose=0)
    score = model.evaluate(x_test, y_test, verbose=0)
    return {"test_loss": float(score[0]), "test_accuracy": float(score[1]),
            "val_accuracy": float(history.history["val_accuracy"][-1])}


def test_mnist_convnet():
    want, got = run_both(mnist_convnet, mnist(1500, 500), copy_weights=True)
    assert_band(want, got, 0.04, ["test_accuracy"])
    assert_band(want, got, 0.06, ["val_accuracy"])
    assert_close(want, got, rtol=0.1, keys=["test_loss"])
    assert min(want["test_accuracy"], got["test_accuracy"]) > 0.8
