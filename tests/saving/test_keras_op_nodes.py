"""A functional model that calls ``keras.ops`` on its tensors, saved by real Keras 3 as a ``.keras`` file and
loaded by onnxforge: the op nodes become ``OpCall`` layers (they were refused as "no onnxforge counterpart")."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

import onnxforge.keras as fkeras  # noqa: E402


def _keras_model(lib=None):
    lib = lib or keras
    ops = lib.ops
    inputs = lib.Input((4,))
    x = lib.layers.Dense(6)(inputs)
    x = ops.expand_dims(x, -1)
    x = ops.concatenate([x, ops.square(x)], axis=-1)
    x = ops.transpose(x, (0, 2, 1))
    x = ops.reshape(x, (-1, 12))
    x = ops.sum(ops.softmax(x, axis=-1) * x, axis=-1, keepdims=True)
    x = ops.maximum(x, 0.25)
    x = ops.where(x > 0.5, x, ops.zeros_like(x))
    return lib.Model(inputs, lib.layers.Dense(2)(ops.tanh(x)))


def test_keras_op_nodes_load_and_predict_alike(tmp_path):
    model = _keras_model()
    path = tmp_path / "ops.keras"
    model.save(path)
    x = np.random.default_rng(0).random((3, 4)).astype(np.float32)
    loaded = fkeras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), np.asarray(model.predict(x, verbose=0)),
                               rtol=1e-5, atol=1e-6)


def test_onnxforge_op_calls_load_in_keras(tmp_path):
    """The other way: onnxforge's OpCall layers are written as Keras's op nodes, so Keras reads the file."""
    model = _keras_model(fkeras)
    path = tmp_path / "of_ops.keras"
    model.save(path)
    x = np.random.default_rng(1).random((3, 4)).astype(np.float32)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(np.asarray(loaded.predict(x, verbose=0)), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    again = fkeras.models.load_model(path)   # and onnxforge reads its own file back
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


def test_an_unknown_keras_op_is_named(tmp_path):
    from onnxforge.saving.keras_format.op_nodes import keras_op_entry_to_opcall

    entry = {"module": "keras.src.ops.numpy", "class_name": "NoSuchOp", "config": {"name": "no_such_op"},
             "inbound_nodes": [{"args": [], "kwargs": {}}]}
    assert "NoSuchOp has no onnxforge counterpart" in keras_op_entry_to_opcall(entry)
    entry = {"module": "keras.src.ops.numpy", "class_name": "Sum", "config": {"name": "s", "bogus": 1},
             "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__", "config": {}}], "kwargs": {}}]}
    assert "do not fit" in keras_op_entry_to_opcall(entry)


_ACTIVATIONS = ["swish", "silu", "gelu", "relu", "sigmoid", "tanh", "softmax", "elu", "selu", "softplus",
                "softsign", "leaky_relu", "relu6", "hard_sigmoid", "log_softmax", "exponential", "celu",
                "hard_shrink", "squareplus", "log_sigmoid"]


def _activation_model(lib):
    """keras.activations functions applied to functional tensors (keras.io MobileViT's
    ``m = keras.activations.swish(m)``), gelu with its default ``approximate=False`` and relu with arguments."""
    inputs = lib.Input((6,))
    x = lib.layers.Dense(6)(inputs)
    outs = [getattr(lib.activations, name)(x) for name in _ACTIVATIONS]
    outs.append(lib.activations.relu(x, negative_slope=0.1, max_value=0.5, threshold=-0.2))
    outs.append(lib.activations.gelu(x, approximate=True))
    return lib.Model(inputs, lib.layers.Concatenate()(outs))


@pytest.mark.parametrize("writer", ["keras", "onnxforge"])
def test_activations_on_functional_tensors_load_in_the_other_framework(writer, tmp_path):
    """Keras records ``keras.activations.swish(x)`` as its ``Silu`` op node (``relu`` as the activations
    module's ``ReLU`` operation); onnxforge writes and reads the same nodes, so either file loads in both."""
    made = _activation_model(keras if writer == "keras" else fkeras)
    path = tmp_path / f"{writer}.keras"
    made.save(path)
    x = np.random.default_rng(2).normal(size=(3, 6)).astype(np.float32)
    want = np.asarray(keras.ops.convert_to_numpy(made.predict(x, verbose=0)))
    for lib in (keras, fkeras):
        loaded = lib.models.load_model(path)
        np.testing.assert_allclose(np.asarray(keras.ops.convert_to_numpy(loaded.predict(x, verbose=0))), want,
                                   rtol=1e-5, atol=1e-6, err_msg=f"{writer} file in {lib.__name__}")
