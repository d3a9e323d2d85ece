"""``ModelCheckpoint``: save the model or its weights during training."""
from __future__ import annotations

__all__ = ["ModelCheckpoint"]

import os
import warnings

import numpy as np

from .atomic_file import write_atomically
from .callback import Callback, Logs
from .monitor import _auto_mode, _check_mode, _to_float


def save_weights_npz(weights: list[np.ndarray], path: str | os.PathLike) -> None:
    """Write ``weights`` (``get_weights()`` order) to ``path`` as ``.npz``, atomically.

    The file is written under a temporary name in the same folder, flushed to disk, then renamed, so an
    interrupted save never leaves a truncated checkpoint where a good one was.

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "w.npz")
        >>> save_weights_npz([np.ones(2)], path)
        >>> np.load(path)["arr_0"].tolist()
        [1.0, 1.0]
    """
    write_atomically(path, lambda f: np.savez(f, *[np.asarray(w) for w in weights]))


#: What ``ModelCheckpoint`` writes: Keras 3's formats first, then onnxforge's own.
_WEIGHTS_SUFFIXES = (".weights.h5", ".weights.onnx", ".npz")
_MODEL_SUFFIXES = (".keras", ".h5", ".onnx")


def _check_checkpoint_path(filepath: str, save_weights_only: bool) -> None:
    """Keras 3's rule (and messages): ``.weights.h5`` for weights, ``.keras`` for models, plus onnxforge's files."""
    if save_weights_only:
        if not filepath.endswith(_WEIGHTS_SUFFIXES):
            raise ValueError("When using `save_weights_only=True` in `ModelCheckpoint`, the filepath provided must end "
                             "in `.weights.h5` (Keras weights format; onnxforge also writes `.weights.onnx` and "
                             f"`.npz`). Received: filepath={filepath}")
    elif not filepath.endswith(_MODEL_SUFFIXES):
        raise ValueError("The filepath provided must end in `.keras` (Keras model format; also `.h5`, or `.onnx` for "
                         "onnxforge's own file, which keeps the optimizer and RNG state for an exact resume). "
                         f"Received: filepath={filepath}")


class ModelCheckpoint(Callback):
    """Saves the model or its weights during training.

    Args:
        filepath: where to save; may hold ``str.format`` fields filled from the epoch number (from 1)
            and the logs, e.g. ``"ckpt-{epoch:02d}-{val_loss:.2f}.keras"``. As in Keras 3 it must end in
            ``.keras`` (or ``.h5``) for models and ``.weights.h5`` for weights; onnxforge's own ``.onnx``
            (models, with optimizer and RNG state) and ``.weights.onnx`` / ``.npz`` (weights) work too.
        monitor: the logs key compared when ``save_best_only``.
        verbose: 1 prints a message at each decision.
        save_best_only: save only when ``monitor`` improves on the best value so far.
        save_weights_only: save weights only (``model.save_weights(path)``, or, for models without it,
            an ``.npz`` of ``get_weights()`` written atomically); otherwise ``model.save(path)``.
        mode: ``"min"``, ``"max"`` or ``"auto"``.
        save_freq: ``"epoch"``, or an integer number of batches between saves.
        initial_value_threshold: the best value to beat before the first save (``save_best_only``).

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "w-{epoch:02d}.npz")
        >>> cb = ModelCheckpoint(path, save_weights_only=True)
        >>> cb._format_path(2, None, {"loss": 0.1}).endswith("w-03.npz")
        True
    """

    def __init__(self, filepath: str | os.PathLike, monitor: str = "val_loss", verbose: int = 0,
                 save_best_only: bool = False, save_weights_only: bool = False, mode: str = "auto",
                 save_freq: str | int = "epoch", initial_value_threshold: float | None = None):
        super().__init__()
        _check_mode("ModelCheckpoint", mode)
        if save_freq != "epoch" and not (isinstance(save_freq, int) and save_freq > 0):
            raise ValueError("ModelCheckpoint: save_freq must be 'epoch' or a positive integer. "
                             f"Received: save_freq={save_freq!r}")
        self.filepath = os.fspath(filepath)
        _check_checkpoint_path(self.filepath, save_weights_only)
        self.monitor = monitor
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.mode = mode
        self.save_freq = save_freq
        self.initial_value_threshold = initial_value_threshold
        self.best: float | None = initial_value_threshold
        self._mode: str | None = None if mode == "auto" else mode
        self._batches_since_save = 0
        self._current_epoch = 0

    def on_train_begin(self, logs=None):
        saver = "save_weights" if self.save_weights_only else "save"
        if not self.save_weights_only and not callable(getattr(self.model, saver, None)):
            raise ValueError(f"ModelCheckpoint(save_weights_only=False) saves through model.save(), which "
                             f"{type(self.model).__name__} does not provide. Pass save_weights_only=True.")

    def _better(self, current: float) -> bool:
        if self._mode is None:
            self._mode = _auto_mode(self.monitor, self.model) or "min"
        if self.best is None:
            return True
        return current > self.best if self._mode == "max" else current < self.best

    def _format_path(self, epoch: int, batch: int | None, logs: Logs | None) -> str:
        fields = dict(logs or {})
        fields["epoch"] = epoch + 1
        if batch is not None:
            fields["batch"] = batch + 1
        try:
            return self.filepath.format(**fields)
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(f'Failed to format this callback filepath: "{self.filepath}". '
                             f"Reason: {e!r} (available fields: {sorted(fields)})") from e

    def _save(self, epoch: int, batch: int | None, logs: Logs | None) -> None:
        logs = logs or {}
        path = self._format_path(epoch, batch, logs)
        if self.save_best_only:
            current = logs.get(self.monitor)
            if current is None:
                warnings.warn(f"Can save best model only with {self.monitor} available, skipping.",
                              stacklevel=3)
                return
            current = _to_float(current)
            if not self._better(current):
                if self.verbose > 0:
                    print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}")
                return
            if self.verbose > 0:
                previous = "inf" if self.best is None else f"{self.best:.5f}"
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {previous} to {current:.5f}, "
                      f"saving model to {path}")
            self.best = current
        elif self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: saving model to {path}")
        self._write(path)

    def _write(self, path: str) -> None:
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        if not self.save_weights_only:
            self.model.save(path)
        elif callable(getattr(self.model, "save_weights", None)):
            self.model.save_weights(path)
        else:
            save_weights_npz(self.model.get_weights(), path)

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        self._batches_since_save += 1
        if self._batches_since_save >= self.save_freq:
            self._batches_since_save = 0
            self._save(self._current_epoch, batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, None, logs)
