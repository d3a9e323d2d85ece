"""Metrics that a layer updates inside ``call()`` (the Keras guide's endpoint layer: ``add_loss`` plus a
``BinaryAccuracy`` the layer owns), against real Keras 3 (torch backend) on the same weights and data:
``fit``'s History (with validation), ``evaluate``, the per-epoch reset, and an eager call updating the
metric's state."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge
import onnxforge.keras as fkeras
from tests.eager.keras_oracle import keras

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
R = np.random.default_rng(3)
DATA = {"inputs": R.normal(size=(20, 3)).astype("float32"),
        "targets": (R.uniform(size=(20, 4)) > 0.5).astype("float32")}


def _model(api):
    ops = api.ops

    class Endpoint(api.layers.Layer):
        def __init__(self, name=None):
            super().__init__(name=name)
            self.loss_fn = api.losses.BinaryCrossentropy(from_logits=True)
            self.accuracy_fn = api.metrics.BinaryAccuracy()

        def call(self, targets, logits):
            self.add_loss(self.loss_fn(targets, logits))
            self.accuracy_fn.update_state(targets, ops.sigmoid(logits))
            return ops.sigmoid(logits)

    inputs = api.Input(shape=(3,), name="inputs")
    targets = api.Input(shape=(4,), name="targets")
    out = Endpoint(name="predictions")(targets, api.layers.Dense(4)(inputs))
    model = api.Model(inputs=[inputs, targets], outputs=out)
    model.compile(optimizer=api.optimizers.SGD(0.5))
    return model


def _pair():
    k, f = _model(keras), _model(fkeras)
    weights = [R.normal(0, 0.7, np.shape(w)).astype("float32") for w in k.get_weights()]
    k.set_weights(weights)
    f.set_weights(weights)
    return k, f


def test_fit_and_evaluate_report_the_layer_metric_as_keras():
    k, f = _pair()
    kw = dict(epochs=3, batch_size=6, shuffle=False, verbose=0, validation_data=(DATA,))
    want, got = k.fit(DATA, **kw).history, f.fit(DATA, **kw).history
    assert sorted(got) == sorted(want) == ["binary_accuracy", "loss", "val_binary_accuracy", "val_loss"]
    for key in want:   # a metric never reset, or reset per batch, is off by far more
        np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6, err_msg=key)
    got, want = (m.evaluate(DATA, batch_size=7, verbose=0, return_dict=True) for m in (f, k))
    assert sorted(got) == sorted(want)
    np.testing.assert_allclose([got[key] for key in want], list(want.values()), rtol=1e-5)
    np.testing.assert_allclose(f.evaluate(DATA, batch_size=7, verbose=0), k.evaluate(DATA, batch_size=7, verbose=0),
                               rtol=1e-5)
    assert f.metrics_names == k.metrics_names == ["loss", "binary_accuracy"]


def test_an_eager_call_updates_the_layer_metric():
    k, f = _pair()
    for model in (k, f):
        model.layers[-1].accuracy_fn.reset_state()
        model([DATA["inputs"][:8], DATA["targets"][:8]])
        model([DATA["inputs"][8:], DATA["targets"][8:]])
    want = float(keras.ops.convert_to_numpy(k.layers[-1].accuracy_fn.result()))
    assert float(f.layers[-1].accuracy_fn.result()) == pytest.approx(want, abs=1e-6)


def test_a_metric_result_inside_call_names_the_metric():
    class Bad(onnxforge.layers.Layer):
        def __init__(self):
            super().__init__()
            self.tracker = onnxforge.metrics.Mean(name="tracked")

        def call(self, x):
            self.tracker.update_state(x)
            return x * self.tracker.result()

    with pytest.raises(TypeError, match=r"Metric 'tracked' \(Mean\)\.result\(\)"):
        Bad()(onnxforge.Input((2,)))
