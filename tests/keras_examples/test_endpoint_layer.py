"""The Keras guide's "custom endpoint layer" (training with built-in methods): a ``LogisticEndpoint`` layer
that takes targets, logits and sample weights, adds its loss with ``self.add_loss`` and tracks a
``BinaryAccuracy`` it owns; the model is compiled without a loss and fit on a dict of named inputs;
``predict`` returns the endpoint's probabilities.

Tolerance: Keras's initial weights copied, ``shuffle=False``, no randomness: the same float32 computation
up to summation order, so losses within 1% and accuracies within 0.02 of Keras's.
"""
from __future__ import annotations

import numpy as np

from .harness import assert_band, assert_close, run_both


def endpoint_layer(keras, data, init):
    layers, ops = keras.layers, keras.ops
    keras.utils.set_random_seed(12)

    class LogisticEndpoint(layers.Layer):
        def __init__(self, name=None):
            super().__init__(name=name)
            self.loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)
            self.accuracy_fn = keras.metrics.BinaryAccuracy()

        def call(self, targets, logits, sample_weights=None):
            # The training-time loss, added to the layer with add_loss.
            loss = self.loss_fn(targets, logits, sample_weights)
            self.add_loss(loss)
            # Log accuracy as a metric the layer tracks.
            self.accuracy_fn.update_state(targets, ops.sigmoid(logits), sample_weights)
            # The inference-time prediction tensor (for .predict()).
            return ops.sigmoid(logits)

    inputs = keras.Input(shape=(3,), name="inputs")
    targets = keras.Input(shape=(10,), name="targets")
    sample_weights = keras.Input(shape=(1,), name="sample_weights")
    logits = keras.layers.Dense(10)(inputs)
    predictions = LogisticEndpoint(name="predictions")(targets, logits, sample_weights)
    model = keras.Model(inputs=[inputs, targets, sample_weights], outputs=predictions)
    init(model)
    model.compile(optimizer=keras.optimizers.Adam(0.05))   # no loss argument!
    history = model.fit(data, batch_size=16, epochs=4, shuffle=False, verbose=0)
    probabilities = model.predict(data, verbose=0)
    agreement = np.mean((probabilities > 0.5) == (data["targets"] > 0.5))
    logs = history.history
    accuracy_key = [k for k in logs if "accuracy" in k]
    assert len(accuracy_key) == 1, sorted(logs)
    return {"loss": logs["loss"][-1], "first_loss": logs["loss"][0], "accuracy": logs[accuracy_key[0]][-1],
            "predict_agreement": float(agreement)}


def make_data(n=256, seed=0):
    rng = np.random.default_rng(seed)
    inputs = rng.normal(size=(n, 3)).astype("float32")
    projection = rng.normal(size=(3, 10))
    targets = (inputs @ projection + rng.normal(0, 0.5, (n, 10)) > 0).astype("float32")
    return {"inputs": inputs, "targets": targets,
            "sample_weights": rng.uniform(0.5, 1.5, (n, 1)).astype("float32")}


def test_endpoint_layer():
    want, got = run_both(endpoint_layer, make_data(), copy_weights=True)
    assert_close(want, got, rtol=0.01, keys=["loss", "first_loss"])
    assert_band(want, got, 0.02, ["accuracy", "predict_agreement"])
    assert want["accuracy"] > 0.8 and want["loss"] < 0.7 * want["first_loss"]
