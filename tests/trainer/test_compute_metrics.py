"""Keras 3's ``compute_metrics`` / ``get_metrics_result`` in a custom ``train_step`` (the "customizing fit()"
guide's sample-weight section); they were missing (AttributeError)."""
from __future__ import annotations

import numpy as np

import onnxforge as tf

keras = tf.keras


class _WeightedStep(keras.Model):
    def train_step(self, data):
        x, y, sample_weight = data
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(y=y, y_pred=y_pred, sample_weight=sample_weight)
        gradients = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)


def test_compute_metrics_updates_the_compiled_metrics_only():
    rng = np.random.default_rng(0)
    x, y = rng.random((32, 4), dtype=np.float32), rng.random((32, 1), dtype=np.float32)
    sw = rng.random(32).astype(np.float32)
    inputs = keras.Input((4,))
    model = _WeightedStep(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse", metrics=["mae"],
                  weighted_metrics=["mse"])
    history = model.fit(x, y, sample_weight=sw, batch_size=32, epochs=1, verbose=0).history
    pred = model.predict(x, verbose=0)
    # Keras 3: the loss tracker is not updated by compute_loss / compute_metrics, so it reports 0.
    assert history["loss"] == [0.0]
    np.testing.assert_allclose(history["mae"], [np.mean(np.abs(pred - y))], rtol=1e-5)
    weighted = np.sum(sw * ((pred - y) ** 2)[:, 0]) / np.sum(sw)   # weighted metrics take the sample weight
    np.testing.assert_allclose(history["mse"], [weighted], rtol=1e-5)


def test_get_metrics_result_outside_a_step_reads_what_the_last_run_left():
    """Keras 3: after fit / evaluate / train_on_batch the compiled metrics hold that run's states (fit's last
    epoch, evaluate's data, the one batch), and reset_metrics() zeroes them. A compiled step keeps its states
    in the graph, so get_metrics_result() returned zeros before."""
    rng = np.random.default_rng(0)
    x, y = rng.random((32, 4), dtype=np.float32), rng.integers(0, 3, 32)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=2, verbose=0)
    assert model.get_metrics_result() == {k: v[-1] for k, v in history.history.items()}
    evaluated = model.evaluate(x[:16], y[:16], return_dict=True, verbose=0)
    assert model.get_metrics_result() == evaluated
    one_batch = model.test_on_batch(x[:8], y[:8], return_dict=True)
    assert model.get_metrics_result() == one_batch != evaluated
    model.reset_metrics()
    assert model.get_metrics_result() == {"loss": 0.0, "accuracy": 0.0}
