"""keras.io "Grad-CAM class activation visualization": an image read with ``keras.utils.load_img`` /
``img_to_array`` and ``keras.applications.xception.preprocess_input``; the classifier's last layer's softmax
removed after building (``model.layers[-1].activation = None``); a second ``Model`` on ``model.inputs`` with two
outputs, the last conv block's activation (``model.get_layer(name).output``) and the predictions; the gradient
of the top (or a chosen) class score with respect to that intermediate activation, averaged per channel,
weighting the activation map (``@``, ``squeeze``, ``maximum`` / ``reduce_max``); then the heatmap coloured
with matplotlib's jet map, ``array_to_img`` / PIL ``resize`` / ``img_to_array``, superimposed on the image
and saved as JPEG.

The page's Xception (299x299, ImageNet weights) is a tiny Xception-like net here (a Conv2D stem, a separable
residual block, ``block14_sepconv2_act`` as the last conv activation) on a 32x32 image of 10 classes.
The gradient is the one backend-specific step (as in keras.io's own backend notes): the page's
``tf.GradientTape`` under onnxforge (``import onnxforge as tf``), ``torch.autograd.grad`` on the Keras
tensors under Keras's torch backend; the rest is the same code with ``keras.ops`` in place of ``tf``.

Tolerance: Keras's weights copied, no randomness. Predictions, gradients and heatmaps agree to float32
order (rtol 1e-4, atol 1e-6 on the [0, 1] heatmaps); the JPEGs are compared by mean absolute difference
(< 0.5 of 255): a heatmap value on a uint8 rounding edge can move a pixel's jet colour by one step.
"""
from __future__ import annotations

import matplotlib
import numpy as np
from PIL import Image

import onnxforge as tf

from .harness import fkeras, run_both, torch, to_numpy

SIZE, CLASSES = 32, 10
LAST_CONV = "block14_sepconv2_act"


