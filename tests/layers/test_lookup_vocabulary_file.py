"""A vocabulary file (one token a line) for StringLookup / IntegerLookup / TextVectorization, compared with
Keras 3 (torch backend; its lookups build the table from the file on TensorFlow). Before, a path raised
NotImplementedError. Keras's refusals are kept: empty lines, repeated tokens, tf_idf, a missing file."""
from __future__ import annotations

import numpy as np
import pytest

from tests.keras_oracle.common import fkeras, keras

pytest.importorskip("tensorflow")


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return str(path)


@pytest.mark.parametrize("text", ["cat\nthe\ndog\n", "cat\nthe\r\ndog", "café\nthe\n"])
def test_text_vectorization_vocabulary_file_matches_keras(tmp_path, text):
    path = _write(tmp_path, "vocab.txt", text)
    want, got = (api.layers.TextVectorization(vocabulary=path) for api in (keras, fkeras))
    assert [str(t) for t in got.get_vocabulary()] == [str(t) for t in want.get_vocabulary()]
    assert got.vocabulary_size() == want.vocabulary_size()
    x = np.array(["the cat dog x café"])
    np.testing.assert_array_equal(np.asarray(got(x)), keras.ops.convert_to_numpy(want(x)))


def test_lookup_vocabulary_files_match_keras(tmp_path):
    words, ints = _write(tmp_path, "w.txt", "cat\nthe\ndog\n"), _write(tmp_path, "i.txt", "5\n7\n")
    for cls, path, x in (("StringLookup", words, np.array([["the", "x"]])), ("IntegerLookup", ints, np.array([7, 5, 1]))):
        for mode in ("int", "multi_hot"):
            want = getattr(keras.layers, cls)(vocabulary=path, output_mode=mode)
            got = getattr(fkeras.layers, cls)(vocabulary=path, output_mode=mode)
            assert [str(t) for t in got.get_vocabulary()] == [str(t) for t in want.get_vocabulary()]
            np.testing.assert_allclose(np.asarray(got(x)), keras.ops.convert_to_numpy(want(x)))


@pytest.mark.parametrize("text, kwargs, match", [
    ("\ncat\n", {}, "empty line"),
    ("cat\nthe\ncat\n", {}, "repeated"),
    ("cat\n", {"output_mode": "tf_idf", "idf_weights": [1.0]}, "tf_idf"),
])
def test_bad_vocabulary_files_are_refused(tmp_path, text, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fkeras.layers.StringLookup(vocabulary=_write(tmp_path, "v.txt", text), **kwargs)


def test_missing_vocabulary_file_is_refused(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        fkeras.layers.TextVectorization(vocabulary=str(tmp_path / "none.txt"))
    with pytest.raises(ValueError, match="not an integer"):
        fkeras.layers.IntegerLookup(vocabulary=_write(tmp_path, "bad.txt", "5\nx\n"))
