"""keras.io "Point cloud classification with PointNet": T-Nets whose last Dense carries an
``OrthogonalRegularizer`` (a ``keras.regularizers.Regularizer`` subclass with ``get_config``) as its
activity regularizer and an identity ``Constant`` bias, ``Reshape`` and ``Dot(axes=(2, 1))`` to apply the
learned transform, ``Conv1D(kernel_size=1)`` + ``BatchNormalization(momentum=0.0)`` blocks,
``GlobalMaxPooling1D``, softmax over classes, on random point clouds (small widths).

Two departures from the page, both needed by real Keras 3 too: ``get_config`` returns ``l2reg`` (the page
writes ``l2reg_strength``, which ``__init__`` does not accept) and does not call ``super().get_config()``
(``Regularizer.get_config`` raises ``NotImplementedError`` in Keras 3).

Tolerance: Keras's initial weights copied, Dropout at rate 0, so predictions, the loss of one Adam step
(it includes the regularizer's activity loss) and the reloaded model agree with Keras to float32 order
(rtol 1e-4). After the step predictions agree to rtol 2e-3: every bias feeding a BatchNormalization has a
gradient that is float noise (the batch mean cancels it, ~1e-9), and Adam's first step turns noise of
either sign into a move of up to ``lr * g / (|g| + eps)``; comparing the two saved files, only those
biases differed by more than 1e-5 (by at most 1.4e-4, Keras's own moved by up to 6e-5).
"""
from __future__ import annotations

import numpy as np

from .equal_weights import compare, load_in_keras, predict_fit_reload
from .harness import keras as real_keras, run_both, workdir

NUM_POINTS, NUM_CLASSES = 32, 5


def pointnet_objects(keras):
    """The page's custom regularizer, defined against ``keras`` (for ``custom_objects``)."""

    class OrthogonalRegularizer(keras.regularizers.Regularizer):
        def __init__(self, num_features, l2reg=0.001):
            self.num_features = num_features
            self.l2reg = l2reg
            self.eye = keras.ops.eye(num_features)

        def __call__(self, x):
            x = keras.ops.reshape(x, (-1, self.num_features, self.num_features))
            xxt = keras.ops.tensordot(x, x, axes=(2, 2))
            xxt = keras.ops.reshape(xxt, (-1, self.num_features, self.num_features))
            return keras.ops.sum(self.l2reg * keras.ops.square(xxt - self.eye))

        def get_config(self):
            return {"num_features": self.num_features, "l2reg": self.l2reg}

    return {"OrthogonalRegularizer": OrthogonalRegularizer}


def pointnet(keras, data, init, tmp_path):
    x_points, labels = data
    layers = keras.layers
    keras.utils.set_random_seed(7)
    custom = pointnet_objects(keras)

    def conv_bn(x, filters):
        x = layers.Conv1D(filters, kernel_size=1, padding="valid")(x)
        x = layers.BatchNormalization(momentum=0.0)(x)
        return layers.Activation("relu")(x)

    def dense_bn(x, filters):
        x = layers.Dense(filters)(x)
        x = layers.BatchNormalization(momentum=0.0)(x)
        return layers.Activation("relu")(x)

    def tnet(inputs, num_features):
        bias = keras.initializers.Constant(np.eye(num_features).flatten())
        reg = custom["OrthogonalRegularizer"](num_features)
        x = conv_bn(inputs, 8)
        x = conv_bn(x, 16)
        x = conv_bn(x, 32)
        x = layers.GlobalMaxPooling1D()(x)
        x = dense_bn(x, 32)
        x = dense_bn(x, 16)
        x = layers.Dense(num_features * num_features, kernel_initializer="zeros", bias_initializer=bias,
                         activity_regularizer=reg)(x)
        feat_t = layers.Reshape((num_features, num_features))(x)
        return layers.Dot(axes=(2, 1))([inputs, feat_t])   # apply the affine transformation

    inputs = keras.Input(shape=(NUM_POINTS, 3))
    x = tnet(inputs, 3)
    x = conv_bn(x, 8)
    x = conv_bn(x, 8)
    x = tnet(x, 8)
    x = conv_bn(x, 8)
    x = conv_bn(x, 16)
    x = conv_bn(x, 32)
    x = layers.GlobalMaxPooling1D()(x)
    x = dense_bn(x, 32)
    x = layers.Dropout(0.0)(x)
    x = dense_bn(x, 16)
    x = layers.Dropout(0.0)(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax")(x)
    model = keras.Model(inputs=inputs, outputs=outputs, name="pointnet")
    init(model)
    model.compile(loss="sparse_categorical_crossentropy", optimizer=keras.optimizers.Adam(learning_rate=0.001),
                  metrics=["sparse_categorical_accuracy"])
    return predict_fit_reload(keras, model, x_points, labels, workdir(keras, tmp_path), custom)


def test_pointnet(tmp_path):
    rng = np.random.default_rng(1)
    data = (rng.normal(size=(16, NUM_POINTS, 3)).astype("float32"), rng.integers(0, NUM_CLASSES, 16))
    want, got = run_both(pointnet, data, copy_weights=True, tmp_path=tmp_path)
    compare(want, got, fit_rtol=2e-3)
    load_in_keras(got["path"], data[0], got["reloaded"], pointnet_objects(real_keras))
