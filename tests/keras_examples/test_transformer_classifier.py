"""keras.io "Text classification with Transformer": a ``TransformerBlock`` layer subclass
(MultiHeadAttention, a feed-forward Sequential, residual ``inputs + attn`` into LayerNormalization,
Dropout) and a ``TokenAndPositionEmbedding`` subclass (``ops.arange`` positions), on padded reviews.

Tolerance: Keras's initial weights copied, but Dropout masks and ``fit``'s shuffling differ between the
frameworks (with neither, the two agree to 6 digits). Over four seeds from the same weights, validation
accuracy was 0.995-1.0 on both sides and the final training loss 0.036-0.038 (Keras) and 0.026-0.032
(onnxforge). Bounds: validation accuracies within 0.03, final losses within 0.03, and both learn
(validation accuracy over 0.8; chance is 0.5).
"""
from __future__ import annotations

from . import data as synthetic
from .harness import assert_band, run_both

VOCAB, MAXLEN = 100, 32


def transformer_classifier(keras, data, init):
    (x_train, y_train), (x_val, y_val) = data
    layers, ops = keras.layers, keras.ops
    keras.utils.set_random_seed(11)

    class TransformerBlock(layers.Layer):
        def __init__(self, embed_dim, num_heads, ff_dim, rate=0.1):
            super().__init__()
            self.att = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
            self.ffn = keras.Sequential([layers.Dense(ff_dim, activation="relu"), layers.Dense(embed_dim)])
            self.layernorm1 = layers.LayerNormalization(epsilon=1e-6)
            self.layernorm2 = layers.LayerNormalization(epsilon=1e-6)
            self.dropout1 = layers.Dropout(rate)
            self.dropout2 = layers.Dropout(rate)

        def call(self, inputs):
            attn_output = self.att(inputs, inputs)
            attn_output = self.dropout1(attn_output)
            out1 = self.layernorm1(inputs + attn_output)
            ffn_output = self.ffn(out1)
            ffn_output = self.dropout2(ffn_output)
            return self.layernorm2(out1 + ffn_output)

    class TokenAndPositionEmbedding(layers.Layer):
        def __init__(self, maxlen, vocab_size, embed_dim):
            super().__init__()
            self.token_emb = layers.Embedding(input_dim=vocab_size, output_dim=embed_dim)
            self.pos_emb = layers.Embedding(input_dim=maxlen, output_dim=embed_dim)

        def call(self, x):
            maxlen = ops.shape(x)[-1]
            positions = ops.arange(start=0, stop=maxlen, step=1)
            positions = self.pos_emb(positions)
            x = self.token_emb(x)
            return x + positions

    x_train = keras.utils.pad_sequences(x_train, maxlen=MAXLEN)
    x_val = keras.utils.pad_sequences(x_val, maxlen=MAXLEN)
    embed_dim, num_heads, ff_dim = 16, 2, 16
    inputs = layers.Input(shape=(MAXLEN,))
    x = TokenAndPositionEmbedding(MAXLEN, VOCAB, embed_dim)(inputs)
    x = TransformerBlock(embed_dim, num_heads, ff_dim)(x)
    x = layers.GlobalAveragePooling1D()(x)
    x = layers.Dropout(0.1)(x)
    x = layers.Dense(20, activation="relu")(x)
    x = layers.Dropout(0.1)(x)
    outputs = layers.Dense(2, activation="softmax")(x)
    model = keras.Model(inputs=inputs, outputs=outputs)
    init(model)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train, y_train, batch_size=32, epochs=4, validation_data=(x_val, y_val), verbose=0)
    return {"loss": history.history["loss"][-1], "val_accuracy": history.history["val_accuracy"][-1]}


def test_transformer_classifier():
    texts, labels = synthetic.reviews(1000, vocab=VOCAB, max_len=30)
    data = (texts[:800], labels[:800]), (texts[800:], labels[800:])
    want, got = run_both(transformer_classifier, data, copy_weights=True)
    assert_band(want, got, 0.03, ["val_accuracy", "loss"])
    assert min(want["val_accuracy"], got["val_accuracy"]) > 0.8
