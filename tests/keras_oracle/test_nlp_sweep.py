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


def test_dict_call_casts_each_value_to_its_own_inputs_dtype():
    # The dtypes of a dict's values follow the inputs they are matched to, not the sorted keys' order.
    fkeras = LIBS["onnxforge"]
    ids = fkeras.Input(shape=(3,), dtype="int64", name="tokens")
    dense = fkeras.Input(shape=(2,), name="a_features")
    emb = fkeras.layers.Flatten()(fkeras.layers.Embedding(5, 2)(ids))
    model = fkeras.Model([ids, dense], fkeras.layers.Concatenate()([emb, dense]))
    tokens, feats = np.array([[1, 2, 4]]), np.array([[0.5, -1.0]], "float32")
    out = model({"tokens": tokens, "a_features": feats})
    np.testing.assert_allclose(np.asarray(out), model.predict([tokens, feats], verbose=0), rtol=1e-6)


def test_end_to_end_string_model_called_on_a_numpy_array_of_texts():
    # Pretrained word embeddings / text classification: end_to_end_model(np.array([["this message ..."]])).
    fkeras = LIBS["onnxforge"]
    vectorizer = fkeras.layers.TextVectorization(max_tokens=10, output_sequence_length=4)
    vectorizer.adapt(["a good film", "a bad film", "good good"])
    string_input = fkeras.Input(shape=(1,), dtype="string")
    model = fkeras.Model(string_input, vectorizer(string_input))
    texts = np.array([["good film"], ["bad"]])
    np.testing.assert_array_equal(np.asarray(model(texts)), np.asarray(vectorizer(texts)))
    np.testing.assert_array_equal(np.asarray(model(texts)), model.predict(texts, verbose=0))
    with pytest.raises(ValueError, match="expects a string input; received an array of dtype float32"):
        model(np.zeros((2, 1), "float32"))
