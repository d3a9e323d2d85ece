"""keras.io "End-to-end Masked Language Modeling with BERT", Keras 3 form: a ``TextVectorization`` with a
``tf.strings`` standardization (lowercase, ``<br />`` and punctuation stripped) adapted on reviews, its
vocabulary read with ``get_vocabulary`` and replaced with ``set_vocabulary`` to end in ``[mask]``, BERT-style
15% masking in numpy (labels, ``sample_weights`` zero off the masked tokens), a BERT encoder block of named
layers (MultiHeadAttention, residual LayerNormalization, a feed-forward Sequential), a functional
``MaskedLanguageModel`` whose ``compute_loss`` feeds a module-level ``keras.metrics.Mean`` loss tracker
(``SparseCategoricalCrossentropy(reduction=None)`` with the sample weights, ``ops.sum``) and whose
``compute_metrics`` / ``metrics`` report only it, compiled with an optimizer alone; a ``MaskedTextGenerator``
callback predicting the masked word each epoch; the model saved to ``.keras`` and loaded with
``custom_objects``; its encoder cut out at ``get_layer("encoder_0_ffn_layernormalization").output``, frozen
under a pooling classifier, trained, unfrozen, recompiled and trained again; and the page's ``ModelEndtoEnd``
(a functional ``keras.Model`` subclass whose ``evaluate`` encodes raw reviews and batches them with
``tf.data`` before ``super().evaluate``).

Differences: small sizes and a generated review corpus; ``keras_hub.layers.PositionEmbedding`` (keras_hub is
not installed here) re-typed as the same learned position table (``add_weight``, ``ops.slice`` to the input's
length, ``ops.broadcast_to``); the encoder's Dropout at rate 0 (the page's 0.1 draws different masks in each
framework); ``fit`` on arrays without shuffling instead of a shuffled ``tf.data`` pipeline, for the same batches.

Tolerance: Keras's initial weights copied and nothing random left, so the same float32 computation up to
summation order: each epoch's loss within 1e-3 relative (the MLM loss is a sum over masked tokens; Adam),
the callback's masked-word probabilities within 1e-3 and its top word the same, the reloaded model equal to
the saved one in both, and the classifier's logs and end-to-end evaluation within 1e-3.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

from .harness import assert_close, fkeras, run_both, to_numpy, workdir

tensorflow = pytest.importorskip("tensorflow")   # Keras's TextVectorization runs on TensorFlow

import onnxforge  # noqa: E402

_WORDS = ["movie", "film", "plot", "actor", "story", "scene", "music", "ending"]
_GOOD = ["great", "wonderful", "brilliant", "moving"]
_BAD = ["boring", "awful", "dull", "terrible"]


def reviews(n, seed=0):
    """IMDB-like reviews with HTML breaks and punctuation, labelled 0 (positive) / 1 (negative) as the page's."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        label = int(rng.integers(0, 2))
        adjectives = _BAD if label else _GOOD
        parts = []
        for _ in range(int(rng.integers(2, 4))):
            parts.append(f"The {rng.choice(_WORDS)} was {rng.choice(adjectives)}, and the "
                         f"{rng.choice(_WORDS)} {rng.choice(['is', 'felt', 'seemed'])} {rng.choice(adjectives)}!")
        texts.append(" <br /> ".join(parts))
        labels.append(label)
    return texts, np.asarray(labels)


class Frame:
    """The two columns of the page's pandas DataFrame that ``ModelEndtoEnd.evaluate`` reads."""

    class Column:
        def __init__(self, values):
            self.values = np.asarray(values)

    def __init__(self, texts, labels):
        self.review, self.sentiment = Frame.Column(texts), Frame.Column(labels)


