"""``BackupAndRestore``: back up the training state during ``fit`` and resume from it after an interruption."""
from __future__ import annotations

__all__ = ["BackupAndRestore"]

import json
import os
import shutil

from .atomic_file import write_atomically
from .callback import Callback


class BackupAndRestore(Callback):
    """Backs up the training state so that a re-run ``fit`` resumes where an interrupted one stopped.

    As in Keras 3: at the end of each epoch (or every ``save_freq`` batches) the state is written to
    ``backup_dir``, overwriting the previous backup; a later ``fit`` with this callback restores it in
    ``on_train_begin`` and starts at the saved epoch; when training ends normally the backup is deleted.
    Keras backs up ``latest.weights.h5`` (weights and optimizer variables); onnxforge writes its own
    ``latest.onnx`` (``model.save()``: weights, optimizer slots and step counter, and every RNG state,
    numpy's global one included), so the resumed run continues exactly as the uninterrupted one would,
    shuffling included. ``training_metadata.json`` holds the epoch, as Keras's does.

    Args:
        backup_dir: the folder for the backup; used by this callback only.
        save_freq: ``"epoch"``, or an integer number of batches between backups (a run interrupted
            mid-epoch restarts that epoch from the state of its last backup, as in Keras).
        double_checkpoint: keep the previous backup too (``*.bkp``), restored if the latest cannot be read.
        delete_checkpoint: delete ``backup_dir`` when training finishes.

    Example:
        >>> import tempfile, os
        >>> cb = BackupAndRestore(os.path.join(tempfile.mkdtemp(), "backup"))
        >>> os.path.basename(cb._weights_path), os.path.basename(cb._training_metadata_path)
        ('latest.onnx', 'training_metadata.json')
    """

    def __init__(self, backup_dir: str | os.PathLike, save_freq: str | int = "epoch",
                 double_checkpoint: bool = False, delete_checkpoint: bool = True):
        super().__init__()
        if not backup_dir:
            raise ValueError("Empty `backup_dir` argument passed")
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int)):
            raise ValueError("Invalid value for argument `save_freq`. "
                             f"Received: save_freq={save_freq}. Expected either 'epoch' or an integer value.")
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq
        self.double_checkpoint = double_checkpoint
        self.delete_checkpoint = delete_checkpoint
        self._weights_path = os.path.join(self.backup_dir, "latest.onnx")
        self._training_metadata_path = os.path.join(self.backup_dir, "training_metadata.json")
        self._prev_weights_path = f"{self._weights_path}.bkp"
        self._prev_training_metadata_path = f"{self._training_metadata_path}.bkp"
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = 0
        self._current_epoch = 0

    # ------------------------------------------------------------------------------------ restore
    def on_train_begin(self, logs=None):
        try:
            self._load_model()
        except (OSError, ValueError):
            # The latest backup is unreadable (a ValueError is onnxforge's OnnxLoadError): the previous one.
            if not os.path.exists(self._prev_weights_path):
                raise
            shutil.copyfile(self._prev_weights_path, self._weights_path)
            if os.path.exists(self._prev_training_metadata_path):
                shutil.copyfile(self._prev_training_metadata_path, self._training_metadata_path)
            elif os.path.exists(self._training_metadata_path):
                os.remove(self._training_metadata_path)
            self._load_model()

    def _load_model(self) -> None:
        if not getattr(self.model, "built", False):
            raise ValueError("To use the BackupAndRestore callback, you model must be built before you call "
                             f"`fit()`. Model {self.model} is unbuilt. You can build it beforehand by calling it "
                             "on a batch of data.")
        if os.path.exists(self._weights_path):
            self.model._restore_training_state(self._weights_path)
        if os.path.exists(self._training_metadata_path):
            epoch = _read_epoch(self._training_metadata_path)
            # Read by fit() right after on_train_begin, as Keras's trainers read it.
            self.model._initial_epoch = epoch
            self._current_epoch = epoch

    # --------------------------------------------------------------------------------------- back up
    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch = epoch + 1
        self._last_batch_seen = 0
        if self.save_freq == "epoch":
            self._save_model()

    def on_train_batch_end(self, batch, logs=None):
        if self._should_save_on_batch(batch):
            self._save_model()

    def _save_model(self) -> None:
        os.makedirs(self.backup_dir, exist_ok=True)
        if self.double_checkpoint and os.path.exists(self._weights_path):
            shutil.copyfile(self._weights_path, self._prev_weights_path)
        if self.double_checkpoint and os.path.exists(self._training_metadata_path):
            shutil.copyfile(self._training_metadata_path, self._prev_training_metadata_path)
        # Each write is atomic (model.save writes through a temporary file and a rename too), so a crash
        # leaves whole files; the order is Keras's.
        self.model.save(self._weights_path, overwrite=True)
        state = json.dumps({"epoch": self._current_epoch, "batch": self._last_batch_seen}).encode()
        write_atomically(self._training_metadata_path, lambda f: f.write(state))

    def _should_save_on_batch(self, batch: int) -> bool:
        """Keras's count, which also holds with ``steps_per_execution`` (batch indices jumping by more than one)."""
        if self.save_freq == "epoch":
            return False
        if batch <= self._last_batch_seen:   # a new epoch
            add_batches = batch + 1
        else:
            add_batches = batch - self._last_batch_seen
        self._batches_seen_since_last_saving += add_batches
        self._last_batch_seen = batch
        if self._batches_seen_since_last_saving >= self.save_freq:
            self._batches_seen_since_last_saving = 0
            return True
        return False

    def on_train_end(self, logs=None):
        if self.delete_checkpoint and os.path.exists(self.backup_dir):
            shutil.rmtree(self.backup_dir)


#: ``training_metadata.json`` holds two small integers; a larger file is not one of ours.
_MAX_METADATA_BYTES = 64 * 1024


def _read_epoch(path: str) -> int:
    """The epoch ``training_metadata.json`` records, or a ``ValueError`` naming the file, the key and the value
    (which makes ``on_train_begin`` fall back to the previous backup): a list, a missing key or ``"3"``
    once failed later, inside ``fit``, as a ``TypeError`` / ``KeyError`` naming neither."""
    def refuse(why: str) -> ValueError:
        return ValueError(f"BackupAndRestore: cannot resume from {path!r}: {why}. Expected the JSON object "
                          '{"epoch": <int >= 0>, "batch": <int >= 0>} that this callback writes; delete the backup '
                          "folder to start over.")

    if not os.path.isfile(path):
        raise refuse("it is not a regular file")
    with open(path, "rb") as f:
        raw = f.read(_MAX_METADATA_BYTES + 1)
    if len(raw) > _MAX_METADATA_BYTES:
        raise refuse(f"it is over {_MAX_METADATA_BYTES} bytes")
    try:
        state = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as e:     # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise refuse(f"it is not UTF-8 JSON ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict):
        raise refuse(f"it holds a {type(state).__name__}, not an object")
    for key in ("epoch", "batch"):
        value = state.get(key, 0)
        if key == "epoch" and key not in state:
            raise refuse("it has no 'epoch'")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise refuse(f"its {key!r} is {value!r}")
    return state["epoch"]
