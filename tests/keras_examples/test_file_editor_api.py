"""Keras 3.15's ``keras.saving.KerasFileEditor`` against real Keras's: both read the same ``weights_dict`` from a
``.keras`` file saved by either framework (objects are named by their path in the file, ``layers/dense_1``,
not by the layers' names); the first layer deleted and the second renamed into its place (``delete_object``,
``rename_object``), then written as ``.weights.h5`` by onnxforge's editor, loads into a one-layer model in
Keras and onnxforge; ``compare`` finds the same mismatches as Keras's (a deleted weight, an added one);
onnxforge's editor also writes a whole ``.keras`` archive (config and metadata kept), which both frameworks
load. The weights are
copied, never computed: the trees are equal exactly; predictions made from them in the other framework agree
to float32 order (1e-6).
"""
from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from .harness import fkeras, keras as real_keras, to_numpy


def _model(keras):
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu", name="hidden"),
                             keras.layers.Dense(2, name="head")], name="net")


def _editor(keras, path):
    with contextlib.redirect_stdout(io.StringIO()):   # both print where the file came from
        return keras.saving.KerasFileEditor(str(path))


def _assert_same_tree(got, want, path=""):
    assert sorted(got) == sorted(want), path
    for key in want:
        if isinstance(want[key], dict):
            _assert_same_tree(got[key], want[key], f"{path}/{key}")
        else:
            np.testing.assert_array_equal(np.asarray(got[key]), np.asarray(want[key]), err_msg=f"{path}/{key}")


@pytest.mark.parametrize("saved_by", ["keras", "onnxforge"])
def test_editor_reads_and_edits_as_keras_does(tmp_path, saved_by):
    api = real_keras if saved_by == "keras" else fkeras
    model = _model(api)
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    expected = np.asarray(to_numpy(model.predict(x, verbose=0)))
    path = tmp_path / "model.keras"
    model.save(str(path))
    want, got = _editor(real_keras, path), _editor(fkeras, path)
    _assert_same_tree(got.weights_dict, want.weights_dict)
    assert got.config == want.config

    for editor in (want, got):
        editor.delete_object("layers/dense")
        editor.rename_object("dense_1", "dense")
    _assert_same_tree(got.weights_dict, want.weights_dict)
    edited = tmp_path / "head_only.weights.h5"
    got.save(edited)
    head = [np.asarray(to_numpy(w)) for w in model.layers[1].get_weights()]
    features = np.random.default_rng(1).normal(size=(5, 3)).astype("float32")
    for keras in (real_keras, fkeras):
        head_only = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        with contextlib.redirect_stdout(io.StringIO()):
            assert got.compare(head_only)["status"] == "success"
        head_only.load_weights(str(edited))
        np.testing.assert_allclose(to_numpy(head_only.predict(features, verbose=0)), features @ head[0] + head[1],
                                   rtol=1e-6, atol=1e-6)

    # The whole archive, written by onnxforge's editor: the original config with the (unedited) weights.
    archive = tmp_path / "resaved.keras"
    _editor(fkeras, path).save(archive)
    for keras in (real_keras, fkeras):
        np.testing.assert_allclose(to_numpy(keras.models.load_model(str(archive)).predict(x, verbose=0)),
                                   expected, rtol=1e-6, atol=1e-6)


def test_compare_counts_what_keras_counts(tmp_path):
    path = tmp_path / "model.keras"
    _model(fkeras).save(str(path))
    results = {}
    for keras in (real_keras, fkeras):
        editor = _editor(keras, path)
        editor.delete_weight("dense", "1")                        # the first layer's bias
        editor.add_weights("dense_1", {"2": np.zeros((7,), "float32")})
        with contextlib.redirect_stdout(io.StringIO()):
            results[keras.__name__] = editor.compare(_model(keras))
    assert results["onnxforge.keras"]["status"] == results["keras"]["status"] == "error"
    # The missing bias and the extra weight; dense/0, dense_1/0 and dense_1/1 match. (Keras 3.15 reports 3
    # errors and 4 matches: its recursive count adds a sub-object's running total to the total it started from.)
    assert results["onnxforge.keras"] == {"status": "error", "error_count": 2, "match_count": 3}

    editor = _editor(fkeras, path)
    with pytest.raises(ValueError, match="Source name 'nope' does not appear"):
        editor.delete_object("nope")
    with pytest.raises(ValueError, match="Weight 9 not found in object dense"):
        editor.delete_weight("dense", "9")
    with pytest.raises(ValueError, match="expected a `.keras` `.weights.h5` extension"):
        fkeras.saving.KerasFileEditor(str(tmp_path / "model.h5"))
    editor.delete_object("layers/dense")
    assert list(editor.weights_dict["layers"]) == ["dense_1"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        editor.summary()
    assert "dense_1" in out.getvalue() and "0: shape=(3, 2), dtype=float32" in out.getvalue()
