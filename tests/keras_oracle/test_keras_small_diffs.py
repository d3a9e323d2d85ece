"""Small differences from Keras 3 that programs observe, each checked against Keras 3 itself (torch backend):
the dtype of an eager ``StringLookup`` / ``IntegerLookup`` encoding, ``add_weight`` with a positional name,
``tensor.device``, the refusal of ``tf.ragged`` and the mean over an empty axis."""
from __future__ import annotations

import numpy as np
import pytest

from tests.keras_oracle.common import LIBS, keras, onnxforge

_LOOKUPS = {"StringLookup": (["a", "b", "c"], [["a", "b"], ["c", "z"]], "string"),
            "IntegerLookup": ([1, 2, 3], [[1, 2], [3, 9]], "int64")}


@pytest.mark.parametrize("cls", sorted(_LOOKUPS))
@pytest.mark.parametrize("mode", ["int", "multi_hot", "count", "one_hot", "tf_idf"])
def test_lookup_dtypes_eager_and_symbolic_as_keras(cls, mode):
    # Keras encodes an eager call in the table's int64 (tf_idf: float32 weights); its symbolic spec says float32.
    vocabulary, data, in_dtype = _LOOKUPS[cls]
    kwargs = {"idf_weights": [1.0, 2.0, 3.0]} if mode == "tf_idf" else {}
    data = np.array([row[0] for row in data] if mode == "one_hot" else data)
    got = {}
    for lib, k in LIBS.items():
        layer = getattr(k.layers, cls)(vocabulary=vocabulary, output_mode=mode, **kwargs)
        eager = layer(data)
        symbolic = layer(k.Input(shape=data.shape[1:], dtype=in_dtype))
        got[lib] = (keras.backend.standardize_dtype(eager.dtype), str(symbolic.dtype), np.asarray(eager).tolist())
    assert got["onnxforge"] == got["keras"]


def test_add_weight_with_a_positional_name_is_refused_as_keras():
    messages = {}
    for lib, k in LIBS.items():
        class Legacy(k.layers.Layer):
            def build(self, input_shape):
                self.kernel = self.add_weight("kernel", shape=(2, 2))

            def call(self, x):
                return x
        with pytest.raises(ValueError) as info:
            Legacy()(np.ones((1, 2), "float32"))
        messages[lib] = str(info.value)
    assert messages["onnxforge"] == messages["keras"]
    assert "add_weight(shape=..., name='kernel')" in messages["onnxforge"]


def test_add_weight_positional_shape_initializer_dtype_as_keras():
    got = {}
    for lib, k in LIBS.items():
        class Positional(k.layers.Layer):
            def build(self, input_shape):
                self.w = self.add_weight((2, 3), "ones", "float64", name="w")

            def call(self, x):
                return x
        layer = Positional()
        layer(np.ones((1, 2), "float32"))
        got[lib] = (tuple(layer.w.shape), keras.backend.standardize_dtype(layer.w.dtype),
                    np.asarray(layer.w.numpy()).tolist(), layer.w.name)
        with pytest.raises(ValueError, match="`shape` was passed both positionally and as a keyword"):
            k.layers.Layer().add_weight((2,), shape=(2,))
    assert got["onnxforge"] == got["keras"]


@pytest.mark.parametrize("name", ["ragged", "RaggedTensor", "lookup", "saved_model"])
def test_refused_tf_names_end_in_one_period(name):
    with pytest.raises(AttributeError) as info:
        getattr(onnxforge, name)
    text = str(info.value)
    assert text.startswith(f"onnxforge has no tf.{name}: ") and text.endswith(".") and not text.endswith("..")
