"""keras.io "Image similarity estimation using a Siamese Network with a contrastive loss": pairs of
digits, one embedding network (BatchNormalization, Conv2D, AveragePooling2D, Dense) shared by both
towers — so its BatchNormalization runs twice per step — a ``Lambda`` Euclidean distance using
``keras.backend.epsilon()``, a custom contrastive loss returning a scalar, RMSprop(0.01) and accuracy.

Tolerance: Keras's initial weights copied, the same pairs, ``shuffle=False``, no randomness in training,
so the first epoch's loss agrees within 0.5%. After that the runs drift apart as float32 rounding allows:
the BatchNormalization on the distance makes the output nearly blind to the towers' scale, so at the
start their gradients are ~1e-7, where summation order decides their digits, and RMSprop divides each
gradient by its own running size, turning rounding noise into steps of the learning rate. (With SGD
instead, the two frameworks agree to 6 digits after 3 epochs: the second test checks that within 0.1%.) Keras itself, from its initial weights
changed by one part in a million, ends at loss 0.101-0.116, validation loss 0.138-0.169 and validation
accuracy 0.77-0.81 (onnxforge likewise: 0.108-0.113, 0.150-0.178, 0.745-0.785). So the final numbers are
compared at about three standard deviations of the difference of two such runs: loss within 15%,
validation loss within 35%, accuracies within 0.08; and both must learn (validation accuracy over 0.7;
chance is 0.5).
"""
from __future__ import annotations

import numpy as np

from .harness import assert_band, assert_close, mnist, run_both


def make_pairs(x, y, rng):
    """Pairs of images, label 0 for the same digit and 1 for different digits (as the tutorial)."""
    digit_indices = [np.where(y == i)[0] for i in range(10)]
    pairs, labels = [], []
    for idx1 in range(len(x)):
        x1, label1 = x[idx1], y[idx1]
        idx2 = rng.choice(digit_indices[label1])
        pairs += [[x1, x[idx2]]]
        labels += [0]
        label2 = rng.integers(0, 10)
        while label2 == label1:
            label2 = rng.integers(0, 10)
        idx2 = rng.choice(digit_indices[label2])
        pairs += [[x1, x[idx2]]]
        labels += [1]
    return np.array(pairs), np.array(labels).astype("float32")


def siamese_contrastive(keras, data, init, optimizer=lambda keras: keras.optimizers.RMSprop(0.01)):
    (x_train, y_train), (x_val, y_val) = data
    ops = keras.ops
    keras.utils.set_random_seed(4)
    rng = np.random.default_rng(0)
    pairs_train, labels_train = make_pairs(x_train.astype("float32") / 255, y_train, rng)
    pairs_val, labels_val = make_pairs(x_val.astype("float32") / 255, y_val, rng)
    x_train_1, x_train_2 = pairs_train[:, 0, ..., None], pairs_train[:, 1, ..., None]
    x_val_1, x_val_2 = pairs_val[:, 0, ..., None], pairs_val[:, 1, ..., None]

    def euclidean_distance(vects):
        x, y = vects
        sum_square = ops.sum(ops.square(x - y), axis=1, keepdims=True)
        return ops.sqrt(ops.maximum(sum_square, keras.backend.epsilon()))

    input = keras.layers.Input((28, 28, 1))
    x = keras.layers.BatchNormalization()(input)
    x = keras.layers.Conv2D(4, (5, 5), activation="tanh")(x)
    x = keras.layers.AveragePooling2D(pool_size=(2, 2))(x)
    x = keras.layers.Conv2D(8, (5, 5), activation="tanh")(x)
    x = keras.layers.AveragePooling2D(pool_size=(2, 2))(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Dense(10, activation="tanh")(x)
    embedding_network = keras.Model(input, x)

    input_1 = keras.layers.Input((28, 28, 1))
    input_2 = keras.layers.Input((28, 28, 1))
    tower_1 = embedding_network(input_1)
    tower_2 = embedding_network(input_2)
    merge_layer = keras.layers.Lambda(euclidean_distance, output_shape=(1,))([tower_1, tower_2])
    normal_layer = keras.layers.BatchNormalization()(merge_layer)
    output_layer = keras.layers.Dense(1, activation="sigmoid")(normal_layer)
    siamese = keras.Model(inputs=[input_1, input_2], outputs=output_layer)
    init(siamese)

    def loss(margin=1):
        def contrastive_loss(y_true, y_pred):
            square_pred = ops.square(y_pred)
            margin_square = ops.square(ops.maximum(margin - (y_pred), 0))
            return ops.mean((1 - y_true) * square_pred + (y_true) * margin_square)

        return contrastive_loss

    siamese.compile(loss=loss(margin=1), optimizer=optimizer(keras), metrics=["accuracy"])
    history = siamese.fit([x_train_1, x_train_2], labels_train,
                          validation_data=([x_val_1, x_val_2], labels_val),
                          batch_size=32, epochs=3, shuffle=False, verbose=0)
    return {"loss_epoch1": history.history["loss"][0], "loss": history.history["loss"][-1], "val_loss": history.history["val_loss"][-1],
            "accuracy": history.history["accuracy"][-1], "val_accuracy": history.history["val_accuracy"][-1]}


def test_siamese_contrastive():
    want, got = run_both(siamese_contrastive, mnist(600, 200), copy_weights=True)
    assert_close(want, got, rtol=0.005, keys=["loss_epoch1"])
    assert_close(want, got, rtol=0.15, keys=["loss"])
    assert_close(want, got, rtol=0.35, keys=["val_loss"])
    assert_band(want, got, 0.08, ["accuracy", "val_accuracy"])
    assert min(want["val_accuracy"], got["val_accuracy"]) > 0.7


def test_siamese_contrastive_with_sgd_agrees_to_rounding():
    """The same program with plain SGD, where rounding differences are not amplified: every number close."""
    want, got = run_both(siamese_contrastive, mnist(600, 200), copy_weights=True,
                         optimizer=lambda keras: keras.optimizers.SGD(0.05))
    assert_close(want, got, rtol=1e-3, keys=["loss_epoch1", "loss", "val_loss"])
    assert_band(want, got, 0.01, ["accuracy", "val_accuracy"])
    assert want["val_accuracy"] > 0.65
