"""An optimizer subclass's own ``apply(grads, trainable_variables)`` in ``fit``'s compiled step
(``compiler.overridden_apply``): Keras's trainers hand the gradients to ``optimizer.apply``, so an override
(gradient centralization) changes the update. Checked against real Keras 3 (torch backend), in one program, in
element-range programs (where such an optimizer is not cut) and on replica threads, and refused clearly when
the override never reaches ``super().apply``."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf
from onnxforge.compiler.segment_apply import elementwise_update
from tests.keras_oracle.common import keras

from ..conftest import check_full
from ..distribute.threads import run_ranks, strategies


def centralizing(api):
    class GCRMSprop(api.optimizers.RMSprop):
        def apply(self, grads, trainable_variables=None):
            centred = []
            for grad in grads:
                if len(grad.shape) > 1:
                    grad = grad - api.ops.mean(grad, axis=list(range(len(grad.shape) - 1)), keepdims=True)
                centred.append(grad)
            return super().apply(centred, trainable_variables)

    return GCRMSprop


def _model(api, optimizer):
    model = api.Sequential([api.Input((5,)), api.layers.Dense(4, activation="tanh"), api.layers.Dense(2)])
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in model.get_weights()])
    model.compile(optimizer=optimizer, loss="mse")
    return model


def _data():
    rng = np.random.default_rng(1)
    return rng.normal(size=(12, 5)).astype("float32"), rng.normal(size=(12, 2)).astype("float32")


def test_fit_goes_through_the_override_as_keras_does():
    x, y = _data()
    want = _model(keras, centralizing(keras)(learning_rate=0.01))
    want.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    got = _model(tf.keras, centralizing(tf.keras)(learning_rate=0.01))
    history = got.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    plain = _model(tf.keras, tf.keras.optimizers.RMSprop(learning_rate=0.01))
    plain.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(got.get_weights(), want.get_weights()):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-5, atol=1e-6)
    assert np.abs(got.get_weights()[0] - plain.get_weights()[0]).max() > 1e-3, "the override changed training"
    assert np.isfinite(history.history["loss"]).all()
    check_full(got._programs["train_step"].model)


def test_an_override_is_not_cut_into_element_ranges():
    ok, reason = elementwise_update(centralizing(tf.keras)())
    assert not ok and "overrides apply()" in reason


def test_replica_threads_apply_the_override_to_the_summed_gradients():
    x, y = _data()

    def build():
        return _model(tf.keras, centralizing(tf.keras)(learning_rate=0.01))

    def call(m):
        m.fit(x, y, batch_size=6, epochs=1, shuffle=False, verbose=0)
        return m.get_weights()

    ref = build()
    want = call(ref)
    models = []
    for strategy in strategies(2):
        with strategy.scope():
            models.append(build())
    for weights in run_ranks([lambda m=m: call(m) for m in models]):
        for a, b in zip(weights, want):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_an_override_that_never_calls_super_apply_is_refused():
    class Silent(tf.keras.optimizers.SGD):
        def apply(self, grads, trainable_variables=None):
            return None

    x, y = _data()
    with pytest.raises(TypeError, match=r"Silent.apply returned without passing the gradients on to super\(\).apply"):
        _model(tf.keras, Silent()).train_on_batch(x, y)   # compile() builds the step already


def test_super_apply_without_variables_uses_the_built_ones_as_keras():
    class Halved(tf.keras.optimizers.SGD):
        def apply(self, grads, trainable_variables=None):
            return super().apply([g * 0.5 for g in grads])   # no variables: the ones fit built it with

    class KerasHalved(keras.optimizers.SGD):
        def apply(self, grads, trainable_variables=None):
            return super().apply([g * 0.5 for g in grads])

    x, y = _data()
    want = _model(keras, KerasHalved(learning_rate=0.1))
    want.fit(x, y, batch_size=6, epochs=1, shuffle=False, verbose=0)
    got = _model(tf.keras, Halved(learning_rate=0.1))
    got.fit(x, y, batch_size=6, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(got.get_weights(), want.get_weights()):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="the optimizer must already be built"):
        tf.keras.optimizers.SGD().apply([np.ones(2, "float32")])
