"""keras.io "Compact Convolutional Transformers": a ``CCTTokenizer`` (a Sequential of Conv2D /
ZeroPadding2D / MaxPooling2D reshaped to tokens with the run-time shape), a learned ``PositionEmbedding``
(``add_weight``, ``ops.slice``, ``ops.broadcast_to``) added with ``+=``, transformer blocks whose
attention and MLP branches pass through a ``StochasticDepth`` layer (``keras.random.uniform`` with a
``SeedGenerator``, ``ops.floor``, only when ``training``), ``SequencePooling`` (softmax attention
weights, ``ops.matmul``, ``ops.squeeze``), AdamW and label-smoothed categorical cross-entropy with top-5
accuracy. ``CCTTokenizer`` and ``SequencePooling`` have no ``get_config`` (as on the page): Keras 3
records their constructor arguments itself.

Tolerance: Keras's initial weights copied, Dropout at rate 0 and a stochastic depth rate of 0, at which
the layer still draws its uniform numbers but ``floor(1 + u)`` keeps every sample: predictions, one AdamW
step and the reloaded model agree with Keras to float32 order. The reloaded model is not the saved one,
in Keras too: the MLP's ``activation=keras.ops.gelu`` (tanh approximation) is written as ``"gelu"`` and
read back as ``keras.activations.gelu`` (exact erf), ~2e-4 apart here; onnxforge does the same, so its
reloaded model is compared with Keras's reloaded model. A drop probability of 0.5 is checked on
its own: in training each sample is either zeroed or doubled, in inference passed through.
"""
from __future__ import annotations

import numpy as np

from .equal_weights import compare, load_in_keras, predict_fit_reload
from .harness import fkeras, keras as real_keras, run_both, to_numpy, workdir

IMAGE, CLASSES, PROJECTION = 16, 10, 16


