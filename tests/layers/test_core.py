"""Dense, Activation, Embedding and the Layer base contract (run_layer_test style)."""
from __future__ import annotations

import numpy as np
import pytest

from onnxforge import layers as L
from onnxforge import regularizers
from onnxforge.layers.base import to_snake_case
from tests.layers.helpers import run, trace


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def roundtrip(layer):
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    return clone


# ------------------------------------------------------------------ Dense
def test_dense_shape_weights_config():
    layer = L.Dense(4, activation="relu", name="d1")
    y = layer(L.Input(shape=(3,)))
    assert y.shape == (None, 4) and y.dtype == "float32"
    assert [w.path for w in layer.weights] == ["d1/kernel", "d1/bias"]
    assert [w.shape for w in layer.weights] == [(3, 4), (4,)]
    assert layer.count_params() == 16
    clone = roundtrip(layer)
    assert clone.units == 4 and clone.activation is layer.activation and not clone.built


def test_dense_known_values_rank3_and_no_bias():
    layer = L.Dense(3, use_bias=False)
    layer.build((None, 5, 2))
    kernel = np.arange(6, dtype=np.float32).reshape(2, 3) / 10
    layer.set_weights([kernel])
    x = _x(4, 5, 2)
    np.testing.assert_allclose(run(layer, x), x @ kernel, rtol=1e-5, atol=1e-6)


def test_dense_bias_activation_and_two_batch_sizes():
    layer = L.Dense(2, activation="sigmoid")
    layer.build((None, 3))
    k, b = _x(3, 2, seed=1), _x(2, seed=2)
    layer.set_weights([k, b])
    traced = trace(layer, ((3,), np.float32))
    for n in (1, 7):
        x = _x(n, 3, seed=n)
        np.testing.assert_allclose(traced(x), 1 / (1 + np.exp(-(x @ k + b))), rtol=1e-5, atol=1e-6)


def test_dense_errors():
    with pytest.raises(ValueError, match="units=-3"):
        L.Dense(-3)
    with pytest.raises(TypeError, match=r"Dense.*'foo'"):
        L.Dense(3, foo=1)
    layer = L.Dense(2, name="fc")
    layer(L.Input(shape=(4,)))
    with pytest.raises(ValueError, match=r'"fc".*axis -1.*value 4.*\(None, 5\)'):
        layer(L.Input(shape=(5,)))
    with pytest.raises(ValueError, match=r'"fc2".*min_ndim=2.*ndim=1'):
        L.Dense(2, name="fc2")(L.Input(batch_shape=(3,)))
    with pytest.raises(ValueError, match="kernel_constraint=3"):
        L.Dense(2, kernel_constraint=3)
    with pytest.raises(ValueError, match="bias_constraint='no_such'"):
        L.Dense(2, bias_constraint="no_such")


def test_set_weights_errors():
    layer = L.Dense(2, name="sw")
    layer.build((None, 3))
    with pytest.raises(ValueError, match="length 1, but the layer was expecting 2"):
        layer.set_weights([np.zeros((3, 2))])
    with pytest.raises(ValueError, match=r"sw weight shape \(3, 2\) is not compatible.*\(2, 3\)"):
        layer.set_weights([np.zeros((2, 3)), np.zeros(2)])
    with pytest.raises(ValueError, match="isn't built"):
        L.Dense(2).count_params()


def test_auto_names_and_snake_case():
    a, b = L.Dense(1), L.Dense(1)
    assert a.name.startswith("dense") and b.name != a.name
    assert to_snake_case("Conv2DTranspose") == "conv2d_transpose"
    assert to_snake_case("ReLU") == "re_lu"
    assert to_snake_case("BatchNormalization") == "batch_normalization"


def test_trainable_flag_freezes_weights():
    layer = L.Dense(2)
    layer.build((None, 3))
    assert len(layer.trainable_weights) == 2
    layer.trainable = False
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 2
    assert not any(w.trainable for w in layer.weights)
    frozen = L.Dense(2, trainable=False)
    frozen.build((None, 3))
    assert frozen.trainable_weights == [] and not frozen.kernel.trainable


