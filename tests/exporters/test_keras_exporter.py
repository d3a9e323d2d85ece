"""``from_keras`` / ``to_keras``: a Keras 3 model rebuilt from its config as the same onnxforge model gives
the same predictions, for every layer type both sides have; the way back gives Keras the same model;
unsupported layers and arguments are all named in one error."""
from __future__ import annotations

import os

import numpy as np
import pytest

# Keras reads models with any backend; torch is already a test dependency (the numpy backend imports jax).
os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras 3 on numpy 2 (its own notices)
L = keras.layers

import onnxforge  # noqa: E402
from exporters.keras_exporter import UnsupportedKerasLayerError, from_keras, to_keras  # noqa: E402
from tests.conftest import check_full  # noqa: E402


def _randomize(model, seed=0):
    """Random weights everywhere (zeros and ones would hide transposed or misplaced weights)."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        value = rng.normal(0, 0.3, w.shape).astype("float32")
        if "variance" in w.path:
            value = np.abs(value) + 0.5
        w.assign(value)


def _floats(*shape, seed=1):
    return np.random.default_rng(seed).normal(size=(3, *shape)).astype("float32")


# name: (layer factory, input shape, input dtype). One single-layer model per layer type.
LAYERS = {
    "Dense": (lambda: L.Dense(3, activation="relu"), (4,), "float32"),
    "Conv1D": (lambda: L.Conv1D(3, 2, padding="causal", dilation_rate=2), (6, 2), "float32"),
    "Conv2D": (lambda: L.Conv2D(3, 3, strides=2, padding="same", activation="sigmoid"), (6, 6, 2), "float32"),
    "DepthwiseConv2D": (lambda: L.DepthwiseConv2D(2, depth_multiplier=2), (5, 5, 2), "float32"),
    "SeparableConv2D": (lambda: L.SeparableConv2D(3, 2, activation="tanh"), (5, 5, 2), "float32"),
    "Conv2DTranspose": (lambda: L.Conv2DTranspose(3, 3, strides=2, padding="same"), (4, 4, 2), "float32"),
    "MaxPooling1D": (lambda: L.MaxPooling1D(2), (6, 2), "float32"),
    "MaxPooling2D": (lambda: L.MaxPooling2D(2, padding="same"), (5, 5, 2), "float32"),
    "AveragePooling1D": (lambda: L.AveragePooling1D(2), (6, 2), "float32"),
    "AveragePooling2D": (lambda: L.AveragePooling2D(2), (4, 4, 2), "float32"),
    "GlobalAveragePooling1D": (lambda: L.GlobalAveragePooling1D(), (4, 2), "float32"),
    "GlobalAveragePooling2D": (lambda: L.GlobalAveragePooling2D(), (4, 4, 2), "float32"),
    "GlobalMaxPooling1D": (lambda: L.GlobalMaxPooling1D(), (4, 2), "float32"),
    "GlobalMaxPooling2D": (lambda: L.GlobalMaxPooling2D(), (4, 4, 2), "float32"),
    "BatchNormalization": (lambda: L.BatchNormalization(momentum=0.9, epsilon=1e-2), (4, 2), "float32"),
    "LayerNormalization": (lambda: L.LayerNormalization(), (4, 2), "float32"),
    "Embedding": (lambda: L.Embedding(10, 3), (4,), "int32"),
    "Dropout": (lambda: L.Dropout(0.5), (4,), "float32"),
    "GaussianNoise": (lambda: L.GaussianNoise(0.5), (4,), "float32"),
    "Flatten": (lambda: L.Flatten(), (4, 2), "float32"),
    "Reshape": (lambda: L.Reshape((2, 4)), (4, 2), "float32"),
    "Permute": (lambda: L.Permute((2, 1)), (4, 2), "float32"),
    "ZeroPadding2D": (lambda: L.ZeroPadding2D(((1, 0), (2, 1))), (3, 3, 2), "float32"),
    "UpSampling2D": (lambda: L.UpSampling2D(2), (3, 3, 2), "float32"),
    "ReLU": (lambda: L.ReLU(max_value=0.5), (4,), "float32"),
    "LeakyReLU": (lambda: L.LeakyReLU(0.2), (4,), "float32"),
    "ELU": (lambda: L.ELU(), (4,), "float32"),
    "Softmax": (lambda: L.Softmax(), (4,), "float32"),
    "Activation": (lambda: L.Activation("gelu"), (4,), "float32"),
    "LSTM": (lambda: L.LSTM(3), (4, 2), "float32"),
    "GRU": (lambda: L.GRU(3, return_sequences=True), (4, 2), "float32"),
    "SimpleRNN": (lambda: L.SimpleRNN(3), (4, 2), "float32"),
    "Bidirectional": (lambda: L.Bidirectional(L.LSTM(3, return_sequences=True), merge_mode="concat"), (4, 2),
                      "float32"),
    "RNN": (lambda: L.RNN(L.LSTMCell(3), return_sequences=True), (4, 2), "float32"),
    "TimeDistributed": (lambda: L.TimeDistributed(L.Dense(3)), (4, 2), "float32"),
    "Masking": (lambda: L.Masking(), (4, 2), "float32"),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_each_layer_type_gives_keras_predictions_both_ways(name):
    factory, shape, dtype = LAYERS[name]
    x_in = keras.Input(shape, dtype=dtype)
    kmodel = keras.Model(x_in, factory()(x_in))
    _randomize(kmodel)
    x = np.random.default_rng(2).integers(0, 10, (3, *shape)) if dtype == "int32" else _floats(*shape)
    expected = kmodel.predict(x, verbose=0)
    model = from_keras(kmodel)
    layer = model.layers[-1]
    assert type(layer).__name__ == name and layer.name == kmodel.layers[-1].name
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-5)
    back = to_keras(model)
    np.testing.assert_allclose(back.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-5)


def test_functional_model_with_merges_two_inputs_and_two_outputs():
    img, side = keras.Input((6, 6, 2), name="img"), keras.Input((3,), name="side")
    a = L.Conv2D(4, 3, padding="same", activation="relu", name="c1")(img)
    b = L.Conv2D(4, 1, name="c2")(img)
    merged = [L.Add()([a, b]), L.Subtract()([a, b]), L.Multiply()([a, b]), L.Average()([a, b]),
              L.Maximum()([a, b]), L.Minimum()([a, b])]
    h = L.GlobalAveragePooling2D()(L.BatchNormalization()(L.Concatenate()(merged)))
    h = L.Concatenate()([h, side])
    kmodel = keras.Model([img, side], [L.Dense(2, activation="softmax", name="cls")(h), L.Dense(1, name="reg")(h)])
    _randomize(kmodel)
    xs = [_floats(6, 6, 2), _floats(3)]
    model = from_keras(kmodel)
    assert model.input_names == ["img", "side"] and model.output_names == ["cls", "reg"]
    for got, want in zip(model.predict(xs, verbose=0), kmodel.predict(xs, verbose=0)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_saved_keras_file_and_nested_sequential_then_fit_and_back(tmp_path):
    kmodel = keras.Sequential([keras.Input((5,)), L.Dense(4, activation="relu"),
                               keras.Sequential([L.Dense(3), L.Dropout(0.1)], name="inner"), L.Dense(2)])
    _randomize(kmodel)
    path = tmp_path / "model.keras"
    kmodel.save(path)
    x = _floats(5)
    model = from_keras(path)
    np.testing.assert_allclose(model.predict(x, verbose=0), kmodel.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    # Trained by onnxruntime, then handed back to Keras: Keras predicts what onnxforge predicts.
    model.compile(optimizer="adam", loss="mse")
    for program in model.compiled_programs.values():
        check_full(program.model)
    xs = np.random.default_rng(3).normal(size=(32, 5)).astype("float32")
    model.fit(xs, xs[:, :2] * 0.5, epochs=2, batch_size=8, verbose=0)
    back = to_keras(model)
    assert not np.allclose(back.get_weights()[0], kmodel.get_weights()[0])
    np.testing.assert_allclose(back.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_native_onnxforge_model_to_keras():
    model = onnxforge.Sequential([onnxforge.layers.Input((6, 3)), onnxforge.layers.GRU(4, return_sequences=True),
                                  onnxforge.layers.Flatten(), onnxforge.layers.Dense(2, activation="softmax")])
    x = _floats(6, 3)
    kmodel = to_keras(model)
    assert [type(layer).__name__ for layer in kmodel.layers] == ["GRU", "Flatten", "Dense"]
    np.testing.assert_allclose(kmodel.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_unsupported_layers_and_arguments_are_all_named():
    # TorchModuleWrapper: a Keras layer onnxforge lacks, since it runs torch code (RandomPerspective,
    # STFTSpectrogram and ContrastLimitedAdaptiveHistogramEqualization, used here before, convert now).
    import torch
    kmodel = keras.Sequential([keras.Input((16, 16, 1)), L.Flatten(),
                               L.TorchModuleWrapper(torch.nn.Linear(256, 8), name="vol"),
                               L.Dense(2, kernel_constraint=keras.constraints.MaxNorm(2), name="fc"),
                               L.BatchNormalization(renorm=True, name="bn")])
    with pytest.raises(UnsupportedKerasLayerError) as info:
        from_keras(kmodel)
    problems = info.value.problems
    assert len(problems) == 2    # the MaxNorm constraint converts (onnxforge.constraints)
    assert "'vol': class TorchModuleWrapper" in problems[0]
    # BatchNormalization takes Keras's renorm keyword and refuses a value it cannot honour, naming it.
    assert "'bn' (BatchNormalization)" in problems[1] and "renorm=True (batch renormalization) is not supported" \
        in problems[1]

    # Stacked cells used to be refused here; they convert now, weights and all.
    stacked = keras.Sequential([keras.Input((4, 2)), L.RNN([L.GRUCell(3), L.SimpleRNNCell(2)])])
    x = np.random.default_rng(0).standard_normal((2, 4, 2)).astype("float32")
    np.testing.assert_allclose(from_keras(stacked).predict(x, verbose=0),
                               keras.ops.convert_to_numpy(stacked(x)), rtol=1e-5, atol=1e-6)

    class Custom(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(TypeError, match="subclassed Keras model"):
        from_keras(Custom())
    with pytest.raises(TypeError, match="to_keras\\(\\) converts"):
        from onnxforge.models.onnx_model import OnnxModel

        to_keras(OnnxModel.__new__(OnnxModel))
