"""``History`` (the record ``fit`` returns) and ``ProgbarLogger`` (the progress bar)."""
from __future__ import annotations

__all__ = ["History", "ProgbarLogger"]

from typing import Any

import numpy as np

from .progbar import Progbar
from .callback import Callback, Logs
from .monitor import _is_scalar


def _shown(value: Any) -> bool:
    """A number, or an array of numbers (a custom step's per-sample loss), which the bar shows by its mean."""
    return _is_scalar(value) or (isinstance(value, np.ndarray) and value.dtype.kind in "fiu")


class History(Callback):
    """Records the logs of every epoch; ``fit`` returns it.

    Attributes:
        history: metric name -> list of per-epoch values (``loss``, ``accuracy``, ``val_loss``, ...).
        epoch: the epoch indices recorded (from 0).
        params: ``{"verbose", "epochs", "steps"}`` of the ``fit`` call.

    Example:
        >>> h = History()
        >>> h.on_train_begin()
        >>> h.on_epoch_end(0, {"loss": 0.9}); h.on_epoch_end(1, {"loss": 0.5})
        >>> h.history, h.epoch
        ({'loss': [0.9, 0.5]}, [0, 1])
    """

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list[Any]] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(value)
        if self.model is not None:
            self.model.history = self  # Keras exposes the last run's History as model.history

    def __repr__(self) -> str:
        return f"<History epochs={len(self.epoch)} keys={list(self.history)}>"


class ProgbarLogger(Callback):
    """Prints the Keras progress bar: ``Epoch 1/10`` then ``469/469 ━━━━ 2s 4ms/step - loss: 0.3``.

    Uses ``params["verbose"]`` (1: animated bar, 2: one line per epoch) and ``params["steps"]``.
    Validation runs inside ``fit`` do not draw a bar of their own; their ``val_`` metrics show on the
    epoch's final line.
    """

    def __init__(self) -> None:
        super().__init__()
        self._bar: Progbar | None = None
        self._seen = 0
        self._in_fit = False
        self.verbose = 1
        self.epochs = 1
        self.target: int | None = None

    def set_params(self, params):
        super().set_params(params)
        self.verbose = params.get("verbose", 1)
        self.epochs = params.get("epochs", 1)
        self.target = params.get("steps")

    def _new_bar(self) -> None:
        self._seen = 0
        self._bar = Progbar(self.target, verbose=self.verbose, unit_name="step")

    def _update(self, batch: int, logs: Logs | None) -> None:
        if self._bar is None:
            self._new_bar()
        self._seen = batch + 1
        # Logs hold running averages already, so every value is shown as given (stateful).
        items = [(k, v) for k, v in (logs or {}).items() if _shown(v)]
        self._bar.stateful_metrics.update(k for k, _ in items)
        self._bar.update(self._seen, items, finalize=False)

    def _finalize(self, logs: Logs | None) -> None:
        if self._bar is None:
            self._new_bar()
        if self.target is None:
            self.target = self._seen  # an unknown epoch length is known after the first epoch
            self._bar.target = self._seen
        items = [(k, v) for k, v in (logs or {}).items() if _shown(v)]
        self._bar.stateful_metrics.update(k for k, _ in items)
        self._bar.update(self._seen, items, finalize=True)

    def on_train_begin(self, logs=None):
        self._in_fit = True

    def on_train_end(self, logs=None):
        self._in_fit = False

    def on_epoch_begin(self, epoch, logs=None):
        self._new_bar()
        if self.verbose and self.epochs > 1:
            print(f"Epoch {epoch + 1}/{self.epochs}", flush=True)

    def on_train_batch_end(self, batch, logs=None):
        self._update(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._finalize(logs)

    def on_test_begin(self, logs=None):
        if not self._in_fit:
            self._new_bar()

    def on_test_batch_end(self, batch, logs=None):
        if not self._in_fit:
            self._update(batch, logs)

    def on_test_end(self, logs=None):
        if not self._in_fit:
            self._finalize(logs)

    def on_predict_begin(self, logs=None):
        self._new_bar()

    def on_predict_batch_end(self, batch, logs=None):
        self._update(batch, None)

    def on_predict_end(self, logs=None):
        self._finalize(None)
