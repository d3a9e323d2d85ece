"""``onnxforge.keras.backend`` against Keras 3's ``keras.backend`` helpers."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

import onnxforge.keras as fkeras  # noqa: E402

B = fkeras.backend


def test_settings_match_keras_defaults():
    assert B.epsilon() == keras.backend.epsilon()
    assert B.floatx() == keras.backend.floatx()
    assert B.image_data_format() == keras.backend.image_data_format()


@pytest.mark.parametrize("dtypes", [("int32", "float32"), ("int64", "float16"), ("int8", "uint8"), ("bool", "int32"),
                                    (int, float), ("float16", "bfloat16"), ("int64", float), ("float64", "float32"),
                                    ("int32", int), ("uint8", "int64"), ("int64",), ("uint64", "int8"),
                                    ("uint32", "int8"), ("uint8", int), ("bool", int), ("bool", float), (float,),
                                    ("int16", "float16"), ("uint64", "uint8"), ("bool",)])
def test_result_type_matches_keras(dtypes):
    assert B.result_type(*dtypes) == keras.backend.result_type(*dtypes)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "int8", "uint16", "bool", "int64"])
def test_dtype_predicates_match_keras(dtype):
    assert B.is_float_dtype(dtype) == keras.backend.is_float_dtype(dtype)
    assert B.is_int_dtype(dtype) == keras.backend.is_int_dtype(dtype)
    assert B.standardize_dtype(dtype) == keras.backend.standardize_dtype(dtype)


def test_clear_session_resets_layer_names_and_uids():
    B.clear_session()
    assert fkeras.layers.Dense(2).name == "dense"
    assert fkeras.layers.Dense(2).name == "dense_1"
    assert [B.get_uid("a"), B.get_uid("a"), B.get_uid("b")] == [1, 2, 1]
    B.clear_session()
    assert fkeras.layers.Dense(2).name == "dense" and B.get_uid("a") == 1
    assert B.is_keras_tensor(fkeras.Input((2,))) and not B.is_keras_tensor(1.0)


def test_set_value_and_get_value_reach_the_learning_rate_and_variables():
    """tf.keras scripts: ``K.set_value(model.optimizer.learning_rate, x)`` changes the rate fed to the graph."""
    import numpy as np

    from onnxforge.variables import Variable

    opt = fkeras.optimizers.SGD(learning_rate=0.1)
    fkeras.backend.set_value(opt.learning_rate, 0.02)
    assert opt.learning_rate == 0.02 and fkeras.backend.get_value(opt.learning_rate) == np.float32(0.02)
    v = Variable(np.zeros(2, np.float32), "w")
    fkeras.backend.set_value(v, [1.0, 2.0])
    got = fkeras.backend.get_value(v)
    got[0] = 9.0                         # a copy, as tf.keras's
    assert v.numpy().tolist() == [1.0, 2.0]
    with pytest.raises(TypeError, match="assign"):
        fkeras.backend.set_value(0.1, 0.2)
