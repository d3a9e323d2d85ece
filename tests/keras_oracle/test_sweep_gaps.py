"""Small Keras-semantics gaps a docstring sweep found, each checked against Keras 3 (torch backend) on the
same inputs: dtypes of eager merge layers, ops on float64, bfloat16 creation ops, ``keras.Function`` on
bare KerasTensors, ``initializers.get`` on arrays."""
from __future__ import annotations

import numpy as np
import pytest

from .common import LIBS, fkeras, keras

MERGES = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot"]


def _both(fn):
    """``fn(lib)`` for Keras and onnxforge, as NumPy arrays."""
    return {name: np.asarray(lib.ops.convert_to_numpy(fn(lib))) for name, lib in LIBS.items()}


# ------------------------------------------------------------------ 1. eager merge layers keep integer dtypes
@pytest.mark.parametrize("dtypes", [("int32", "int32"), ("int64", "int64"), ("int32", "int64"),
                                    ("int32", "float32"), ("bool", "bool")])
def test_eager_merge_layers_keep_keras_dtypes(dtypes):
    base = np.array([[0, 1, 2], [3, 0, 5]])
    x, y = base.astype(dtypes[0]), (base[::-1] % 3).astype(dtypes[1])
    for name in MERGES:
        if "int64" in dtypes and name in ("Maximum", "Minimum"):
            continue   # Keras on torch answers int32 here (its masked merge path), but int64 for Add
        if dtypes == ("bool", "bool") and name == "Subtract":
            with pytest.raises(TypeError, match="bool"):
                fkeras.layers.Subtract()([x, y])   # torch refuses bool subtraction too
            continue
        kwargs = {"axes": 1} if name == "Dot" else {}
        got = _both(lambda lib: getattr(lib.layers, name)(**kwargs)([x, y]))
        assert got["onnxforge"].dtype == got["keras"].dtype, (name, dtypes)
        np.testing.assert_allclose(got["onnxforge"].astype("float64"), got["keras"].astype("float64"),
                                   rtol=1e-6, err_msg=name)


def test_symbolic_merge_of_integers_is_the_compute_dtype_as_in_keras():
    for name in MERGES:
        kwargs = {"axes": 1} if name == "Dot" else {}
        dtypes = {n: getattr(lib.layers, name)(**kwargs)([lib.Input((3,), dtype="int32")] * 2).dtype
                  for n, lib in LIBS.items()}
        assert dtypes["onnxforge"] == dtypes["keras"], name
