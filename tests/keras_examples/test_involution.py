"""keras.io "Involutional neural networks", ported to Keras 3 as a user would (the page is tf.keras: its
``tf.image.extract_patches`` / ``tf.multiply`` / ``tf.reduce_sum`` / ``tf.identity`` become
``keras.ops.image.extract_patches`` / ``ops.multiply`` / ``ops.sum`` / ``layers.Identity``).

The ``Involution`` layer builds, in ``build``, an ``AveragePooling2D`` (stride > 1) or identity, a kernel
generator ``Sequential`` (1x1 Conv2D -> BatchNormalization -> ReLU -> 1x1 Conv2D) and three ``Reshape``
layers from the input's static shape; ``call`` generates a location-specific kernel per pixel, extracts
``K x K`` patches with padding "same" and the layer's stride, multiplies and sums over the kernel axis and
returns ``(output, kernel)``, a tuple. The page calls it eagerly on a random tensor (stride 1, stride 2,
16 channels with reduction 2), trains a small CNN and the involution network (Adam, sparse categorical
cross-entropy from logits), compares their parameter counts and builds a ``vis_model`` whose outputs are
the layers' tuples (``[inv_model.get_layer(name).output for name in ...]``), predicts with it and sums the
kernels over their last three axes.

Shrunk: 8x8 images, 8 training / 8 test images, one epoch of two batches, an 8-unit Dense.

Tolerance: Keras's initial weights copied into every model and no randomness left, so both frameworks
compute the same function: predictions, the fit history and the visualisation agree with Keras to float32
order (rtol 1e-4; 1e-3 after training, through BatchNormalization's batch statistics; the visualised kernel
sums, nine terms of either sign after two Adam steps, which move each weight by ~lr whatever its gradient's
size, to atol 1e-4). ``Involution``
requires ``name`` and takes no ``**kwargs`` (as on the page), so the ``.keras`` file does not load back in
either framework: the program saves and reloads the weights into a model built again, and real Keras
loads onnxforge's weights file the same way.
"""
from __future__ import annotations

import numpy as np

from .harness import keras as real_keras, run_both, to_numpy, workdir

IMAGE, CLASSES = 8, 10


