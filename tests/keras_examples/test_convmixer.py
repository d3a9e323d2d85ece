"""keras.io "Image classification with ConvMixer": a patch stem (``Conv2D`` with stride = kernel = patch size),
blocks of ``DepthwiseConv2D`` (padding "same") -> GELU -> ``BatchNormalization`` with a residual ``Add``, a
pointwise ``Conv2D``, ``GlobalAvgPool2D`` and a softmax ``Dense``, trained with ``keras.optimizers.AdamW`` on
``sparse_categorical_crossentropy``; ``run_experiment`` keeps the best epoch with a weights-only
``ModelCheckpoint`` on ``val_accuracy``, loads it back with ``load_weights`` and evaluates. The page also
reads the stem's kernel (``model.layers[2].get_weights()[0]``) and finds the depthwise layers with
``isinstance(layer, layers.DepthwiseConv2D)`` and ``get_config()["kernel_size"]``.

Shrunk: 8x8 images, 8 filters, depth 2, kernel 3, patch 2; no augmentation (RandomCrop / RandomFlip draw
their own numbers in each framework).

Tolerance: Keras's initial weights copied and no randomness left, so both frameworks compute the same
function. BatchNormalization in training normalises with the batch's statistics and moves its running
statistics; the predictions, one AdamW step and the reloaded model agree with Keras to float32 order
(rtol 1e-4); the two epochs of ``fit`` with the checkpoint (4 more steps through batch statistics) to 1e-3.
"""
from __future__ import annotations

import numpy as np

from .equal_weights import compare, load_in_keras, predict_fit_reload
from .harness import run_both, workdir

IMAGE, CLASSES = 8, 10


def convmixer(keras, data, init, tmp_path):
    (x_train, y_train), (x_val, y_val) = data
    layers = keras.layers
    learning_rate, weight_decay = 0.001, 0.0001

    def activation_block(x):
        x = layers.Activation("gelu")(x)
        return layers.BatchNormalization()(x)

    def conv_stem(x, filters: int, patch_size: int):
        x = layers.Conv2D(filters, kernel_size=patch_size, strides=patch_size)(x)
        return activation_block(x)

    def conv_mixer_block(x, filters: int, kernel_size: int):
        x0 = x
        x = layers.DepthwiseConv2D(kernel_size=kernel_size, padding="same")(x)
        x = layers.Add()([activation_block(x), x0])   # residual
        x = layers.Conv2D(filters, kernel_size=1)(x)
        return activation_block(x)

    def get_conv_mixer_256_8(image_size=IMAGE, filters=8, depth=2, kernel_size=3, patch_size=2,
                             num_classes=CLASSES):
        inputs = keras.Input((image_size, image_size, 3))
        x = layers.Rescaling(scale=1.0 / 255)(inputs)
        x = conv_stem(x, filters, patch_size)
        for _ in range(depth):
            x = conv_mixer_block(x, filters, kernel_size)
        x = layers.GlobalAvgPool2D()(x)
        outputs = layers.Dense(num_classes, activation="softmax")(x)
        return keras.Model(inputs, outputs)

    model = get_conv_mixer_256_8()
    init(model)
    optimizer = keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=weight_decay)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    folder = workdir(keras, tmp_path)
    out = predict_fit_reload(keras, model, x_train[:8], y_train[:8], folder)

    # run_experiment: the best epoch's weights by val_accuracy, loaded back, then evaluated.
    checkpoint_filepath = str(folder / "checkpoint.weights.h5")
    checkpoint_callback = keras.callbacks.ModelCheckpoint(checkpoint_filepath, monitor="val_accuracy",
                                                          save_best_only=True, save_weights_only=True)
    history = model.fit(x_train, y_train, batch_size=8, validation_data=(x_val, y_val), epochs=2,
                        callbacks=[checkpoint_callback], shuffle=False, verbose=0)
    model.load_weights(checkpoint_filepath)
    loss, accuracy = model.evaluate(x_val, y_val, verbose=0)
    out["history"] = {k: [float(v) for v in vs] for k, vs in history.history.items()}
    out["evaluate"] = np.array([loss, accuracy])

    # The page's look at the learned filters.
    out["stem_kernel"] = np.asarray(model.layers[2].get_weights()[0])
    out["depthwise"] = [i for i, layer in enumerate(model.layers)
                        if isinstance(layer, layers.DepthwiseConv2D) and layer.get_config()["kernel_size"] == (3, 3)]
    return out


def test_convmixer(tmp_path):
    rng = np.random.default_rng(7)
    data = ((rng.integers(0, 256, (16, IMAGE, IMAGE, 3)).astype("uint8"), rng.integers(0, CLASSES, (16, 1))),
            (rng.integers(0, 256, (8, IMAGE, IMAGE, 3)).astype("uint8"), rng.integers(0, CLASSES, (8, 1))))
    want, got = run_both(convmixer, data, copy_weights=True, tmp_path=tmp_path)
    compare(want, got)
    assert sorted(got["history"]) == sorted(want["history"])
    for key in want["history"]:
        np.testing.assert_allclose(got["history"][key], want["history"][key], rtol=1e-3, atol=1e-5, err_msg=key)
    np.testing.assert_allclose(got["evaluate"], want["evaluate"], rtol=1e-3, atol=1e-5)
    assert got["stem_kernel"].shape == want["stem_kernel"].shape == (2, 2, 3, 8)
    np.testing.assert_allclose(got["stem_kernel"], want["stem_kernel"], rtol=1e-3, atol=1e-5)
    assert got["depthwise"] == want["depthwise"] == [5, 12]
    load_in_keras(got["path"], data[0][0][:8], got["reloaded"])
