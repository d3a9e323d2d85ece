"""keras.io "Named Entity Recognition using Transformers", Keras 3 form: a ``keras.Model`` subclass
(``NERModel``) over a ``TokenAndPositionEmbedding`` (``ops.shape(inputs)[-1]``, ``ops.arange`` positions)
and a ``TransformerBlock`` (MultiHeadAttention, a feed-forward Sequential, residual LayerNormalization), a
softmax tag head, a ``StringLookup`` built from a vocabulary list, and the page's
``CustomNonPaddingTokenLoss``: a ``keras.losses.Loss`` subclass that calls
``SparseCategoricalCrossentropy(reduction=None)`` per token and averages it over the non-padding tags
(``ops.cast(y_true > 0)``, ``ops.sum(loss) / ops.sum(mask)``). Sentences are padded with id 0 and tag 0.

Tolerance: Keras's initial weights copied and the Dropout rate set to 0 (the page's 0.1 draws different
masks in each framework), so predictions, the loss of one Adam step and the predictions after it agree to
float32 summation order; with a ``get_config`` added to ``NERModel`` (the page never saves, and a Model
subclass has no automatic config in Keras 3: Keras raises NotImplementedError without one) and ``**kwargs``
on the loss's ``__init__`` (``Loss.get_config`` records ``reduction``, which the page's signature refuses
when the compiled model is loaded, in Keras as in onnxforge) the ``.keras`` file reloads to the same model in both and onnxforge's file
loads in real Keras. ``fit`` for three epochs on a ``PyDataset`` that pads each batch of 8 to its own longest sentence (the
page's ``padded_batch``: a new length in each batch) without Dropout agrees to 1e-3
(seen: 4 digits) and ends with the same predicted tags. With the page's Dropout 0.1 the masks differ: from the
same weights the final masked loss was 0.011 and 0.055 apart over two data seeds (losses ~1.9, falling
~0.5 in the three epochs); the bound is 0.1 and both must fall by 0.2.
"""
from __future__ import annotations

import numpy as np
import pytest

from .equal_weights import compare, load_in_keras, predict_fit_reload
from .harness import assert_band, assert_close, keras as real_keras, run_both, to_numpy, workdir

TAGS = ["[PAD]", "O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
WORDS = ["eu", "rejects", "german", "call", "to", "boycott", "british", "lamb", "peter", "blackburn",
         "brussels", "the", "european", "commission", "said", "on", "thursday", "it", "disagreed", "with"]
MAXLEN = 16


def ner_objects(keras, rate=0.1):
    """The page's classes, against ``keras``."""
    layers, ops = keras.layers, keras.ops

    class TransformerBlock(layers.Layer):
        def __init__(self, embed_dim, num_heads, ff_dim, rate=rate):
            super().__init__()
            self.att = keras.layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
            self.ffn = keras.Sequential([keras.layers.Dense(ff_dim, activation="relu"),
                                         keras.layers.Dense(embed_dim)])
            self.layernorm1 = keras.layers.LayerNormalization(epsilon=1e-6)
            self.layernorm2 = keras.layers.LayerNormalization(epsilon=1e-6)
            self.dropout1 = keras.layers.Dropout(rate)
            self.dropout2 = keras.layers.Dropout(rate)

        def call(self, inputs, training=False):
            attn_output = self.att(inputs, inputs)
            attn_output = self.dropout1(attn_output, training=training)
            out1 = self.layernorm1(inputs + attn_output)
            ffn_output = self.ffn(out1)
            ffn_output = self.dropout2(ffn_output, training=training)
            return self.layernorm2(out1 + ffn_output)

    class TokenAndPositionEmbedding(layers.Layer):
        def __init__(self, maxlen, vocab_size, embed_dim):
            super().__init__()
            self.token_emb = keras.layers.Embedding(input_dim=vocab_size, output_dim=embed_dim)
            self.pos_emb = keras.layers.Embedding(input_dim=maxlen, output_dim=embed_dim)

        def call(self, inputs):
            maxlen = ops.shape(inputs)[-1]
            positions = ops.arange(start=0, stop=maxlen, step=1)
            position_embeddings = self.pos_emb(positions)
            token_embeddings = self.token_emb(inputs)
            return token_embeddings + position_embeddings

    class NERModel(keras.Model):
        def __init__(self, num_tags, vocab_size, maxlen=128, embed_dim=32, num_heads=2, ff_dim=32):
            super().__init__()
            self.config = dict(num_tags=num_tags, vocab_size=vocab_size, maxlen=maxlen, embed_dim=embed_dim,
                               num_heads=num_heads, ff_dim=ff_dim)
            self.embedding_layer = TokenAndPositionEmbedding(maxlen, vocab_size, embed_dim)
            self.transformer_block = TransformerBlock(embed_dim, num_heads, ff_dim)
            self.dropout1 = layers.Dropout(rate)
            self.ff = layers.Dense(ff_dim, activation="relu")
            self.dropout2 = layers.Dropout(rate)
            self.ff_final = layers.Dense(num_tags, activation="softmax")

        def call(self, inputs, training=False):
            x = self.embedding_layer(inputs)
            x = self.transformer_block(x)
            x = self.dropout1(x, training=training)
            x = self.ff(x)
            x = self.dropout2(x, training=training)
            x = self.ff_final(x)
            return x

        def get_config(self):   # not on the page, which never saves: a Model subclass needs it for .keras
            return self.config

    class CustomNonPaddingTokenLoss(keras.losses.Loss):
        def __init__(self, name="custom_ner_loss", **kwargs):   # **kwargs: not on the page, see the docstring
            super().__init__(name=name, **kwargs)

        def call(self, y_true, y_pred):
            loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=False, reduction=None)
            loss = loss_fn(y_true, y_pred)
            mask = ops.cast((y_true > 0), dtype="float32")
            loss = loss * mask
            return ops.sum(loss) / ops.sum(mask)

    return {"NERModel": NERModel, "CustomNonPaddingTokenLoss": CustomNonPaddingTokenLoss}


