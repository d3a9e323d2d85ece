"""keras.io "Image Classification with Perceiver" (Keras 3 version): a module-level augmentation Sequential
(adapted ``Normalization``, ``Resizing``, ``RandomFlip``, ``RandomRotation``, ``RandomZoom``), a ``Patches``
layer over ``ops.image.extract_patches`` reshaped with the run-time batch, a ``PatchEncoder`` adding an
``Embedding`` of ``ops.arange`` positions, a cross-attention functional model taking a dict of a
``(1, latent, dim)`` latent array and the ``(batch, patches, dim)`` data array (``layers.Attention`` with
``use_scale`` and dropout, broadcasting the latent batch of one), a transformer functional model of
``MultiHeadAttention`` blocks, and the ``Perceiver`` subclassed ``keras.Model`` whose ``build`` creates the
latent ``add_weight`` and the sub-models and whose ``call`` loops both modules with shared weights, trained
with ``Lamb`` on sparse cross-entropy from logits with top-5 accuracy, ``validation_split``,
``EarlyStopping(restore_best_weights=True)`` and ``ReduceLROnPlateau``. Shrunk: 8x8 images, 2x2 patches,
a 4x8 latent array, two transformer blocks, two iterations, 5 classes, 2 epochs.

Tolerance: Keras's initial weights copied (the latent array, every sub-model's and the adapted
Normalization's). Outside training the augmentation and all Dropout are inactive, so ``model(x,
training=False)`` agrees to float32 order (1e-4). Real Keras 3.15 on torch keeps them active in this page's
``predict`` and ``evaluate`` (two ``predict`` calls differ, logits come out exactly 0 under Dropout) while
``model(x, training=False)`` is deterministic, so the comparison calls the model (onnxforge's ``predict``
of this model also differs from ``model(x, training=False)``; why, in either framework, is not settled
here). Training draws flips, rotations, zooms and dropout masks from each framework's own generator, so the fit is compared by what it must do (finite losses,
the metrics the page names); the weights the fit leaves are saved with ``save_weights`` and loaded into a
fresh Perceiver in the same framework and, for onnxforge's file, in real Keras: all three predict the same.
"""
from __future__ import annotations

import numpy as np

from .harness import run_both, to_numpy, workdir

NUM_CLASSES, INPUT_SHAPE = 5, (8, 8, 3)


