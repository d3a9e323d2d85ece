"""keras.io's "Working with preprocessing layers": ``adapt`` of Normalization, TextVectorization,
StringLookup, IntegerLookup and Discretization; lookups with a given vocabulary; one-hot encodings with
out-of-vocabulary values; CategoryEncoding; TextVectorization's int, multi-hot and TF-IDF outputs inside a
model and in a data pipeline, and the end-to-end model that takes strings. ``Hashing`` (the hashing trick) runs
on arrays, as the guide calls it: FarmHash / SipHash have no standard ONNX form, so it is refused inside a model.
"""
from __future__ import annotations

import numpy as np
import pytest

from tests.keras_examples.harness import assert_close, fkeras, run_both, to_numpy

ADAPT = ["The Brain is wider than the Sky", "For put them side by side", "The one the other will contain",
         "With ease and You beside"]
GREEK = ["ξεῖν᾽, ἦ τοι μὲν ὄνειροι ἀμήχανοι ἀκριτόμυθοι", "γίγνοντ᾽, οὐδέ τι πάντα τελείεται ἀνθρώποισι.",
         "δοιαὶ γάρ τε πύλαι ἀμενηνῶν εἰσὶν ὀνείρων:"]


def _flat(prefix, value) -> dict:
    return {f"{prefix}_{i}": float(v) for i, v in enumerate(np.asarray(to_numpy(value), np.float64).ravel())}


def adapted_layers(keras_api, data, init):
    layers = keras_api.layers
    numbers = np.array([[0.1, 0.2, 0.3], [0.8, 0.9, 1.0], [1.5, 1.6, 1.7]])
    norm = layers.Normalization()
    norm.adapt(numbers)
    out = _flat("norm", norm(numbers))
    greek = layers.TextVectorization()
    greek.adapt(GREEK)
    out.update(_flat("greek", greek(GREEK)))
    out["greek_vocab"] = float(len(greek.get_vocabulary()))
    lookup = layers.StringLookup(vocabulary=["a", "b", "c", "d"])
    out.update(_flat("lookup", lookup(np.array([["a", "c", "d"], ["d", "z", "b"]]))))
    one_hot = layers.StringLookup(output_mode="one_hot")
    one_hot.adapt(np.array([["a"], ["b"], ["c"], ["b"], ["c"], ["a"]]))
    out.update(_flat("str_one_hot", one_hot(np.array([["a"], ["b"], ["c"], ["d"], ["e"], [""]]))))
    ints = layers.IntegerLookup(output_mode="one_hot")
    ints.adapt(np.array([[10], [20], [20], [10], [30], [0]]))
    out.update(_flat("int_one_hot", ints(np.array([[10], [10], [20], [50], [60], [0]]))))
    out.update(_flat("int_vocab", np.array(ints.get_vocabulary())))
    disc = layers.Discretization(num_bins=4)
    disc.adapt(np.linspace(0.0, 1.0, 101).reshape(-1, 1))
    out.update(_flat("disc", disc(np.array([[0.1], [0.4], [0.6], [0.9]]))))
    encoder = layers.CategoryEncoding(num_tokens=6, output_mode="multi_hot")
    out.update(_flat("multi_hot", encoder(np.array([[1, 2], [5, 0]]))))
    return out


def test_adapted_and_given_state_matches_keras():
    want, got = run_both(adapted_layers, None, copy_weights=False)
    assert_close(want, got, rtol=1e-6, atol=1e-6)


