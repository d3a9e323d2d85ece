"""tensorflow.org's text tutorials with ``import onnxforge as tf``, on a small local text: "Text generation with
an RNN" (``unicode_split``, ``StringLookup`` and its inverse, ``reduce_join``, the subclassed GRU model, ``fit``
and the ``OneStep`` generator in a ``tf.function`` with a ``tf.SparseTensor`` mask), "Word embeddings"
(``TextVectorization`` with a custom standardization, ``get_vocabulary``, the vectors written with ``io.open``)
and "Basic text classification" (the export model with the vectorizer inside). What is deterministic is
compared with TensorFlow 2.21 where it is installed.

Two lines differ from the tutorial as printed, because TensorFlow 2.21's Keras 3 refuses them too:
``super().__init__()`` (not ``super().__init__(self)``) and ``get_initial_state(tf.shape(x)[0])`` (Keras 3's
``get_initial_state`` takes the batch size)."""
from __future__ import annotations

import io
import os
import re
import string

import numpy as np
import pytest

import onnxforge as tf

TEXT = ("ROMEO: But soft, what light through yonder window breaks?\nIt is the east, and Juliet is the sun.\n"
        "JULIET: O Romeo, Romeo! wherefore art thou Romeo?\n") * 4
SEQ = 20


@pytest.fixture(scope="module")
def rtf():
    return pytest.importorskip("tensorflow")


# ------------------------------------------------------------------------------------------ text generation
def _lookups(t):
    vocab = sorted(set(TEXT))
    ids_from_chars = t.keras.layers.StringLookup(vocabulary=list(vocab), mask_token=None)
    chars_from_ids = t.keras.layers.StringLookup(vocabulary=ids_from_chars.get_vocabulary(), invert=True,
                                                 mask_token=None)
    return ids_from_chars, chars_from_ids


def _text_pipeline(t):
    """The tutorial's data preparation; returns what it prints and the batched dataset."""
    ids_from_chars, chars_from_ids = _lookups(t)
    seen = {}
    chars = t.strings.unicode_split(["Romeo", "wind!"], input_encoding="UTF-8")
    ids = ids_from_chars(chars)
    seen["ids"] = ids.numpy().tolist()
    seen["chars"] = chars_from_ids(ids).numpy().tolist()
    seen["joined"] = t.strings.reduce_join(chars_from_ids(ids), axis=-1).numpy().tolist()

    def text_from_ids(ids):
        return t.strings.reduce_join(chars_from_ids(ids), axis=-1)

    all_ids = ids_from_chars(t.strings.unicode_split(TEXT, "UTF-8"))
    ids_dataset = t.data.Dataset.from_tensor_slices(all_ids)
    seen["first"] = [chars_from_ids(i).numpy().decode("utf-8") for i in ids_dataset.take(6)]
    sequences = ids_dataset.batch(SEQ + 1, drop_remainder=True)
    seen["sequences"] = [text_from_ids(seq).numpy() for seq in sequences.take(3)]

    def split_input_target(sequence):
        input_text = sequence[:-1]
        target_text = sequence[1:]
        return input_text, target_text

    dataset = sequences.map(split_input_target)
    for input_example, target_example in dataset.take(1):
        seen["input"] = text_from_ids(input_example).numpy()
        seen["target"] = text_from_ids(target_example).numpy()
    dataset = dataset.shuffle(100).batch(4, drop_remainder=True).prefetch(t.data.experimental.AUTOTUNE)
    return seen, dataset, ids_from_chars, chars_from_ids


def _model_class(t, batch_of=None):
    # The oracle's Keras runs on torch here (tests/conftest.py), where tf.shape cannot read a torch tensor.
    batch_of = batch_of or (lambda x: t.shape(x)[0])

    class MyModel(t.keras.Model):
        def __init__(self, vocab_size, embedding_dim, rnn_units):
            super().__init__()
            self.embedding = t.keras.layers.Embedding(vocab_size, embedding_dim)
            self.gru = t.keras.layers.GRU(rnn_units, return_sequences=True, return_state=True)
            self.dense = t.keras.layers.Dense(vocab_size)

        def call(self, inputs, states=None, return_state=False, training=False):
            x = inputs
            x = self.embedding(x, training=training)
            if states is None:
                states = self.gru.get_initial_state(batch_of(x))
            x, states = self.gru(x, initial_state=states, training=training)
            x = self.dense(x, training=training)
            if return_state:
                return x, states
            return x
    return MyModel


