"""Eager ``GradientTape`` gradients w.r.t. a model's intermediate output, as keras.io's Grad-CAM takes them:
``grad_model = Model(inputs, [last_conv.output, model.output])``, then ``tape.gradient(preds[:, argmax],
conv_output)``; and ``layer.activation = None`` on a built model to read its logits. Compared with real
Keras 3 (torch backend, where the returned conv tensor is the one the model goes on with) on the same
weights."""
from __future__ import annotations

import numpy as np
import pytest

from tests.keras_oracle.common import copy_weights, fkeras, keras, random_weights

import onnxforge as tf

torch = pytest.importorskip("torch")
IMG = np.random.default_rng(0).normal(size=(2, 9, 9, 3)).astype("float32")


def _classifier(api):
    inp = api.Input((9, 9, 3))
    x = api.layers.Conv2D(4, 3, activation="relu", name="conv_a")(inp)
    x = api.layers.Conv2D(5, 3, name="last_conv")(x)
    x = api.layers.Activation("relu", name="last_act")(x)
    x = api.layers.GlobalAveragePooling2D()(x)
    x = api.layers.Dense(6, activation="relu", name="hidden")(x)
    out = api.layers.Dense(3, activation="softmax", name="predictions")(x)
    return api.Model(inp, out)


def _pair():
    want = _classifier(keras)
    random_weights(want, seed=3)
    got = _classifier(fkeras)
    copy_weights(want, got)
    return want, got


def _keras_grad(model, layer, index):
    grad_model = keras.Model(model.inputs, [model.get_layer(layer).output, model.output])
    inner, preds = grad_model(IMG)
    g, = torch.autograd.grad(preds[:, index].sum(), inner)
    return g.detach().numpy()


@pytest.mark.parametrize("layer", ["last_act", "last_conv", "hidden"])
def test_gradient_wrt_intermediate_output_matches_keras(layer):
    want_model, model = _pair()
    want_model.layers[-1].activation = None
    model.layers[-1].activation = None   # Keras's layers treat None as the identity
    np.testing.assert_allclose(model.predict(IMG, verbose=0), keras.ops.convert_to_numpy(want_model(IMG)),
                               rtol=1e-5, atol=1e-5)
    grad_model = fkeras.Model(model.inputs, [model.get_layer(layer).output, model.output])
    with tf.GradientTape() as tape:
        inner, preds = grad_model(IMG)
        index = tf.argmax(preds[0])   # an eager integer tensor used as an index, as Grad-CAM does
        class_channel = preds[:, index]
    grads = tape.gradient(class_channel, inner)
    assert grads is not None
    want = _keras_grad(want_model, layer, int(np.asarray(index)))
    np.testing.assert_allclose(np.asarray(grads), want, rtol=1e-4, atol=1e-6)


def test_unconnected_output_gradient_is_none():
    inp = fkeras.Input((3,))
    model = fkeras.Model(inp, [fkeras.layers.Dense(2)(inp), fkeras.layers.Dense(2)(inp)])
    with tf.GradientTape() as tape:
        first, second = model(np.ones((1, 3), "float32"))
    # TensorFlow's answer for a source the target does not depend on; no program is compiled for it.
    assert tape.gradient(second, first) is None
