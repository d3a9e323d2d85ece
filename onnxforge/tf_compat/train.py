"""``tf.train``: ``Checkpoint``, ``CheckpointManager`` and ``latest_checkpoint``, as TensorFlow's tutorials use
them to save and resume a training loop (the DCGAN tutorial's generator, discriminator and both optimizers).

A checkpoint holds the Variables of the objects given to ``Checkpoint(**objects)``: models and layers (all
their weights, by position), optimizers (``iterations``, and each slot under the key of the weight it belongs
to), Variables, and nested checkpoints, keyed by the objects' keywords as TensorFlow keys them by the object
structure (so a model built again, whose layers got new names, restores). ``save`` writes ``<prefix>-<n>.npz`` (an onnxforge weights ``.npz``,
not TensorFlow's ``.index`` / ``.data`` pair) atomically and records it in the folder's ``checkpoint`` state file,
which ``latest_checkpoint`` reads. ``restore`` reads the file as untrusted input (members and sizes bounded by
what the objects hold) and assigns by key; an optimizer that has taken no step yet is first built on the
checkpoint's model variables its slots name, so resuming before the first step restores its state too, as
TensorFlow's deferred restoration does.

Example:
    >>> import os, tempfile
    >>> import numpy as np
    >>> import onnxforge as tf
    >>> step = tf.Variable(3)
    >>> ckpt = Checkpoint(step=step)
    >>> folder = tempfile.mkdtemp()
    >>> path = ckpt.save(os.path.join(folder, "ckpt"))
    >>> os.path.basename(path), os.path.basename(latest_checkpoint(folder))
    ('ckpt-1', 'ckpt-1')
    >>> _ = step.assign(0); _ = ckpt.restore(path); int(step.numpy())
    3
"""
from __future__ import annotations

__all__ = ["Checkpoint", "CheckpointManager", "latest_checkpoint"]

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..saving.atomic import atomic_write
from ..saving.model_files import _NPZ_NAMES
from ..saving.npz_weights import read_npz
from .module import Module
from ..variables import Variable

_STATE_FILE = "checkpoint"
_STATE_LINE = re.compile(r'^(model_checkpoint_path|all_model_checkpoint_paths): "([^"\n]*)"$')
_MAX_STATE_BYTES = 1 << 20


def _optimizer_like(obj: Any) -> bool:
    return hasattr(obj, "variables") and hasattr(obj, "slots") and hasattr(obj, "iterations")


def _own(name: str, obj: Any) -> list[tuple[str, Variable]]:
    """``(key, Variable)`` of a model, layer, Variable or checkpoint under ``name``: a model's weights by their
    position in ``weights`` (TensorFlow matches by the objects' structure, not by names, so a model built again
    in the same process, whose layers are called ``dense_3`` instead of ``dense``, restores)."""
    if isinstance(obj, Variable):
        return [(name, obj)]
    if isinstance(obj, Checkpoint):
        return [(f"{name}/{k}", v) for k, v in obj._keyed()]
    if isinstance(obj, Module):   # TensorFlow's walk of its attributes
        return [(f"{name}/variables/{i}", v) for i, v in enumerate(obj.variables)]
    if hasattr(obj, "weights"):   # a model or a layer
        return [(f"{name}/weights/{i}", v) for i, v in enumerate(obj.weights)]
    raise TypeError(f"tf.train.Checkpoint: {name}={obj!r} is not a model, layer, optimizer, Variable or Checkpoint.")


def _optimizer_keys(name: str, opt: Any, owner: dict[int, str]) -> list[tuple[str, Variable]]:
    """An optimizer's Variables: each slot keyed by the checkpoint key of the weight it belongs to."""
    keyed = [(f"{name}/iterations", opt.iterations)]
    seen = {opt.iterations.uid}
    per_weight = [(var_uid, slots) for var_uid, slots in getattr(opt, "_slots", {}).items()]
    per_weight += [(uid, {"average": avg}) for uid, avg in getattr(opt, "_averages", {}).items()]
    for var_uid, slots in per_weight:
        for slot, slot_var in slots.items():
            where = owner.get(var_uid, slot_var.path)
            keyed.append((f"{name}/{slot}/{where}", slot_var))
            seen.add(slot_var.uid)
    # Whatever else the optimizer holds (a Keras-style optimizer's add_variable state), by name.
    keyed += [(f"{name}/{v.path}", v) for v in opt.variables if v.uid not in seen]
    return keyed