def mlm(keras, data, init, tmp_path):
    train_texts, train_labels, test_texts, test_labels = data
    tf = onnxforge if keras is fkeras else tensorflow   # tf.strings in the standardization, tf.data in evaluate
    layers, ops = keras.layers, keras.ops
    keras.utils.set_random_seed(2)
    np.random.seed(42)   # the page masks with np.random: the same masks in both runs

    class Config:
        MAX_LEN = 24
        BATCH_SIZE = 16
        LR = 0.001
        VOCAB_SIZE = 24
        EMBED_DIM = 16
        NUM_HEAD = 2
        FF_DIM = 16
        NUM_LAYERS = 1

    config = Config()

    def custom_standardization(input_data):
        lowercase = tf.strings.lower(input_data)
        stripped_html = tf.strings.regex_replace(lowercase, "<br />", " ")
        return tf.strings.regex_replace(stripped_html, "[%s]" % re.escape("!#$%&'()*+,-./:;<=>?@\\^_`{|}~"), "")

    def get_vectorize_layer(texts, vocab_size, max_seq, special_tokens=["[MASK]"]):
        vectorize_layer = layers.TextVectorization(max_tokens=vocab_size, output_mode="int",
                                                   standardize=custom_standardization,
                                                   output_sequence_length=max_seq)
        vectorize_layer.adapt(texts)
        vocab = vectorize_layer.get_vocabulary()
        vocab = vocab[2: vocab_size - len(special_tokens)] + ["[mask]"]
        vectorize_layer.set_vocabulary(vocab)
        return vectorize_layer

    all_texts = train_texts + test_texts
    vectorize_layer = get_vectorize_layer(all_texts, config.VOCAB_SIZE, config.MAX_LEN, special_tokens=["[mask]"])
    mask_token_id = vectorize_layer(["[mask]"]).numpy()[0][0]

    def encode(texts):
        encoded_texts = vectorize_layer(texts)
        return encoded_texts.numpy()

    def get_masked_input_and_labels(encoded_texts):
        inp_mask = np.random.rand(*encoded_texts.shape) < 0.15
        inp_mask[encoded_texts <= 2] = False
        labels = -1 * np.ones(encoded_texts.shape, dtype=int)
        labels[inp_mask] = encoded_texts[inp_mask]
        encoded_texts_masked = np.copy(encoded_texts)
        inp_mask_2mask = inp_mask & (np.random.rand(*encoded_texts.shape) < 0.90)
        encoded_texts_masked[inp_mask_2mask] = mask_token_id
        inp_mask_2random = inp_mask_2mask & (np.random.rand(*encoded_texts.shape) < 1 / 9)
        encoded_texts_masked[inp_mask_2random] = np.random.randint(3, mask_token_id, inp_mask_2random.sum())
        sample_weights = np.ones(labels.shape)
        sample_weights[labels == -1] = 0
        y_labels = np.copy(encoded_texts)
        return encoded_texts_masked, y_labels, sample_weights

    x_train = encode(train_texts)
    y_train = train_labels
    x_test = encode(test_texts)
    y_test = test_labels
    x_all_review = encode(all_texts)
    x_masked_train, y_masked_labels, sample_weights = get_masked_input_and_labels(x_all_review)

    class PositionEmbedding(layers.Layer):   # keras_hub.layers.PositionEmbedding, re-typed
        def __init__(self, sequence_length, initializer="glorot_uniform", **kwargs):
            super().__init__(**kwargs)
            self.sequence_length = int(sequence_length)
            self.initializer = keras.initializers.get(initializer)

        def get_config(self):
            return {**super().get_config(), "sequence_length": self.sequence_length,
                    "initializer": keras.initializers.serialize(self.initializer)}

        def build(self, inputs_shape):
            self.position_embeddings = self.add_weight(name="embeddings",
                                                       shape=[self.sequence_length, inputs_shape[-1]],
                                                       initializer=self.initializer, trainable=True)

        def call(self, inputs, start_index=0):
            shape = ops.shape(inputs)
            position_embeddings = ops.convert_to_tensor(self.position_embeddings)
            position_embeddings = ops.slice(position_embeddings, (start_index, 0), (shape[-2], shape[-1]))
            return ops.broadcast_to(position_embeddings, shape)

        def compute_output_shape(self, input_shape):
            return input_shape

    def bert_module(query, key, value, i):
        attention_output = layers.MultiHeadAttention(num_heads=config.NUM_HEAD,
                                                     key_dim=config.EMBED_DIM // config.NUM_HEAD,
                                                     name="encoder_{}_multiheadattention".format(i))(query, key, value)
        attention_output = layers.Dropout(0.0, name="encoder_{}_att_dropout".format(i))(attention_output)
        attention_output = layers.LayerNormalization(epsilon=1e-6, name="encoder_{}_att_layernormalization".format(i))(
            query + attention_output)
        ffn = keras.Sequential([layers.Dense(config.FF_DIM, activation="relu"), layers.Dense(config.EMBED_DIM)],
                               name="encoder_{}_ffn".format(i))
        ffn_output = ffn(attention_output)
        ffn_output = layers.Dropout(0.0, name="encoder_{}_ffn_dropout".format(i))(ffn_output)
        sequence_output = layers.LayerNormalization(epsilon=1e-6, name="encoder_{}_ffn_layernormalization".format(i))(
            attention_output + ffn_output)
        return sequence_output

    loss_fn = keras.losses.SparseCategoricalCrossentropy(reduction=None)
    loss_tracker = keras.metrics.Mean(name="loss")

    class MaskedLanguageModel(keras.Model):
        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None):
            loss = loss_fn(y, y_pred, sample_weight)
            loss_tracker.update_state(loss, sample_weight=sample_weight)
            return keras.ops.sum(loss)

        def compute_metrics(self, x, y, y_pred, sample_weight):
            return {"loss": loss_tracker.result()}

        @property
        def metrics(self):
            return [loss_tracker]

    def create_masked_language_bert_model():
        inputs = layers.Input((config.MAX_LEN,), dtype="int64")
        word_embeddings = layers.Embedding(config.VOCAB_SIZE, config.EMBED_DIM, name="word_embedding")(inputs)
        position_embeddings = PositionEmbedding(sequence_length=config.MAX_LEN)(word_embeddings)
        embeddings = word_embeddings + position_embeddings
        encoder_output = embeddings
        for i in range(config.NUM_LAYERS):
            encoder_output = bert_module(encoder_output, encoder_output, encoder_output, i)
        mlm_output = layers.Dense(config.VOCAB_SIZE, name="mlm_cls", activation="softmax")(encoder_output)
        mlm_model = MaskedLanguageModel(inputs, mlm_output, name="masked_bert_model")
        init(mlm_model)
        optimizer = keras.optimizers.Adam(learning_rate=config.LR)
        mlm_model.compile(optimizer=optimizer)
        return mlm_model

    id2token = dict(enumerate(vectorize_layer.get_vocabulary()))
    seen = []

    class MaskedTextGenerator(keras.callbacks.Callback):
        def __init__(self, sample_tokens, top_k=5):
            self.sample_tokens = sample_tokens
            self.k = top_k

        def decode(self, tokens):
            return " ".join([id2token[t] for t in tokens if t != 0])

        def on_epoch_end(self, epoch, logs=None):
            prediction = self.model.predict(self.sample_tokens, verbose=0)
            masked_index = np.where(self.sample_tokens == mask_token_id)
            masked_index = masked_index[1]
            mask_prediction = prediction[0][masked_index]
            top_indices = mask_prediction[0].argsort()[-self.k:][::-1]
            values = mask_prediction[0][top_indices]
            tokens = np.copy(self.sample_tokens[0])
            tokens[masked_index[0]] = top_indices[0]
            seen.append((self.decode(tokens), values))

    sample_tokens = vectorize_layer(["The movie was [mask] and the plot is great"])
    generator_callback = MaskedTextGenerator(sample_tokens.numpy())

    bert_masked_model = create_masked_language_bert_model()
    history = bert_masked_model.fit(x_masked_train, y_masked_labels, sample_weight=sample_weights,
                                    batch_size=config.BATCH_SIZE, epochs=2, shuffle=False,
                                    callbacks=[generator_callback], verbose=0)
    path = str(workdir(keras, tmp_path) / "bert_mlm_imdb.keras")
    bert_masked_model.save(path)

    mlm_model = keras.models.load_model(path, custom_objects={"MaskedLanguageModel": MaskedLanguageModel,
                                                              "PositionEmbedding": PositionEmbedding})
    out = {"mlm_loss": np.asarray(history.history["loss"]), "first_guess": seen[0][0], "last_guess": seen[-1][0],
           "guess_probabilities": np.stack([v for _, v in seen]),
           "saved": np.asarray(to_numpy(bert_masked_model.predict(x_test, verbose=0))),
           "reloaded": np.asarray(to_numpy(mlm_model.predict(x_test, verbose=0))),
           "reloaded_class": type(mlm_model).__name__, "history_keys": sorted(history.history)}
    pretrained_bert_model = keras.Model(mlm_model.input,
                                        mlm_model.get_layer("encoder_0_ffn_layernormalization").output)
    pretrained_bert_model.trainable = False

    def create_classifier_bert_model():
        inputs = layers.Input((config.MAX_LEN,), dtype="int64")
        sequence_output = pretrained_bert_model(inputs)
        pooled_output = layers.GlobalMaxPooling1D()(sequence_output)
        hidden_layer = layers.Dense(8, activation="relu")(pooled_output)
        outputs = layers.Dense(1, activation="sigmoid")(hidden_layer)
        classifer_model = keras.Model(inputs, outputs, name="classification")
        init(classifer_model)
        optimizer = keras.optimizers.Adam()
        classifer_model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=["accuracy"])
        return classifer_model

    classifer_model = create_classifier_bert_model()
    out["trainable_frozen"] = len(classifer_model.trainable_weights)
    frozen = classifer_model.fit(x_train, y_train, batch_size=config.BATCH_SIZE, epochs=1, shuffle=False,
                                 validation_data=(x_test, y_test), verbose=0)
    pretrained_bert_model.trainable = True
    optimizer = keras.optimizers.Adam()
    classifer_model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=["accuracy"])
    out["trainable_unfrozen"] = len(classifer_model.trainable_weights)
    tuned = classifer_model.fit(x_train, y_train, batch_size=config.BATCH_SIZE, epochs=1, shuffle=False,
                                validation_data=(x_test, y_test), verbose=0)
    for name, h in (("frozen", frozen), ("tuned", tuned)):
        for key, values in h.history.items():
            out[f"{name}_{key}"] = float(values[-1])

    class ModelEndtoEnd(keras.Model):
        def evaluate(self, inputs):
            features = encode(inputs.review.values)
            labels = inputs.sentiment.values
            test_classifier_ds = (tf.data.Dataset.from_tensor_slices((features, labels))
                                  .shuffle(1000).batch(config.BATCH_SIZE))
            return super().evaluate(test_classifier_ds, verbose=0)

        def build(self, input_shape):
            self.built = True

    def get_end_to_end(model):
        inputs = classifer_model.inputs
        outputs = classifer_model.outputs
        end_to_end_model = ModelEndtoEnd(inputs, outputs, name="end_to_end_model")
        optimizer = keras.optimizers.Adam(learning_rate=config.LR)
        end_to_end_model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=["accuracy"])
        return end_to_end_model

    end_to_end_classification_model = get_end_to_end(classifer_model)
    out["end_to_end"] = np.asarray(end_to_end_classification_model.evaluate(Frame(test_texts, test_labels)))
    out["classifier_evaluate"] = np.asarray(classifer_model.evaluate(x_test, y_test, verbose=0))
    return out


