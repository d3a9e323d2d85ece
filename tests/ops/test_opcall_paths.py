"""The op path an ``OpCall`` node writes into a model's config: stable across module splits, so files
saved by one version load in another (``ops.reshape`` is recorded as ``numpy.reshape`` though it lives in
``numpy_shapes.py``; ``ops.tril`` as ``arrays.tril``)."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as of
from onnxforge import ops
from onnxforge.layers.operators import OpCall

X = np.random.default_rng(0).normal(size=(2, 3, 3)).astype("float32")


def _op_paths(model: of.Model) -> list[str]:
    return [entry["config"]["op"] for entry in model.get_config()["layers"] if entry["class_name"] == "OpCall"]


def _model() -> of.Model:
    inp = of.Input((3, 3))
    x = ops.tril(ops.reshape(inp, (-1, 3, 3)))        # numpy_shapes, arrays_creation
    x = ops.flip(ops.expand_dims(x, 1), axis=2)         # numpy_shapes, arrays
    return of.Model(inp, ops.sum(x, axis=1))            # numpy


def test_split_modules_record_the_paths_they_had_before_the_split():
    assert _op_paths(_model()) == ["numpy.reshape", "arrays.tril", "numpy.expand_dims", "arrays.flip",
                                   "numpy.sum"]


def test_a_config_round_trip_rebuilds_the_same_model():
    model = _model()
    clone = of.Model.from_config(model.get_config())
    assert _op_paths(clone) == _op_paths(model)
    want = np.flip(np.tril(X)[:, None], axis=2).sum(axis=1)
    np.testing.assert_allclose(model.predict(X, verbose=0), want, rtol=1e-6)
    np.testing.assert_allclose(clone.predict(X, verbose=0), want, rtol=1e-6)


@pytest.mark.parametrize("path", ["numpy.reshape", "numpy_shapes.reshape", "arrays.eye", "arrays_creation.eye",
                                  "numpy.eye"])
def test_old_and_new_module_paths_both_resolve(path):
    assert OpCall(path).op == path


def test_an_unknown_path_names_itself():
    with pytest.raises(ValueError, match="'arrays.no_such_op'"):
        OpCall("arrays.no_such_op")
