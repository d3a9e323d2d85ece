"""keras.io "Supervised Contrastive Learning" (Keras 3 version): a module-level augmentation Sequential
(``Normalization`` adapted on the training images, ``RandomFlip``, ``RandomRotation``) shared by every encoder
the page builds, an encoder model wrapping a headless backbone with average pooling, a classifier whose
``create_classifier(encoder, trainable)`` sets ``layer.trainable`` on each encoder layer, the
``SupervisedContrastiveLoss`` subclass that overrides ``Loss.__call__`` (``keras.utils.normalize(order=2)``,
``ops.matmul`` with ``ops.transpose``, npairs loss via ``ops.equal`` and ``ops.categorical_crossentropy``
from logits), a projection head, and the two experiments: a baseline classifier trained end to end, then the
encoder pretrained with the contrastive loss and a classifier trained on the frozen encoder.

Two departures from the page, both outside onnxforge: the backbone is a two-convolution stand-in for
``ResNet50V2(include_top=False, weights=None, pooling="avg")`` (23M parameters are far beyond a unit test's
budget; onnxforge's ResNet50V2 is covered by the applications tests), and ``npairs_loss`` expands the
squeezed labels to a column before comparing them with their transpose, as the TF-Addons function the page
ported does: the page as written compares a 1-D vector with itself and then sums over axis 1, which raises in
real Keras on torch (``test_page_npairs_loss_raises_in_both``) and in onnxforge alike. Shrunk: 8x8 images,
4 classes, 48 training images.

Tolerance: Keras's initial weights copied. With augmentation and Dropout inactive outside training,
``evaluate`` of the projection model under the contrastive loss, the loss called directly and the
classifier's predictions agree to float32 order (1e-4); the phase-3 classifier starts from a copy of Keras's
pretrained encoder, so its predictions before training are compared too. Training draws flips, rotations and Dropout masks
from each framework's own generator, so the fits are compared by what they must do: finite losses, and a
frozen encoder whose weights phase 3 leaves untouched while the head's four weights train.
"""
from __future__ import annotations

import numpy as np
import pytest

from .harness import fkeras, keras as real_keras, run_both, to_numpy

NUM_CLASSES, INPUT_SHAPE = 4, (8, 8, 3)


def npairs_loss_as_page(keras, y_true, y_pred):
    ops = keras.ops
    y_pred = ops.cast(y_pred, "float32")
    y_true = ops.cast(y_true, y_pred.dtype)
    y_true = ops.cast(ops.equal(y_true, ops.transpose(y_true)), y_pred.dtype)
    y_true /= ops.sum(y_true, 1, keepdims=True)
    loss = ops.categorical_crossentropy(y_true, y_pred, from_logits=True)
    return ops.mean(loss)


