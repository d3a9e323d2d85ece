"""keras.io "MobileViT: a mobile-friendly Transformer-based model for image classification" (Keras 3 form): a
swish ``Conv2D`` stem, MobileNetV2 inverted residual blocks (1x1 expansion, ``BatchNormalization``,
``keras.activations.swish`` applied to symbolic tensors, ``ZeroPadding2D(correct_pad(m, 3))`` before a
stride-2 ``DepthwiseConv2D`` with padding "valid", a residual ``Add`` when the channels match) and MobileViT
blocks: local convolutions, an unfold to ``(patch_size, num_patches, dim)`` patches with ``Reshape``,
transformer layers (LayerNormalization, ``MultiHeadAttention`` on 4-D patches, a swish MLP), a fold back
with ``Reshape((*shape[1:-1], dim))``, ``Concatenate`` with the block's input and a fusing convolution;
``GlobalAvgPool2D`` and a softmax head, trained with Adam on label-smoothed categorical cross-entropy, the
best epoch kept by a weights-only ``ModelCheckpoint`` and evaluated. The page's TFLite conversion is left out
(a TensorFlow converter, not Keras).

Shrunk: 16x16 images, an 8-filter stem, two inverted residual blocks of 8 and 12 channels (one with stride
2, one with the residual), one MobileViT block of dimension 16 with one transformer layer, 5 classes.
Dropout rates 0 instead of 0.1 (each framework draws its own masks).

Tolerance: Keras's initial weights copied and no randomness left: predictions, one Adam step and the reloaded
model agree with Keras to float32 order (rtol 1e-4; 1e-3 after the step: Adam moves each weight by ~lr
whatever the size of its gradient, and the fit goes through BatchNormalization's batch statistics); the two
checkpointed epochs to 1e-3.
"""
from __future__ import annotations

import numpy as np

from .equal_weights import compare, load_in_keras, predict_fit_reload
from .harness import run_both, workdir

IMAGE, PATCH_SIZE, EXPANSION, CLASSES = 16, 4, 2, 5


