"""Keras 3's ``TextVectorization`` beside onnxforge's, built alike: the helpers the split and n-gram tests share."""
from __future__ import annotations

import numpy as np

from tests.keras_oracle.common import fkeras, keras


def both_layers(corpus, **kwargs):
    """The same layer in Keras and onnxforge, adapted on ``corpus`` unless a vocabulary is given."""
    layers = []
    for api in (keras, fkeras):
        layer = api.layers.TextVectorization(**kwargs)
        if "vocabulary" not in kwargs:
            layer.adapt(corpus)
        layers.append(layer)
    return layers


def assert_same(want_layer, got_layer, text):
    """Same vocabulary, and the same output on ``text`` (shape and values)."""
    assert [str(t) for t in got_layer.get_vocabulary()] == [str(t) for t in want_layer.get_vocabulary()]
    want = keras.ops.convert_to_numpy(want_layer(text))
    got = np.asarray(got_layer(text))
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def assert_keras_file_round_trip(want_layer, got_layer, text, tmp_path):
    """Each layer in a one-input model saved to ``.keras``; both files load in onnxforge and ours in Keras, all
    giving Keras's output on ``text``. Returns the layer Keras read from our file (for config checks)."""
    models = []
    for api, layer in ((keras, want_layer), (fkeras, got_layer)):
        inputs = api.Input((1,), dtype="string")
        models.append(api.Model(inputs, layer(inputs)))
    keras_path, ours_path = tmp_path / "keras.keras", tmp_path / "ours.keras"
    models[0].save(keras_path)
    models[1].save(ours_path)
    expected = keras.ops.convert_to_numpy(want_layer(text))
    for path in (keras_path, ours_path):
        again = fkeras.models.load_model(path)
        np.testing.assert_allclose(again.predict(text[:, None], verbose=0), expected, rtol=1e-6)
    theirs = keras.models.load_model(ours_path).layers[-1]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(theirs(text)), expected, rtol=1e-6)
    return theirs
