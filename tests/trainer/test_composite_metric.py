"""A metric with no state of its own whose ``update_state`` feeds an inner ``Mean`` (keras.io DDIM's ``KID``:
a per-batch kernel MMD averaged by ``kid_tracker``), updated in a custom ``train_step`` / ``test_step`` and
reported by ``fit`` / ``evaluate``, compared with Keras 3 (torch). Before, the traced step refused it: the
metric had no graph form (batch_sums) of its own."""
from __future__ import annotations

import numpy as np
import pytest

from tests.keras_oracle.common import LIBS

X = np.arange(24, dtype="float32").reshape(8, 3) / 8
Y = np.ones((8, 1), "float32")


def _model(k):
    ops = k.ops

    class Spread(k.metrics.Metric):
        """The mean over batches of a batch's spread (max - min) of predictions, scaled."""

        def __init__(self, name, scale=2.0, **kwargs):
            super().__init__(name=name, **kwargs)
            self.scale = scale
            self.tracker = k.metrics.Mean(name="spread_tracker")

        def update_state(self, y_true, y_pred, sample_weight=None):
            self.tracker.update_state(self.scale * (ops.max(y_pred) - ops.min(y_pred)) + 0.0 * ops.mean(y_true))

        def result(self):
            return self.tracker.result()

        def reset_state(self):
            self.tracker.reset_state()

    class M(k.Model):
        def __init__(self):
            super().__init__()
            self.dense = k.layers.Dense(1, kernel_initializer="ones")
            self.loss_tracker = k.metrics.Mean(name="l")
            self.spread = Spread(name="spread")

        def call(self, x):
            return self.dense(x)

        @property
        def metrics(self):
            return [self.loss_tracker, self.spread]

        def _step(self, data):
            x, y = data
            pred = self(x)
            self.loss_tracker.update_state(ops.mean((pred - y) ** 2))
            self.spread.update_state(y, pred)
            return {m.name: m.result() for m in self.metrics}

        def train_step(self, data):
            return self._step(data)

        def test_step(self, data):
            return self._step(data)

    model = M()
    model.compile(optimizer="sgd")
    model(X[:1])
    return model, Spread


def _run(k):
    model, spread_class = _model(k)
    history = model.fit(X, Y, batch_size=2, epochs=2, shuffle=False, verbose=0,
                        validation_data=(X[:6], Y[:6])).history
    logs = model.evaluate(X, Y, batch_size=3, verbose=0, return_dict=True)
    eager = spread_class(name="eager")
    eager.update_state(Y[:4], X[:4, :1])
    eager.update_state(Y[:2], X[4:6, :1])
    return ({key: [float(v) for v in values] for key, values in history.items()},
            {key: float(v) for key, v in logs.items()}, float(eager.result()))


def test_a_metric_feeding_an_inner_tracker_matches_keras():
    want, got = _run(LIBS["keras"]), _run(LIBS["onnxforge"])
    assert set(got[0]) == set(want[0]) == {"l", "spread", "val_l", "val_spread"}
    for key in want[0]:
        np.testing.assert_allclose(got[0][key], want[0][key], rtol=1e-6, err_msg=key)
    assert set(got[1]) == set(want[1])
    for key in want[1]:
        assert got[1][key] == pytest.approx(want[1][key], rel=1e-6), key
    assert got[2] == pytest.approx(want[2], rel=1e-6)
    # eager: batches of 4 and 2 rows of X[:, 0] (steps of 3/8), spreads 9/8 and 3/8, scaled by 2, averaged
    assert got[2] == pytest.approx((2 * 9 / 8 + 2 * 3 / 8) / 2, rel=1e-6)


def test_a_metric_keeping_python_state_is_refused_in_a_compiled_step():
    k = LIBS["onnxforge"]

    class Counter(k.metrics.Metric):
        def __init__(self, name="counter", **kwargs):
            super().__init__(name=name, **kwargs)
            self.seen = 0

        def update_state(self, y_true, y_pred, sample_weight=None):
            self.seen += 1   # once per trace, not per batch: a compiled step cannot carry it

        def result(self):
            return float(self.seen)

    class M(k.Model):
        def __init__(self):
            super().__init__()
            self.dense = k.layers.Dense(1)
            self.counter = Counter()

        def call(self, x):
            return self.dense(x)

        def train_step(self, data):
            x, y = data
            self.counter.update_state(y, self(x))
            return {"counter": self.counter.result()}

    model = M()
    model.compile(optimizer="sgd")
    model(X[:1])
    with pytest.raises(NotImplementedError, match=r"Metric 'counter' \(Counter\) has no graph form"):
        model.fit(X, Y, batch_size=4, epochs=1, verbose=0)
