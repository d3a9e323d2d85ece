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


def _mask_probe_model(keras, named: bool):
    """A layer reporting which masks its call() got: ``mask=`` (keras.io's English-to-Spanish decoder,
    ``call(self, inputs, encoder_outputs, mask=None)``) or per-argument ``inputs_mask=``/``encoder_outputs_mask=``."""

    class Probe(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.supports_masking = True

        if named:
            def call(self, inputs, encoder_outputs, inputs_mask=None, encoder_outputs_mask=None):
                ops = keras.ops
                a = ops.zeros_like(inputs[..., 0]) if inputs_mask is None else ops.cast(inputs_mask, "float32")
                b = ops.zeros_like(encoder_outputs[..., 0]) if encoder_outputs_mask is None \
                    else 2.0 * ops.cast(encoder_outputs_mask, "float32")
                return ops.stack([a, b], axis=-1)
        else:
            def call(self, inputs, encoder_outputs, mask=None):
                ops = keras.ops
                a = ops.zeros_like(inputs[..., 0]) if mask is None else 1.0 + ops.cast(mask, "float32")
                return ops.stack([a, ops.sum(encoder_outputs, axis=-1)], axis=-1)

    dec = keras.Input(shape=(None,), dtype="int64")
    enc = keras.Input(shape=(None,), dtype="int64")
    embed = keras.layers.Embedding(5, 2, mask_zero=True, embeddings_initializer="ones")
    out = Probe()(embed(dec), embed(enc))
    return keras.Model([dec, enc], out)


@pytest.mark.parametrize("named", [False, True])
def test_call_with_two_tensor_arguments_gets_masks_by_keras_rule(named):
    # Keras 3 fills ``mask=`` only for a call with one tensor argument; with several, ``<argument>_mask``.
    # onnxforge gave the decoder the first argument's padding mask, which keras.io's decoder then combined
    # with its causal mask over the encoder's keys: other attention weights, other translations.
    dec = np.array([[1, 2, 0], [3, 0, 0]], "int64")
    enc = np.array([[4, 0, 0], [1, 2, 3]], "int64")
    got = {name: LIBS[name].ops.convert_to_numpy(_mask_probe_model(lib, named)([dec, enc]))
           for name, lib in LIBS.items()}
    np.testing.assert_array_equal(got["onnxforge"], got["keras"])
    if not named:
        assert not got["keras"][..., 0].any()   # mask stayed None
    else:
        np.testing.assert_array_equal(got["keras"][..., 1], 2.0 * (enc != 0))


@pytest.mark.parametrize("writer,reader", [("keras", "onnxforge"), ("onnxforge", "keras")])
def test_pretrained_embedding_constant_matrix_round_trips_through_keras_files(tmp_path, writer, reader):
    # keras.io "Using pre-trained word embeddings": Embedding(embeddings_initializer=Constant(matrix),
    # trainable=False). Keras writes the matrix as a "__numpy__" object, which onnxforge's Constant took as
    # the fill value (TypeError while loading); onnxforge wrote a plain list.
    matrix = np.random.default_rng(0).normal(size=(6, 3))
    src, dst = LIBS[writer], LIBS[reader]
    inputs = src.Input(shape=(None,), dtype="int32")
    embedding = src.layers.Embedding(6, 3, embeddings_initializer=src.initializers.Constant(matrix), trainable=False)
    model = src.Model(inputs, src.layers.GlobalAveragePooling1D()(embedding(inputs)))
    path = str(tmp_path / "embedding.keras")
    model.save(path)
    loaded = dst.models.load_model(path)
    x = np.array([[1, 5, 2]], "int32")
    np.testing.assert_allclose(dst.ops.convert_to_numpy(loaded(x)), src.ops.convert_to_numpy(model(x)), rtol=1e-6)
    rebuilt = dst.layers.Embedding.from_config(loaded.layers[1].get_config())
    rebuilt.build((None, 3))
    np.testing.assert_allclose(dst.ops.convert_to_numpy(rebuilt.embeddings), matrix.astype("float32"), rtol=1e-6)


@pytest.mark.parametrize("value", [2.0, np.float32(2.0), np.array(3.0), [1.0, 2.0], np.eye(2, dtype="float32")])
def test_constant_config_matches_keras(value):
    assert LIBS["onnxforge"].initializers.Constant(value).get_config() == \
        LIBS["keras"].initializers.Constant(value).get_config()
