"""keras.io's "Customizing what happens in fit()": a model's own ``train_step`` / ``test_step`` /
``predict_step`` over ``compute_loss`` and ``self.metrics``, and a GAN with its own ``compile``.

Steps without gradients (``test_step``, ``predict_step``) compare numbers with Keras directly; training steps
take their gradients from each backend (``harness.value_and_grad``: torch's ``backward()`` under Keras, a
``GradientTape`` under onnxforge, as the guide's TensorFlow version writes it).
"""
from __future__ import annotations

import numpy as np

from tests.keras_examples.harness import apply_gradients, assert_close, run_both, value_and_grad

RNG = np.random.default_rng(0)
X = RNG.random((48, 8)).astype("float32")
Y = RNG.random((48, 1)).astype("float32")
SW = RNG.random((48, 1)).astype("float32")


def _dense_model(keras, cls, init):
    inputs = keras.Input(shape=(8,))
    model = cls(inputs, keras.layers.Dense(1)(inputs))
    init(model)
    return model


def custom_test_step(keras, data, init):
    """The guide's ``test_step`` that logs ``{m.name: m.result() for m in self.metrics}``."""

    class CustomModel(keras.Model):
        def test_step(self, data):
            x, y = data
            y_pred = self(x, training=False)
            loss = self.compute_loss(y=y, y_pred=y_pred)
            for metric in self.metrics:
                if metric.name == "loss":
                    metric.update_state(loss)
                else:
                    metric.update_state(y, y_pred)
            return {m.name: m.result() for m in self.metrics}

    model = _dense_model(keras, CustomModel, init)
    model.compile(loss="mse", metrics=["mae"])
    logs = model.evaluate(X, Y, batch_size=16, verbose=0, return_dict=True)
    return {k: float(v) for k, v in logs.items()}


def test_custom_test_step_logs_the_metric_names_given_to_compile():
    # The regression: onnxforge logged "mean_absolute_error" where Keras logs the "mae" asked for.
    want, got = run_both(custom_test_step, None, copy_weights=True)
    assert sorted(got) == ["loss", "mae"]
    assert_close(want, got, rtol=1e-5)


def custom_train_step(keras, data, init, sample_weight=False):
    """The guide's first ``train_step`` (``compute_loss`` + ``self.metrics``), with sample weights optional."""
    api = keras

    class CustomModel(keras.Model):
        def train_step(self, data):
            if len(data) == 3:
                x, y, sw = data
            else:
                (x, y), sw = data, None
            trainable = self.trainable_variables

            def forward():
                y_pred = self(x, training=True)
                return self.compute_loss(y=y, y_pred=y_pred, sample_weight=sw), y_pred

            (loss, y_pred), grads = value_and_grad(api, forward, trainable)
            apply_gradients(api, self.optimizer, grads, trainable)
            for metric in self.metrics:
                if metric.name == "loss":
                    metric.update_state(loss)
                else:
                    metric.update_state(y, y_pred, sample_weight=sw)
            return {m.name: m.result() for m in self.metrics}

    model = _dense_model(keras, CustomModel, init)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", metrics=["mae"])
    history = model.fit(X, Y, sample_weight=SW if sample_weight else None, batch_size=16, epochs=2,
                        shuffle=False, verbose=0)
    return {f"{k}_{i}": float(v) for k, vs in history.history.items() for i, v in enumerate(vs)}


def test_custom_train_step_matches_keras():
    want, got = run_both(custom_train_step, None, copy_weights=True)
    assert_close(want, got, rtol=1e-4)


def test_custom_train_step_with_sample_weight_matches_keras():
    want, got = run_both(custom_train_step, None, copy_weights=True, sample_weight=True)
    assert_close(want, got, rtol=1e-4)


def own_trackers(keras, data, init):
    """"Going lower-level": trackers held by the model and listed by its ``metrics`` property (reset each epoch)."""
    api = keras

    class CustomModel(keras.Model):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.loss_tracker = keras.metrics.Mean(name="loss")
            self.mae_metric = keras.metrics.MeanAbsoluteError(name="mae")
            self.loss_fn = keras.losses.MeanSquaredError()

        def train_step(self, data):
            x, y = data
            trainable = self.trainable_variables

            def forward():
                y_pred = self(x, training=True)
                return self.loss_fn(y, y_pred), y_pred

            (loss, y_pred), grads = value_and_grad(api, forward, trainable)
            apply_gradients(api, self.optimizer, grads, trainable)
            self.loss_tracker.update_state(loss)
            self.mae_metric.update_state(y, y_pred)
            return {"loss": self.loss_tracker.result(), "mae": self.mae_metric.result()}

        @property
        def metrics(self):
            return [self.loss_tracker, self.mae_metric]

    model = _dense_model(keras, CustomModel, init)
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    history = model.fit(X, Y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    return {f"{k}_{i}": float(v) for k, vs in history.history.items() for i, v in enumerate(vs)}


def test_model_held_trackers_reset_each_epoch_as_in_keras():
    want, got = run_both(own_trackers, None, copy_weights=True)
    assert_close(want, got, rtol=1e-4)


def custom_predict_step(keras, data, init):
    class CustomModel(keras.Model):
        def predict_step(self, data):
            x = data[0] if isinstance(data, tuple) else data
            return self(x, training=False) * 2.0

    model = _dense_model(keras, CustomModel, init)
    out = np.asarray(model.predict(X[:5], batch_size=2, verbose=0)).ravel()
    return {f"p{i}": float(v) for i, v in enumerate(out)}


def test_predict_step_matches_keras():
    want, got = run_both(custom_predict_step, None, copy_weights=True)
    assert_close(want, got, rtol=1e-5, atol=1e-6)
