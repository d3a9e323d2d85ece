"""What the Keras loops do differently on each rank: side effects on rank 0, decisions taken together.

Every rank runs every callback that steers training (``EarlyStopping``, ``ReduceLROnPlateau``,
``LearningRateScheduler``, ``TerminateOnNaN``, user callbacks): they see the same logs (the metrics are
reduced over the ranks), so they decide the same. Callbacks whose job is a side effect — writing files
(``ModelCheckpoint``, ``CSVLogger``, TensorBoard logs, ``BackupAndRestore``) or printing (the progress bar)
— run on rank 0 only, as do ``verbose`` outputs; a callback may say so itself with ``chief_only = True``
(or ``False`` to run everywhere). A last callback ORs ``model.stop_training`` over the ranks after every
batch and epoch, so a callback that stops one rank (a wall-clock budget) stops them all at the same step
instead of leaving the others waiting in the next all-reduce.

Example:
    >>> from onnxforge.callbacks import CSVLogger, EarlyStopping
    >>> [chief_only(c) for c in (CSVLogger("log.csv"), EarlyStopping())]
    [True, False]
"""
from __future__ import annotations

__all__ = ["chief_only", "adapt_callbacks", "AgreeToStop"]

from typing import Any

from ..callbacks import Callback, CallbackList, CSVLogger, ModelCheckpoint, ProgbarLogger

_CHIEF_ONLY_TYPES = (ModelCheckpoint, CSVLogger, ProgbarLogger)
_CHIEF_ONLY_NAMES = {"TensorBoard", "BackupAndRestore", "RemoteMonitor", "BackupAndRestoreCallback"}


def chief_only(callback: Any) -> bool:
    """Whether ``callback`` runs on rank 0 only (its own ``chief_only`` attribute decides when it has one)."""
    flag = getattr(callback, "chief_only", None)
    if isinstance(flag, bool):
        return flag
    return isinstance(callback, _CHIEF_ONLY_TYPES) or type(callback).__name__ in _CHIEF_ONLY_NAMES


class AgreeToStop(Callback):
    """ORs ``model.stop_training`` over the ranks after each training batch and epoch."""

    def __init__(self, comm: Any):
        super().__init__()
        self.comm = comm

    def _agree(self) -> None:
        model = self.model
        if model is not None:
            model.stop_training = self.comm.any(bool(getattr(model, "stop_training", False)),
                                                "the stop_training agreement")

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self._agree()

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self._agree()


def adapt_callbacks(comm: Any, method: str, callbacks: Any, verbose: int) -> tuple[list[Any], int]:
    """This rank's callbacks and verbosity for ``fit`` / ``evaluate`` / ``predict``."""
    if isinstance(callbacks, CallbackList):
        items = list(callbacks.callbacks)
    elif isinstance(callbacks, Callback):
        items = [callbacks]
    elif callbacks is None:
        items = []
    elif isinstance(callbacks, (list, tuple)):
        items = list(callbacks)
    else:
        return callbacks, verbose   # the loop raises its own error for this
    if comm.rank != 0:
        items = [c for c in items if not chief_only(c)]
        verbose = 0
    if method == "fit":
        items.append(AgreeToStop(comm))
    return items, verbose
