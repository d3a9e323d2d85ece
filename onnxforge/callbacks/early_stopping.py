"""``EarlyStopping``: stop training when a monitored metric stops improving."""
from __future__ import annotations

__all__ = ["EarlyStopping"]

import warnings

import numpy as np

from .callback import Callback
from .monitor import _auto_mode, _check_mode, _to_float


class EarlyStopping(Callback):
    """Stops training when a monitored metric has stopped improving.

    Args:
        monitor: the logs key to watch (``"val_loss"``).
        min_delta: smallest change counted as an improvement.
        patience: epochs without improvement after which training stops.
        verbose: 1 prints a message when stopping and when restoring weights.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (inferred from the metric's name).
        baseline: training stops if the metric does not beat this value within ``patience`` epochs.
        restore_best_weights: at the end of training, restore the weights of the best epoch (even when
            training was not stopped early).
        start_from_epoch: epochs to wait before starting to monitor (warm-up).

    Example:
        >>> stop = EarlyStopping(monitor="loss", patience=2)
        >>> stop.on_train_begin()
        >>> for epoch, loss in enumerate([1.0, 0.5, 0.6, 0.7]):
        ...     stop.set_model(type("M", (), {"stop_training": False})())
        ...     stop.on_epoch_end(epoch, {"loss": loss})
        >>> stop.stopped_epoch, stop.best
        (3, 0.5)
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: float | None = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0):
        super().__init__()
        _check_mode("EarlyStopping", mode)
        if patience < 0:
            raise ValueError(f"EarlyStopping: patience must be >= 0. Received: patience={patience}")
        self.monitor = monitor
        self.min_delta = abs(min_delta)
        self.patience = patience
        self.verbose = verbose
        self.mode = mode
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self._mode: str | None = None if mode == "auto" else mode
        self.on_train_begin()

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best: float | None = None
        self.best_weights: list[np.ndarray] | None = None
        self.best_epoch = 0

    def _resolve_mode(self) -> str:
        if self._mode is None:
            self._mode = _auto_mode(self.monitor, self.model)
            if self._mode is None:
                raise ValueError(
                    f"EarlyStopping received monitor={self.monitor!r} but cannot tell whether it should "
                    "be maximized or minimized. Pass mode='max' or mode='min'.")
        return self._mode

    def _is_improvement(self, value: float, reference: float | None) -> bool:
        if reference is None:
            return True
        if self._resolve_mode() == "max":
            return value - self.min_delta > reference
        return value + self.min_delta < reference

    def on_epoch_end(self, epoch, logs=None):
        current = (logs or {}).get(self.monitor)
        if current is None:
            warnings.warn(f"Early stopping conditioned on metric `{self.monitor}` which is not available. "
                          f"Available metrics are: {','.join(logs or {})}", stacklevel=2)
            return
        if epoch < self.start_from_epoch:
            return
        current = _to_float(current)
        if self.restore_best_weights and self.best_weights is None:
            # The first monitored epoch is the reference even if it never improves on the baseline.
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)