def involution_layer(keras):
    """The page's ``Involution`` against ``keras``."""
    ops = keras.ops

    class Involution(keras.layers.Layer):
        def __init__(self, channel, group_number, kernel_size, stride, reduction_ratio, name):
            super().__init__(name=name)
            self.channel = channel
            self.group_number = group_number
            self.kernel_size = kernel_size
            self.stride = stride
            self.reduction_ratio = reduction_ratio

        def build(self, input_shape):
            (_, height, width, num_channels) = input_shape
            height = height // self.stride
            width = width // self.stride
            self.stride_layer = (
                keras.layers.AveragePooling2D(pool_size=self.stride, strides=self.stride, padding="same")
                if self.stride > 1 else keras.layers.Identity())
            self.kernel_gen = keras.Sequential([
                keras.layers.Conv2D(filters=self.channel // self.reduction_ratio, kernel_size=1),
                keras.layers.BatchNormalization(),
                keras.layers.ReLU(),
                keras.layers.Conv2D(filters=self.kernel_size * self.kernel_size * self.group_number, kernel_size=1),
            ])
            self.kernel_reshape = keras.layers.Reshape(
                target_shape=(height, width, self.kernel_size * self.kernel_size, 1, self.group_number))
            self.input_patches_reshape = keras.layers.Reshape(
                target_shape=(height, width, self.kernel_size * self.kernel_size,
                              num_channels // self.group_number, self.group_number))
            self.output_reshape = keras.layers.Reshape(target_shape=(height, width, num_channels))

        def call(self, x):
            kernel_input = self.stride_layer(x)              # B, H, W, C
            kernel = self.kernel_gen(kernel_input)           # B, H, W, K*K*G
            kernel = self.kernel_reshape(kernel)             # B, H, W, K*K, 1, G
            input_patches = ops.image.extract_patches(x, size=self.kernel_size, strides=self.stride,
                                                      padding="same")   # B, H, W, K*K*C
            input_patches = self.input_patches_reshape(input_patches)   # B, H, W, K*K, C//G, G
            output = ops.multiply(kernel, input_patches)
            output = ops.sum(output, axis=3)                 # B, H, W, C//G, G
            output = self.output_reshape(output)             # B, H, W, C
            return output, kernel

    return Involution


def build_inv_model(keras, Involution):
    inputs = keras.Input(shape=(IMAGE, IMAGE, 3))
    x, _ = Involution(channel=3, group_number=1, kernel_size=3, stride=1, reduction_ratio=2, name="inv_1")(inputs)
    x = keras.layers.ReLU()(x)
    x = keras.layers.MaxPooling2D((2, 2))(x)
    x, _ = Involution(channel=3, group_number=1, kernel_size=3, stride=1, reduction_ratio=2, name="inv_2")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.MaxPooling2D((2, 2))(x)
    x, _ = Involution(channel=3, group_number=1, kernel_size=3, stride=1, reduction_ratio=2, name="inv_3")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(8, activation="relu")(x)
    outputs = keras.layers.Dense(CLASSES)(x)
    return keras.Model(inputs=[inputs], outputs=[outputs], name="inv_model")


def involution(keras, data, init, tmp_path):
    (train_images, train_labels), (test_images, test_labels), input_tensor = data
    Involution = involution_layer(keras)
    out = {}

    # Testing the layer eagerly: stride 1, stride 2, and 16 channels with a reduction ratio of 2.
    for name, kwargs in (("inv_1", dict(channel=3, group_number=1, kernel_size=5, stride=1, reduction_ratio=1)),
                         ("inv_2", dict(channel=3, group_number=1, kernel_size=5, stride=2, reduction_ratio=1)),
                         ("inv_3", dict(channel=16, group_number=1, kernel_size=5, stride=1, reduction_ratio=2))):
        layer = Involution(name=name, **kwargs)
        layer(input_tensor)
        init(layer)
        output_tensor, kernel = layer(input_tensor)
        out[f"eager_{name}"] = np.asarray(to_numpy(output_tensor))
        out[f"eager_{name}_kernel"] = np.asarray(to_numpy(kernel))

    conv_model = keras.Sequential([
        keras.layers.Conv2D(8, (3, 3), input_shape=(IMAGE, IMAGE, 3), padding="same"),
        keras.layers.ReLU(name="relu1"),
        keras.layers.MaxPooling2D((2, 2)),
        keras.layers.Conv2D(8, (3, 3), padding="same"),
        keras.layers.ReLU(name="relu2"),
        keras.layers.Flatten(),
        keras.layers.Dense(8, activation="relu"),
        keras.layers.Dense(CLASSES),
    ])
    init(conv_model)
    inv_model = build_inv_model(keras, Involution)
    init(inv_model)
    for model, name in ((conv_model, "conv"), (inv_model, "inv")):
        model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        out[f"{name}_predict"] = np.asarray(to_numpy(model.predict(test_images, verbose=0)))
        hist = model.fit(train_images, train_labels, batch_size=4, epochs=1, shuffle=False,
                         validation_data=(test_images, test_labels), verbose=0)
        out[f"{name}_history"] = {k: [float(v) for v in vs] for k, vs in hist.history.items()}
        out[f"{name}_params"] = model.count_params()

    layer_names = ["inv_1", "inv_2", "inv_3"]
    outputs = [inv_model.get_layer(name).output for name in layer_names]
    vis_model = keras.Model(inv_model.input, outputs)
    (inv1_out, inv2_out, inv3_out) = vis_model.predict(test_images[:1], verbose=0)
    for i, (_, inv_kernel) in enumerate((inv1_out, inv2_out, inv3_out)):
        out[f"vis_kernel_{i}"] = np.asarray(to_numpy(keras.ops.sum(inv_kernel, axis=[-1, -2, -3])))

    folder = workdir(keras, tmp_path)
    out["path"] = str(folder / "inv.weights.h5")
    inv_model.save_weights(out["path"])
    again = build_inv_model(keras, Involution)
    again.load_weights(out["path"])
    out["after_fit"] = np.asarray(to_numpy(inv_model.predict(test_images, verbose=0)))
    out["reloaded"] = np.asarray(to_numpy(again.predict(test_images, verbose=0)))
    return out


def test_involution(tmp_path):
    rng = np.random.default_rng(5)
    data = ((rng.uniform(0, 1, (8, IMAGE, IMAGE, 3)).astype("float32"), rng.integers(0, CLASSES, (8, 1))),
            (rng.uniform(0, 1, (8, IMAGE, IMAGE, 3)).astype("float32"), rng.integers(0, CLASSES, (8, 1))),
            rng.normal(size=(2, 12, 12, 3)).astype("float32"))
    want, got = run_both(involution, data, copy_weights=True, tmp_path=tmp_path)
    for name, shape in (("inv_1", (2, 12, 12, 3)), ("inv_2", (2, 6, 6, 3)), ("inv_3", (2, 12, 12, 3))):
        assert got[f"eager_{name}"].shape == shape
        np.testing.assert_allclose(got[f"eager_{name}"], want[f"eager_{name}"], rtol=1e-4, atol=1e-5, err_msg=name)
        np.testing.assert_allclose(got[f"eager_{name}_kernel"], want[f"eager_{name}_kernel"], rtol=1e-4, atol=1e-5)
    for name in ("conv", "inv"):
        np.testing.assert_allclose(got[f"{name}_predict"], want[f"{name}_predict"], rtol=1e-4, atol=1e-5)
        assert got[f"{name}_params"] == want[f"{name}_params"]
        assert sorted(got[f"{name}_history"]) == sorted(want[f"{name}_history"])
        for key, values in want[f"{name}_history"].items():
            np.testing.assert_allclose(got[f"{name}_history"][key], values, rtol=1e-3, atol=1e-5, err_msg=key)
    for i, shape in enumerate(((1, 8, 8), (1, 4, 4), (1, 2, 2))):
        assert got[f"vis_kernel_{i}"].shape == shape
        np.testing.assert_allclose(got[f"vis_kernel_{i}"], want[f"vis_kernel_{i}"], rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(got["after_fit"], want["after_fit"], rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(got["reloaded"], got["after_fit"], rtol=1e-6, atol=1e-6)
    again = build_inv_model(real_keras, involution_layer(real_keras))   # onnxforge's weights file in Keras
    again.load_weights(got["path"])
    np.testing.assert_allclose(to_numpy(again.predict(data[1][0], verbose=0)), got["reloaded"], rtol=1e-4,
                               atol=1e-5)
