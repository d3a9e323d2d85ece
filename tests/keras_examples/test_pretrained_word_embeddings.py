"""keras.io "Using pre-trained word embeddings": a ``TextVectorization`` adapted on a batched ``tf.data``
dataset of messages, its vocabulary read with ``get_vocabulary`` into a word index, an embedding matrix
filled from a word-vector dict (words without a vector stay zero: padding, OOV and misses), an
``Embedding`` initialized with ``keras.initializers.Constant(embedding_matrix)`` and ``trainable=False``
(also the Keras 3 page's form: ``build((1,))`` then ``set_weights([embedding_matrix])``), a Conv1D /
MaxPooling1D / GlobalMaxPooling1D classifier on ``Input(shape=(None,), dtype="int64")`` trained with
RMSprop, and the end-to-end model ``Input(shape=(1,), dtype="string") -> vectorizer -> model``.

Differences: generated newsgroup-like messages and random "GloVe" vectors for half the vocabulary, small
sizes, Dropout at rate 0 instead of 0.5 (different masks in each framework), ``shuffle=False``. Keras on
torch has no string tensors, so its side predicts the end-to-end model's numbers as ``model(vectorizer(
texts))``, which is what the string model computes; onnxforge runs the string model itself.

Tolerance: Keras's initial weights copied (the frozen embedding is the same matrix in both anyway) and no
randomness left: vocabularies and token ids identical, training logs within 1e-3 relative, predictions
within 1e-4 + 1e-3 relative, and the frozen embedding unchanged by training in both.
"""
from __future__ import annotations

import numpy as np
import pytest

from .harness import fkeras, run_both, to_numpy

tensorflow = pytest.importorskip("tensorflow")   # Keras's TextVectorization runs on TensorFlow

import onnxforge  # noqa: E402

_TOPICS = {"comp.graphics": ["pixel", "render", "image", "polygon", "shading", "texture"],
           "rec.autos": ["engine", "car", "brake", "wheel", "dealer", "gearbox"],
           "sci.space": ["orbit", "nasa", "launch", "shuttle", "planet", "rocket"]}
_COMMON = ["the", "a", "is", "i", "think", "about", "this", "that", "with", "for", "and", "new", "anyone", "know"]


def messages(n, seed=0):
    rng = np.random.default_rng(seed)
    names = sorted(_TOPICS)
    samples, labels = [], []
    for _ in range(n):
        label = int(rng.integers(0, len(names)))
        words = list(rng.choice(_COMMON, size=int(rng.integers(30, 60))))
        for _ in range(int(rng.integers(4, 9))):
            words.insert(int(rng.integers(0, len(words))), str(rng.choice(_TOPICS[names[label]])))
        samples.append(" ".join(words))
        labels.append(label)
    return samples, labels, names


