"""What ``fit`` / ``evaluate`` report for a custom ``train_step`` / ``test_step``, compared with Keras 3 (torch):
Keras (``Trainer._get_metrics_result_or_logs``) reports ``model.metrics``' results when the returned keys are
exactly their names, and otherwise what the last step returned. Before, onnxforge logged a plain returned
value's mean over the epoch (``history``, ``evaluate``, validation)."""
from __future__ import annotations

import numpy as np
import pytest

from tests.keras_oracle.common import LIBS

X = np.arange(16, dtype="float32").reshape(8, 2) / 4
Y = np.ones((8, 1), "float32")


def _tracked_model(k, kind: str):
    """A model whose step updates a ``Mean`` tracker with the batch mean and returns ``kind``'s logs."""
    ops = k.ops

    class M(k.Model):
        def __init__(self):
            super().__init__()
            self.dense = k.layers.Dense(1)
            self.tracker = k.metrics.Mean(name="tr")

        def call(self, x):
            return self.dense(x)

        @property
        def metrics(self):
            return [self.tracker]

        def _logs(self, data):
            v = ops.mean(data[0])
            self.tracker.update_state(v)
            return {"plain": {"b": v * 2.0, "a": v},
                    "result": {"tr": self.tracker.result()},
                    "mixed": {"tr": self.tracker.result(), "a": v},
                    # The keys are model.metrics' names: Keras reports the tracker, not the value returned.
                    "plain_named": {"tr": v * 10.0}}[kind]

        def train_step(self, data):
            return self._logs(data)

        def test_step(self, data):
            return self._logs(data)

    model = M()
    model.compile(optimizer="sgd")
    model(X[:1])
    return model


class _BatchLogs:
    def __init__(self, k):
        outer = self
        self.seen: list = []

        class Cb(k.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                outer.seen.append({key: float(v) for key, v in logs.items()})

        self.callback = Cb()


def _run(k, kind):
    model = _tracked_model(k, kind)
    batches = _BatchLogs(k)
    history = model.fit(X, Y, batch_size=2, epochs=2, shuffle=False, verbose=0, validation_data=(X[:6], Y[:6]),
                        callbacks=[batches.callback]).history
    as_dict = model.evaluate(X, Y, batch_size=3, verbose=0, return_dict=True)
    as_list = model.evaluate(X[:6], Y[:6], batch_size=4, verbose=0)
    return ({key: [float(v) for v in values] for key, values in history.items()},
            {key: float(v) for key, v in as_dict.items()}, np.asarray(as_list, np.float64).tolist(), batches.seen)


def _assert_close(got, want):
    """The same keys and values (dicts), lengths and values (lists), numbers to float32 rounding."""
    if isinstance(want, dict):
        assert set(got) == set(want)
        for key in want:
            _assert_close(got[key], want[key])
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            _assert_close(g, w)
    else:
        assert got == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("kind", ["plain", "result", "mixed", "plain_named"])
def test_logs_match_keras(kind):
    want = _run(LIBS["keras"], kind)
    got = _run(LIBS["onnxforge"], kind)
    _assert_close(got, want)
    history, _, _, _ = got
    if kind == "plain":   # the last batch's values, not the epoch means (7.5 / 5.5 would be those)
        assert history["a"] == [13.5 / 4, 13.5 / 4] and history["val_a"] == [9.5 / 4, 9.5 / 4]


def _compiled_model(k, metrics):
    """Compiled with a loss (so ``model.metrics`` holds Keras's loss tracker) and a step returning a plain loss."""
    ops = k.ops

    class C(k.Model):
        def __init__(self):
            super().__init__()
            self.dense = k.layers.Dense(1, kernel_initializer="ones")

        def call(self, x):
            return self.dense(x)

        def train_step(self, data):
            x, y = data
            return {"loss": ops.mean((self(x) - y) ** 2)}

    model = C()
    model.compile(optimizer="sgd", loss="mse", metrics=metrics)
    model(X[:1])
    return model


@pytest.mark.parametrize("metrics", [None, ["mae"]])
def test_plain_loss_beside_a_compiled_loss_tracker_matches_keras(metrics):
    """Keras compares the keys with ``get_metrics_result()``: ``{"loss"}`` alone matches the (never updated) loss
    tracker, reported as 0.0; with ``compile_metrics`` holding ``mae`` they differ and the last step's loss shows."""
    logs = [_compiled_model(k, metrics).fit(X, Y, batch_size=2, epochs=1, shuffle=False, verbose=0).history
            for k in (LIBS["keras"], LIBS["onnxforge"])]
    assert set(logs[1]) == set(logs[0]) == {"loss"}
    np.testing.assert_allclose(logs[1]["loss"], logs[0]["loss"], rtol=1e-6)
