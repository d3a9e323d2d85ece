"""Callbacks that set the optimizer's learning rate: ``LearningRateScheduler`` and ``ReduceLROnPlateau``."""
from __future__ import annotations

__all__ = ["LearningRateScheduler", "ReduceLROnPlateau"]

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .callback import Callback
from .monitor import _auto_mode, _check_mode, _to_float


def _optimizer_lr(model: Any, who: str) -> float:
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not hasattr(optimizer, "learning_rate"):
        raise ValueError(f'{who}: the optimizer must have a "learning_rate" attribute. '
                         f"Received: optimizer={optimizer!r}")
    return _to_float(optimizer.learning_rate)


class LearningRateScheduler(Callback):
    """Sets the optimizer's learning rate at the start of every epoch from ``schedule(epoch, lr)``.

    The learning rate is an input of the training-step graph, so changing it rebuilds nothing.

    Args:
        schedule: ``schedule(epoch, lr) -> new lr`` (``epoch`` counts from 0); like Keras, a schedule that
            raises ``TypeError`` when given two arguments is called as ``schedule(epoch)``.
        verbose: 1 prints the new rate at each epoch.

    Example:
        >>> halve = LearningRateScheduler(lambda epoch, lr: lr * 0.5)
    """

    def __init__(self, schedule: Callable[..., float], verbose: int = 0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler: schedule must be callable. Received: schedule={schedule!r}")
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        current = _optimizer_lr(self.model, "LearningRateScheduler")
        try:
            lr = self.schedule(epoch, current)
        except TypeError:   # the older one-argument form, schedule(epoch), which Keras still accepts
            lr = self.schedule(epoch)
        if isinstance(lr, np.ndarray) and lr.ndim == 0:
            lr = lr.item()
        if not isinstance(lr, (float, int, np.floating, np.integer)) or isinstance(lr, bool):
            raise ValueError(f'The output of the "schedule" function should be a float. Got: {lr!r}')
        self.model.optimizer.learning_rate = float(lr)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {float(lr)}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = _optimizer_lr(self.model, "LearningRateScheduler")


class ReduceLROnPlateau(Callback):
    """Multiplies the learning rate by ``factor`` when a metric has stopped improving.

    Args:
        monitor: the logs key to watch.
        factor: new_lr = lr * factor (must be < 1).
        patience: epochs without improvement before the rate is reduced.
        verbose: 1 prints a message on each reduction.
        mode: ``"min"``, ``"max"`` or ``"auto"``.
        min_delta: smallest change counted as an improvement.
        cooldown: epochs to wait after a reduction before counting again.
        min_lr: lower bound on the learning rate.

    Example:
        >>> plateau = ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1)
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 verbose: int = 0, mode: str = "auto", min_delta: float = 1e-4, cooldown: int = 0,
                 min_lr: float = 0.0, **kwargs: Any):
        super().__init__()
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau does not support a factor >= 1.0. Received factor={factor}")
        _check_mode("ReduceLROnPlateau", mode)
        if kwargs:
            raise TypeError(f"ReduceLROnPlateau got unexpected arguments: {sorted(kwargs)}")
        self.monitor = monitor
        self.factor = factor
        self.patience = patience
        self.verbose = verbose
        self.mode = mode
        self.min_delta = min_delta
        self.cooldown = cooldown
        self.min_lr = min_lr
        self._reset()

    def _reset(self) -> None:
        self._mode: str | None = None if self.mode == "auto" else self.mode
        self.best = math.nan
        self.wait = 0
        self.cooldown_counter = 0

    def _improved(self, current: float) -> bool:
        if self._mode is None:
            self._mode = _auto_mode(self.monitor, self.model) or "min"
        if math.isnan(self.best):
            return True
        if self._mode == "max":
            return current > self.best + self.min_delta
        return current < self.best - self.min_delta

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        logs["learning_rate"] = _optimizer_lr(self.model, "ReduceLROnPlateau")
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Learning rate reduction is conditioned on metric `{self.monitor}` which is not "
                          f"available. Available metrics are: {','.join(logs)}.", stacklevel=2)
            return
        current = _to_float(current)
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(current):
            self.best = current
            self.wait = 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old_lr = _optimizer_lr(self.model, "ReduceLROnPlateau")
                if old_lr > np.float32(self.min_lr):
                    new_lr = max(old_lr * self.factor, self.min_lr)
                    self.model.optimizer.learning_rate = new_lr
                    if self.verbose > 0:
                        print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new_lr}.")
                    self.cooldown_counter = self.cooldown
                    self.wait = 0
