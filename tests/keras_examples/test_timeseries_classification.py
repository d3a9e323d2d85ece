"""keras.io "Timeseries classification from scratch" (FordA): series reshaped to ``(n, length, 1)``,
labels -1/1 remapped to 0/1, three Conv1D + BatchNormalization + ReLU blocks, GlobalAveragePooling1D,
a softmax Dense, ``validation_split``, ModelCheckpoint("best_model.keras", save_best_only=True),
ReduceLROnPlateau and EarlyStopping, then ``keras.models.load_model`` of the best model and ``evaluate``.

Tolerance: Keras's initial weights copied, ``shuffle=False``, no randomness in training: the same float32
computation up to summation order (BatchNormalization included), so losses within 3% and accuracies
within 0.03 of Keras's.
"""
from __future__ import annotations

import numpy as np

from . import data as synthetic
from .harness import assert_band, assert_close, run_both, workdir


def timeseries_classification(keras, data, init, tmp_path):
    (x_train, y_train), (x_test, y_test) = data
    keras.utils.set_random_seed(6)
    x_train = x_train.reshape((x_train.shape[0], x_train.shape[1], 1))
    x_test = x_test.reshape((x_test.shape[0], x_test.shape[1], 1))
    num_classes = len(np.unique(y_train))
    y_train, y_test = y_train.copy(), y_test.copy()
    y_train[y_train == -1] = 0
    y_test[y_test == -1] = 0

    def make_model(input_shape):
        input_layer = keras.layers.Input(input_shape)
        conv1 = keras.layers.Conv1D(filters=16, kernel_size=3, padding="same")(input_layer)
        conv1 = keras.layers.BatchNormalization()(conv1)
        conv1 = keras.layers.ReLU()(conv1)
        conv2 = keras.layers.Conv1D(filters=16, kernel_size=3, padding="same")(conv1)
        conv2 = keras.layers.BatchNormalization()(conv2)
        conv2 = keras.layers.ReLU()(conv2)
        conv3 = keras.layers.Conv1D(filters=16, kernel_size=3, padding="same")(conv2)
        conv3 = keras.layers.BatchNormalization()(conv3)
        conv3 = keras.layers.ReLU()(conv3)
        gap = keras.layers.GlobalAveragePooling1D()(conv3)
        output_layer = keras.layers.Dense(num_classes, activation="softmax")(gap)
        return keras.models.Model(inputs=input_layer, outputs=output_layer)

    model = make_model(input_shape=x_train.shape[1:])
    init(model)
    best = str(workdir(keras, tmp_path) / "best_model.keras")
    callbacks = [
        keras.callbacks.ModelCheckpoint(best, save_best_only=True, monitor="val_loss"),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, min_lr=0.0001),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=5, verbose=0),
    ]
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["sparse_categorical_accuracy"])
    history = model.fit(x_train, y_train, batch_size=32, epochs=6, callbacks=callbacks, validation_split=0.2,
                        shuffle=False, verbose=0)
    model = keras.models.load_model(best)
    test_loss, test_acc = model.evaluate(x_test, y_test, verbose=0)
    return {"loss": history.history["loss"][-1], "val_loss": history.history["val_loss"][-1],
            "best_val_loss": min(history.history["val_loss"]), "test_loss": float(test_loss),
            "test_accuracy": float(test_acc)}


def test_timeseries_classification(tmp_path):
    x, y = synthetic.series(700)
    data = (x[:500], y[:500]), (x[500:], y[500:])
    want, got = run_both(timeseries_classification, data, copy_weights=True, tmp_path=tmp_path)
    assert_close(want, got, rtol=0.03, keys=["loss", "val_loss", "best_val_loss", "test_loss"])
    assert_band(want, got, 0.03, ["test_accuracy"])
    assert want["test_accuracy"] > 0.8
