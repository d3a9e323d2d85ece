"""``TextVectorization(ngrams=...)`` compared with Keras 3's own layer (torch backend; its text layers run on
TensorFlow): the adapted vocabulary, every output mode, ``output_sequence_length``, a given vocabulary,
``split=None`` and the ``.keras`` round trip both ways. Before, ``ngrams`` raised NotImplementedError."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from tests.keras_oracle.common import fkeras, keras
from tests.layers.text_vectorization_parity import assert_keras_file_round_trip, assert_same, both_layers

pytest.importorskip("tensorflow")

CORPUS = ["The cat sat on the mat.", "the dog ate my homework!", "A cat, a dog; a bird?", "sat  sat sat",
          "Ünïcode CAFÉ café"]
TEXT = np.array(["the cat ate the bird", "unknown words here. the", "", "dog", "CAFÉ, a mat!"])


def _both(**kwargs):
    return both_layers(CORPUS, **kwargs)


def _assert_same(want_layer, got_layer, text=TEXT):
    assert_same(want_layer, got_layer, text)


@pytest.mark.parametrize("output_mode", ["int", "multi_hot", "count", "tf_idf"])
@pytest.mark.parametrize("ngrams", [2, 3, (2,), (1, 3), (2, 3)])
def test_ngrams_match_keras(ngrams, output_mode):
    _assert_same(*_both(ngrams=ngrams, output_mode=output_mode))


@pytest.mark.parametrize("kwargs", [
    {"ngrams": 2, "output_sequence_length": 5},
    {"ngrams": 3, "output_sequence_length": 20, "standardize": "lower"},
    {"ngrams": 2, "max_tokens": 10},
    {"ngrams": 2, "standardize": None},
    {"ngrams": 2, "split": None},
    {"ngrams": (1, 2), "vocabulary": ["the cat", "cat", "the", "a dog"]},
    {"ngrams": 2, "output_mode": "multi_hot", "max_tokens": 12, "pad_to_max_tokens": True},
])
def test_ngram_options_match_keras(kwargs):
    _assert_same(*_both(**kwargs))


def test_ngrams_without_split_on_rank_2_inputs_match_keras():
    """A ``(batch, 1)`` column without a split has one token per row: only width 1 gives n-grams."""
    _assert_same(*_both(ngrams=2, split=None), text=TEXT[:, None])


def test_ngrams_in_a_model_pass_the_checker(tmp_path):
    layer = fkeras.layers.TextVectorization(ngrams=3)
    layer.adapt(CORPUS)
    inputs = fkeras.Input((1,), dtype="string")
    model = fkeras.Model(inputs, layer(inputs))
    model.export(tmp_path / "m.onnx")
    proto = onnx.load(tmp_path / "m.onnx")
    onnx.checker.check_model(proto, full_check=True)
    assert {op.domain for op in proto.opset_import} <= {"", "ai.onnx"}
    want = keras.layers.TextVectorization(ngrams=3)
    want.adapt(CORPUS)
    np.testing.assert_array_equal(model.predict(TEXT[:, None], verbose=0),
                                  keras.ops.convert_to_numpy(want(TEXT)))


def test_keras_file_round_trip_both_ways(tmp_path):
    want, got = _both(ngrams=(1, 3), output_mode="tf_idf")
    theirs = assert_keras_file_round_trip(want, got, TEXT, tmp_path)
    assert theirs.get_config()["ngrams"] == (1, 3)


@pytest.mark.parametrize("ngrams", [0, -1, (0, 2), (), [1, 2], 2.0, "2", True])
def test_bad_ngrams_are_refused(ngrams):
    with pytest.raises(ValueError, match="ngrams"):
        fkeras.layers.TextVectorization(ngrams=ngrams)


@pytest.mark.parametrize("output_mode", ["int", "multi_hot"])
def test_one_string_gives_one_row_like_keras(output_mode):
    """A scalar string (a ``tf.data`` element vectorized in ``map`` before ``batch``, keras.io's active learning):
    Keras returns the row alone; onnxforge's StringSplit took the missing batch axis and raised IndexError."""
    kwargs = {"output_sequence_length": 6} if output_mode == "int" else {}
    want, got = _both(output_mode=output_mode, **kwargs)
    for text in ("the cat ate the bird", "A dog!") + (("",) if output_mode != "int" else ()):   # Keras fails on ""
        expected = np.asarray(want(np.array(text)))
        result = np.asarray(got(np.array(text)))
        assert result.shape == expected.shape and result.ndim == 1
        np.testing.assert_array_equal(result, expected)


def test_strings_of_other_lengths_reuse_one_eager_program(monkeypatch):
    """numpy gives each string width its own dtype ("<U7", "<U20"); the eager cache keyed on it, so mapping the
    layer over reviews of a hundred lengths compiled a hundred programs (0.15 s each)."""
    import importlib

    executor = importlib.import_module("onnxforge.eager.executor")
    _, got = _both(output_sequence_length=4)
    got(np.array(["the cat"]))
    compiled = []
    original = executor.compile_call
    monkeypatch.setattr(executor, "compile_call", lambda *a, **k: (compiled.append(1), original(*a, **k))[1])
    for k in range(1, 30):
        got(np.array(["the cat " + "sat " * k]))
    assert compiled == []


def test_multi_hot_of_only_empty_strings_is_zeros_like_keras():
    """A batch of empty strings has no token at all: Keras gives zeros; ReduceMax over the empty axis gave -inf."""
    want, got = _both(output_mode="multi_hot")
    np.testing.assert_array_equal(np.asarray(got(np.array(["", ""]))), np.asarray(want(np.array(["", ""]))))
