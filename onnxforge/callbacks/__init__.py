"""Keras callbacks: hooks into ``fit`` / ``evaluate`` / ``predict`` (History, EarlyStopping, ...).

The hook names, arguments, defaults and semantics follow ``keras.callbacks`` (Keras 3). A callback sees
the model through ``self.model`` and can stop training by setting ``self.model.stop_training = True``.
One module per callback (or per small family); the training loop (``onnxforge.trainer``) drives them, so
they sit below it and import nothing above the Keras objects.
"""
from __future__ import annotations

__all__ = [
    "Callback", "CallbackList", "History", "ProgbarLogger", "EarlyStopping", "ModelCheckpoint",
    "LearningRateScheduler", "ReduceLROnPlateau", "TerminateOnNaN", "CSVLogger", "LambdaCallback",
    "BackupAndRestore", "TensorBoard", "SwapEMAWeights", "RemoteMonitor",
]

from .backup_and_restore import BackupAndRestore
from .callback import _HOOKS, Callback  # noqa: F401  (_HOOKS: the hook names, read by tests)
from .callback_list import CallbackList
from .csv_logger import CSVLogger
from .early_stopping import EarlyStopping
from .history import History, ProgbarLogger
from .lambda_callback import LambdaCallback
from .learning_rate import LearningRateScheduler, ReduceLROnPlateau
from .remote_monitor import RemoteMonitor
from .model_checkpoint import ModelCheckpoint, save_weights_npz  # noqa: F401  (save_weights_npz: tests, users)
from .swap_ema_weights import SwapEMAWeights
from .tensorboard import TensorBoard
from .terminate_on_nan import TerminateOnNaN
