"""Keras 3's "customizing fit()" pattern against Keras on torch: a custom ``train_step`` / ``test_step`` that
calls ``self.compute_loss(y=y, y_pred=y_pred)`` and updates ``self.metrics`` (the loss tracker and
``compile_metrics``) logs the same numbers and trains the same weights."""
from __future__ import annotations

import numpy as np
import pytest

from tests.keras_oracle.common import LIBS


def _step_body(self, x, y, tape_cls):
    if tape_cls is None:   # Keras on torch: autograd
        self.zero_grad()
        y_pred = self(x, training=True)
        loss = self.compute_loss(y=y, y_pred=y_pred)
        loss.backward()
        grads = [v.value.grad for v in self.trainable_variables]
    else:
        with tape_cls() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(y=y, y_pred=y_pred)
        grads = tape.gradient(loss, self.trainable_variables)
    return y_pred, loss, grads


def _custom_model_class(k, tape_cls):
    class CustomModel(k.Model):
        def train_step(self, data):
            x, y = data
            y_pred, loss, grads = _step_body(self, x, y, tape_cls)
            if tape_cls is None:
                import torch

                with torch.no_grad():
                    self.optimizer.apply(grads, self.trainable_variables)
            else:
                self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
            for metric in self.metrics:
                if metric.name == "loss":
                    metric.update_state(loss)
                else:
                    metric.update_state(y, y_pred)
            return {m.name: m.result() for m in self.metrics}

        def test_step(self, data):
            x, y = data
            y_pred = self(x, training=False)
            loss = self.compute_loss(y=y, y_pred=y_pred)
            for metric in self.metrics:
                if metric.name != "loss":
                    metric.update_state(y, y_pred)
            self.metrics[0].update_state(loss)
            return {m.name: m.result() for m in self.metrics}

    return CustomModel


@pytest.mark.parametrize("metrics", [["mae"], ["mae", "mse"]])
def test_customizing_fit_pattern_matches_keras(metrics):
    import onnxforge

    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 5)).astype("float32")
    y = rng.normal(size=(48, 1)).astype("float32")
    results, init = {}, None
    for lib, k in LIBS.items():
        cls = _custom_model_class(k, None if lib == "keras" else onnxforge.GradientTape)
        inputs = k.Input(shape=(5,))
        model = cls(inputs, k.layers.Dense(1)(k.layers.Dense(4, activation="tanh")(inputs)))
        init = init or model.get_weights()
        model.set_weights(init)
        model.compile(optimizer=k.optimizers.SGD(0.05), loss="mse", metrics=metrics)
        history = model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0).history
        evaluated = model.evaluate(x, y, batch_size=16, return_dict=True, verbose=0)
        results[lib] = (history, evaluated, [m.name for m in model.metrics], model.get_weights())
    (kh, ke, kn, kw), (fh, fe, fn, fw) = results["keras"], results["onnxforge"]
    assert fn == kn == ["loss", "compile_metrics"]
    assert sorted(fh) == sorted(kh) and sorted(fe) == sorted(ke)
    for key in kh:
        np.testing.assert_allclose(fh[key], kh[key], rtol=1e-4, err_msg=key)
    for key in ke:
        assert fe[key] == pytest.approx(ke[key], rel=1e-4), key
    for a, b in zip(kw, fw):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)
