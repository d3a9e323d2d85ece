"""``Lambda`` against real Keras 3: traced functions (shape inference, outputs, gradients), Keras's
serialization rules (bytecode only with safe mode off, named functions by name) and clear refusals."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

import onnxforge.keras  # noqa: E402
from onnxforge import layers, ops  # noqa: E402
from onnxforge.layers.safe_mode import SafeModeScope  # noqa: E402
from onnxforge.layers.serialization import deserialize, serialize  # noqa: E402
from tests.layers.keras_parity import check_layer_parity  # noqa: E402

R = np.random.default_rng(2)
X = R.normal(size=(3, 4, 5)).astype("float32")


def _model(fn_of_lib, **lambda_kwargs):
    def make(keras):
        x = keras.Input((4, 5))
        h = keras.layers.Dense(5)(x)
        y = keras.layers.Lambda(fn_of_lib(keras), **lambda_kwargs)(h)
        return keras.Model(x, keras.layers.Dense(2)(y))
    return make


def test_lambda_of_ops_infers_its_shape_matches_keras_and_trains():
    make = _model(lambda lib: (lambda t: lib.ops.mean(lib.ops.square(t), axis=1) * 0.5 + 1.0))
    kmodel, fmodel = check_layer_parity(make, X, train=True, native=True)
    assert fmodel.layers[2].compute_output_shape((None, 4, 5)) == (None, 5)


def test_keras_model_with_a_python_lambda_converts_through_its_bytecode():
    # `keras` is a global of the lambda: rebuilt from bytecode, it reads onnxforge's keras namespace.
    make = _model(lambda lib: (lambda t: keras.ops.max(t, axis=-1, keepdims=True) - keras.ops.relu(t)))
    # (Keras itself cannot rebuild this model from its config: its bytecode loader lacks `keras`.)
    check_layer_parity(make, X, train=True, back_to_keras=False)


def test_lambda_arguments_and_explicit_output_shape_match_keras():
    def fn(lib):
        def scale(t, factor):
            return lib.ops.tanh(t) * factor
        return scale
    make = _model(fn, output_shape=(4, 5), arguments={"factor": 3.0})
    check_layer_parity(make, X, train=True, native=True, custom_objects={"scale": fn(onnxforge.keras)})


def test_python_lambda_bytecode_needs_safe_mode_off_as_in_keras():
    layer = layers.Lambda(lambda t: t * 2.0 + 1.0, name="affine")
    config = serialize(layer)
    assert config["config"]["function"]["class_name"] == "__lambda__"
    with pytest.raises(ValueError, match="safe_mode=False"):
        deserialize(config)
    with SafeModeScope(False):
        again = deserialize(config)
    x = layers.Input((3,))
    from onnxforge.models import Model

    model = Model(x, again(x))
    np.testing.assert_allclose(model.predict(np.ones((2, 3), "float32"), verbose=0), np.full((2, 3), 3.0))


def test_named_function_is_stored_by_name_and_found_in_custom_objects():
    def triple(t):
        return t * 3.0

    config = serialize(layers.Lambda(triple))
    assert config["config"]["function"]["class_name"] == "function"
    with pytest.raises(ValueError, match="Could not locate function 'triple'"):
        deserialize(config)
    assert deserialize(config, custom_objects={"triple": triple}).function is triple
    # keras.ops functions are found by name, as Keras finds its own.
    assert deserialize(serialize(layers.Lambda(ops.tanh))).function is ops.tanh


def test_untraceable_function_is_refused_with_the_layer_name_and_a_hint():
    with pytest.raises(ValueError, match=r"Lambda layer 'np_mean'.*keras.ops"):
        layers.Lambda(lambda t: float(np.mean(t)), name="np_mean")(layers.Input((3,)))
