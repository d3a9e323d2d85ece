"""What the keras.io text, sequence and timeseries programs lean on, against Keras 3 (torch backend): each test
is one line of such a program that onnxforge once got wrong."""
from __future__ import annotations

import numpy as np
import pytest

from .common import LIBS, copy_weights, random_weights


def _two_input_model(keras):
    # Named so that the sorted keys ("decoder_inputs" < "encoder_inputs") differ from the inputs' order.
    enc = keras.Input(shape=(3,), name="encoder_inputs")
    dec = keras.Input(shape=(2,), name="decoder_inputs")
    out = keras.layers.Dense(4, name="head")(keras.layers.Concatenate()([keras.layers.Dense(2)(enc), dec]))
    return keras.Model([enc, dec], out)


def test_dict_call_of_a_list_input_model_matches_inputs_by_name():
    # English-to-Spanish transformer: transformer({"encoder_inputs": ..., "decoder_inputs": ...}) while decoding.
    rng = np.random.default_rng(0)
    enc, dec = rng.normal(size=(2, 3)).astype("float32"), rng.normal(size=(2, 2)).astype("float32")
    models = {name: _two_input_model(lib) for name, lib in LIBS.items()}
    random_weights(models["keras"])
    copy_weights(models["keras"], models["onnxforge"])
    for name, model in models.items():
        ops = LIBS[name].ops
        by_dict = ops.convert_to_numpy(model({"encoder_inputs": enc, "decoder_inputs": dec}))
        by_list = ops.convert_to_numpy(model([enc, dec]))
        np.testing.assert_allclose(by_dict, by_list, rtol=1e-6, err_msg=name)
        models[name] = by_dict
    np.testing.assert_allclose(models["onnxforge"], models["keras"], rtol=1e-5, atol=1e-6)


def test_dict_call_symbolic_and_missing_key():
    fkeras = LIBS["onnxforge"]
    model = _two_input_model(fkeras)
    a, b = fkeras.Input(shape=(3,), name="a"), fkeras.Input(shape=(2,), name="b")
    outer = fkeras.Model([a, b], model({"decoder_inputs": b, "encoder_inputs": a}))
    x, y = np.ones((1, 3), "float32"), np.zeros((1, 2), "float32")
    np.testing.assert_allclose(outer.predict([x, y], verbose=0), model.predict([x, y], verbose=0), rtol=1e-6)
    with pytest.raises(ValueError, match=r"missing .*decoder_inputs"):
        model({"encoder_inputs": x, "decoder": y})
