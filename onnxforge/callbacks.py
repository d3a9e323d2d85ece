"""Keras callbacks: hooks into ``fit`` / ``evaluate`` / ``predict`` (History, EarlyStopping, ...).

The hook names, arguments, defaults and semantics follow ``keras.callbacks`` (Keras 3). A callback sees
the model through ``self.model`` and can stop training by setting ``self.model.stop_training = True``.
"""
from __future__ import annotations

__all__ = [
    "Callback", "CallbackList", "History", "ProgbarLogger", "EarlyStopping", "ModelCheckpoint",
    "LearningRateScheduler", "ReduceLROnPlateau", "TerminateOnNaN", "CSVLogger", "LambdaCallback",
]

import collections
import csv
import math
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .utils.progbar import Progbar

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


class CallbackList(Callback):
    """Several callbacks called in order, plus the default ``History`` and ``ProgbarLogger``.

    Args:
        callbacks: user callbacks, called in the given order.
        add_history: append a ``History`` unless one is given.
        add_progbar: append a ``ProgbarLogger`` unless one is given (it comes last so that it shows
            values other callbacks add to the logs, such as ``learning_rate``).
        model: the model, passed to every callback.
        **params: loop parameters (``verbose``, ``epochs``, ``steps``) passed to ``set_params``.

    Example:
        >>> cbs = CallbackList([TerminateOnNaN()], add_history=True, epochs=1, steps=1, verbose=0)
        >>> [type(c).__name__ for c in cbs.callbacks]
        ['TerminateOnNaN', 'History']
    """

    def __init__(self, callbacks: Iterable[Callback] | None = None, add_history: bool = False,
                 add_progbar: bool = False, model: Any = None, **params: Any):
        super().__init__()
        if isinstance(callbacks, Callback) and not isinstance(callbacks, CallbackList):
            callbacks = [callbacks]
        self.callbacks: list[Callback] = list(callbacks or [])
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError("callbacks must be a list of onnxforge.callbacks.Callback instances. "
                                f"Received: callbacks=[..., {cb!r}, ...] (a {type(cb).__name__})")
        self.history: History | None = next((c for c in self.callbacks if isinstance(c, History)), None)
        if self.history is None and add_history:
            self.history = History()
            self.callbacks.append(self.history)
        has_progbar = any(isinstance(c, ProgbarLogger) for c in self.callbacks)
        if add_progbar and not has_progbar:
            self.callbacks.append(ProgbarLogger())
        if model is not None:
            self.set_model(model)
        if params:
            self.set_params(params)

    def append(self, callback: Callback) -> None:
        self.callbacks.append(callback)

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params
        for cb in self.callbacks:
            cb.set_params(params)

    def set_model(self, model: Any) -> None:
        self._model = model
        for cb in self.callbacks:
            cb.set_model(model)

    def _call(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(*args)

    def on_batch_begin(self, batch, logs=None):
        self._call("on_train_batch_begin", batch, logs)

    def on_batch_end(self, batch, logs=None):
        self._call("on_train_batch_end", batch, logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._call("on_epoch_end", epoch, logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._call("on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self._call("on_train_batch_end", batch, logs)

    def on_test_batch_begin(self, batch, logs=None):
        self._call("on_test_batch_begin", batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        self._call("on_test_batch_end", batch, logs)

    def on_predict_batch_begin(self, batch, logs=None):
        self._call("on_predict_batch_begin", batch, logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._call("on_predict_batch_end", batch, logs)

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", logs)

    def on_train_end(self, logs=None):
        self._call("on_train_end", logs)

    def on_test_begin(self, logs=None):
        self._call("on_test_begin", logs)

    def on_test_end(self, logs=None):
        self._call("on_test_end", logs)

    def on_predict_begin(self, logs=None):
        self._call("on_predict_begin", logs)

    def on_predict_end(self, logs=None):
        self._call("on_predict_end", logs)


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
        items = [(k, v) for k, v in (logs or {}).items() if _is_scalar(v)]
        self._bar.stateful_metrics.update(k for k, _ in items)
        self._bar.update(self._seen, items, finalize=False)

    def _finalize(self, logs: Logs | None) -> None:
        if self._bar is None:
            self._new_bar()
        if self.target is None:
            self.target = self._seen  # an unknown epoch length is known after the first epoch
            self._bar.target = self._seen
        items = [(k, v) for k, v in (logs or {}).items() if _is_scalar(v)]
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


def _is_scalar(value: Any) -> bool:
    return np.ndim(value) == 0 and not isinstance(value, str)


# Metric names whose better value is the larger one. Others containing a loss-like word are minimized.
_MAXIMIZED = ("acc", "auc", "precision", "recall", "f1", "fbeta", "fmeasure", "iou", "r2",
              "true_positives", "true_negatives")
_MINIMIZED = ("loss", "error", "crossentropy", "hinge", "mse", "mae", "mape", "msle", "divergence",
              "false_positives", "false_negatives", "poisson", "cosh")


def _auto_mode(monitor: str, model: Any) -> str | None:
    """``"min"`` / ``"max"`` for a monitored name, or ``None`` if it cannot be told."""
    name = monitor[4:] if monitor.startswith("val_") else monitor
    for metric in getattr(model, "metrics", None) or ():
        direction = getattr(metric, "_direction", None)
        if getattr(metric, "name", None) == name and direction in ("up", "down"):
            return "max" if direction == "up" else "min"
    lowered = name.lower()
    if any(word in lowered for word in _MINIMIZED):
        return "min"
    if any(word in lowered for word in _MAXIMIZED):
        return "max"
    return None


def _check_mode(cls: str, mode: str) -> None:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{cls}: mode must be one of 'auto', 'min' or 'max'. Received: mode={mode!r}")


def _to_float(value: Any) -> float:
    return float(np.asarray(value))


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
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, *[np.asarray(w) for w in weights])
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


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
        schedule: ``schedule(epoch, lr) -> new lr`` (``epoch`` counts from 0).
        verbose: 1 prints the new rate at each epoch.

    Example:
        >>> halve = LearningRateScheduler(lambda epoch, lr: lr * 0.5)
    """

    def __init__(self, schedule: Callable[[int, float], float], verbose: int = 0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler: schedule must be callable. Received: schedule={schedule!r}")
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        lr = self.schedule(epoch, _optimizer_lr(self.model, "LearningRateScheduler"))
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


class TerminateOnNaN(Callback):
    """Stops training as soon as a batch's loss is NaN or infinite.

    Example:
        >>> model = type("M", (), {"stop_training": False})()
        >>> cb = TerminateOnNaN(); cb.set_model(model)
        >>> cb.on_batch_end(3, {"loss": float("nan")})
        Batch 3: Invalid loss, terminating training
        >>> model.stop_training
        True
    """

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.all(np.isfinite(loss)):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class CSVLogger(Callback):
    """Streams each epoch's logs to a CSV file: a header ``epoch,<sorted keys>`` then one row per epoch.

    ``epoch`` counts from 0, as in Keras.

    Args:
        filename: the CSV file.
        separator: the field separator.
        append: append to an existing file (no second header) instead of overwriting it.

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "log.csv")
        >>> log = CSVLogger(path)
        >>> log.on_train_begin(); log.on_epoch_end(0, {"loss": 0.5}); log.on_train_end()
        >>> open(path).read().splitlines()
        ['epoch,loss', '0,0.5']
    """

    def __init__(self, filename: str | os.PathLike, separator: str = ",", append: bool = False):
        super().__init__()
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = append
        self.keys: list[str] | None = None
        self.writer: csv.DictWriter | None = None
        self.csv_file: Any = None
        self._append_header = True

    def on_train_begin(self, logs=None):
        self._append_header = True
        if self.append and os.path.exists(self.filename):
            with open(self.filename, encoding="utf-8") as f:
                self._append_header = not bool(len(f.readline()))
        folder = os.path.dirname(self.filename)
        if folder:
            os.makedirs(folder, exist_ok=True)
        self.csv_file = open(self.filename, "a" if self.append else "w", newline="", encoding="utf-8")
        self.keys = None
        self.writer = None

    @staticmethod
    def _cell(value: Any) -> Any:
        if isinstance(value, str) or np.ndim(value) == 0:
            return value.item() if isinstance(value, np.generic) else value
        return '"[%s]"' % ", ".join(map(str, np.ravel(value)))

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
        if self.model is not None and getattr(self.model, "stop_training", False):
            # The last epoch may lack keys (validation skipped): keep the columns, mark the gaps.
            logs = {k: logs.get(k, "NA") for k in self.keys}
        if self.writer is None:
            self.writer = csv.DictWriter(self.csv_file, fieldnames=["epoch"] + self.keys,
                                         delimiter=self.sep, extrasaction="ignore", restval="NA")
            if self._append_header:
                self.writer.writeheader()
        row = collections.OrderedDict({"epoch": epoch})
        row.update((k, self._cell(logs.get(k, "NA"))) for k in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs=None):
        if self.csv_file is not None:
            self.csv_file.close()
            self.csv_file = None
        self.writer = None


class LambdaCallback(Callback):
    """A callback built from plain functions.

    ``on_epoch_begin(epoch, logs)``, ``on_epoch_end(epoch, logs)``, ``on_train_begin(logs)``,
    ``on_train_end(logs)``, ``on_train_batch_begin(batch, logs)``, ``on_train_batch_end(batch, logs)``,
    and any other hook by keyword (``on_test_end=...``).

    Example:
        >>> seen = []
        >>> cb = LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(epoch))
        >>> cb.on_epoch_end(4, {}); seen
        [4]
    """

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
                 on_train_batch_begin=None, on_train_batch_end=None, **kwargs: Any):
        super().__init__()
        hooks = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end,
                     on_train_begin=on_train_begin, on_train_end=on_train_end,
                     on_train_batch_begin=on_train_batch_begin, on_train_batch_end=on_train_batch_end)
        for name, fn in kwargs.items():
            if name not in _HOOKS and name not in ("on_batch_begin", "on_batch_end"):
                raise TypeError(f"LambdaCallback: unknown hook {name!r}. Expected one of {list(_HOOKS)}")
            hooks[name] = fn
        for name, fn in hooks.items():
            if fn is not None:
                setattr(self, name, fn)
