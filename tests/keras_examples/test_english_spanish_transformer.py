"""keras.io "English-to-Spanish translation with a sequence-to-sequence Transformer": TextVectorization with
a custom ``tf.strings`` standardization (``[start]`` / ``[end]`` kept, ``¿`` stripped), ``format_dataset`` building
``{"encoder_inputs", "decoder_inputs"}`` dicts with targets one token ahead, ``PositionalEmbedding.compute_mask``
(``ops.not_equal(inputs, 0)``), a ``TransformerEncoder`` turning its mask into an ``attention_mask``, a
``TransformerDecoder`` (``supports_masking``) with a causal mask tiled to the batch by a tensor, ``query_mask`` and
``key_mask``, and greedy decoding that calls the model on a dict of tensors one token at a time.

Differences: sentence pairs from a tiny grammar, small sizes, the texts vectorized once into arrays for
``fit`` (Keras on torch cannot run TextVectorization inside ``tf.data``'s ``map``; onnxforge can, and the
``tf.data`` form is not what is compared here), and the final Dropout at rate 0 instead of 0.5.

Tolerance: Keras's initial weights copied, ``shuffle=False`` and no randomness left, so the same float32
computation up to summation order: losses within 1%, accuracies within 0.02, and the greedy translations of
held-out sentences the same strings (no near-ties at this point of training).
"""
from __future__ import annotations

import re
import string

import numpy as np
import pytest

from .harness import assert_band, assert_close, fkeras, run_both

tensorflow = pytest.importorskip("tensorflow")   # Keras's TextVectorization runs on TensorFlow

import onnxforge  # noqa: E402