def contrastive_parts(keras):
    ops = keras.ops

    def npairs_loss(y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        y_true = ops.cast(y_true, y_pred.dtype)
        y_true = ops.expand_dims(y_true, -1)
        y_true = ops.cast(ops.equal(y_true, ops.transpose(y_true)), y_pred.dtype)
        y_true /= ops.sum(y_true, 1, keepdims=True)
        loss = ops.categorical_crossentropy(y_true, y_pred, from_logits=True)
        return ops.mean(loss)

    class SupervisedContrastiveLoss(keras.losses.Loss):
        def __init__(self, temperature=1, name=None):
            super().__init__(name=name)
            self.temperature = temperature

        def __call__(self, labels, feature_vectors, sample_weight=None):
            feature_vectors_normalized = keras.utils.normalize(feature_vectors, axis=1, order=2)
            logits = ops.divide(ops.matmul(feature_vectors_normalized, ops.transpose(feature_vectors_normalized)),
                                self.temperature)
            return npairs_loss(ops.squeeze(labels), logits)

    return SupervisedContrastiveLoss


def supervised_contrastive(keras, data, init):
    layers = keras.layers
    (x_train, y_train), (x_test, y_test) = data
    keras.utils.set_random_seed(11)
    SupervisedContrastiveLoss = contrastive_parts(keras)
    input_shape, num_classes = INPUT_SHAPE, NUM_CLASSES

    data_augmentation = keras.Sequential([layers.Normalization(), layers.RandomFlip("horizontal"),
                                          layers.RandomRotation(0.02)])
    data_augmentation.layers[0].adapt(x_train)

    def backbone(input_shape):   # stands in for ResNet50V2(include_top=False, weights=None, pooling="avg")
        inputs = keras.Input(shape=input_shape)
        x = layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
        x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)
        return keras.Model(inputs, layers.GlobalAveragePooling2D()(x), name="backbone")

    def create_encoder():
        resnet = backbone(input_shape)
        inputs = keras.Input(shape=input_shape)
        augmented = data_augmentation(inputs)
        outputs = resnet(augmented)
        return keras.Model(inputs=inputs, outputs=outputs, name="cifar10-encoder")

    learning_rate, batch_size, hidden_units, projection_units = 0.001, 16, 16, 8
    num_epochs, dropout_rate, temperature = 2, 0.5, 0.05

    def create_classifier(encoder, trainable=True):
        for layer in encoder.layers:
            layer.trainable = trainable
        inputs = keras.Input(shape=input_shape)
        features = encoder(inputs)
        features = layers.Dropout(dropout_rate)(features)
        features = layers.Dense(hidden_units, activation="relu")(features)
        features = layers.Dropout(dropout_rate)(features)
        outputs = layers.Dense(num_classes, activation="softmax")(features)
        model = keras.Model(inputs=inputs, outputs=outputs, name="cifar10-classifier")
        model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                      loss=keras.losses.SparseCategoricalCrossentropy(),
                      metrics=[keras.metrics.SparseCategoricalAccuracy()])
        return model

    out = {"norm": [np.asarray(to_numpy(w)) for w in data_augmentation.layers[0].get_weights()]}

    # Experiment 1: the baseline, encoder and head trained together
    encoder = create_encoder()
    classifier = create_classifier(encoder)
    init(classifier)
    out["baseline_predict"] = np.asarray(to_numpy(classifier.predict(x_test, verbose=0)))
    history = classifier.fit(x=x_train, y=y_train, batch_size=batch_size, epochs=num_epochs, verbose=0)
    out["baseline_loss"] = history.history["loss"]
    out["baseline_accuracy"] = classifier.evaluate(x_test, y_test, verbose=0)[1]

    # Experiment 2: contrastive pretraining, then a classifier on the frozen encoder
    def add_projection_head(encoder):
        inputs = keras.Input(shape=input_shape)
        features = encoder(inputs)
        outputs = layers.Dense(projection_units, activation="relu")(features)
        return keras.Model(inputs=inputs, outputs=outputs, name="cifar-encoder_with_projection-head")

    encoder = create_encoder()
    encoder_with_projection_head = add_projection_head(encoder)
    init(encoder_with_projection_head)
    encoder_with_projection_head.compile(optimizer=keras.optimizers.Adam(learning_rate),
                                         loss=SupervisedContrastiveLoss(temperature))
    out["contrastive_evaluate"] = float(encoder_with_projection_head.evaluate(x_test, y_test, verbose=0))
    projected = encoder_with_projection_head.predict(x_test, verbose=0)
    out["contrastive_direct"] = float(to_numpy(SupervisedContrastiveLoss(temperature)(y_test, projected)))
    history = encoder_with_projection_head.fit(x=x_train, y=y_train, batch_size=batch_size, epochs=num_epochs,
                                               verbose=0)
    out["contrastive_loss"] = history.history["loss"]

    classifier = create_classifier(encoder, trainable=False)
    init(classifier)
    out["trainable_weights"] = len(classifier.trainable_weights)
    before = [np.array(to_numpy(w)) for w in encoder.get_weights()]
    out["frozen_predict"] = np.asarray(to_numpy(classifier.predict(x_test, verbose=0)))
    history = classifier.fit(x=x_train, y=y_train, batch_size=batch_size, epochs=num_epochs, verbose=0)
    out["frozen_loss"] = history.history["loss"]
    out["encoder_unchanged"] = all(np.array_equal(a, np.asarray(to_numpy(b)))
                                   for a, b in zip(before, encoder.get_weights()))
    out["accuracy"] = classifier.evaluate(x_test, y_test, verbose=0)[1]
    return out


def cifar_like(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, NUM_CLASSES, (n, 1)).astype("uint8")
    x = rng.integers(0, 256, (n,) + INPUT_SHAPE).astype("float32")
    x[..., 0] = np.clip(x[..., 0] * 0.3 + 60 * y[:, :1, None], 0, 255)   # the class shows in the red channel
    return x.astype("uint8"), y


def test_supervised_contrastive():
    data = (cifar_like(48, 0), cifar_like(16, 1))
    want, got = run_both(supervised_contrastive, data, copy_weights=True)
    for w, g in zip(want["norm"], got["norm"]):
        np.testing.assert_allclose(g, w, rtol=1e-5)
    for key in ("baseline_predict", "frozen_predict"):
        np.testing.assert_allclose(got[key], want[key], rtol=1e-4, atol=1e-5, err_msg=key)
    for key in ("contrastive_evaluate", "contrastive_direct"):
        assert got[key] == pytest.approx(want[key], rel=1e-4), key
    assert got["contrastive_evaluate"] == pytest.approx(got["contrastive_direct"], rel=1e-4)
    for out in (want, got):
        for key in ("baseline_loss", "contrastive_loss", "frozen_loss"):
            assert len(out[key]) == 2 and all(np.isfinite(out[key])), (key, out[key])
        assert out["trainable_weights"] == 4 and out["encoder_unchanged"]
        assert 0.0 <= out["accuracy"] <= 1.0 and 0.0 <= out["baseline_accuracy"] <= 1.0


@pytest.mark.parametrize("api", [real_keras, fkeras], ids=["keras", "onnxforge"])
def test_page_npairs_loss_raises_in_both(api):
    labels = api.ops.convert_to_tensor(np.array([0.0, 1.0, 0.0, 2.0], "float32"))
    logits = api.ops.convert_to_tensor(np.eye(4, dtype="float32"))
    with pytest.raises(Exception, match="1|axis|[Dd]imension"):
        npairs_loss_as_page(api, labels, logits)
