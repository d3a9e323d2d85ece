"""``tf.summary``: TensorBoard logs from custom training loops (scalars, histograms, images, text).

TensorFlow 2's pattern runs unchanged: make a writer with ``create_file_writer(logdir)``, and inside
``with writer.as_default():`` (or after ``writer.set_as_default()``) call ``scalar`` / ``histogram`` /
``image`` / ``text`` with a ``step`` (or set one with ``experimental.set_step`` or ``as_default(step=...)``).
Each call writes one record at once to a ``events.out.tfevents...v2`` file (``callbacks/event_file.py``), so
TensorBoard shows it without TensorFlow installed. Values are read on the host: inside a compiled
``tf.function`` or ``train_step`` (an ONNX program, which has no summary op) a call raises instead of logging
a symbol once; log what the step returns, as Keras's TensorBoard callback does.

Example:
    >>> import tempfile
    >>> import onnxforge as tf
    >>> writer = tf.summary.create_file_writer(tempfile.mkdtemp())
    >>> with writer.as_default():
    ...     tf.summary.scalar("loss", 0.25, step=1)
    True
    >>> tf.summary.scalar("loss", 0.25, step=2)   # no default writer: nothing is written
    False
"""
from __future__ import annotations

__all__ = ["create_file_writer", "create_noop_writer", "SummaryWriter", "scalar", "histogram", "image", "text",
           "flush", "record_if", "should_record_summaries", "experimental"]

import contextlib
import os
import types
from typing import Any, Iterator

import numpy as np

from ..callbacks.event_file import EventFileWriter, histogram_event, image_event, scalar_event, text_tensor_event
from ..graph.value import Value
from ..tracing import active_trace


class SummaryWriter:
    """Writes summaries to one event file in ``logdir`` (``create_file_writer``); ``None`` for a no-op writer."""

    def __init__(self, logdir: str | os.PathLike | None):
        self._logdir = None if logdir is None else os.fspath(logdir)
        self._file: EventFileWriter | None = None
        if self._logdir is not None:
            self.init()

    def init(self) -> None:
        """Open the event file (done on creation; again after ``close``)."""
        if self._logdir is not None and (self._file is None or self._file.closed):
            self._file = EventFileWriter(self._logdir)

    @contextlib.contextmanager
    def as_default(self, step: int | None = None) -> Iterator[SummaryWriter]:
        """Make this the writer summaries go to inside the block (and ``step`` their default step)."""
        _STATE.stack.append((self, step))
        try:
            yield self
        finally:
            _STATE.stack.pop()

    def set_as_default(self, step: int | None = None) -> None:
        """Make this the default writer from now on (TensorFlow's form without a ``with`` block)."""
        _STATE.base = (self, step)

    def flush(self) -> None:
        """A no-op kept for TensorFlow's API: ``EventFileWriter`` flushes every record as it writes it."""

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def _write(self, event: bytes) -> bool:
        if self._file is None:
            return False
        self.init()
        self._file.write(event)
        return True


class _State:
    def __init__(self) -> None:
        self.stack: list[tuple[SummaryWriter, int | None]] = []
        self.base: tuple[SummaryWriter, int | None] | None = None
        self.step: int | None = None
        self.record: list[Any] = []


_STATE = _State()


def create_file_writer(logdir: str | os.PathLike, max_queue: int | None = None, flush_millis: int | None = None,
                       filename_suffix: str | None = None, name: str | None = None,
                       experimental_trackable: bool = False, experimental_mesh: Any = None) -> SummaryWriter:
    """A writer of a new event file in ``logdir`` (created if missing). The queue and flush arguments are
    accepted for TensorFlow's signature: records are written at once."""
    if logdir is None or (isinstance(logdir, str) and not logdir):
        raise ValueError(f"create_file_writer(): logdir must be a directory path. Received: logdir={logdir!r}")
    return SummaryWriter(logdir)


def create_noop_writer() -> SummaryWriter:
    """A writer that records nothing (TensorFlow's for turning logging off)."""
    return SummaryWriter(None)


def _default() -> tuple[SummaryWriter, int | None] | None:
    return _STATE.stack[-1] if _STATE.stack else _STATE.base


def should_record_summaries() -> bool:
    """Whether a summary written now would be recorded: a default writer and no false ``record_if``."""
    entry = _default()
    if entry is None or entry[0]._file is None:
        return False
    return all(bool(c() if callable(c) else c) for c in _STATE.record)


@contextlib.contextmanager
def record_if(condition: Any) -> Iterator[None]:
    """Within the block, summaries are written only while ``condition`` (a bool or a callable) holds."""
    _STATE.record.append(condition)
    try:
        yield
    finally:
        _STATE.record.pop()


