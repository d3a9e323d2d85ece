"""tf.keras 2's custom ``train_step`` (``self.compiled_loss(y, y_pred, regularization_losses=self.losses)``,
``self.compiled_metrics.update_state(y, y_pred)``, ``{m.name: m.result() for m in self.metrics}``) runs as Keras 3
runs it: deprecated shims (``keras/src/backend/tensorflow/trainer.py``) over ``compute_loss`` and ``self.metrics``.

Keras's torch backend has no such shims, so its side of the comparison writes out what they do: the loss is
``compute_loss`` (the L2 penalty counted once), every ``Mean`` in ``self.metrics`` (the ``loss`` tracker) averages
``y_pred``, the other metrics get ``(y, y_pred)``. (The TensorFlow backend logs the same numbers:
``{'loss': [-0.0517, 0.1115], 'mae': [0.4817, 0.3375]}`` for this set-up with uniform(-0.3, 0.3) weights.)
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from tests.keras_oracle.common import LIBS


def _model_class(k, torch_side: bool):
    class CustomModel(k.Model):
        def train_step(self, data):
            x, y = data
            if torch_side:   # the shims' bodies, with torch autograd
                self.zero_grad()
                y_pred = self(x, training=True)
                loss = self.compute_loss(x=None, y=y, y_pred=y_pred)
                loss.backward()
                import torch

                with torch.no_grad():
                    self.optimizer.apply([v.value.grad for v in self.trainable_variables], self.trainable_variables)
                for metric in self.metrics:
                    if isinstance(metric, k.metrics.Mean):
                        metric.update_state(y_pred)
                    else:
                        metric.update_state(y, y_pred)
            else:
                import onnxforge

                with onnxforge.GradientTape() as tape:
                    y_pred = self(x, training=True)
                    loss = self.compiled_loss(y, y_pred, regularization_losses=self.losses)
                grads = tape.gradient(loss, self.trainable_variables)
                self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
                self.compiled_metrics.update_state(y, y_pred)
            return {m.name: m.result() for m in self.metrics}

    return CustomModel


def test_tf_keras2_style_step_matches_keras():
    rng = np.random.RandomState(0)
    x = rng.random((40, 8)).astype("float32")
    y = rng.random((40, 1)).astype("float32")
    init, results = None, {}
    for lib, k in LIBS.items():
        inputs = k.Input(shape=(8,))
        hidden = k.layers.Dense(4, kernel_regularizer=k.regularizers.L2(0.01))(inputs)
        model = _model_class(k, lib == "keras")(inputs, k.layers.Dense(1)(hidden))
        init = init or [rng.uniform(-0.3, 0.3, w.shape).astype("float32") for w in model.get_weights()]
        model.set_weights(init)
        model.compile(optimizer=k.optimizers.SGD(0.05), loss="mse", metrics=["mae"])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            history = model.fit(x, y, epochs=2, batch_size=20, verbose=0, shuffle=False).history
        results[lib] = history, model.get_weights(), [str(w.message) for w in caught]
    (kh, kw, _), (fh, fw, messages) = results["keras"], results["onnxforge"]
    assert sorted(fh) == sorted(kh) == ["loss", "mae"]
    for key in kh:
        np.testing.assert_allclose(fh[key], kh[key], rtol=1e-4, atol=1e-6, err_msg=key)
    for a, b in zip(kw, fw):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)
    assert any("compiled_loss()` is deprecated" in m for m in messages)
    assert any("compiled_metrics()` is deprecated" in m for m in messages)


def test_compiled_metrics_is_still_the_reported_pairs():
    from onnxforge import keras as fkeras

    inputs = fkeras.Input(shape=(3,))
    model = fkeras.Model(inputs, fkeras.layers.Dense(1)(inputs))
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    assert [name for name, _ in model.compiled_metrics] == ["loss", "mae"]
    with pytest.warns(UserWarning, match="deprecated"):
        model.compiled_metrics.update_state(np.zeros((2, 1), "float32"), np.ones((2, 1), "float32"))