def mobilevit(keras, data, init, tmp_path):
    (x_train, y_train), (x_val, y_val) = data
    layers, backend = keras.layers, keras.backend
    patch_size, expansion_factor, dropout = PATCH_SIZE, EXPANSION, 0.0

    def conv_block(x, filters=16, kernel_size=3, strides=2):
        conv_layer = layers.Conv2D(filters, kernel_size, strides=strides, activation=keras.activations.swish,
                                   padding="same")
        return conv_layer(x)

    def correct_pad(inputs, kernel_size):
        img_dim = 2 if backend.image_data_format() == "channels_first" else 1
        input_size = inputs.shape[img_dim:(img_dim + 2)]
        if isinstance(kernel_size, int):
            kernel_size = (kernel_size, kernel_size)
        if input_size[0] is None:
            adjust = (1, 1)
        else:
            adjust = (1 - input_size[0] % 2, 1 - input_size[1] % 2)
        correct = (kernel_size[0] // 2, kernel_size[1] // 2)
        return ((correct[0] - adjust[0], correct[0]), (correct[1] - adjust[1], correct[1]))

    def inverted_residual_block(x, expanded_channels, output_channels, strides=1):
        m = layers.Conv2D(expanded_channels, 1, padding="same", use_bias=False)(x)
        m = layers.BatchNormalization()(m)
        m = keras.activations.swish(m)
        if strides == 2:
            m = layers.ZeroPadding2D(padding=correct_pad(m, 3))(m)
        m = layers.DepthwiseConv2D(3, strides=strides, padding="same" if strides == 1 else "valid",
                                   use_bias=False)(m)
        m = layers.BatchNormalization()(m)
        m = keras.activations.swish(m)
        m = layers.Conv2D(output_channels, 1, padding="same", use_bias=False)(m)
        m = layers.BatchNormalization()(m)
        if x.shape[-1] == output_channels and strides == 1:
            return layers.Add()([m, x])
        return m

    def mlp(x, hidden_units, dropout_rate):
        for units in hidden_units:
            x = layers.Dense(units, activation=keras.activations.swish)(x)
            x = layers.Dropout(dropout_rate)(x)
        return x

    def transformer_block(x, transformer_layers, projection_dim, num_heads=2):
        for _ in range(transformer_layers):
            x1 = layers.LayerNormalization(epsilon=1e-6)(x)
            attention_output = layers.MultiHeadAttention(num_heads=num_heads, key_dim=projection_dim,
                                                         dropout=dropout)(x1, x1)
            x2 = layers.Add()([attention_output, x])
            x3 = layers.LayerNormalization(epsilon=1e-6)(x2)
            x3 = mlp(x3, hidden_units=[x.shape[-1] * 2, x.shape[-1]], dropout_rate=dropout)
            x = layers.Add()([x3, x2])
        return x

    def mobilevit_block(x, num_blocks, projection_dim, strides=1):
        local_features = conv_block(x, filters=projection_dim, strides=strides)
        local_features = conv_block(local_features, filters=projection_dim, kernel_size=1, strides=strides)
        # Unfold into patches, then the Transformers.
        num_patches = int((local_features.shape[1] * local_features.shape[2]) / patch_size)
        non_overlapping_patches = layers.Reshape((patch_size, num_patches, projection_dim))(local_features)
        global_features = transformer_block(non_overlapping_patches, num_blocks, projection_dim)
        # Fold back into a feature map.
        folded_feature_map = layers.Reshape((*local_features.shape[1:-1], projection_dim))(global_features)
        folded_feature_map = conv_block(folded_feature_map, filters=x.shape[-1], kernel_size=1, strides=strides)
        local_global_features = layers.Concatenate(axis=-1)([x, folded_feature_map])
        local_global_features = conv_block(local_global_features, filters=projection_dim, strides=strides)
        return local_global_features

    def create_mobilevit(num_classes=CLASSES):
        inputs = keras.Input((IMAGE, IMAGE, 3))
        x = layers.Rescaling(scale=1.0 / 255)(inputs)
        x = conv_block(x, filters=8)
        x = inverted_residual_block(x, expanded_channels=8 * expansion_factor, output_channels=8)
        x = inverted_residual_block(x, expanded_channels=8 * expansion_factor, output_channels=12, strides=2)
        x = mobilevit_block(x, num_blocks=1, projection_dim=16)
        x = conv_block(x, filters=32, kernel_size=1, strides=1)
        x = layers.GlobalAvgPool2D()(x)
        outputs = layers.Dense(num_classes, activation="softmax")(x)
        return keras.Model(inputs, outputs)

    model = create_mobilevit()
    init(model)
    optimizer = keras.optimizers.Adam(learning_rate=0.002)
    loss_fn = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)
    model.compile(optimizer=optimizer, loss=loss_fn, metrics=["accuracy"])
    folder = workdir(keras, tmp_path)
    out = predict_fit_reload(keras, model, x_train[:8], y_train[:8], folder)

    checkpoint_filepath = str(folder / "checkpoint.weights.h5")
    checkpoint_callback = keras.callbacks.ModelCheckpoint(checkpoint_filepath, monitor="val_accuracy",
                                                          save_best_only=True, save_weights_only=True)
    history = model.fit(x_train, y_train, batch_size=8, validation_data=(x_val, y_val), epochs=2, shuffle=False,
                        callbacks=[checkpoint_callback], verbose=0)
    model.load_weights(checkpoint_filepath)
    _, accuracy = model.evaluate(x_val, y_val, verbose=0)
    out["history"] = {k: [float(v) for v in vs] for k, vs in history.history.items()}
    out["accuracy"] = float(accuracy)
    out["params"] = model.count_params()
    return out


def test_mobilevit(tmp_path):
    rng = np.random.default_rng(3)
    data = ((rng.uniform(0, 255, (16, IMAGE, IMAGE, 3)).astype("float32"),
             np.eye(CLASSES, dtype="float32")[rng.integers(0, CLASSES, 16)]),
            (rng.uniform(0, 255, (8, IMAGE, IMAGE, 3)).astype("float32"),
             np.eye(CLASSES, dtype="float32")[rng.integers(0, CLASSES, 8)]))
    want, got = run_both(mobilevit, data, copy_weights=True, tmp_path=tmp_path)
    compare(want, got, fit_rtol=1e-3)
    assert got["params"] == want["params"]
    assert sorted(got["history"]) == sorted(want["history"])
    for key, values in want["history"].items():
        np.testing.assert_allclose(got["history"][key], values, rtol=1e-3, atol=1e-5, err_msg=key)
    assert got["accuracy"] == want["accuracy"]
    load_in_keras(got["path"], data[0][0][:8], got["reloaded"])