def flush(writer: SummaryWriter | None = None, name: str | None = None) -> None:
    """Flush ``writer`` (the default writer if ``None``)."""
    target = writer if writer is not None else (_default() or (None,))[0]
    if target is not None:
        target.flush()


def _host(name: str, what: str, data: Any) -> np.ndarray:
    if isinstance(data, Value) or (active_trace() is not None and hasattr(data, "__onnx_value__")):
        raise NotImplementedError(f"tf.summary.{what}({name!r}): the value is a graph tensor inside a compiled "
                                  "tf.function / train_step, and ONNX has no summary op. Return the value from the "
                                  "step and log it outside (as Keras's TensorBoard callback does).")
    return np.asarray(data.numpy() if hasattr(data, "numpy") else data)


def _step(name: str, step: Any) -> int:
    if step is None:
        entry = _default()
        step = entry[1] if entry is not None and entry[1] is not None else _STATE.step
    if step is None:
        raise ValueError(f"tf.summary {name!r}: no step set. Pass step=, use writer.as_default(step=...) or "
                         "tf.summary.experimental.set_step().")
    value = np.asarray(step.numpy() if hasattr(step, "numpy") else step)
    if value.ndim != 0 or not np.issubdtype(value.dtype, np.integer) and not float(value).is_integer():
        raise ValueError(f"tf.summary {name!r}: step must be an integer. Received: step={step!r}")
    return int(value)


def _emit(name: str, step: Any, make_event: Any) -> bool:
    if not should_record_summaries():
        return False
    return _default()[0]._write(make_event(_step(name, step)))


def _tag(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"tf.summary: name must be a non-empty string. Received: name={name!r}")
    return name


def scalar(name: str, data: Any, step: Any = None, description: str | None = None) -> bool:
    """Log a scalar; returns whether it was written (False without a default writer)."""
    tag = _tag(name)
    value = _host(tag, "scalar", data)
    if value.size != 1:
        raise ValueError(f"tf.summary.scalar({tag!r}): data must be a scalar. Received shape {value.shape}")
    return _emit(tag, step, lambda s: scalar_event(tag, float(value.reshape(())), s))


def histogram(name: str, data: Any, step: Any = None, buckets: int | None = None,
              description: str | None = None) -> bool:
    """Log the distribution of ``data``'s values in ``buckets`` equal-width buckets (30 by default)."""
    tag = _tag(name)
    values = _host(tag, "histogram", data).astype(np.float64)
    count = 30 if buckets is None else int(buckets)
    if count < 1:
        raise ValueError(f"tf.summary.histogram({tag!r}): buckets must be positive. Received: buckets={buckets!r}")
    return _emit(tag, step, lambda s: histogram_event(tag, values, s, buckets=count))


def image(name: str, data: Any, step: Any = None, max_outputs: int = 3, description: str | None = None) -> bool:
    """Log up to ``max_outputs`` images of ``data`` (``(k, height, width, channels)``, 1-4 channels; floats
    in ``[0, 1]`` or uint8). Each is one record, tagged ``name/image/i`` (``name`` when alone), as TensorBoard
    lists TensorFlow 1's image summaries."""
    tag = _tag(name)
    images = _host(tag, "image", data)
    if images.ndim != 4 or images.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(f"tf.summary.image({tag!r}): data must be (k, height, width, channels) with 1-4 channels. "
                         f"Received shape {images.shape}")
    if images.dtype != np.uint8:
        images = (np.clip(images.astype(np.float64), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    chosen = images[:max(0, int(max_outputs))]
    if not should_record_summaries():
        return False
    step_value = _step(tag, step)
    writer = _default()[0]
    for i, picture in enumerate(chosen):
        writer._write(image_event(tag if len(chosen) == 1 else f"{tag}/image/{i}", picture, step_value))
    return True


def text(name: str, data: Any, step: Any = None, description: str | None = None) -> bool:
    """Log a string (TensorBoard's text plugin renders it as Markdown)."""
    tag = _tag(name)
    value = _host(tag, "text", data)
    item = value.reshape(()).item() if value.size == 1 else "\n".join(str(v) for v in value.ravel())
    content = item.decode() if isinstance(item, bytes) else str(item)
    return _emit(tag, step, lambda s: text_tensor_event(tag, content, "text", b"", s))


def _set_step(step: Any) -> None:
    """The step summaries use when called without one."""
    _STATE.step = None if step is None else _step("experimental.set_step", step)


def _get_step() -> int | None:
    return _STATE.step


experimental = types.SimpleNamespace(set_step=_set_step, get_step=_get_step)