def pretrained(keras, data, init):
    samples, labels, class_names, embeddings_index = data
    tf = onnxforge if keras is fkeras else tensorflow   # tf.data for adapt, as on the page
    layers = keras.layers
    keras.utils.set_random_seed(1)

    validation_split = 0.25
    num_validation_samples = int(validation_split * len(samples))
    train_samples = samples[:-num_validation_samples]
    val_samples = samples[-num_validation_samples:]
    train_labels = labels[:-num_validation_samples]
    val_labels = labels[-num_validation_samples:]

    vectorizer = layers.TextVectorization(max_tokens=40, output_sequence_length=200)
    text_ds = tf.data.Dataset.from_tensor_slices(train_samples).batch(16)
    vectorizer.adapt(text_ds)
    out = {"top5": vectorizer.get_vocabulary()[:5]}
    output = vectorizer([["the cat sat on the mat"]])
    out["test_sentence"] = np.asarray(to_numpy(output))[0, :6]
    voc = vectorizer.get_vocabulary()
    word_index = dict(zip(voc, range(len(voc))))

    num_tokens = len(voc) + 2
    embedding_dim = 8
    hits = 0
    misses = 0
    embedding_matrix = np.zeros((num_tokens, embedding_dim))
    for word, i in word_index.items():
        embedding_vector = embeddings_index.get(word)
        if embedding_vector is not None:
            embedding_matrix[i] = embedding_vector
            hits += 1
        else:
            misses += 1
    out["hits_misses"] = (hits, misses)

    embedding_layer = layers.Embedding(num_tokens, embedding_dim,
                                       embeddings_initializer=keras.initializers.Constant(embedding_matrix),
                                       trainable=False)
    # The Keras 3 page's form of the same layer
    built_by_hand = layers.Embedding(num_tokens, embedding_dim, trainable=False)
    built_by_hand.build((1,))
    built_by_hand.set_weights([embedding_matrix])
    ids = np.arange(num_tokens)[None]
    np.testing.assert_allclose(to_numpy(built_by_hand(ids)), to_numpy(embedding_layer(ids)), rtol=1e-6)

    int_sequences_input = keras.Input(shape=(None,), dtype="int64")
    embedded_sequences = embedding_layer(int_sequences_input)
    x = layers.Conv1D(8, 5, activation="relu")(embedded_sequences)
    x = layers.MaxPooling1D(5)(x)
    x = layers.Conv1D(8, 5, activation="relu")(x)
    x = layers.MaxPooling1D(5)(x)
    x = layers.Conv1D(8, 5, activation="relu")(x)
    x = layers.GlobalMaxPooling1D()(x)
    x = layers.Dense(8, activation="relu")(x)
    x = layers.Dropout(0.0)(x)
    preds = layers.Dense(len(class_names), activation="softmax")(x)
    model = keras.Model(int_sequences_input, preds)
    init(model)
    out["trainable_weights"] = len(model.trainable_weights)
    out["non_trainable_weights"] = len(model.non_trainable_weights)

    x_train = np.asarray(to_numpy(vectorizer(np.array([[s] for s in train_samples]))))
    x_val = np.asarray(to_numpy(vectorizer(np.array([[s] for s in val_samples]))))
    y_train = np.array(train_labels)
    y_val = np.array(val_labels)
    out["x_val"] = x_val

    model.compile(loss="sparse_categorical_crossentropy", optimizer="rmsprop", metrics=["acc"])
    history = model.fit(x_train, y_train, batch_size=16, epochs=3, validation_data=(x_val, y_val), shuffle=False,
                        verbose=0)
    out["history"] = {k: np.asarray(v) for k, v in history.history.items()}
    out["embedding_after"] = np.asarray(to_numpy(embedding_layer.embeddings))
    out["embedding_matrix"] = embedding_matrix

    texts = [["this message is about computer graphics and 3D modeling pixel render"],
             ["my car engine needs a new gearbox"]]
    if keras is fkeras:
        string_input = keras.Input(shape=(1,), dtype="string")
        x = vectorizer(string_input)
        preds = model(x)
        end_to_end_model = keras.Model(string_input, preds)
        probabilities = end_to_end_model.predict(texts, verbose=0)
    else:   # no string tensors on torch: the same computation in two steps
        probabilities = model.predict(np.asarray(to_numpy(vectorizer(np.array(texts)))), verbose=0)
    out["probabilities"] = np.asarray(to_numpy(probabilities))
    out["classes"] = [class_names[np.argmax(p)] for p in out["probabilities"]]
    return out


def test_pretrained_word_embeddings():
    samples, labels, class_names = messages(96)
    rng = np.random.default_rng(7)
    vocabulary = sorted({w for ws in _TOPICS.values() for w in ws} | set(_COMMON))
    embeddings_index = {w: rng.normal(size=8).astype("float32") for w in vocabulary[::2]}   # half have vectors
    want, got = run_both(pretrained, (samples, labels, class_names, embeddings_index), copy_weights=True)
    assert got["top5"] == want["top5"]
    np.testing.assert_array_equal(got["test_sentence"], want["test_sentence"])
    assert got["hits_misses"] == want["hits_misses"] and want["hits_misses"][1] > 2
    np.testing.assert_array_equal(got["x_val"], want["x_val"])
    assert (got["trainable_weights"], got["non_trainable_weights"]) == (want["trainable_weights"],
                                                                        want["non_trainable_weights"]) == (10, 1)
    assert sorted(got["history"]) == sorted(want["history"])
    for key in want["history"]:
        np.testing.assert_allclose(got["history"][key], want["history"][key], rtol=1e-3, atol=1e-4, err_msg=key)
    assert want["history"]["acc"][-1] > want["history"]["acc"][0]
    for side in (want, got):
        np.testing.assert_allclose(side["embedding_after"], side["embedding_matrix"], rtol=1e-6)
    np.testing.assert_allclose(got["probabilities"], want["probabilities"], rtol=1e-3, atol=1e-4)
    assert got["classes"] == want["classes"]