def _one_step_class(t):
    class OneStep(t.keras.Model):
        def __init__(self, model, chars_from_ids, ids_from_chars, temperature=1.0):
            super().__init__()
            self.temperature = temperature
            self.model = model
            self.chars_from_ids = chars_from_ids
            self.ids_from_chars = ids_from_chars
            # Create a mask to prevent "[UNK]" from being generated.
            skip_ids = self.ids_from_chars(["[UNK]"])[:, None]
            sparse_mask = t.SparseTensor(values=[-float("inf")] * len(skip_ids), indices=skip_ids,
                                         dense_shape=[len(ids_from_chars.get_vocabulary())])
            self.prediction_mask = t.sparse.to_dense(sparse_mask)

        @t.function
        def generate_one_step(self, inputs, states=None):
            input_chars = t.strings.unicode_split(inputs, "UTF-8")
            input_ids = self.ids_from_chars(input_chars).to_tensor()
            predicted_logits, states = self.model(inputs=input_ids, states=states, return_state=True)
            predicted_logits = predicted_logits[:, -1, :]
            predicted_logits = predicted_logits / self.temperature
            predicted_logits = predicted_logits + self.prediction_mask
            predicted_ids = t.random.categorical(predicted_logits, num_samples=1)
            predicted_ids = t.squeeze(predicted_ids, axis=-1)
            predicted_chars = self.chars_from_ids(predicted_ids)
            return predicted_chars, states
    return OneStep


def test_text_generation_data_matches_tensorflow(rtf):
    mine, _, _, _ = _text_pipeline(tf)
    theirs, _, _, _ = _text_pipeline(rtf)
    assert mine == theirs
    assert mine["first"] == list("ROMEO:") and mine["input"] == TEXT[:SEQ].encode()


