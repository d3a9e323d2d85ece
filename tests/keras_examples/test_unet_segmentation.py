"""A U-Net segmenter in the manner of keras.io's "Image segmentation with a U-Net-like architecture":
double Conv2D blocks with BatchNormalization, MaxPooling2D down, Conv2DTranspose(strides=2) up,
``layers.concatenate`` skip connections, a per-pixel softmax with categorical cross-entropy on masks
one-hot encoded by ``keras.utils.to_categorical``, the predicted masks scored with
``keras.metrics.MeanIoU``, and a ``.keras`` save / load round trip. (keras.io's segmenter uses sparse
cross-entropy on the integer masks; Keras 3.15 on torch 2.13 fails in ``backward()`` on a 4-D sparse
cross-entropy with "grad_input must be contiguous", so the oracle could not run it.)

Tolerance: Keras's initial weights copied, ``shuffle=False``, no randomness in training: losses within 3%
of Keras's (BatchNormalization's batch statistics included) and pixel accuracy / mean IoU within 0.03.
"""
from __future__ import annotations

import numpy as np

from . import data as synthetic
from .harness import assert_band, assert_close, run_both, workdir

NUM_CLASSES = 3


def unet(keras, data, init, tmp_path):
    (x_train, y_train), (x_val, y_val) = data
    layers = keras.layers
    keras.utils.set_random_seed(15)

    def conv_block(x, filters):
        for _ in range(2):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization()(x)
            x = layers.Activation("relu")(x)
        return x

    inputs = keras.Input(shape=(32, 32, 1))
    c1 = conv_block(inputs, 8)
    p1 = layers.MaxPooling2D(2)(c1)
    c2 = conv_block(p1, 16)
    p2 = layers.MaxPooling2D(2)(c2)
    bottleneck = conv_block(p2, 32)
    u2 = layers.Conv2DTranspose(16, 2, strides=2, padding="same")(bottleneck)
    c3 = conv_block(layers.concatenate([u2, c2]), 16)
    u1 = layers.Conv2DTranspose(8, 2, strides=2, padding="same")(c3)
    c4 = conv_block(layers.concatenate([u1, c1]), 8)
    outputs = layers.Conv2D(NUM_CLASSES, 1, activation="softmax")(c4)
    model = keras.Model(inputs, outputs)
    init(model)

    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    y_train_onehot = keras.utils.to_categorical(y_train[..., 0], NUM_CLASSES)
    y_val_onehot = keras.utils.to_categorical(y_val[..., 0], NUM_CLASSES)
    history = model.fit(x_train, y_train_onehot, batch_size=16, epochs=4,
                        validation_data=(x_val, y_val_onehot),
                        shuffle=False, verbose=0)
    val_preds = model.predict(x_val, verbose=0)
    mean_iou = keras.metrics.MeanIoU(num_classes=NUM_CLASSES)
    mean_iou.update_state(y_val[..., 0], np.argmax(val_preds, axis=-1))

    path = str(workdir(keras, tmp_path) / "unet.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    np.testing.assert_allclose(reloaded.predict(x_val[:8], verbose=0), val_preds[:8], rtol=1e-4, atol=1e-5)
    logs = history.history
    return {"loss": logs["loss"][-1], "val_loss": logs["val_loss"][-1],
            "val_accuracy": logs["val_accuracy"][-1], "mean_iou": float(mean_iou.result())}


def test_unet_segmentation(tmp_path):
    images, masks = synthetic.shapes(240)
    data = (images[:192], masks[:192]), (images[192:], masks[192:])
    want, got = run_both(unet, data, copy_weights=True, tmp_path=tmp_path)
    assert_close(want, got, rtol=0.03, keys=["loss", "val_loss"])
    assert_band(want, got, 0.03, ["val_accuracy", "mean_iou"])
    assert want["mean_iou"] > 0.5   # the square and the disc are found, not only the background
