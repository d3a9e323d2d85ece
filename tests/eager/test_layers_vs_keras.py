"""Layers and models called on arrays (Keras 3's eager calls) give Keras's numbers on the same weights."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as of
from onnxforge import layers as L

from .keras_oracle import copy_weights, keras, to_numpy

KL = keras.layers
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
RNG = np.random.default_rng(7)


def _both(make_keras, make_of, x, seed=0, **call):
    k, f = make_keras(), make_of()
    k.build(x.shape) if not k.built else None
    f.build(x.shape) if not f.built else None
    copy_weights(k, f, seed)
    return to_numpy(k(x, **call)), f(x, **call), k, f


@pytest.mark.parametrize("name,make_k,make_f,shape", [
    ("dense", lambda: KL.Dense(4, activation="tanh"), lambda: L.Dense(4, activation="tanh"), (3, 5)),
    ("conv2d", lambda: KL.Conv2D(3, 3, strides=2, padding="same", activation="relu"),
     lambda: L.Conv2D(3, 3, strides=2, padding="same", activation="relu"), (2, 7, 7, 2)),
    ("lstm", lambda: KL.LSTM(4, return_sequences=True), lambda: L.LSTM(4, return_sequences=True), (2, 5, 3)),
    ("bn_inference", lambda: KL.BatchNormalization(), lambda: L.BatchNormalization(), (6, 3)),
])
def test_layer_call_on_arrays_matches_keras(name, make_k, make_f, shape):
    x = RNG.normal(size=shape).astype("float32")
    want, got, _, _ = _both(make_k, make_f, x)
    assert type(got).__name__ == "EagerTensor" and got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_batchnorm_training_call_uses_batch_statistics_and_updates_moving_ones_like_keras():
    x = RNG.normal(2.0, 3.0, size=(8, 3)).astype("float32")
    want, got, k, f = _both(lambda: KL.BatchNormalization(momentum=0.9), lambda: L.BatchNormalization(momentum=0.9),
                            x, training=True)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    for kw, fw in zip(k.weights, f.weights):   # gamma, beta, moving mean, moving variance
        np.testing.assert_allclose(fw.numpy(), to_numpy(kw.value), rtol=1e-5, atol=1e-5)
    assert not np.allclose(f.moving_mean.numpy(), 0.0)
    # An inference call reads the statistics just updated; nothing changes.
    before = f.moving_mean.numpy().copy()
    np.testing.assert_allclose(f(x), to_numpy(k(x)), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(f.moving_mean.numpy(), before)


def test_dropout_is_identity_at_inference_and_drops_with_keras_scaling_in_training():
    x = np.ones((200, 50), np.float32)
    drop = L.Dropout(0.3)
    np.testing.assert_array_equal(drop(x), x)
    np.testing.assert_array_equal(drop(x, training=False), x)
    y = drop(x, training=True)
    kept = y != 0
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)      # Keras scales the kept entries by 1/(1-rate)
    assert abs(1 - kept.mean() - 0.3) < 0.02
    assert not np.array_equal(drop(x, training=True), y)          # a new mask per call
    ky = to_numpy(KL.Dropout(0.3)(x, training=True))
    assert set(np.unique(ky).round(5)) == set(np.unique(y).round(5))


def _functional(api):
    inp = api.Input((4,), name="x")
    h = api.layers.Dense(6, activation="relu", name="h")(inp)
    a = api.layers.Dense(3, name="a")(h)
    b = api.layers.Dense(3, activation="sigmoid", name="b")(h)
    out = api.layers.Concatenate(name="cat")([a, api.layers.Multiply(name="m")([a, b])])
    return api.Model(inp, [out, b])


def test_functional_model_call_matches_keras_for_any_batch_size_with_one_program():
    from onnxforge.eager import executor

    k, f = _functional(keras), _functional(of.keras)
    copy_weights(k, f)
    compiled = executor.compiled
    for n in (5, 1, 9):
        x = RNG.normal(size=(n, 4)).astype("float32")
        got, want = f(x), to_numpy(k(x))
        assert isinstance(got, list) and len(got) == 2
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
    assert executor.compiled == compiled + 1   # the batch axis is free: one program for every size
    f(RNG.normal(size=(3, 4)))                  # float64 input: cast like Keras, same program
    assert executor.compiled == compiled + 1


class _Residual:
    """The same subclassed model in Keras and onnxforge: residual Dense block with a training flag."""

    @staticmethod
    def make(api):
        class Block(api.Model):
            def __init__(self, **kwargs):
                super().__init__(**kwargs)
                self.d1 = api.layers.Dense(5, activation="relu")
                self.d2 = api.layers.Dense(5)
                self.bn = api.layers.BatchNormalization()

            def call(self, inputs, training=None):
                h = self.d2(self.d1(inputs))
                return self.bn(api.ops.add(h, inputs), training=training)

        return Block()


@pytest.mark.parametrize("training", [False, True])
def test_subclassed_model_call_matches_keras(training):
    x = RNG.normal(size=(6, 5)).astype("float32")
    k, f = _Residual.make(keras), _Residual.make(of.keras)
    k(x), f(x)                                     # built on the first call, as in Keras
    copy_weights(k, f)
    np.testing.assert_allclose(f(x, training=training), to_numpy(k(x, training=training)), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(f.bn.moving_variance.numpy(), to_numpy(k.bn.moving_variance.value), rtol=1e-5)