def cct_layers(keras):
    """The page's custom layers, against ``keras``."""
    layers = keras.layers

    class CCTTokenizer(layers.Layer):
        def __init__(self, kernel_size=3, stride=1, padding=1, pooling_kernel_size=3, pooling_stride=2,
                     num_conv_layers=2, num_output_channels=[8, PROJECTION], **kwargs):
            super().__init__(**kwargs)
            self.conv_model = keras.Sequential()
            for i in range(num_conv_layers):
                self.conv_model.add(layers.Conv2D(num_output_channels[i], kernel_size, stride, padding="valid",
                                                  use_bias=False, activation="relu", kernel_initializer="he_normal"))
                self.conv_model.add(layers.ZeroPadding2D(padding))
                self.conv_model.add(layers.MaxPooling2D(pooling_kernel_size, pooling_stride, "same"))

        def call(self, images):
            outputs = self.conv_model(images)
            return keras.ops.reshape(outputs, (-1, keras.ops.shape(outputs)[1] * keras.ops.shape(outputs)[2],
                                               keras.ops.shape(outputs)[-1]))

    class PositionEmbedding(layers.Layer):
        def __init__(self, sequence_length, initializer="glorot_uniform", **kwargs):
            super().__init__(**kwargs)
            if sequence_length is None:
                raise ValueError("`sequence_length` must be an Integer, received `None`.")
            self.sequence_length = int(sequence_length)
            self.initializer = keras.initializers.get(initializer)

        def get_config(self):
            return {**super().get_config(), "sequence_length": self.sequence_length,
                    "initializer": keras.initializers.serialize(self.initializer)}

        def build(self, input_shape):
            feature_size = input_shape[-1]
            self.position_embeddings = self.add_weight(name="embeddings", shape=[self.sequence_length, feature_size],
                                                       initializer=self.initializer, trainable=True)
            super().build(input_shape)

        def call(self, inputs, start_index=0):
            shape = keras.ops.shape(inputs)
            feature_length, sequence_length = shape[-1], shape[-2]
            position_embeddings = keras.ops.convert_to_tensor(self.position_embeddings)
            position_embeddings = keras.ops.slice(position_embeddings, (start_index, 0),
                                                  (sequence_length, feature_length))
            return keras.ops.broadcast_to(position_embeddings, shape)

        def compute_output_shape(self, input_shape):
            return input_shape

    class SequencePooling(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.attention = layers.Dense(1)

        def call(self, x):
            attention_weights = keras.ops.softmax(self.attention(x), axis=1)
            attention_weights = keras.ops.transpose(attention_weights, axes=(0, 2, 1))
            weighted_representation = keras.ops.matmul(attention_weights, x)
            return keras.ops.squeeze(weighted_representation, -2)

    class StochasticDepth(layers.Layer):
        def __init__(self, drop_prop, **kwargs):
            super().__init__(**kwargs)
            self.drop_prob = drop_prop
            self.seed_generator = keras.random.SeedGenerator(1337)

        def call(self, x, training=None):
            if training:
                keep_prob = 1 - self.drop_prob
                shape = (keras.ops.shape(x)[0],) + (1,) * (len(x.shape) - 1)
                random_tensor = keep_prob + keras.random.uniform(shape, 0, 1, seed=self.seed_generator)
                random_tensor = keras.ops.floor(random_tensor)
                return (x / keep_prob) * random_tensor
            return x

        def get_config(self):
            return {**super().get_config(), "drop_prop": self.drop_prob}

    return {"CCTTokenizer": CCTTokenizer, "PositionEmbedding": PositionEmbedding,
            "SequencePooling": SequencePooling, "StochasticDepth": StochasticDepth}


def cct(keras, data, init, tmp_path, stochastic_depth_rate=0.0):
    x, y = data
    layers = keras.layers
    keras.utils.set_random_seed(21)
    custom = cct_layers(keras)

    def mlp(x, hidden_units, dropout_rate):
        for units in hidden_units:
            x = layers.Dense(units, activation=keras.ops.gelu)(x)
            x = layers.Dropout(dropout_rate)(x)
        return x

    inputs = layers.Input((IMAGE, IMAGE, 3))
    augmented = layers.Rescaling(scale=1.0 / 255)(inputs)
    encoded_patches = custom["CCTTokenizer"]()(augmented)
    sequence_length = encoded_patches.shape[1]
    encoded_patches += custom["PositionEmbedding"](sequence_length=sequence_length)(encoded_patches)
    dpr = [x for x in np.linspace(0, stochastic_depth_rate, 2)]
    for i in range(2):
        x1 = layers.LayerNormalization(epsilon=1e-5)(encoded_patches)
        attention_output = layers.MultiHeadAttention(num_heads=2, key_dim=PROJECTION, dropout=0.0)(x1, x1)
        attention_output = custom["StochasticDepth"](dpr[i])(attention_output)
        x2 = layers.Add()([attention_output, encoded_patches])
        x3 = layers.LayerNormalization(epsilon=1e-5)(x2)
        x3 = mlp(x3, hidden_units=[PROJECTION, PROJECTION], dropout_rate=0.0)
        x3 = custom["StochasticDepth"](dpr[i])(x3)
        encoded_patches = layers.Add()([x3, x2])
    representation = layers.LayerNormalization(epsilon=1e-5)(encoded_patches)
    weighted_representation = custom["SequencePooling"]()(representation)
    logits = layers.Dense(CLASSES)(weighted_representation)
    model = keras.Model(inputs=inputs, outputs=logits)
    init(model)
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate=0.001, weight_decay=0.0001),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
                  metrics=[keras.metrics.CategoricalAccuracy(name="accuracy"),
                           keras.metrics.TopKCategoricalAccuracy(5, name="top-5-accuracy")])
    return predict_fit_reload(keras, model, x, y, workdir(keras, tmp_path), custom)


def test_cct(tmp_path):
    rng = np.random.default_rng(4)
    data = (rng.uniform(0, 255, (16, IMAGE, IMAGE, 3)).astype("float32"),
            np.eye(CLASSES, dtype="float32")[rng.integers(0, CLASSES, 16)])
    want, got = run_both(cct, data, copy_weights=True, tmp_path=tmp_path)
    compare(want, got, same_after_reload=False)
    load_in_keras(got["path"], data[0], got["reloaded"], cct_layers(real_keras))


def test_stochastic_depth_drops_whole_samples():
    layer = cct_layers(fkeras)["StochasticDepth"](0.5)
    x = np.ones((64, 3, 2), "float32")
    out = np.asarray(to_numpy(layer(x, training=True)))
    per_sample = out.reshape(64, -1)
    assert set(np.unique(per_sample)) <= {0.0, 2.0}
    assert (per_sample == per_sample[:, :1]).all()             # the whole sample kept or dropped
    assert 10 < (per_sample[:, 0] == 0).sum() < 54             # about half dropped (p of failing ~1e-8)
    np.testing.assert_array_equal(to_numpy(layer(x, training=False)), x)