def english_spanish(keras, data, init):
    pairs, held_out = data
    tf = onnxforge if keras is fkeras else tensorflow   # tf.strings in the custom standardization
    ops = keras.ops
    layers = keras.layers
    keras.utils.set_random_seed(3)
    text_pairs = [(eng, "[start] " + spa + " [end]") for eng, spa in pairs]
    num_val = len(text_pairs) // 6
    train_pairs = text_pairs[:-num_val]
    val_pairs = text_pairs[-num_val:]
    strip_chars = string.punctuation + "¿"
    strip_chars = strip_chars.replace("[", "").replace("]", "")
    vocab_size, sequence_length, batch_size = 40, 8, 16

    def custom_standardization(input_string):
        lowercase = tf.strings.lower(input_string)
        return tf.strings.regex_replace(lowercase, "[%s]" % re.escape(strip_chars), "")

    eng_vectorization = layers.TextVectorization(max_tokens=vocab_size, output_mode="int",
                                                 output_sequence_length=sequence_length)
    spa_vectorization = layers.TextVectorization(max_tokens=vocab_size, output_mode="int",
                                                 output_sequence_length=sequence_length + 1,
                                                 standardize=custom_standardization)
    train_eng_texts = [pair[0] for pair in train_pairs]
    train_spa_texts = [pair[1] for pair in train_pairs]
    eng_vectorization.adapt(train_eng_texts)
    spa_vectorization.adapt(train_spa_texts)

    def format_dataset(eng, spa):
        eng = eng_vectorization(eng)
        spa = spa_vectorization(spa)
        return ({"encoder_inputs": eng, "decoder_inputs": spa[:, :-1]}, spa[:, 1:])

    def make_dataset(pairs):
        eng_texts, spa_texts = zip(*pairs)
        dataset = tf.data.Dataset.from_tensor_slices((list(eng_texts), list(spa_texts)))
        dataset = dataset.batch(batch_size)
        dataset = dataset.map(format_dataset)
        return dataset.cache().prefetch(16)

    def arrays(pairs):
        eng_texts, spa_texts = zip(*pairs)
        x, y = format_dataset(list(eng_texts), list(spa_texts))
        return {k: np.asarray(ops.convert_to_numpy(v)) for k, v in x.items()}, np.asarray(ops.convert_to_numpy(y))
    train_ds = arrays(train_pairs)
    val_ds = arrays(val_pairs)

    class TransformerEncoder(layers.Layer):
        def __init__(self, embed_dim, dense_dim, num_heads, **kwargs):
            super().__init__(**kwargs)
            self.embed_dim, self.dense_dim, self.num_heads = embed_dim, dense_dim, num_heads
            self.attention = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
            self.dense_proj = keras.Sequential([layers.Dense(dense_dim, activation="relu"), layers.Dense(embed_dim)])
            self.layernorm_1 = layers.LayerNormalization()
            self.layernorm_2 = layers.LayerNormalization()
            self.supports_masking = True

        def call(self, inputs, mask=None):
            if mask is not None:
                padding_mask = ops.cast(mask[:, None, :], dtype="int32")
            else:
                padding_mask = None
            attention_output = self.attention(query=inputs, value=inputs, key=inputs, attention_mask=padding_mask)
            proj_input = self.layernorm_1(inputs + attention_output)
            proj_output = self.dense_proj(proj_input)
            return self.layernorm_2(proj_input + proj_output)

        def get_config(self):
            config = super().get_config()
            config.update({"embed_dim": self.embed_dim, "dense_dim": self.dense_dim, "num_heads": self.num_heads})
            return config

    class PositionalEmbedding(layers.Layer):
        def __init__(self, sequence_length, vocab_size, embed_dim, **kwargs):
            super().__init__(**kwargs)
            self.token_embeddings = layers.Embedding(input_dim=vocab_size, output_dim=embed_dim)
            self.position_embeddings = layers.Embedding(input_dim=sequence_length, output_dim=embed_dim)
            self.sequence_length, self.vocab_size, self.embed_dim = sequence_length, vocab_size, embed_dim

        def call(self, inputs):
            length = ops.shape(inputs)[-1]
            positions = ops.arange(0, length, 1)
            embedded_tokens = self.token_embeddings(inputs)
            embedded_positions = self.position_embeddings(positions)
            return embedded_tokens + embedded_positions

        def compute_mask(self, inputs, mask=None):
            return ops.not_equal(inputs, 0)

    class TransformerDecoder(layers.Layer):
        def __init__(self, embed_dim, latent_dim, num_heads, **kwargs):
            super().__init__(**kwargs)
            self.embed_dim, self.latent_dim, self.num_heads = embed_dim, latent_dim, num_heads
            self.attention_1 = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
            self.attention_2 = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
            self.dense_proj = keras.Sequential([layers.Dense(latent_dim, activation="relu"), layers.Dense(embed_dim)])
            self.layernorm_1 = layers.LayerNormalization()
            self.layernorm_2 = layers.LayerNormalization()
            self.layernorm_3 = layers.LayerNormalization()
            self.supports_masking = True

        def call(self, inputs, mask=None):
            inputs, encoder_outputs = inputs
            causal_mask = self.get_causal_attention_mask(inputs)
            if mask is None:
                inputs_padding_mask, encoder_outputs_padding_mask = None, None
            else:
                inputs_padding_mask, encoder_outputs_padding_mask = mask
            attention_output_1 = self.attention_1(query=inputs, value=inputs, key=inputs,
                                                  attention_mask=causal_mask, query_mask=inputs_padding_mask)
            out_1 = self.layernorm_1(inputs + attention_output_1)
            attention_output_2 = self.attention_2(query=out_1, value=encoder_outputs, key=encoder_outputs,
                                                  query_mask=inputs_padding_mask,
                                                  key_mask=encoder_outputs_padding_mask)
            out_2 = self.layernorm_2(out_1 + attention_output_2)
            proj_output = self.dense_proj(out_2)
            return self.layernorm_3(out_2 + proj_output)

        def get_causal_attention_mask(self, inputs):
            input_shape = ops.shape(inputs)
            batch_size, sequence_length = input_shape[0], input_shape[1]
            i = ops.arange(sequence_length)[:, None]
            j = ops.arange(sequence_length)
            mask = ops.cast(i >= j, dtype="int32")
            mask = ops.reshape(mask, (1, input_shape[1], input_shape[1]))
            mult = ops.concatenate([ops.expand_dims(batch_size, -1), ops.convert_to_tensor([1, 1])], axis=0)
            return ops.tile(mask, mult)

    embed_dim, latent_dim, num_heads = 16, 32, 2
    encoder_inputs = keras.Input(shape=(None,), dtype="int64", name="encoder_inputs")
    x = PositionalEmbedding(sequence_length, vocab_size, embed_dim)(encoder_inputs)
    encoder_outputs = TransformerEncoder(embed_dim, latent_dim, num_heads)(x)
    decoder_inputs = keras.Input(shape=(None,), dtype="int64", name="decoder_inputs")
    x = PositionalEmbedding(sequence_length, vocab_size, embed_dim)(decoder_inputs)
    x = TransformerDecoder(embed_dim, latent_dim, num_heads)([x, encoder_outputs])
    x = layers.Dropout(0.0)(x)   # 0.5 in keras.io: see the docstring
    decoder_outputs = layers.Dense(vocab_size, activation="softmax")(x)
    transformer = keras.Model([encoder_inputs, decoder_inputs], decoder_outputs, name="transformer")
    init(transformer)
    transformer.compile("rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = transformer.fit(*train_ds, batch_size=16, epochs=5, validation_data=val_ds, verbose=0, shuffle=False)

    spa_vocab = spa_vectorization.get_vocabulary()
    spa_index_lookup = dict(zip(range(len(spa_vocab)), spa_vocab))
    max_decoded_sentence_length = 6

    def decode_sequence(input_sentence):
        tokenized_input_sentence = eng_vectorization([input_sentence])
        decoded_sentence = "[start]"
        for i in range(max_decoded_sentence_length):
            tokenized_target_sentence = spa_vectorization([decoded_sentence])[:, :-1]
            predictions = transformer({"encoder_inputs": tokenized_input_sentence,
                                       "decoder_inputs": tokenized_target_sentence})
            sampled_token_index = ops.convert_to_numpy(ops.argmax(predictions[0, i, :])).item(0)
            sampled_token = spa_index_lookup[sampled_token_index]
            decoded_sentence += " " + sampled_token
            if sampled_token == "[end]":
                break
        return decoded_sentence

    outs = [decode_sequence(s) for s in held_out]
    metrics = {key: values[-1] for key, values in hist.history.items()}
    metrics["translations"] = " | ".join(outs)
    return metrics


_SUBJECTS = [("I", "Yo"), ("You", "Tú")]
_VERBS = [("eat", "como"), ("see", "veo"), ("read", "leo")]
_OBJECTS = [("the cat", "el gato"), ("the dog", "el perro"), ("the house", "la casa"), ("the book", "el libro")]
_ADJECTIVES = [("", ""), ("big ", " grande"), ("small ", " pequeño"), ("red ", " rojo")]


def _pairs(n, seed):
    """English sentences and their Spanish translations (adjective after the noun, sometimes an opening ¿)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        (s_en, s_es), (v_en, v_es) = _SUBJECTS[rng.integers(2)], _VERBS[rng.integers(3)]
        (o_en, o_es), (a_en, a_es) = _OBJECTS[rng.integers(4)], _ADJECTIVES[rng.integers(4)]
        article, noun = o_en.split(" ")
        spa = f"{'¿' if rng.integers(2) else ''}{s_es} {v_es} {o_es}{a_es}."
        out.append((f"{s_en} {v_en} {article} {a_en}{noun}.", spa))
    return out


def test_english_spanish_transformer():
    data = _pairs(192, seed=0), [eng for eng, _ in _pairs(4, seed=1)]
    want, got = run_both(english_spanish, data, copy_weights=True)
    assert_close(want, got, rtol=0.01, keys=["loss", "val_loss"])
    assert_band(want, got, 0.02, ["accuracy", "val_accuracy"])
    assert got["translations"] == want["translations"]