def test_masked_language_modeling(tmp_path):
    train_texts, train_labels = reviews(48)
    test_texts, test_labels = reviews(16, seed=1)
    want, got = run_both(mlm, (train_texts, train_labels, test_texts, test_labels), copy_weights=True,
                         tmp_path=tmp_path)
    assert got["history_keys"] == want["history_keys"] == ["loss"]
    np.testing.assert_allclose(got["mlm_loss"], want["mlm_loss"], rtol=1e-3)
    assert want["mlm_loss"][1] < want["mlm_loss"][0]
    assert (got["first_guess"], got["last_guess"]) == (want["first_guess"], want["last_guess"])
    np.testing.assert_allclose(got["guess_probabilities"], want["guess_probabilities"], rtol=1e-3, atol=1e-5)
    assert got["reloaded_class"] == want["reloaded_class"] == "MaskedLanguageModel"
    np.testing.assert_allclose(got["reloaded"], got["saved"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got["saved"], want["saved"], rtol=1e-3, atol=1e-5)
    assert (got["trainable_frozen"], got["trainable_unfrozen"]) == (want["trainable_frozen"],
                                                                    want["trainable_unfrozen"])
    keys = [k for k in want if k.startswith(("frozen_", "tuned_"))]
    assert_close(want, got, rtol=1e-3, atol=1e-4, keys=keys)
    np.testing.assert_allclose(got["end_to_end"], want["end_to_end"], rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(got["end_to_end"], got["classifier_evaluate"], rtol=1e-5, atol=1e-6)
