"""Calls from keras.io guides and tensorflow.org tutorials not ported before, that onnxforge answered differently
from Keras 3 (torch backend here; TensorFlow 2.21's Keras gave the same answers when the programs were run).

Programs run (small shapes, synthetic data of the tutorial's shapes and dtypes, 1-2 epochs), each with
``import onnxforge as tf`` / ``import onnxforge.keras as keras`` and with TensorFlow 2.21 / Keras 3:

* tensorflow.org quickstart/beginner: works.
* quickstart/advanced (subclassed model, ``tf.function`` train and test steps, metric trackers): works.
* keras/regression (pandas frames and series into ``adapt`` / ``fit`` / ``predict``, ``tf.linspace``, ``.keras``
  round trip): works.
* keras/overfit_and_underfit (gzipped ``CsvDataset``, ``batch().map().unbatch()``, ``InverseTimeDecay`` on a
  NumPy array, EarlyStopping, TensorBoard, l2 regularizers, ``tf.add_n(model.losses)``): works.
* keras/save_and_load (ModelCheckpoint weights with ``{epoch:04d}`` and ``save_freq``, ``.keras``, ``.h5``): works;
  ``tf.saved_model`` is refused by design (ONNX or ``.keras`` instead).
* images/data_augmentation: fixed here -- ``Sequential([Resizing, Rescaling])`` called on a uint8 image resized
  the integers and gave int64 (Keras casts the data to the input it builds, float32); see below.
"""
from __future__ import annotations

import numpy as np
import pytest

from .common import LIBS


def _first_call(api, make_layers, x):
    model = api.Sequential(make_layers(api))
    out = model(x)
    return np.asarray(api.ops.convert_to_numpy(out)), str(model.inputs[0].dtype)


@pytest.mark.parametrize("case", ["resize", "flatten", "lambda"])
def test_first_call_of_a_sequential_casts_integer_data_to_the_first_layers_dtype(case):
    """tensorflow.org's data_augmentation tutorial: ``resize_and_rescale(image)`` on a uint8 image."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (1, 5, 6, 3)).astype("uint8")
    makers = {"resize": lambda k: [k.layers.Resizing(3, 4), k.layers.Rescaling(1 / 255)],
              "flatten": lambda k: [k.layers.Flatten()],
              "lambda": lambda k: [k.layers.Lambda(lambda t: t / 2)]}
    got = {lib: _first_call(api, makers[case], x) for lib, api in LIBS.items()}
    assert got["onnxforge"][0].dtype == got["keras"][0].dtype == np.float32
    assert got["onnxforge"][1] == got["keras"][1] == "float32"
    np.testing.assert_allclose(got["onnxforge"][0], got["keras"][0], rtol=1e-5, atol=1e-5)


def test_first_call_of_a_sequential_keeps_integer_ids_for_an_embedding():
    """Ids stay integers (Keras casts them to float32 and back: same rows below 2**24)."""
    ids = np.array([[1, 2, 3]], "int64")
    outs, inputs = {}, {}
    for lib, api in LIBS.items():
        model = api.Sequential([api.layers.Embedding(5, 2, embeddings_initializer="ones")])
        outs[lib] = np.asarray(api.ops.convert_to_numpy(model(ids)))
        inputs[lib] = str(model.inputs[0].dtype)
    assert inputs == {"keras": "float32", "onnxforge": "int64"}
    np.testing.assert_array_equal(outs["onnxforge"], outs["keras"])
    assert outs["onnxforge"].dtype == np.float32