def tiny_xception(keras):
    layers = keras.layers
    inputs = keras.Input((SIZE, SIZE, 3))
    x = layers.Conv2D(8, 3, strides=2, use_bias=False, name="block1_conv1")(inputs)
    x = layers.BatchNormalization(name="block1_conv1_bn")(x)
    x = layers.Activation("relu", name="block1_conv1_act")(x)
    residual = layers.Conv2D(16, 1, strides=2, padding="same", use_bias=False)(x)
    x = layers.SeparableConv2D(16, 3, padding="same", use_bias=False, name="block2_sepconv1")(x)
    x = layers.BatchNormalization(name="block2_sepconv1_bn")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="block2_pool")(x)
    x = layers.add([x, residual])
    x = layers.SeparableConv2D(24, 3, padding="same", use_bias=False, name="block14_sepconv2")(x)
    x = layers.BatchNormalization(name="block14_sepconv2_bn")(x)
    x = layers.Activation("relu", name=LAST_CONV)(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(CLASSES, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="xception")


def heatmap_tf(img_array, model, last_conv_layer_name, pred_index=None):
    """The page's function, with ``import onnxforge as tf``."""
    grad_model = fkeras.models.Model(model.inputs, [model.get_layer(last_conv_layer_name).output, model.output])
    with tf.GradientTape() as tape:
        last_conv_layer_output, preds = grad_model(img_array)
        if pred_index is None:
            pred_index = tf.argmax(preds[0])
        class_channel = preds[:, pred_index]
    grads = tape.gradient(class_channel, last_conv_layer_output)
    pooled_grads = tf.reduce_mean(grads, axis=(0, 1, 2))
    last_conv_layer_output = last_conv_layer_output[0]
    heatmap = last_conv_layer_output @ pooled_grads[..., tf.newaxis]
    heatmap = tf.squeeze(heatmap)
    heatmap = tf.maximum(heatmap, 0) / tf.math.reduce_max(heatmap)
    return heatmap.numpy(), np.asarray(grads)


def heatmap_torch(keras, img_array, model, last_conv_layer_name, pred_index=None):
    """The same steps under Keras's torch backend: the tape is torch's autograd."""
    ops = keras.ops
    grad_model = keras.models.Model(model.inputs, [model.get_layer(last_conv_layer_name).output, model.output])
    last_conv_layer_output, preds = grad_model(img_array)
    if pred_index is None:
        pred_index = ops.argmax(preds[0])
    class_channel = preds[:, pred_index]
    grads = torch.autograd.grad(class_channel.sum(), last_conv_layer_output)[0]
    pooled_grads = ops.mean(grads, axis=(0, 1, 2))
    last_conv_layer_output = last_conv_layer_output[0]
    heatmap = last_conv_layer_output @ pooled_grads[..., None]
    heatmap = ops.squeeze(heatmap)
    heatmap = ops.maximum(heatmap, 0) / ops.max(heatmap)
    return to_numpy(heatmap.detach()), to_numpy(grads)


def grad_cam(keras, data, init, tmp_path):
    img_path = data
    img_size = (SIZE, SIZE)
    preprocess_input = keras.applications.xception.preprocess_input

    def get_img_array(img_path, size):
        img = keras.utils.load_img(img_path, target_size=size)
        array = keras.utils.img_to_array(img)
        array = np.expand_dims(array, axis=0)
        return array

    def make_gradcam_heatmap(img_array, model, last_conv_layer_name, pred_index=None):
        if keras is fkeras:
            return heatmap_tf(img_array, model, last_conv_layer_name, pred_index)
        return heatmap_torch(keras, img_array, model, last_conv_layer_name, pred_index)

    def save_and_display_gradcam(img_path, heatmap, cam_path="cam.jpg", alpha=0.4):
        img = keras.utils.load_img(img_path)
        img = keras.utils.img_to_array(img)
        heatmap = np.uint8(255 * heatmap)
        jet = matplotlib.colormaps["jet"]
        jet_colors = jet(np.arange(256))[:, :3]
        jet_heatmap = jet_colors[heatmap]
        jet_heatmap = keras.utils.array_to_img(jet_heatmap)
        jet_heatmap = jet_heatmap.resize((img.shape[1], img.shape[0]))
        jet_heatmap = keras.utils.img_to_array(jet_heatmap)
        superimposed_img = jet_heatmap * alpha + img
        superimposed_img = keras.utils.array_to_img(superimposed_img)
        superimposed_img.save(cam_path)
        return np.asarray(Image.open(cam_path), "float32")

    img_array = preprocess_input(get_img_array(img_path, size=img_size))
    keras.utils.set_random_seed(8)   # Keras's initial weights (copied to onnxforge) the same on every run
    model = tiny_xception(keras)
    init(model)
    model.layers[-1].activation = None
    preds = np.asarray(to_numpy(model.predict(img_array, verbose=0)))
    heatmap, grads = make_gradcam_heatmap(img_array, model, LAST_CONV)
    # Another class than the top one: Keras's initial weights are not seeded, and a fixed index was sometimes the top.
    other_class = int((np.argmax(preds[0]) + 1) % CLASSES)
    chosen, chosen_grads = make_gradcam_heatmap(img_array, model, LAST_CONV, pred_index=other_class)
    folder = tmp_path / ("onnxforge" if keras is fkeras else "keras")
    folder.mkdir()
    cam = save_and_display_gradcam(img_path, heatmap, cam_path=str(folder / "cam.jpg"))
    return {"preds": preds, "heatmap": heatmap, "grads": grads, "chosen": chosen, "chosen_grads": chosen_grads,
            "cam": cam}


def test_grad_cam(tmp_path):
    rng = np.random.default_rng(8)
    pixels = (rng.uniform(0, 255, (48, 40, 3)) * np.linspace(0.2, 1, 40)[None, :, None]).astype("uint8")
    img_path = str(tmp_path / "elephant.png")
    Image.fromarray(pixels).save(img_path)
    want, got = run_both(grad_cam, img_path, copy_weights=True, tmp_path=tmp_path)
    assert (want["preds"] < 0).any(), "the softmax was removed: raw scores"
    np.testing.assert_allclose(got["preds"], want["preds"], rtol=1e-4, atol=1e-6)
    for key in ("grads", "chosen_grads"):
        assert got[key].shape == (1, SIZE // 4, SIZE // 4, 24) and np.abs(want[key]).max() > 0
        np.testing.assert_allclose(got[key], want[key], rtol=1e-4, atol=1e-7, err_msg=key)
    for key in ("heatmap", "chosen"):
        assert got[key].shape == (SIZE // 4, SIZE // 4) and got[key].max() == 1.0
        np.testing.assert_allclose(got[key], want[key], rtol=1e-4, atol=1e-6, err_msg=key)
    assert np.abs(got["heatmap"] - got["chosen"]).max() > 1e-3, "another class, another map"
    assert got["cam"].shape == want["cam"].shape == (48, 40, 3)
    assert np.abs(got["cam"] - want["cam"]).mean() < 0.5
