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