@pytest.mark.parametrize("training", [True, False])
def test_weight_regularizers_add_losses_in_training_and_evaluation(training):
    # Keras adds weight regularization to the evaluation loss too (it shows in val_loss).
    layer = L.Dense(2, kernel_regularizer=regularizers.L2(0.1), bias_regularizer="l1",
                    bias_initializer="ones")
    layer.build((None, 3))
    x = _x(5, 3)
    traced = trace(layer, ((3,), np.float32), training=training, weights="inputs")
    out = traced.session.run(None, {"x0": x, layer.kernel.path: layer.kernel.numpy(),
                                    layer.bias.path: layer.bias.numpy()})
    names = [o.name for o in traced.model.graph.output]
    losses = sorted(float(out[names.index(n)]) for n in traced.loss_names)
    expected = sorted([0.1 * float(np.sum(layer.kernel.numpy() ** 2)), 0.01 * 2.0])
    np.testing.assert_allclose(losses, expected, rtol=1e-5)


def test_activity_regularizer_is_divided_by_batch():
    layer = L.Dense(2, activity_regularizer=regularizers.L1(0.5))
    layer.build((None, 3))
    traced = trace(layer, ((3,), np.float32), training=True)
    x = _x(4, 3)
    out = traced.run(x)
    y = out["out_0"]
    np.testing.assert_allclose(out["loss_0"], 0.5 * np.abs(y).sum() / 4, rtol=1e-5)


def test_custom_layer_tracks_sublayers_and_infers_shapes():
    class Block(L.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.inner = [L.Dense(3, activation="relu"), L.Dense(2)]

        def call(self, x):
            for layer in self.inner:
                x = layer(x)
            return x

    block = Block()
    y = block(L.Input(shape=(4,)))
    assert y.shape == (None, 2)
    assert len(block.weights) == 4 and block.count_params() == 4 * 3 + 3 + 3 * 2 + 2
    block.trainable = False
    assert block.trainable_weights == [] and not block.inner[0].trainable
    assert block.compute_output_shape((None, 4)) == (None, 2)
    block.inner.append(L.Dense(1))  # appended later: still found
    assert block._flat_sublayers()[-1] is block.inner[-1]


def test_call_on_non_tensors_is_refused():
    with pytest.raises(TypeError, match=r"'dense_\w*' was called on str values.*numpy arrays"):
        L.Dense(2)("abc")


# ------------------------------------------------------------------ Activation
def test_activation_layer():
    x = _x(3, 4)
    np.testing.assert_allclose(run(L.Activation("tanh"), x), np.tanh(x), rtol=1e-5, atol=1e-6)
    layer = roundtrip(L.Activation("softmax"))
    y = run(layer, x)
    np.testing.assert_allclose(y, np.exp(x) / np.exp(x).sum(-1, keepdims=True), rtol=1e-5)
    with pytest.raises(ValueError, match="Unknown activation"):
        L.Activation("nope")


# ------------------------------------------------------------------ Embedding
@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float32])
def test_embedding_gathers_rows(dtype):
    layer = L.Embedding(10, 3, mask_zero=True)
    y = layer(L.Input(shape=(5,), dtype="int32"))
    assert y.shape == (None, 5, 3) and y.dtype == "float32"
    table = layer.get_weights()[0]
    assert table.shape == (10, 3) and np.abs(table).max() <= 0.05  # Keras "uniform": U(-0.05, 0.05)
    ids = np.array([[1, 2, 0, 9, 3], [4, 4, 4, 4, 4]]).astype(dtype)
    np.testing.assert_allclose(run(layer, ids), table[ids.astype(np.int64)])
    assert roundtrip(layer).mask_zero


def test_embedding_weights_arg_and_input_length():
    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    layer = L.Embedding(4, 3, weights=[table], input_length=6)
    assert layer.built and layer._batch_input_shape == (None, 6)
    np.testing.assert_array_equal(layer.get_weights()[0], table)
    with pytest.raises(ValueError, match="output_dim=0"):
        L.Embedding(4, 0)
