"""``TextVectorization(split="character")`` compared with Keras 3's own layer (torch backend; its text layers
run on TensorFlow): every output mode, n-grams, unknown and multi-byte characters, ``(batch, 1)`` inputs,
``output_sequence_length``, a given vocabulary, the exported graph and the ``.keras`` round trip both ways.
Before, ``split="character"`` raised NotImplementedError. The character lengths behind it are checked
against Python's on long strings (the residues' reconstruction)."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from tests.keras_oracle.common import fkeras, keras
from tests.layers.text_vectorization_parity import assert_keras_file_round_trip, assert_same, both_layers

pytest.importorskip("tensorflow")

CORPUS = ["The cat sat on the mat.", "héllo wörld", "日本語 text!", "aa  bb\tcc\nd", ""]
TEXT = np.array(["the cat ü", "", "zz日本", "x", "Ünïcode CAFÉ  café\n", "q" * 40 + "a"])


def _both(corpus=CORPUS, **kwargs):
    return both_layers(corpus, split="character", **kwargs)


def _assert_same(want_layer, got_layer, text=TEXT):
    assert_same(want_layer, got_layer, text)


@pytest.mark.parametrize("output_mode", ["int", "multi_hot", "count", "tf_idf"])
@pytest.mark.parametrize("ngrams", [None, 2, (1, 3)])
def test_character_split_matches_keras(output_mode, ngrams):
    _assert_same(*_both(output_mode=output_mode, ngrams=ngrams))


@pytest.mark.parametrize("kwargs", [
    {"standardize": None},
    {"standardize": "lower", "output_sequence_length": 6},
    {"output_sequence_length": 50},
    {"max_tokens": 8},
    {"ngrams": (2,), "standardize": None},
    {"vocabulary": ["a", "é", "日", " ", "t"], "standardize": None},
    {"output_mode": "count", "max_tokens": 12, "pad_to_max_tokens": True},
])
def test_character_split_options_match_keras(kwargs):
    _assert_same(*_both(**kwargs))


def test_character_split_on_a_column_matches_keras():
    _assert_same(*_both(ngrams=2), text=TEXT[:, None])


def test_character_lengths_are_exact():
    """Lengths far past every modulus, multi-byte characters and newlines (RE2's ``.`` needs ``(?s)``)."""
    layer = fkeras.layers.TextVectorization(split="character", standardize=None, output_mode="count",
                                            vocabulary=["a"])
    text = np.array(["a" * 3001 + "é" * 777, "\n" * 64, "日" * 5 + "a", ""])
    counts = np.asarray(layer(text))
    np.testing.assert_array_equal(counts[:, 0], [777, 64, 5, 0])   # the OOV index counts unknown characters
    np.testing.assert_array_equal(counts[:, 1], [3001, 0, 1, 0])


def test_character_split_in_a_model_passes_the_checker(tmp_path):
    layer = fkeras.layers.TextVectorization(split="character", ngrams=2)
    layer.adapt(CORPUS)
    inputs = fkeras.Input((1,), dtype="string")
    model = fkeras.Model(inputs, layer(inputs))
    model.export(tmp_path / "m.onnx")
    proto = onnx.load(tmp_path / "m.onnx")
    onnx.checker.check_model(proto, full_check=True)
    assert {op.domain for op in proto.opset_import} <= {"", "ai.onnx"}
    want = keras.layers.TextVectorization(split="character", ngrams=2)
    want.adapt(CORPUS)
    np.testing.assert_array_equal(model.predict(TEXT[:, None], verbose=0), keras.ops.convert_to_numpy(want(TEXT)))


def test_keras_file_round_trip_both_ways(tmp_path):
    # The corpus without "\n": Keras's vocabulary.txt is one token a line, so neither library keeps that token.
    want, got = _both(output_mode="tf_idf", ngrams=2, corpus=[t.replace("\n", " ") for t in CORPUS])
    theirs = assert_keras_file_round_trip(want, got, TEXT, tmp_path)
    assert theirs.get_config()["split"] == "character"


def test_bad_split_is_refused():
    with pytest.raises(ValueError, match="split='chars'"):
        fkeras.layers.TextVectorization(split="chars")
    with pytest.raises(NotImplementedError, match="callable split"):
        fkeras.layers.TextVectorization(split=lambda x: x)