def perceiver_program(keras, data, init, tmp_path):
    """Builds and trains as the page does; returns the arrays the test compares."""
    (x_train, y_train), (x_test, y_test) = data
    layers, ops = keras.layers, keras.ops
    keras.utils.set_random_seed(17)
    num_classes = NUM_CLASSES
    learning_rate, weight_decay, batch_size, num_epochs, dropout_rate = 0.001, 0.0001, 16, 2, 0.1
    image_size, patch_size = 8, 2
    num_patches = (image_size // patch_size) ** 2
    latent_dim, projection_dim, num_heads = 4, 8, 2
    ffn_units = [projection_dim, projection_dim]
    num_transformer_blocks, num_iterations = 2, 2
    classifier_units = [projection_dim, num_classes]

    data_augmentation = keras.Sequential([
        layers.Normalization(), layers.Resizing(image_size, image_size), layers.RandomFlip("horizontal"),
        layers.RandomRotation(factor=0.02), layers.RandomZoom(height_factor=0.2, width_factor=0.2)],
        name="data_augmentation")
    data_augmentation.layers[0].adapt(x_train)

    def create_ffn(hidden_units, dropout_rate):
        ffn_layers = []
        for units in hidden_units[:-1]:
            ffn_layers.append(layers.Dense(units, activation=keras.activations.gelu))
        ffn_layers.append(layers.Dense(units=hidden_units[-1]))
        ffn_layers.append(layers.Dropout(dropout_rate))
        return keras.Sequential(ffn_layers)

    class Patches(layers.Layer):
        def __init__(self, patch_size):
            super().__init__()
            self.patch_size = patch_size

        def call(self, images):
            batch_size = ops.shape(images)[0]
            patches = ops.image.extract_patches(images, size=(self.patch_size, self.patch_size),
                                                strides=(self.patch_size, self.patch_size), dilation_rate=1,
                                                padding="valid")
            patch_dims = patches.shape[-1]
            return ops.reshape(patches, [batch_size, -1, patch_dims])

    class PatchEncoder(layers.Layer):
        def __init__(self, num_patches, projection_dim):
            super().__init__()
            self.num_patches = num_patches
            self.projection = layers.Dense(units=projection_dim)
            self.position_embedding = layers.Embedding(input_dim=num_patches, output_dim=projection_dim)

        def call(self, patches):
            positions = ops.arange(start=0, stop=self.num_patches, step=1)
            return self.projection(patches) + self.position_embedding(positions)

    def create_cross_attention_module(latent_dim, data_dim, projection_dim, ffn_units, dropout_rate):
        inputs = {"latent_array": layers.Input(shape=(latent_dim, projection_dim)),
                  "data_array": layers.Input(shape=(data_dim, projection_dim))}
        latent_array = layers.LayerNormalization(epsilon=1e-6)(inputs["latent_array"])
        data_array = layers.LayerNormalization(epsilon=1e-6)(inputs["data_array"])
        query = layers.Dense(units=projection_dim)(latent_array)
        key = layers.Dense(units=projection_dim)(data_array)
        value = layers.Dense(units=projection_dim)(data_array)
        attention_output = layers.Attention(use_scale=True, dropout=0.1)([query, key, value],
                                                                          return_attention_scores=False)
        attention_output = layers.Add()([attention_output, latent_array])
        attention_output = layers.LayerNormalization(epsilon=1e-6)(attention_output)
        ffn = create_ffn(hidden_units=ffn_units, dropout_rate=dropout_rate)
        outputs = ffn(attention_output)
        outputs = layers.Add()([outputs, attention_output])
        return keras.Model(inputs=inputs, outputs=outputs)

    def create_transformer_module(latent_dim, projection_dim, num_heads, num_transformer_blocks, ffn_units,
                                  dropout_rate):
        inputs = layers.Input(shape=(latent_dim, projection_dim))
        x0 = inputs
        for _ in range(num_transformer_blocks):
            x1 = layers.LayerNormalization(epsilon=1e-6)(x0)
            attention_output = layers.MultiHeadAttention(num_heads=num_heads, key_dim=projection_dim,
                                                         dropout=0.1)(x1, x1)
            x2 = layers.Add()([attention_output, x0])
            x3 = layers.LayerNormalization(epsilon=1e-6)(x2)
            ffn = create_ffn(hidden_units=ffn_units, dropout_rate=dropout_rate)
            x3 = ffn(x3)
            x0 = layers.Add()([x3, x2])
        return keras.Model(inputs=inputs, outputs=x0)

    class Perceiver(keras.Model):
        def __init__(self, patch_size, data_dim, latent_dim, projection_dim, num_heads, num_transformer_blocks,
                     ffn_units, dropout_rate, num_iterations, classifier_units):
            super().__init__()
            self.latent_dim = latent_dim
            self.data_dim = data_dim
            self.patch_size = patch_size
            self.projection_dim = projection_dim
            self.num_heads = num_heads
            self.num_transformer_blocks = num_transformer_blocks
            self.ffn_units = ffn_units
            self.dropout_rate = dropout_rate
            self.num_iterations = num_iterations
            self.classifier_units = classifier_units

        def build(self, input_shape):
            self.latent_array = self.add_weight(shape=(self.latent_dim, self.projection_dim),
                                                initializer="random_normal", trainable=True)
            self.patcher = Patches(self.patch_size)
            self.patch_encoder = PatchEncoder(self.data_dim, self.projection_dim)
            self.cross_attention = create_cross_attention_module(self.latent_dim, self.data_dim,
                                                                 self.projection_dim, self.ffn_units,
                                                                 self.dropout_rate)
            self.transformer = create_transformer_module(self.latent_dim, self.projection_dim, self.num_heads,
                                                         self.num_transformer_blocks, self.ffn_units,
                                                         self.dropout_rate)
            self.global_average_pooling = layers.GlobalAveragePooling1D()
            self.classification_head = create_ffn(hidden_units=self.classifier_units,
                                                  dropout_rate=self.dropout_rate)
            super().build(input_shape)

        def call(self, inputs):
            augmented = data_augmentation(inputs)
            patches = self.patcher(augmented)
            encoded_patches = self.patch_encoder(patches)
            cross_attention_inputs = {"latent_array": ops.expand_dims(self.latent_array, 0),
                                      "data_array": encoded_patches}
            for _ in range(num_iterations):
                latent_array = self.cross_attention(cross_attention_inputs)
                latent_array = self.transformer(latent_array)
                cross_attention_inputs["latent_array"] = latent_array
            representation = self.global_average_pooling(latent_array)
            return self.classification_head(representation)

    def new_perceiver():
        return Perceiver(patch_size, num_patches, latent_dim, projection_dim, num_heads, num_transformer_blocks,
                         ffn_units, dropout_rate, num_iterations, classifier_units)

    model = new_perceiver()
    model.build((None,) + INPUT_SHAPE)
    model.predict(x_test[:2], verbose=0)   # builds the sub-layers created inside build() on first call
    init(model)

    optimizer = keras.optimizers.Lamb(learning_rate=learning_rate)
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc"),
                           keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5-acc")])
    out = {"predict": np.asarray(to_numpy(model(x_test, training=False))),
           "evaluate": model.evaluate(x_test, y_test, verbose=0), "weight_decay": weight_decay}
    reduce_lr = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.2, patience=3)
    early_stopping = keras.callbacks.EarlyStopping(monitor="val_loss", patience=15, restore_best_weights=True)
    history = model.fit(x=x_train, y=y_train, batch_size=batch_size, epochs=num_epochs, validation_split=0.1,
                        callbacks=[early_stopping, reduce_lr], verbose=0)
    out["history"] = history.history
    _, accuracy, top_5_accuracy = model.evaluate(x_test, y_test, verbose=0)
    out["accuracy"], out["top5"] = accuracy, top_5_accuracy
    out["after_fit"] = np.asarray(to_numpy(model(x_test, training=False)))
    path = str(workdir(keras, tmp_path) / "perceiver.weights.h5")
    model.save_weights(path)
    fresh = new_perceiver()
    fresh.build((None,) + INPUT_SHAPE)
    fresh.predict(x_test[:2], verbose=0)
    fresh.load_weights(path)
    out["reloaded"] = np.asarray(to_numpy(fresh(x_test, training=False)))
    out["path"], out["new_perceiver"] = path, new_perceiver
    return out


