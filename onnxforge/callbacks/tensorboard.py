"""``TensorBoard``: Keras 3's TensorBoard logs (scalars, weight histograms), written without TensorFlow."""
from __future__ import annotations

__all__ = ["TensorBoard"]

import os
import time
import warnings
from typing import Any

import numpy as np

from .callback import Callback
from .event_file import EventFileWriter, histogram_event, scalar_event, text_tensor_event


class TensorBoard(Callback):
    """Writes TensorBoard event files with Keras 3's layout and tags.

    ``log_dir/train`` gets ``epoch_<name>`` for the training logs and ``epoch_learning_rate`` (step: the
    epoch), ``batch_<name>`` every ``update_freq`` batches (step: the batch count of the run), the weight
    histograms ``<weight.path>/histogram`` every ``histogram_freq`` epochs, and the model's JSON for
    TensorBoard's conceptual graph (tag ``keras``); ``log_dir/validation`` gets ``epoch_<name>`` for the
    ``val_`` logs and ``evaluation_<name>_vs_iterations`` (step: the optimizer's iterations). Scalars are
    ``simple_value`` summaries and histograms ``HistogramProto``s, both of which TensorBoard reads.

    Not written: the op graph (``write_graph``), which is a TensorFlow ``GraphDef`` in Keras and which
    onnxforge does not have — the model's ONNX file (``model.export("model.onnx")``) shows the compiled
    graph in Netron; weight images (``write_images``, warned); profiles (``profile_batch``, which Keras on
    the torch backend refuses too) and embeddings (``embeddings_freq``).

    Args:
        log_dir: the folder of the logs.
        histogram_freq: epochs between weight histograms; 0 for none.
        write_graph: write the model's Keras JSON (TensorBoard's conceptual graph) at step 0.
        write_images: not supported (warned and ignored).
        write_steps_per_second: also log ``steps_per_second`` per epoch and ``batch_steps_per_second``.
        update_freq: ``"epoch"``, ``"batch"`` or an integer: batch-level scalars every this many batches.
        profile_batch: 0 (profiling needs TensorFlow's or JAX's profiler).
        embeddings_freq: 0 (embedding projector output is not supported).
        embeddings_metadata: unused, as with ``embeddings_freq=0``.

    Example:
        >>> import tempfile
        >>> cb = TensorBoard(log_dir=tempfile.mkdtemp(), update_freq="batch")
        >>> cb.update_freq
        1
    """

    def __init__(self, log_dir: str | os.PathLike = "logs", histogram_freq: int = 0, write_graph: bool = True,
                 write_images: bool = False, write_steps_per_second: bool = False,
                 update_freq: str | int = "epoch", profile_batch: int | str | tuple = 0,
                 embeddings_freq: int = 0, embeddings_metadata: Any = None):
        super().__init__()
        if profile_batch:
            # Keras 3 raises the same on the torch and numpy backends.
            raise ValueError("Profiling is not yet available with the onnxforge backend. Received: "
                             f"profile_batch={profile_batch} (must be 0)")
        if embeddings_freq:
            raise NotImplementedError("TensorBoard(embeddings_freq=...): the embedding projector's checkpoints are "
                                      f"not written by onnxforge. Received: embeddings_freq={embeddings_freq} "
                                      "(must be 0)")
        if update_freq != "epoch" and update_freq != "batch" and not (
                isinstance(update_freq, int) and not isinstance(update_freq, bool) and update_freq > 0):
            raise ValueError("TensorBoard: update_freq must be 'epoch', 'batch' or a positive integer. "
                             f"Received: update_freq={update_freq!r}")
        if write_images:
            warnings.warn("TensorBoard(write_images=True): weight images are not written by onnxforge; "
                          "use histogram_freq for the weights.", stacklevel=2)
        self.log_dir = str(os.fspath(log_dir))
        self.histogram_freq = histogram_freq
        self.write_graph = write_graph
        self.write_images = write_images
        self.write_steps_per_second = write_steps_per_second
        self.update_freq = 1 if update_freq == "batch" else update_freq
        self.embeddings_freq = embeddings_freq
        self.embeddings_metadata = embeddings_metadata
        self.profile_batch = profile_batch
        self._writers: dict[str, EventFileWriter] = {}
        self._global_train_batch = 0
        self._batch_start_time = 0.0
        self._epoch_start_time = 0.0
        self._epoch_batches = 0

    # ------------------------------------------------------------------------------------- writers
    def _writer(self, which: str) -> EventFileWriter:
        # Created on first use, as Keras's lazily created writers: no validation folder without validation.
        if which not in self._writers:
            self._writers[which] = EventFileWriter(os.path.join(self.log_dir, which))
        return self._writers[which]

    def _close_writers(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers = {}

    def set_model(self, model):
        super().set_model(model)
        self._close_writers()
        if self.write_graph and type(model).__name__ in ("Functional", "Sequential", "Model"):
            self._write_keras_model_summary()

    def _write_keras_model_summary(self) -> None:
        try:
            json_string = self.model.to_json()
        except Exception as exc:   # as Keras: a model that does not serialize must not break training
            warnings.warn(f"Model failed to serialize as JSON. Ignoring... {exc}", stacklevel=3)
            return
        self._writer("train").write(text_tensor_event("keras", json_string, "graph_keras_model", b"1", step=0))

    # --------------------------------------------------------------------------------------- hooks
    def on_train_begin(self, logs=None):
        self._global_train_batch = 0
        self._writer("train")

    def on_train_end(self, logs=None):
        self._close_writers()

    def on_test_begin(self, logs=None):
        self._writer("validation")

    def on_test_end(self, logs=None):
        iterations = getattr(getattr(self.model, "optimizer", None), "iterations", None)
        if iterations is None or not logs:
            return
        step = int(np.asarray(iterations))
        self._writer("validation").write(*(scalar_event(f"evaluation_{name}_vs_iterations", value, step)
                                           for name, value in logs.items() if np.ndim(value) == 0))

    def on_train_batch_begin(self, batch, logs=None):
        self._global_train_batch += 1
        if self.write_steps_per_second:
            self._batch_start_time = time.time()

    def on_train_batch_end(self, batch, logs=None):
        self._epoch_batches += 1
        if self.update_freq == "epoch" or self._global_train_batch % self.update_freq:
            return
        step = self._global_train_batch
        events = []
        if self.write_steps_per_second:
            elapsed = max(time.time() - self._batch_start_time, 1e-9)
            events.append(scalar_event("batch_steps_per_second", 1.0 / elapsed, step))
        if isinstance(logs, dict):
            events += [scalar_event(f"batch_{name}", value, step) for name, value in logs.items()
                       if np.ndim(value) == 0]
        self._writer("train").write(*events)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_batches = 0
        self._epoch_start_time = time.time()

    def on_epoch_end(self, epoch, logs=None):
        self._log_epoch_metrics(epoch, logs)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._log_weights(epoch)

    # ------------------------------------------------------------------------------------- summaries
    def _learning_rates(self) -> dict[str, float]:
        optimizer = getattr(self.model, "optimizer", None)
        optimizer = getattr(optimizer, "inner_optimizer", optimizer)   # a LossScaleOptimizer's
        if optimizer is None:
            return {}
        if hasattr(optimizer, "optimizers"):
            return {f"learning_rate_{opt.name}": float(np.asarray(opt.learning_rate)) for opt in optimizer.optimizers}
        try:
            return {"learning_rate": float(np.asarray(optimizer.learning_rate))}
        except (AttributeError, TypeError, ValueError):
            return {}

    def _log_epoch_metrics(self, epoch: int, logs: dict[str, Any] | None) -> None:
        if not logs:
            return
        train_logs = {k: v for k, v in logs.items() if not k.startswith("val_")}
        val_logs = {k[4:]: v for k, v in logs.items() if k.startswith("val_")}
        train_logs.update(self._learning_rates())
        if self.write_steps_per_second:
            train_logs["steps_per_second"] = self._epoch_batches / max(time.time() - self._epoch_start_time, 1e-9)
        for which, group in (("train", train_logs), ("validation", val_logs)):
            events = [scalar_event(f"epoch_{name}", value, epoch) for name, value in group.items()
                      if np.ndim(value) == 0]
            if events:
                self._writer(which).write(*events)

    def _log_weights(self, epoch: int) -> None:
        events = [histogram_event(f"{weight.path.replace(':', '_')}/histogram", np.asarray(weight), epoch)
                  for layer in self.model.layers for weight in layer.weights]
        if events:
            self._writer("train").write(*events)
