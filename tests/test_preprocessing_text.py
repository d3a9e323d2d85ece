"""``keras.preprocessing.text`` (tf.keras 2's Tokenizer and helpers) against TensorFlow's tf.keras."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
tf = pytest.importorskip("tensorflow")

import onnxforge  # noqa: E402
from onnxforge.keras.preprocessing.text import Tokenizer, hashing_trick, text_to_word_sequence, \
    tokenizer_from_json  # noqa: E402

TEXTS = ["The cat sat on the mat.", "The dog ate my homework!", "Dogs and cats, living together", "the the END"]
QUERY = ["the cat ate the unknown homework", "", "mat mat mat dog"]
REF = tf.keras.preprocessing.text


@pytest.mark.parametrize("kwargs", [{}, {"num_words": 5}, {"num_words": 6, "oov_token": "<OOV>"},
                                    {"char_level": True, "oov_token": "?"}, {"lower": False, "filters": "!"}])
def test_tokenizer_matches_tf_keras(kwargs):
    ours, ref = Tokenizer(**kwargs), REF.Tokenizer(**kwargs)
    ours.fit_on_texts(TEXTS)
    ref.fit_on_texts(TEXTS)
    assert ours.word_index == ref.word_index and ours.index_word == ref.index_word
    assert dict(ours.word_counts) == dict(ref.word_counts) and dict(ours.index_docs) == dict(ref.index_docs)
    assert ours.document_count == ref.document_count
    seqs = ours.texts_to_sequences(QUERY)
    assert seqs == ref.texts_to_sequences(QUERY)
    assert ours.sequences_to_texts(seqs + [[99, 1]]) == ref.sequences_to_texts(seqs + [[99, 1]])
    for mode in ("binary", "count", "freq", "tfidf"):
        np.testing.assert_allclose(ours.texts_to_matrix(QUERY, mode=mode), ref.texts_to_matrix(QUERY, mode=mode))
    restored = tokenizer_from_json(ref.to_json())
    assert restored.word_index == ref.word_index and restored.texts_to_sequences(QUERY) == seqs
    assert REF.tokenizer_from_json(ours.to_json()).texts_to_sequences(QUERY) == seqs


def test_helpers_match_tf_keras():
    text = "Hello, World!  Hello\tagain"
    assert text_to_word_sequence(text) == REF.text_to_word_sequence(text)
    assert hashing_trick(text, 7, hash_function="md5") == REF.hashing_trick(text, 7, hash_function="md5")
    assert onnxforge.keras.preprocessing.text.one_hot(text, 5)[0] == onnxforge.keras.preprocessing.text.one_hot(
        "hello", 5)[0]


def test_bad_arguments_are_named():
    tok = Tokenizer()
    with pytest.raises(ValueError, match="fit on some text data first"):
        tok.texts_to_matrix(["a"])
    tok.fit_on_texts(["a b"])
    with pytest.raises(ValueError, match="Unknown vectorization mode: 'bogus'"):
        tok.texts_to_matrix(["a"], mode="bogus")
    with pytest.raises(TypeError, match="not one string"):
        tok.fit_on_texts("a b")
    with pytest.raises(ValueError, match="num_words"):
        Tokenizer(num_words=-1)


@pytest.mark.parametrize("edit, fragment", [
    (lambda c: c.update(analyzer="str.upper"), r"config\['analyzer'\] must be one of the settings"),
    (lambda c: c.update(split=""), r"config\['split'\] must be a non-empty string"),
    (lambda c: c.update(filters=5), r"config\['filters'\] must be a string.*5 \(int\)"),
    (lambda c: c.update(num_words=-1), r"config\['num_words'\] must be an integer >= 0"),
    (lambda c: c.update(word_index="[1, 2]"), r"config\['word_index'\] must be a JSON string of an object"),
    (lambda c: c.update(word_index='{"cat": "1"}'), r"config\['word_index'\]\['cat'\] must be an entry.*'1'"),
    (lambda c: c.update(index_word='{"x": "cat"}'), r"config\['index_word'\]\['x'\]"),
    (lambda c: c.update(word_counts={"cat": 1}), r"config\['word_counts'\] must be a JSON string"),
])
def test_tokenizer_json_of_the_wrong_types_is_refused_naming_the_key(edit, fragment):
    # tf.keras reads such JSON as it is and fails later (str is not callable, empty separator) or never.
    tok = Tokenizer()
    tok.fit_on_texts(["the cat sat"])
    data = json.loads(tok.to_json())
    edit(data["config"])
    with pytest.raises(ValueError, match=fragment):
        tokenizer_from_json(json.dumps(data))
    with pytest.raises(ValueError, match="reads the JSON string"):
        tokenizer_from_json("{" * 10)
