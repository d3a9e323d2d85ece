"""Eager calls and compiled programs share the Variables' device-resident values: a call after ``fit`` reads
the trained weights without copying the model back, and a state update made eagerly is what training sees."""
from __future__ import annotations

import numpy as np

import onnxforge as of
from onnxforge import layers as L

RNG = np.random.default_rng(5)
X = RNG.normal(size=(32, 4)).astype("float32")
Y = RNG.normal(size=(32, 1)).astype("float32")


def _model():
    inp = of.Input((4,))
    out = L.Dense(1)(L.BatchNormalization()(L.Dense(8, activation="relu")(inp)))
    model = of.Model(inp, out)
    model.compile(optimizer="adam", loss="mse", device="cpu")
    return model


def test_a_call_after_fit_reads_the_trained_weights_where_they_live():
    model = _model()
    before = model(X).numpy().copy()
    model.fit(X, Y, epochs=2, batch_size=8, verbose=0)
    resident = [w._get_device() for w in model.weights]
    assert all(v is not None for v in resident)     # training left the weights on the device
    got = model(X)
    np.testing.assert_allclose(got, model.predict(X, verbose=0), rtol=1e-6, atol=1e-6)
    assert not np.allclose(got, before)
    # Read in place: no weight came back to the host (that would drop its device value).
    assert all(w._get_device() is v for w, v in zip(model.weights, resident))


def test_set_weights_between_calls_is_seen():
    model = _model()
    model(X)
    weights = [np.full(w.shape, 0.1, np.float32) if "variance" not in w.name else np.ones(w.shape, np.float32)
               for w in model.weights]
    model.set_weights(weights)
    np.testing.assert_allclose(model(X), model.predict(X, verbose=0), rtol=1e-6)


def test_an_eager_training_call_updates_statistics_that_fit_then_trains_with():
    model = _model()
    model.fit(X, Y, epochs=1, batch_size=8, verbose=0)
    bn = next(layer for layer in model.layers if isinstance(layer, L.BatchNormalization))
    hidden = of.Model(model.inputs, bn.input)(X).numpy()
    mean_before = bn.moving_mean.numpy().copy()
    model(X, training=True)                              # Keras 3 updates the moving statistics here
    np.testing.assert_allclose(bn.moving_mean.numpy(), 0.99 * mean_before + 0.01 * hidden.mean(0), rtol=1e-5,
                               atol=1e-6)
    updated = bn.moving_mean.numpy().copy()
    model.evaluate(X, Y, verbose=0)                      # evaluation reads, does not change, the statistics
    np.testing.assert_array_equal(bn.moving_mean.numpy(), updated)
    model.fit(X, Y, epochs=1, batch_size=32, verbose=0)  # one step, from the eagerly updated value
    np.testing.assert_allclose(bn.moving_mean.numpy(), 0.99 * updated + 0.01 * hidden.mean(0), rtol=1e-4,
                               atol=1e-5)