def sentences(n, seed=0):
    """Tagged token lists: a word's tag is fixed by the word (a toy gazetteer), lengths 4..MAXLEN."""
    rng = np.random.default_rng(seed)
    word_tag = {w: int(rng.integers(1, len(TAGS))) for w in WORDS}
    out = []
    for _ in range(n):
        words = list(rng.choice(WORDS, size=int(rng.integers(4, MAXLEN + 1))))
        out.append((words, [word_tag[w] for w in words]))
    return out


def ner(keras, data, init, tmp_path=None, rate=0.0, epochs=0):
    ops = keras.ops
    keras.utils.set_random_seed(7)
    objects = ner_objects(keras, rate)
    vocabulary = WORDS[:-2]   # two words out of vocabulary: they map to the OOV id 0
    lookup_layer = keras.layers.StringLookup(vocabulary=vocabulary)

    def lowercase_and_convert_to_ids(tokens):
        return lookup_layer([t.lower() for t in tokens])

    x = np.zeros((len(data), MAXLEN), "int64")
    y = np.zeros((len(data), MAXLEN), "int64")
    for i, (words, tags) in enumerate(data):
        x[i, :len(words)] = np.asarray(to_numpy(lowercase_and_convert_to_ids(words)))
        y[i, :len(tags)] = tags

    ner_model = objects["NERModel"](len(TAGS), len(vocabulary) + 2, maxlen=MAXLEN, embed_dim=16, num_heads=2,
                                    ff_dim=16)
    ner_model(ops.convert_to_tensor(x[:1]))
    init(ner_model)
    ner_model.compile(optimizer="adam", loss=objects["CustomNonPaddingTokenLoss"]())

    sample_input = lowercase_and_convert_to_ids("EU rejects German call to boycott British lamb".split())
    sample_input = ops.reshape(sample_input, [1, -1])
    if epochs:
        class PaddedBatches(keras.utils.PyDataset):
            """The page's ``padded_batch(batch_size)``: each batch padded to its own longest sentence."""

            def __init__(self, records, batch_size, **kwargs):
                super().__init__(**kwargs)
                self.records, self.batch_size = records, batch_size

            def __len__(self):
                return -(-len(self.records) // self.batch_size)

            def __getitem__(self, index):
                batch = self.records[index * self.batch_size:(index + 1) * self.batch_size]
                width = max(len(words) for words, _ in batch)
                ids = np.zeros((len(batch), width), "int64")
                tags = np.zeros((len(batch), width), "int64")
                for i, (words, sentence_tags) in enumerate(batch):
                    ids[i, :len(words)] = np.asarray(to_numpy(lowercase_and_convert_to_ids(words)))
                    tags[i, :len(words)] = sentence_tags
                return ids, tags

        history = ner_model.fit(PaddedBatches(data, 8), epochs=epochs, verbose=0, shuffle=False)
        prediction = np.argmax(to_numpy(ner_model.predict(sample_input, verbose=0)), axis=-1)[0]
        return {"loss": float(history.history["loss"][-1]), "first_loss": float(history.history["loss"][0]),
                "tags": [TAGS[i] for i in prediction]}
    out = predict_fit_reload(keras, ner_model, x, y, workdir(keras, tmp_path), objects)
    out["ids"] = np.asarray(to_numpy(x))
    out["sample"] = np.asarray(to_numpy(ner_model.predict(sample_input, verbose=0)))
    return out


def test_ner_transformers(tmp_path):
    want, got = run_both(ner, sentences(24), copy_weights=True, tmp_path=tmp_path)
    np.testing.assert_array_equal(got["ids"], want["ids"])
    # StringLookup's one OOV index is 0 (no mask token), the padding id too, as on the page
    assert want["ids"].max() == len(WORDS) - 2 and (want["ids"][:, 0] == 0).any()
    compare(want, got)
    np.testing.assert_allclose(got["sample"], want["sample"], rtol=1e-4, atol=1e-5)
    load_in_keras(got["path"], got["ids"], got["reloaded"], ner_objects(real_keras, 0.0))


def test_ner_loss_ignores_padding():
    """The masked loss is the mean over real tokens only: padding positions change nothing."""
    from .harness import fkeras
    loss = ner_objects(fkeras)["CustomNonPaddingTokenLoss"]()
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), size=(2, 5)).astype("float32")
    y = np.array([[1, 2, 3, 0, 0], [2, 2, 0, 0, 0]])
    expected = -np.log(probs[y > 0, y[y > 0]]).mean()
    assert float(to_numpy(loss(y, probs))) == pytest.approx(expected, rel=1e-5)
    probs[y == 0] = rng.dirichlet(np.ones(4), size=int((y == 0).sum()))
    assert float(to_numpy(loss(y, probs))) == pytest.approx(expected, rel=1e-5)


def test_ner_fit_three_epochs():
    want, got = run_both(ner, sentences(48, seed=2), copy_weights=True, rate=0.0, epochs=3)
    assert_close(want, got, rtol=1e-3, keys=["first_loss", "loss"])
    assert got["tags"] == want["tags"]


def test_ner_trains_with_dropout():
    want, got = run_both(ner, sentences(48, seed=1), copy_weights=True, rate=0.1, epochs=3)
    assert got["loss"] < got["first_loss"] - 0.2 and want["loss"] < want["first_loss"] - 0.2
    assert_band(want, got, 0.1, ["loss"])
