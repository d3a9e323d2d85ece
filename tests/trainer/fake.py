"""A small numpy model implementing the batch-runner contract that the Keras loops drive.

``FakeModel`` is a linear regression ``y = x @ w + b`` trained by SGD on the (weighted) squared error.
Its ``_train_batch`` returns SUMS (``loss_sum``, ``weight_sum``, ``abs_sum``, ``count``), so the loop's
host-side reduction and the partial last batch are observable, and it records every batch it sees.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from onnxforge.trainer.fit import FitMixin


class FakeModel(FitMixin):
    def __init__(self, n_in: int = 1, n_out: int = 1, input_names=None, output_names=None,
                 lr: float = 0.01, compiled: bool = True, nan_after: int | None = None):
        self.name = "fake"
        self.w = np.zeros((n_in, n_out))
        self.b = np.zeros(n_out)
        self.optimizer = SimpleNamespace(learning_rate=lr)
        self.compiled = compiled
        self.input_names = input_names or ["x"]
        self.output_names = output_names or ["y"]
        self.nan_after = nan_after  # train batches after which the loss is NaN
        self.train_batches: list[tuple[list[np.ndarray], list[np.ndarray], np.ndarray | None]] = []
        self.eval_batches: list[tuple[list[np.ndarray], list[np.ndarray], np.ndarray | None]] = []
        self.predict_batches: list[list[np.ndarray]] = []
        self.lrs: list[float] = []

    # Multi-input models concatenate their inputs' features.
    def _forward(self, xs):
        x = np.concatenate([np.asarray(a, np.float64).reshape(len(a), -1) for a in xs], axis=1)
        return x, x @ self.w + self.b

    def _sums(self, xs, ys, sw):
        x, pred = self._forward(xs)
        y = np.asarray(ys[0], np.float64).reshape(pred.shape)
        sw = np.ones(len(x)) if sw is None else np.asarray(sw, np.float64)
        err = pred - y
        per_sample = (err ** 2).mean(axis=1)
        sums = {"loss_sum": float((per_sample * sw).sum()), "weight_sum": float(sw.sum()),
                "abs_sum": float(np.abs(err).mean(axis=1).sum()), "count": float(len(x))}
        return sums, x, err, sw

    def _train_batch(self, xs, ys, sample_weight):
        self.train_batches.append((xs, ys, sample_weight))
        self.lrs.append(float(self.optimizer.learning_rate))
        sums, x, err, sw = self._sums(xs, ys, sample_weight)
        grad_pred = 2 * err * sw[:, None] / (sw.sum() * err.shape[1])
        self.w = self.w - self.optimizer.learning_rate * x.T @ grad_pred
        self.b = self.b - self.optimizer.learning_rate * grad_pred.sum(axis=0)
        if self.nan_after is not None and len(self.train_batches) > self.nan_after:
            sums["loss_sum"] = float("nan")
        return sums

    def _eval_batch(self, xs, ys, sample_weight):
        self.eval_batches.append((xs, ys, sample_weight))
        return self._sums(xs, ys, sample_weight)[0]

    def _predict_batch(self, xs):
        self.predict_batches.append(xs)
        _, pred = self._forward(xs)
        return [pred.astype(np.float32)]

    def _metric_results(self, sums, final=False):
        return {"loss": sums["loss_sum"] / sums["weight_sum"], "mae": sums["abs_sum"] / sums["count"]}

    def get_weights(self):
        return [self.w.copy(), self.b.copy()]

    def set_weights(self, weights):
        self.w, self.b = (np.array(w) for w in weights)


class TwoOutputModel(FakeModel):
    """Predicts two outputs: the linear output and its double."""

    def _predict_batch(self, xs):
        (pred,) = super()._predict_batch(xs)
        return [pred, 2 * pred]


def regression_data(n: int = 10, n_in: int = 1, seed: int = 0):
    """x carries the sample index in column 0 so tests can tell which samples a batch held."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([np.arange(n, dtype=np.float64)[:, None], rng.normal(size=(n, n_in - 1))], axis=1)
    y = 0.5 * x[:, :1] + 1.0
    return x, y


def ids(batch) -> list[int]:
    """The sample indices in a recorded batch (column 0 of the first input)."""
    return [int(v) for v in np.asarray(batch[0][0]).reshape(len(batch[0][0]), -1)[:, 0]]
