"""The ``Callback`` base class: the hook names and what a callback sees (``self.model``, ``self.params``)."""
from __future__ import annotations

__all__ = ["Callback"]

from typing import Any


Logs = dict[str, Any]

_HOOKS = (
    "on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
    "on_train_batch_begin", "on_train_batch_end", "on_test_begin", "on_test_end",
    "on_test_batch_begin", "on_test_batch_end", "on_predict_begin", "on_predict_end",
    "on_predict_batch_begin", "on_predict_batch_end",
)


class Callback:
    """Base class of callbacks: every hook is a no-op that a subclass may override.

    Attributes:
        model: the model being trained (set by ``fit`` / ``evaluate`` / ``predict``).
        params: ``{"verbose", "epochs", "steps"}`` of the running loop.

    Example:
        >>> class Count(Callback):
        ...     def on_epoch_end(self, epoch, logs=None):
        ...         print(f"epoch {epoch}: {sorted(logs)}")
        >>> Count().on_epoch_end(0, {"loss": 0.5})
        epoch 0: ['loss']
    """

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self._model: Any = None

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params

    def set_model(self, model: Any) -> None:
        self._model = model

    @property
    def model(self) -> Any:
        return self._model

    # Keras keeps on_batch_* as aliases that the train-batch hooks call.
    def on_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        """Called at the start of a training batch (alias kept for Keras 2 callbacks)."""

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        """Called at the end of a training batch (alias kept for Keras 2 callbacks)."""

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        """Called at the start of an epoch (``epoch`` counts from 0)."""

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        """Called at the end of an epoch with the epoch's metrics, ``val_`` metrics included."""

    def on_train_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        """Called after a training batch with the running averages of the epoch's metrics."""
        self.on_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        """Called at the start of an evaluation batch."""

    def on_test_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        """Called after an evaluation batch with the running metric averages."""

    def on_predict_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        """Called at the start of a prediction batch."""

    def on_predict_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        """Called after a prediction batch; ``logs["outputs"]`` holds the batch's outputs."""

    def on_train_begin(self, logs: Logs | None = None) -> None:
        """Called at the start of ``fit``."""

    def on_train_end(self, logs: Logs | None = None) -> None:
        """Called at the end of ``fit`` with the last epoch's logs."""

    def on_test_begin(self, logs: Logs | None = None) -> None:
        """Called at the start of ``evaluate`` (and of each validation run inside ``fit``)."""

    def on_test_end(self, logs: Logs | None = None) -> None:
        """Called at the end of ``evaluate`` with its metrics."""

    def on_predict_begin(self, logs: Logs | None = None) -> None:
        """Called at the start of ``predict``."""

    def on_predict_end(self, logs: Logs | None = None) -> None:
        """Called at the end of ``predict``."""