def cifar_like(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, NUM_CLASSES, (n, 1)).astype("uint8")
    x = rng.integers(0, 256, (n,) + INPUT_SHAPE).astype("uint8")
    return x, y


def test_perceiver(tmp_path):
    data = (cifar_like(40, 0), cifar_like(12, 1))
    want, got = run_both(perceiver_program, data, copy_weights=True, tmp_path=tmp_path)
    np.testing.assert_allclose(got["predict"], want["predict"], rtol=1e-4, atol=1e-5)
    assert len(got["evaluate"]) == len(want["evaluate"]) == 3 and np.isfinite(got["evaluate"]).all()
    for out in (want, got):
        assert sorted(out["history"]) == ["acc", "learning_rate", "loss", "top5-acc", "val_acc", "val_loss",
                                          "val_top5-acc"] or sorted(out["history"]) == [
            "acc", "loss", "top5-acc", "val_acc", "val_loss", "val_top5-acc"]
        assert len(out["history"]["loss"]) == 2 and np.isfinite(out["history"]["loss"]).all()
        assert 0 <= out["accuracy"] <= out["top5"] <= 1
        np.testing.assert_allclose(out["reloaded"], out["after_fit"], rtol=1e-5, atol=1e-6)
    # onnxforge's weights file loads into the page's Perceiver built with real Keras
    x_test = data[1][0]
    model = want["new_perceiver"]()
    model.build((None,) + INPUT_SHAPE)
    model.predict(x_test[:2], verbose=0)
    model.load_weights(got["path"])
    np.testing.assert_allclose(to_numpy(model(x_test, training=False)), got["after_fit"], rtol=1e-4, atol=1e-5)

