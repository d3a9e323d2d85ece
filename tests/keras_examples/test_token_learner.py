"""keras.io "Learning to tokenize in Vision Transformers" (TokenLearner), Keras 3 form: a ViT whose patches come
from a strided ``Conv2D`` reshaped with its static shape, a position embedding built from a constant
(``layers.Embedding(...)(ops.expand_dims(ops.arange(...), 0))``: a layer called on a constant, not on a
model input, inside a functional model) added to the patches, transformer blocks and, in the middle, the
TokenLearner module: a ``Sequential`` of four 3x3 convolutions (gelu, then sigmoid attention maps) with
``Reshape((-1, tokens))`` and ``Permute((2, 1))``, the input reshaped to ``(1, H*W, C)``, the maps indexed
as ``attention_maps[..., None]`` and multiplied in, then ``ops.mean(axis=2)`` -- all on functional tensors.
AdamW, sparse categorical cross-entropy with top-5 accuracy, a weights-only ``ModelCheckpoint`` on
``val_accuracy`` with ``load_weights`` and ``evaluate``.

Shrunk: 8x8 images resized to 12, 2x2 patches (36 tokens) projected to 16, 2 heads, 2 transformer layers
with the TokenLearner after the second (4 learned tokens), 10 classes.

Real Keras on torch cannot train the page's form: the Embedding called on a constant is computed once, when
the model is built, and its autograd graph is freed by the first ``backward()`` ("Trying to backward through
the graph a second time"). In both frameworks that table is a constant of the graph, not a weight, drawn by
each framework's own generator; so the page's form is checked for the same weights, and the comparison uses
the same lookup inside a small layer (``AddPositions``), where the table is a trained weight.

Tolerance: Keras's initial weights copied; Dropout rates 0 and the page's RandomCrop / RandomFlip left out
(each framework draws its own; see test_shiftvit.py for RandomCrop at inference), so both frameworks compute
the same function: predictions, one AdamW step, the reloaded model agree with Keras to float32 order (rtol
1e-4); the checkpointed fit to 1e-3. The reloaded model is not the saved one, in Keras either
(``activation=ops.gelu``, tanh approximation, reads back as exact gelu).
"""
from __future__ import annotations

import math

import numpy as np

from .equal_weights import compare, load_in_keras, predict_fit_reload
from .harness import keras as real_keras, run_both, to_numpy, workdir