def text_models(keras_api, data, init, mode="int"):
    layers = keras_api.layers
    vectorizer = layers.TextVectorization(output_mode=mode, ngrams=None if mode == "int" else 2)
    vectorizer.adapt(np.array(ADAPT))
    out = _flat("encoded", vectorizer(np.array(["The Brain is deeper than the sea"])))
    if mode == "int":
        inputs = keras_api.Input(shape=(None,), dtype="int64")
        x = layers.GRU(3)(layers.Embedding(input_dim=vectorizer.vocabulary_size(), output_dim=4)(inputs))
    else:
        inputs = keras_api.Input(shape=(vectorizer.vocabulary_size(),))
        x = inputs
    model = keras_api.Model(inputs, layers.Dense(1)(x))
    init(model)
    model.compile(optimizer="rmsprop", loss="mse")
    texts = np.array(["The Brain is deeper than the sea", "for if they are held Blue to Blue"])
    history = model.fit(to_numpy(vectorizer(texts)), np.array([1.0, 0.0]), batch_size=2, verbose=0)
    out["loss"] = float(history.history["loss"][0])
    strings = keras_api.Input(shape=(1,), dtype="string")
    end_to_end = keras_api.Model(strings, model(vectorizer(strings)))
    test = np.array([["The one the other will absorb"]])
    # Keras 3 on torch cannot feed a string array to a model ("Invalid dtype: str..."): its numbers come from
    # the same two layers called one after the other.
    value = end_to_end(test) if keras_api is fkeras else model(vectorizer(test))
    out.update(_flat("e2e", value))
    return out


@pytest.mark.parametrize("mode", ["int", "multi_hot", "tf_idf"])
def test_text_vectorization_models_match_keras(mode):
    if mode != "int":
        # Keras 3 keeps the (batch, 1) string input's axis in multi_hot / tf_idf outputs, (batch, 1, vocab),
        # which its own Dense model refuses; onnxforge returns (batch, vocab) as tf.keras did. Compare the
        # parts Keras runs.
        want, got = run_both(_without_e2e(mode), None, copy_weights=True)
    else:
        want, got = run_both(text_models, None, copy_weights=True, mode=mode)
    assert_close(want, got, rtol=2e-4, atol=1e-5)


def _without_e2e(mode):
    def program(keras_api, data, init):
        layers = keras_api.layers
        vectorizer = layers.TextVectorization(output_mode=mode, ngrams=2)
        vectorizer.adapt(np.array(ADAPT))
        out = _flat("encoded", vectorizer(np.array(["The Brain is deeper than the sea"])))
        inputs = keras_api.Input(shape=(vectorizer.vocabulary_size(),))
        model = keras_api.Model(inputs, layers.Dense(1)(inputs))
        init(model)
        model.compile(optimizer="rmsprop", loss="mse")
        texts = np.array(["The Brain is deeper than the sea", "for if they are held Blue to Blue"])
        out["loss"] = float(model.fit(to_numpy(vectorizer(texts)), np.array([1.0, 0.0]), verbose=0).history["loss"][0])
        out.update(_flat("model", model(vectorizer(np.array(["The one the other will absorb"])))))
        return out

    program.__name__ = f"text_{mode}"
    return program


def test_end_to_end_string_model_with_multi_hot_bigrams_runs():
    vectorizer = fkeras.layers.TextVectorization(output_mode="multi_hot", ngrams=2)
    vectorizer.adapt(np.array(ADAPT))
    inputs = fkeras.Input(shape=(vectorizer.vocabulary_size(),))
    model = fkeras.Model(inputs, fkeras.layers.Dense(1)(inputs))
    strings = fkeras.Input(shape=(1,), dtype="string")
    end_to_end = fkeras.Model(strings, model(vectorizer(strings)))
    direct = model(vectorizer(np.array(["The one the other will absorb"])))
    # One fused graph against an eager vectorizer then the model: float32 summation order differs (7e-9 seen on
    # an output of -1.6e-3), so the bound is absolute as well as relative.
    np.testing.assert_allclose(to_numpy(end_to_end(np.array([["The one the other will absorb"]]))), to_numpy(direct),
                               rtol=1e-5, atol=1e-7)


def _hashing_trick(keras_api, data, init):
    """The guide's "hashing trick" on an integer feature: Hashing(num_bins=64, salt=1337) then a multi-hot
    CategoryEncoding, eagerly on arrays."""
    values = np.random.default_rng(3).integers(0, 100000, size=(50, 1))
    hasher = keras_api.layers.Hashing(num_bins=64, salt=1337)
    encoder = keras_api.layers.CategoryEncoding(num_tokens=64, output_mode="multi_hot")
    return {**_flat("bins", hasher(values)), **_flat("encoded", encoder(hasher(values)))}


def test_hashing_trick_matches_keras():
    want, got = run_both(_hashing_trick, None, copy_weights=False)
    assert_close(want, got, rtol=0, atol=0)