class _Status:
    """What ``restore`` matched (TensorFlow's load status, with its assertions)."""

    def __init__(self, unused: list[str], missing: list[str]):
        self.unused, self.missing = unused, missing

    def expect_partial(self) -> _Status:
        return self

    def assert_consumed(self) -> _Status:
        if self.unused or self.missing:
            raise AssertionError(f"Checkpoint restore did not match everything: values in the file unused: "
                                 f"{self.unused[:10]}; objects' variables not in the file: {self.missing[:10]}")
        return self

    def assert_existing_objects_matched(self) -> _Status:
        if self.missing:
            raise AssertionError(f"Checkpoint restore: variables not in the file: {self.missing[:10]}")
        return self

    def assert_nontrivial_match(self) -> _Status:
        return self

    def run_restore_ops(self, session: Any = None) -> None:
        return None


class Checkpoint:
    """The Variables of ``objects`` (keyword arguments), saved and restored together.

    Args:
        root: an object saved under the key ``"root"`` (TensorFlow's positional argument).
        **objects: models, layers, optimizers, Variables or checkpoints, each under its keyword.
    """

    def __init__(self, root: Any = None, **objects: Any):
        self._objects: dict[str, Any] = ({"root": root} if root is not None else {}) | objects
        for key, obj in self._objects.items():
            if not _optimizer_like(obj):
                _own(key, obj)   # refuse what cannot be saved now, not at the first save
            setattr(self, key, obj)
        self.save_counter = Variable(np.asarray(0, np.int64), name="save_counter", trainable=False, dtype=np.int64)

    def _keyed(self) -> list[tuple[str, Variable]]:
        owned = [(key, obj, _own(key, obj)) for key, obj in self._objects.items() if not _optimizer_like(obj)]
        owner = {v.uid: k for _, _, items in owned for k, v in items}
        keyed = [item for _, _, items in owned for item in items]
        for key, obj in self._objects.items():
            if _optimizer_like(obj):
                keyed += _optimizer_keys(key, obj, owner)
        return keyed

    # ------------------------------------------------------------------ saving
    def write(self, file_prefix: str | os.PathLike[str], options: Any = None) -> str:
        """Write the Variables to ``<file_prefix>.npz``; returns ``file_prefix``."""
        path = os.fspath(file_prefix)
        keyed = self._keyed() + [("save_counter", self.save_counter)]
        arrays = {f"w{k:05d}": np.asarray(v.numpy()) for k, (_, v) in enumerate(keyed)}
        arrays[_NPZ_NAMES] = np.asarray([key for key, _ in keyed], dtype=np.str_)
        atomic_write(path + ".npz", lambda f: np.savez(f, **arrays))
        return path

    def save(self, file_prefix: str | os.PathLike[str], options: Any = None) -> str:
        """Write ``<file_prefix>-<n>`` (n counts this checkpoint's saves from 1) and record it as the folder's
        latest checkpoint; returns that path."""
        self.save_counter.assign(int(self.save_counter.numpy()) + 1)
        path = self.write(f"{os.fspath(file_prefix)}-{int(self.save_counter.numpy())}")
        folder = os.path.dirname(path) or "."
        _write_state(folder, path, _read_state(folder) + [path])
        return path

    # ------------------------------------------------------------------ restoring
    def read(self, save_path: str | os.PathLike[str] | None, options: Any = None) -> _Status:
        """Restore from ``save_path`` (as written by ``write`` / ``save``); ``None`` restores nothing."""
        return self.restore(save_path, options)

    def restore(self, save_path: str | os.PathLike[str] | None, options: Any = None) -> _Status:
        """Assign every Variable its value in ``save_path`` (``None``, as ``latest_checkpoint`` returns for a folder
        without one, restores nothing: training starts from scratch)."""
        if save_path is None:
            return _Status([], [])
        path = Path(os.fspath(save_path) + ".npz")
        known = self._keyed()
        size = sum(int(np.asarray(v.numpy()).nbytes) for _, v in known)
        # Optimizer slots not created yet are not counted above: allow a few times the weights, no more.
        arrays, labels = read_npz(path, limit=4 * size + (1 << 20), max_members=4 * len(known) + 16)
        values = dict(zip(labels, arrays))
        self._build_optimizers(values)
        known = self._keyed()
        missing = []
        for key, var in known:
            if key not in values:
                missing.append(key)
                continue
            value = values[key]
            if tuple(value.shape) != tuple(var.shape):
                raise ValueError(f"tf.train.Checkpoint.restore: {key!r} has shape {tuple(value.shape)} in "
                                 f"{str(path)!r}; the variable's shape is {tuple(var.shape)}.")
            var.assign(value.astype(var.dtype, copy=False))
        if "save_counter" in values:
            self.save_counter.assign(int(values["save_counter"]) if values["save_counter"].ndim == 0 else 0)
        used = {key for key, _ in known}
        return _Status(sorted(set(values) - used - {"save_counter"}), missing)

    def _build_optimizers(self, values: dict[str, np.ndarray]) -> None:
        """An optimizer with no slots yet is built on the weights whose slots the file holds for it."""
        owned = [item for key, obj in self._objects.items() if not _optimizer_like(obj) for item in _own(key, obj)]
        for key, obj in self._objects.items():
            if not _optimizer_like(obj) or any(getattr(obj, "_slots", {}).values()):
                continue
            stored = [k[len(key) + 1:] for k in values if k.startswith(f"{key}/")]
            mine = [v for k, v in owned if v.trainable and any(s.endswith("/" + k) for s in stored)]
            if mine:
                obj.build(mine)