IMAGE, RESIZE, PATCH, DIM, HEADS, LAYERS, TOKENS, CLASSES = 8, 12, 2, 16, 2, 2, 4, 10
NUM_PATCHES = (RESIZE // PATCH) ** 2


def add_positions_class(keras):
    """The position embedding looked up inside a layer's ``call`` (the variant real Keras on torch trains)."""
    layers, ops = keras.layers, keras.ops

    class AddPositions(layers.Layer):
        def __init__(self, num_patches, projection_dim, **kwargs):
            super().__init__(**kwargs)
            self.num_patches = num_patches
            self.embedding = layers.Embedding(input_dim=num_patches, output_dim=projection_dim)

        def call(self, projected_patches):
            positions = ops.expand_dims(ops.arange(start=0, stop=self.num_patches, step=1), axis=0)
            return projected_patches + self.embedding(positions)

    return AddPositions


def token_learner_vit(keras, data, init, tmp_path, page_positions=True):
    (x_train, y_train), (x_val, y_val) = data
    layers, ops = keras.layers, keras.ops
    dropout, eps = 0.0, 1e-6

    data_augmentation = keras.Sequential([layers.Rescaling(1 / 255.0), layers.Resizing(RESIZE, RESIZE)],
                                         name="data_augmentation")

    AddPositions = add_positions_class(keras)

    def position_embedding(projected_patches, num_patches=NUM_PATCHES, projection_dim=DIM):
        if not page_positions:
            return AddPositions(num_patches, projection_dim)(projected_patches)
        positions = ops.expand_dims(ops.arange(start=0, stop=num_patches, step=1), axis=0)
        encoded_positions = layers.Embedding(input_dim=num_patches, output_dim=projection_dim)(positions)
        return projected_patches + encoded_positions

    def mlp(x, dropout_rate, hidden_units):
        for units in hidden_units:
            x = layers.Dense(units, activation=ops.gelu)(x)
            x = layers.Dropout(dropout_rate)(x)
        return x

    def token_learner(inputs, number_of_tokens=TOKENS):
        x = layers.LayerNormalization(epsilon=eps)(inputs)   # (B, H, W, C)
        attention_maps = keras.Sequential([
            layers.Conv2D(filters=number_of_tokens, kernel_size=(3, 3), activation=ops.gelu, padding="same",
                          use_bias=False),
            layers.Conv2D(filters=number_of_tokens, kernel_size=(3, 3), activation=ops.gelu, padding="same",
                          use_bias=False),
            layers.Conv2D(filters=number_of_tokens, kernel_size=(3, 3), activation=ops.gelu, padding="same",
                          use_bias=False),
            layers.Conv2D(filters=number_of_tokens, kernel_size=(3, 3), activation="sigmoid", padding="same",
                          use_bias=False),
            layers.Reshape((-1, number_of_tokens)),   # (B, H*W, num_of_tokens)
            layers.Permute((2, 1)),
        ])(x)   # (B, num_of_tokens, H*W)
        num_filters = inputs.shape[-1]
        inputs = layers.Reshape((1, -1, num_filters))(inputs)   # (B, 1, H*W, C)
        attended_inputs = attention_maps[..., None] * inputs   # (B, num_tokens, H*W, C)
        return ops.mean(attended_inputs, axis=2)   # (B, num_tokens, C)

    def transformer(encoded_patches):
        x1 = layers.LayerNormalization(epsilon=eps)(encoded_patches)
        attention_output = layers.MultiHeadAttention(num_heads=HEADS, key_dim=DIM, dropout=dropout)(x1, x1)
        x2 = layers.Add()([attention_output, encoded_patches])
        x3 = layers.LayerNormalization(epsilon=eps)(x2)
        x4 = mlp(x3, hidden_units=[DIM * 2, DIM], dropout_rate=dropout)
        return layers.Add()([x4, x2])

    def create_vit_classifier(use_token_learner=True, token_learner_units=TOKENS):
        inputs = layers.Input(shape=(IMAGE, IMAGE, 3))
        augmented = data_augmentation(inputs)
        projected_patches = layers.Conv2D(filters=DIM, kernel_size=(PATCH, PATCH), strides=(PATCH, PATCH),
                                          padding="VALID")(augmented)
        _, h, w, c = projected_patches.shape
        projected_patches = layers.Reshape((h * w, c))(projected_patches)
        encoded_patches = position_embedding(projected_patches)
        encoded_patches = layers.Dropout(dropout)(encoded_patches)
        for i in range(LAYERS):
            encoded_patches = transformer(encoded_patches)
            if use_token_learner and i == LAYERS // 2:
                _, hh, c = encoded_patches.shape
                h = int(math.sqrt(hh))
                encoded_patches = layers.Reshape((h, h, c))(encoded_patches)
                encoded_patches = token_learner(encoded_patches, token_learner_units)
        representation = layers.LayerNormalization(epsilon=eps)(encoded_patches)
        representation = layers.GlobalAvgPool1D()(representation)
        outputs = layers.Dense(CLASSES, activation="softmax")(representation)
        return keras.Model(inputs=inputs, outputs=outputs)

    model = create_vit_classifier()
    init(model)
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate=1e-3, weight_decay=1e-4),
                  loss="sparse_categorical_crossentropy",
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                           keras.metrics.SparseTopKCategoricalAccuracy(5, name="top-5-accuracy")])
    if page_positions:
        return {"predict": np.asarray(to_numpy(model.predict(x_val, verbose=0))), "params": model.count_params(),
                "weights": len(model.weights)}
    folder = workdir(keras, tmp_path)
    out = predict_fit_reload(keras, model, x_train[:8], y_train[:8], folder, {"AddPositions": AddPositions})
    checkpoint_filepath = str(folder / "checkpoint.weights.h5")
    checkpoint_callback = keras.callbacks.ModelCheckpoint(checkpoint_filepath, monitor="val_accuracy",
                                                          save_best_only=True, save_weights_only=True)
    model.fit(x_train, y_train, batch_size=8, epochs=2, validation_data=(x_val, y_val), shuffle=False,
              callbacks=[checkpoint_callback], verbose=0)
    model.load_weights(checkpoint_filepath)
    out["evaluate"] = np.array(model.evaluate(x_val, y_val, verbose=0))
    out["tokens_shape"] = tuple(model.layers[-2].input.shape)
    return out


def _data():
    rng = np.random.default_rng(21)
    return ((rng.uniform(0, 255, (16, IMAGE, IMAGE, 3)).astype("float32"), rng.integers(0, CLASSES, (16, 1))),
            (rng.uniform(0, 255, (8, IMAGE, IMAGE, 3)).astype("float32"), rng.integers(0, CLASSES, (8, 1))))


def test_token_learner_page_positions_are_a_constant_in_both(tmp_path):
    """The page's Embedding called on a constant is evaluated once, at build time, in Keras and in onnxforge:
    its table is a random constant of the graph, no weight of the model (never trained, on the page too).
    Each framework draws its own table, so predictions are compared by shape only."""
    want, got = run_both(token_learner_vit, _data(), copy_weights=True, tmp_path=tmp_path)
    assert (got["params"], got["weights"]) == (want["params"], want["weights"])
    assert got["predict"].shape == want["predict"].shape == (8, CLASSES)


def test_token_learner(tmp_path):
    data = _data()
    want, got = run_both(token_learner_vit, data, copy_weights=True, tmp_path=tmp_path, page_positions=False)
    compare(want, got, same_after_reload=False)
    np.testing.assert_allclose(got["evaluate"], want["evaluate"], rtol=1e-3, atol=1e-5)
    assert got["tokens_shape"] == want["tokens_shape"] == (None, TOKENS, DIM)
    load_in_keras(got["path"], data[0][0][:8], got["reloaded"], {"AddPositions": add_positions_class(real_keras)})