def test_text_generation_model_matches_tensorflow_with_the_same_weights(rtf):
    out = {}
    ids_from_chars = _lookups(tf)[0]
    x = np.asarray(ids_from_chars(tf.strings.unicode_split(["ROMEO: But soft", "It is the east,"], "UTF-8")))
    for t in (tf, rtf):
        model_class = _model_class(t, None if t is tf else lambda v: v.shape[0])
        model = model_class(len(ids_from_chars.get_vocabulary()), 8, 16)
        model(x)
        if t is tf:
            weights = model.get_weights()
        else:
            model.set_weights(weights)
        logits, states = model(x, return_state=True)
        loss = t.losses.SparseCategoricalCrossentropy(from_logits=True)(x[:, 1:], logits[:, :-1])
        out[t] = tuple(np.asarray(t.keras.ops.convert_to_numpy(v)) for v in (logits, states, loss))
    np.testing.assert_allclose(out[tf][0], out[rtf][0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out[tf][1], out[rtf][1], rtol=1e-4, atol=1e-5)
    assert float(out[tf][2]) == pytest.approx(float(out[rtf][2]), rel=1e-5)


def test_text_generation_trains_and_generates():
    _, dataset, ids_from_chars, chars_from_ids = _text_pipeline(tf)
    vocab_size = len(ids_from_chars.get_vocabulary())
    model = _model_class(tf)(vocab_size, 8, 16)
    for input_example_batch, target_example_batch in dataset.take(1):
        example_batch_predictions = model(input_example_batch)
    assert example_batch_predictions.shape == (4, SEQ, vocab_size)
    sampled = tf.squeeze(tf.random.categorical(example_batch_predictions[0], num_samples=1), axis=-1).numpy()
    assert sampled.shape == (SEQ,)
    loss = tf.losses.SparseCategoricalCrossentropy(from_logits=True)
    mean_loss = loss(target_example_batch, example_batch_predictions)
    assert float(tf.exp(mean_loss).numpy()) == pytest.approx(vocab_size, rel=0.2)   # an untrained model
    model.compile(optimizer="adam", loss=loss)
    history = model.fit(dataset, epochs=2, verbose=0)
    assert history.history["loss"][1] < history.history["loss"][0]

    one_step_model = _one_step_class(tf)(model, chars_from_ids, ids_from_chars)
    assert one_step_model.prediction_mask.numpy().tolist() == [-np.inf] + [0.0] * (vocab_size - 1)
    states = None
    next_char = tf.constant(["ROMEO:"])
    result = [next_char]
    for _ in range(8):
        next_char, states = one_step_model.generate_one_step(next_char, states=states)
        result.append(next_char)
    result = tf.strings.join(result)
    text = result[0].numpy().decode("utf-8")
    assert text.startswith("ROMEO:") and len(text) == 6 + 8
    assert set(text[6:]) <= set(TEXT)   # "[UNK]" is masked out


# ------------------------------------------------------------------------------------------ text classification
POS = ["A great movie, I loved it!", "Wonderful acting<br />and a fine plot.", "Great fun; loved the cast.",
       "Superb. A great film.", "I loved this great movie", "Fine film, wonderful score"]
NEG = ["Terrible film. Awful plot!", "Awful acting<br />boring and bad.", "Bad, boring, terrible.",
       "I hated this awful movie", "The worst film: bad plot", "Boring and terrible acting"]
EXAMPLES = ["The movie was great!", "The movie was okay.", "The movie was terrible..."]


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    root = tmp_path_factory.mktemp("reviews")
    for label, texts in (("pos", POS), ("neg", NEG)):
        os.makedirs(root / label)
        for i, text in enumerate(texts):
            (root / label / f"{i}.txt").write_text(text, encoding="utf-8")
    return str(root)


def _vectorizer(t, reviews):
    def custom_standardization(input_data):
        lowercase = t.strings.lower(input_data)
        stripped_html = t.strings.regex_replace(lowercase, "<br />", " ")
        return t.strings.regex_replace(stripped_html, "[%s]" % re.escape(string.punctuation), "")

    raw_train_ds = t.keras.utils.text_dataset_from_directory(reviews, batch_size=4)
    vectorize_layer = t.keras.layers.TextVectorization(standardize=custom_standardization, max_tokens=40,
                                                       output_mode="int", output_sequence_length=8)
    vectorize_layer.adapt(raw_train_ds.map(lambda x, y: x))
    return raw_train_ds, vectorize_layer


def test_vocabulary_and_vectors_match_tensorflow(reviews, rtf):
    mine, theirs = _vectorizer(tf, reviews)[1], _vectorizer(rtf, reviews)[1]
    assert mine.get_vocabulary() == theirs.get_vocabulary()
    review = tf.constant(EXAMPLES)[0]   # the tutorial's vectorize_text on one review
    np.testing.assert_array_equal(mine(tf.expand_dims(review, -1)), theirs(rtf.expand_dims(EXAMPLES[0], -1)))


def test_text_classification_export_model_and_embedding_files(reviews, tmp_path):
    raw_train_ds, vectorize_layer = _vectorizer(tf, reviews)
    def vectorize_text(text, label):
        text = tf.expand_dims(text, -1)
        return vectorize_layer(text), label

    for text_batch, label_batch in raw_train_ds.take(1):
        assert isinstance(text_batch.numpy()[0], bytes) and text_batch.numpy()[0].decode() in POS + NEG
        first_review, first_label = text_batch[0], label_batch[0]
        assert raw_train_ds.class_names[first_label] in ("neg", "pos")
        vectorized, label = vectorize_text(first_review, first_label)
        assert vectorized.shape == (1, 8) and int(label) == int(first_label)

    layers = tf.keras.layers
    model = tf.keras.Sequential([layers.Embedding(40, 8, name="embedding"), layers.Dropout(0.2),
                                 layers.GlobalAveragePooling1D(), layers.Dropout(0.2), layers.Dense(1)])
    model.compile(loss=tf.keras.losses.BinaryCrossentropy(from_logits=True), optimizer="adam",
                  metrics=[tf.metrics.BinaryAccuracy(threshold=0.0)])
    model.fit(raw_train_ds.map(vectorize_text).cache().prefetch(buffer_size=tf.data.AUTOTUNE), epochs=2, verbose=0)
    export_model = tf.keras.Sequential([vectorize_layer, model, layers.Activation("sigmoid")])
    export_model.compile(loss=tf.keras.losses.BinaryCrossentropy(from_logits=False), optimizer="adam",
                         metrics=["accuracy"])
    assert sorted(export_model.evaluate(raw_train_ds, return_dict=True, verbose=0)) == ["accuracy", "loss"]
    predicted = export_model.predict(tf.constant(EXAMPLES), verbose=0)
    expected = 1 / (1 + np.exp(-np.asarray(model.predict(vectorize_layer(np.asarray(EXAMPLES)), verbose=0))))
    np.testing.assert_allclose(predicted, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(export_model.predict(EXAMPLES, verbose=0), predicted, rtol=1e-6)

    # "Word embeddings": the trained vectors and their words written for the Embedding Projector.
    weights = model.get_layer("embedding").get_weights()[0]
    vocab = vectorize_layer.get_vocabulary()
    out_v = io.open(tmp_path / "vectors.tsv", "w", encoding="utf-8")
    out_m = io.open(tmp_path / "metadata.tsv", "w", encoding="utf-8")
    for index, word in enumerate(vocab):
        if index == 0:
            continue  # skip 0, it's padding.
        vec = weights[index]
        out_v.write("\t".join([str(x) for x in vec]) + "\n")
        out_m.write(word + "\n")
    out_v.close()
    out_m.close()
    assert (tmp_path / "metadata.tsv").read_text(encoding="utf-8").split("\n")[:2] == ["[UNK]", vocab[2]]
    rows = [[float(v) for v in line.split("\t")] for line in (tmp_path / "vectors.tsv").read_text().splitlines()]
    np.testing.assert_allclose(rows, weights[1:len(vocab)], rtol=1e-6)