def _read_state(folder: str) -> list[str]:
    """The checkpoint paths the folder's state file lists (oldest first), as paths under ``folder``."""
    state = Path(folder) / _STATE_FILE
    if not state.is_file() or state.stat().st_size > _MAX_STATE_BYTES:
        return []
    paths: list[str] = []
    latest = None
    for line in state.read_text(encoding="utf-8", errors="replace").splitlines():
        match = _STATE_LINE.match(line.strip())
        if match is None:
            continue
        name = match.group(2)
        if os.path.isabs(name) or ".." in Path(name).parts:
            continue   # a state file only names checkpoints in its own folder
        full = os.path.join(folder, name)
        if match.group(1) == "model_checkpoint_path":
            latest = full
        elif full not in paths:
            paths.append(full)
    if latest is not None and latest not in paths:
        paths.append(latest)
    return paths


def _write_state(folder: str, latest: str, paths: list[str]) -> None:
    names = list(dict.fromkeys(os.path.basename(p) for p in paths))
    lines = [f'model_checkpoint_path: "{os.path.basename(latest)}"'] + \
        [f'all_model_checkpoint_paths: "{n}"' for n in names]
    atomic_write(os.path.join(folder, _STATE_FILE), ("\n".join(lines) + "\n").encode("utf-8"))


def latest_checkpoint(checkpoint_dir: str | os.PathLike[str], latest_filename: str | None = None) -> str | None:
    """The newest checkpoint ``save`` recorded in ``checkpoint_dir`` whose file exists, or ``None``."""
    paths = _read_state(os.fspath(checkpoint_dir))
    return next((p for p in reversed(paths) if os.path.isfile(p + ".npz")), None)


class CheckpointManager:
    """Numbered saves of ``checkpoint`` in ``directory``, keeping the newest ``max_to_keep``.

    Args:
        checkpoint: the ``Checkpoint`` to save.
        directory: the folder (made if missing).
        max_to_keep: how many checkpoints to keep (``None``: all).
        checkpoint_name: the files' prefix (``"ckpt"``).
    """

    def __init__(self, checkpoint: Checkpoint, directory: str | os.PathLike[str], max_to_keep: int | None,
                 keep_checkpoint_every_n_hours: Any = None, checkpoint_name: str = "ckpt", step_counter: Any = None,
                 checkpoint_interval: Any = None, init_fn: Any = None):
        if not isinstance(checkpoint, Checkpoint):
            raise TypeError(f"CheckpointManager: `checkpoint` must be a tf.train.Checkpoint. Received: {checkpoint!r}")
        if max_to_keep is not None and (isinstance(max_to_keep, bool) or not isinstance(max_to_keep, int)
                                        or max_to_keep < 1):
            raise ValueError(f"CheckpointManager: `max_to_keep` must be a positive integer or None. Received: "
                             f"max_to_keep={max_to_keep!r}")
        self._checkpoint = checkpoint
        self.directory = os.fspath(directory)
        self._max_to_keep = max_to_keep
        self._name = checkpoint_name
        os.makedirs(self.directory, exist_ok=True)

    @property
    def checkpoints(self) -> list[str]:
        """The checkpoints kept, oldest first."""
        return [p for p in _read_state(self.directory) if os.path.isfile(p + ".npz")]

    @property
    def latest_checkpoint(self) -> str | None:
        return latest_checkpoint(self.directory)

    def save(self, checkpoint_number: int | None = None, check_interval: bool = True, options: Any = None) -> str:
        """Save a new checkpoint (numbered ``checkpoint_number`` or the next save count) and drop the oldest
        beyond ``max_to_keep``; returns its path."""
        prefix = os.path.join(self.directory, self._name)
        if checkpoint_number is None:
            path = self._checkpoint.save(prefix)
        else:
            path = self._checkpoint.write(f"{prefix}-{int(checkpoint_number)}")
            _write_state(self.directory, path, _read_state(self.directory) + [path])
        kept = [p for p in _read_state(self.directory) if os.path.isfile(p + ".npz")]
        if self._max_to_keep is not None and len(kept) > self._max_to_keep:
            for old in kept[:-self._max_to_keep]:
                os.remove(old + ".npz")
            kept = kept[-self._max_to_keep:]
            _write_state(self.directory, path, kept)
        return path
