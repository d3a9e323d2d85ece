"""The Keras loops: ``fit``, ``evaluate`` and ``predict`` over batches, with callbacks and History.

The loops run on the host and stay thin: each batch goes to one compiled program through the model's
batch runners, which return metric SUMS (``{"loss": ..., "accuracy/correct": ...}``); the loop adds them
up over the epoch and asks the model to turn the totals into Keras metrics (``loss``, ``accuracy``, ...)
with ``_metric_results``. Reducing sums on the host keeps the last, partial batch exactly weighted.

Batch runners the model provides (``TrainingMixin``):
    ``_train_batch(xs, ys, sample_weight) -> dict[str, float]`` (sums), ``_eval_batch`` likewise,
    ``_predict_batch(xs) -> list[np.ndarray]`` (an overridden ``predict_step``'s result as it is),
    ``_metric_results(sums) -> dict[str, float]``.
"""
from __future__ import annotations

__all__ = ["FitMixin"]

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..callbacks import Callback, CallbackList, History, TerminateOnNaN
from ..eager_tensor import as_tf_bytes, is_text
from . import data as data_lib
from ..layers import array_attributes
from .custom_step import LAST_STATE
from .step_data import concat_batches

_LAST_SUFFIX = "/" + LAST_STATE


def _resolve_verbose(verbose: Any, method: str) -> int:
    if verbose == "auto":
        return 1
    if isinstance(verbose, bool) or verbose not in (0, 1, 2):
        raise ValueError(f"{method}(): verbose must be 0, 1, 2 or 'auto'. Received: verbose={verbose!r}")
    return int(verbose)


def _positive_int(value: Any, arg: str, method: str, default: int | None = None) -> int | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{method}(): {arg} must be a positive integer. Received: {arg}={value!r}")
    return int(value)


def _add_sums(totals: dict[str, Any], sums: Mapping[str, Any]) -> None:
    for name, value in sums.items():
        # Not in place: the runner may hand back arrays it reuses. A custom step's plain logs are the last
        # step's (Keras 3 reports what the last step returned), so they replace.
        add = name in totals and not name.endswith(_LAST_SUFFIX)
        totals[name] = totals[name] + value if add else value


def _pythonify(results: Mapping[str, Any], sort: bool = True) -> dict[str, Any]:
    items = sorted(results.items()) if sort else results.items()
    return {k: (float(v) if np.ndim(v) == 0 else np.asarray(v)) for k, v in items}


def _should_eval(epoch: int, validation_freq: Any) -> bool:
    epoch += 1  # validation_freq counts epochs from 1
    if isinstance(validation_freq, int):
        return epoch % validation_freq == 0
    return epoch in validation_freq


def _unpack_validation_data(validation_data: Any) -> tuple[Any, Any, Any]:
    if data_lib.is_batch_source(validation_data):
        return validation_data, None, None
    if isinstance(validation_data, Mapping) or (isinstance(validation_data, tuple) and len(validation_data) == 1):
        # Keras: inputs alone (a model whose losses need no targets: add_loss, an endpoint layer).
        return (validation_data if isinstance(validation_data, Mapping) else validation_data[0]), None, None
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
        raise ValueError("fit(): validation_data must be a tuple (x_val, y_val) or (x_val, y_val, "
                         "val_sample_weight), (x_val,) or a dict of inputs when the losses need no targets, or a "
                         "dataset/generator of such batches. Received: "
                         f"validation_data of type {type(validation_data).__name__}"
                         + (f" and length {len(validation_data)}" if isinstance(validation_data, (tuple, list)) else ""))
    x, y, *sw = validation_data
    return x, y, (sw[0] if sw else None)


class FitMixin:
    """``fit``, ``evaluate`` and ``predict`` for any model that implements the batch runners."""

    stop_training: bool = False
    stop_evaluating: bool = False
    stop_predicting: bool = False

    # ----------------------------------------------------------------------------------------- checks
    def _needs_targets(self) -> bool:
        """Whether ``fit`` on arrays needs ``y`` (not for a custom ``train_step``)."""
        return True

    def _needs_eval_targets(self) -> bool:
        """Whether ``evaluate`` on arrays needs ``y``: not for a custom ``test_step``, nor for ``compile(loss=None)``
        with layers adding their losses (Keras's endpoint layers take the targets as inputs)."""
        if getattr(self, "_has_custom_test_step", lambda: False)():
            return False
        args = getattr(self, "_compile_args", None)
        return args is None or args.get("loss") is not None or bool(args.get("metrics"))

    def _require_compiled(self, method: str) -> None:
        compiled = getattr(self, "compiled", None)
        if compiled is None:
            compiled = getattr(self, "optimizer", None) is not None
        if not compiled:
            name = getattr(self, "name", type(self).__name__)
            raise RuntimeError(f"You must call compile() before {method}(): model {name!r} has no optimizer "
                               "and loss yet. Call model.compile(optimizer=..., loss=..., metrics=...) first.")

    def _retrace_for_new_host_arrays(self) -> None:
        """Drop the programs traced before a user layer's array attribute was replaced (a GNN's
        ``model.edges = new_edges``): they hold the old arrays as constants (``layers.array_attributes``)."""
        if getattr(self, "_programs", None) and \
                array_attributes.snapshot(self) != getattr(self, "_host_arrays", ()):
            self._programs, self._runners = {}, {}
            self._custom_steps, self._custom_predict_steps, self._custom_program = {}, {}, None

    def _distributed_loop(self, method: str, callbacks: Any, verbose: int) -> tuple[Any, int]:
        """Under a data-parallel strategy: the callbacks and verbosity this rank runs the loop with (side
        effects on rank 0 only; see ``onnxforge.trainer.distribution``). Otherwise both unchanged."""
        strategy = getattr(self, "_distribute_strategy", None)
        return (callbacks, verbose) if strategy is None else strategy.adapt_loop(self, method, callbacks, verbose)

    @staticmethod
    def _make_callbacks(callbacks: Any, method: str, **kwargs: Any) -> CallbackList:
        if isinstance(callbacks, CallbackList):
            # A ready-made list still gets the defaults this loop needs, and this loop's parameters.
            callbacks = CallbackList(callbacks.callbacks, add_history=kwargs.pop("add_history", False),
                                     add_progbar=kwargs.pop("add_progbar", False), **kwargs)
            return callbacks
        if callbacks is not None and not isinstance(callbacks, (list, tuple, Callback)):
            raise TypeError(f"{method}(): callbacks must be a list of Callback instances. "
                            f"Received: callbacks={callbacks!r}")
        return CallbackList(callbacks, **kwargs)

    # -------------------------------------------------------------------------------------------- fit
    def fit(self, x: Any = None, y: Any = None, batch_size: int | None = None, epochs: int = 1,
            verbose: int | str = "auto", callbacks: list[Callback] | None = None,
            validation_split: float = 0.0, validation_data: Any = None, shuffle: bool | str = True,
            class_weight: Mapping[int, float] | None = None, sample_weight: Any = None,
            initial_epoch: int = 0, steps_per_epoch: int | None = None, validation_steps: int | None = None,
            validation_batch_size: int | None = None, validation_freq: int = 1) -> History:
        """Trains the model for a fixed number of epochs (Keras ``Model.fit``).

        Args:
            x: inputs: a numpy array, a list of arrays (several inputs), a dict keyed by input names, or a
                dataset/generator yielding ``(x, y)`` or ``(x, y, sample_weight)`` batches.
            y: targets, in the same forms as ``x`` (per output); ``None`` when ``x`` yields batches.
            batch_size: samples per step (default 32); the last, smaller batch of an epoch is trained too.
            epochs: index of the last epoch (training runs epochs ``initial_epoch .. epochs - 1``).
            verbose: 0 silent, 1 progress bar, 2 one line per epoch, ``"auto"`` (1).
            callbacks: ``onnxforge.callbacks.Callback`` instances.
            validation_split: fraction of the data held out for validation: the LAST samples, taken
                before shuffling (as in Keras). Ignored when ``validation_data`` is given.
            validation_data: ``(x_val, y_val)`` or ``(x_val, y_val, val_sample_weight)``, or a dataset.
            shuffle: reshuffle the training samples every epoch (``"batch"``: within batch-sized chunks).
            class_weight: ``{class index: weight}`` turned into per-sample weights (single output).
            sample_weight: one weight per training sample.
            initial_epoch: epoch to start from (to resume a run).
            steps_per_epoch: batches per epoch; with arrays, epochs then continue through the data
                where the previous one stopped.
            validation_steps: batches per validation run.
            validation_batch_size: validation batch size (default ``batch_size``).
            validation_freq: validate every ``validation_freq`` epochs, or at the epochs (from 1) listed.

        Returns:
            A ``History`` whose ``history`` maps ``loss``, metrics and ``val_`` metrics to per-epoch values.

        Example:
            >>> history = model.fit(x_train, y_train, epochs=5, validation_split=0.1)  # doctest: +SKIP
            >>> history.history["val_loss"][-1]  # doctest: +SKIP
        """
        self._require_compiled("fit")
        verbose = _resolve_verbose(verbose, "fit")
        if x is None:
            raise ValueError("fit(): x is required: the training inputs (a numpy array, a list or dict of "
                             "arrays, or a dataset). Received: x=None")
        batch_size = _positive_int(batch_size, "batch_size", "fit", 32)
        validation_batch_size = _positive_int(validation_batch_size, "validation_batch_size", "fit", batch_size)
        steps_per_epoch = _positive_int(steps_per_epoch, "steps_per_epoch", "fit")
        validation_steps = _positive_int(validation_steps, "validation_steps", "fit")
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"fit(): epochs must be a non-negative integer. Received: epochs={epochs!r}")
        if isinstance(initial_epoch, bool) or not isinstance(initial_epoch, (int, np.integer)) or initial_epoch < 0:
            raise ValueError(f"fit(): initial_epoch must be a non-negative integer. Received: initial_epoch={initial_epoch!r}")
        if not (isinstance(validation_freq, int) and validation_freq > 0) and not (
                isinstance(validation_freq, (list, tuple, set)) and validation_freq):
            raise ValueError("fit(): validation_freq must be a positive integer or a list of epochs (from 1). "
                             f"Received: validation_freq={validation_freq!r}")
        if shuffle not in (True, False, "batch"):
            raise ValueError(f"fit(): shuffle must be True, False or 'batch'. Received: shuffle={shuffle!r}")
        if not 0.0 <= validation_split < 1.0:
            raise ValueError("fit(): validation_split must be in [0, 1). "
                             f"Received: validation_split={validation_split!r}")
        if class_weight is not None:
            class_weight = data_lib.check_class_weight(class_weight, "fit")
        epochs, steps_per_epoch = _debug_caps(epochs, steps_per_epoch)
        if y is None and not data_lib.is_batch_source(x) and self._needs_targets():
            raise ValueError("fit(): y (the targets) is required when x holds arrays. Received: y=None")

        val_source = None
        if validation_data is not None:
            vx, vy, vsw = _unpack_validation_data(validation_data)
            val_source = self._eval_source("fit", vx, vy, vsw, validation_batch_size, validation_steps,
                                           names=("validation_data[0]", "validation_data[1]",
                                                  "validation_data[2]"))
            if hasattr(val_source, "replay_first_batches"):
                val_source.replay_first_batches()
        if data_lib.is_batch_source(x):
            if validation_split:
                raise ValueError("fit(): validation_split is only supported for arrays, not for x of type "
                                 f"{type(x).__name__}. Pass validation_data instead.")
            train_source = data_lib.make_source("fit", self, x, y, sample_weight, batch_size, shuffle,
                                                steps_per_epoch, class_weight)
        else:
            train = data_lib.array_data("fit", self, x, y, sample_weight, class_weight)
            if validation_split and val_source is None:
                train, held_out = data_lib.split_validation(train, validation_split)
                if class_weight is not None:
                    # Keras weighs only the training samples by class; the held-out part is validated
                    # unweighted (class_weight excludes sample_weight, so these weights are all from it).
                    held_out = data_lib.ArrayData(held_out.xs, held_out.ys, None)
                val_source = data_lib.ArraySource(held_out, validation_batch_size, steps=validation_steps)
            train_source = data_lib.ArraySource(train, batch_size, shuffle=shuffle, steps=steps_per_epoch,
                                                repeat=True)

        self._retrace_for_new_host_arrays()
        callbacks, verbose = self._distributed_loop("fit", callbacks, verbose)
        callback_list = self._make_callbacks(callbacks, "fit", add_history=True, add_progbar=verbose != 0,
                                             model=self, verbose=verbose, epochs=epochs,
                                             steps=train_source.steps)
        self.stop_training = False
        warn_nan = not any(isinstance(c, TerminateOnNaN) for c in callback_list.callbacks)
        callback_list.on_train_begin()
        # BackupAndRestore sets where a resumed run starts (Keras: ``self._initial_epoch or initial_epoch``);
        # cleared so that a later fit without a backup starts where it is told.
        initial_epoch = getattr(self, "_initial_epoch", None) or initial_epoch
        self._initial_epoch = None
        training_logs: dict[str, Any] | None = None
        # Keras's steps_per_execution: the sums are read back (and the batch callbacks run) once per this
        # many steps; the steps in between leave their outputs on the device and never wait for it.
        per_execution = max(int(getattr(self, "steps_per_execution", 1) or 1), 1)
        reset_metrics = getattr(self, "reset_metrics", None)
        for epoch in range(initial_epoch, epochs):
            if reset_metrics is not None:
                reset_metrics()   # Keras: model.metrics (custom-step trackers too) start each epoch afresh
            callback_list.on_epoch_begin(epoch)
            totals: dict[str, Any] = {}
            steps = 0
            pending: list[Any] = []
            for step, (xs, ys, sw) in enumerate(train_source.epoch()):
                if step % per_execution == 0:
                    callback_list.on_train_batch_begin(step)
                if per_execution == 1:
                    pending.append(self._train_batch(xs, ys, sw))
                else:
                    pending.append(self._train_batch(xs, ys, sw, fetch=False))
                steps = step + 1
                if steps % per_execution:
                    continue
                if self._end_execution(totals, pending, callback_list, step, epoch, warn_nan):
                    warn_nan = False
                if self.stop_training:
                    break
            if pending:  # the epoch's last, shorter execution
                if self._end_execution(totals, pending, callback_list, steps - 1, epoch, warn_nan):
                    warn_nan = False
            if steps == 0:
                if epoch == initial_epoch:
                    raise ValueError("fit(): the training data produced no batches; x is empty or an "
                                     "exhausted generator.")
                warnings.warn("fit(): your input ran out of data; interrupting training. Make sure the "
                              f"dataset can produce at least steps_per_epoch * epochs batches "
                              f"({steps_per_epoch} * {epochs}).", stacklevel=2)
                break
            epoch_logs = _pythonify(self._metric_results(totals, final=True))
            if val_source is not None and _should_eval(epoch, validation_freq):
                val_logs = self._test_loop(val_source, callback_list, "fit")
                epoch_logs.update({f"val_{k}": v for k, v in sorted(val_logs.items())})
            callback_list.on_epoch_end(epoch, epoch_logs)
            training_logs = epoch_logs
            if self.stop_training:
                break
            if getattr(train_source, "exhausted", False) and epoch < epochs - 1:
                warnings.warn("fit(): your input ran out of data; interrupting training.", stacklevel=2)
                break
        finalize = getattr(self.optimizer, "finalize_variable_values", None)
        if finalize is not None and epochs > 0:   # Keras: use_ema leaves the weights at their moving averages
            finalize(self.trainable_weights)
        callback_list.on_train_end(training_logs)
        return callback_list.history

    def _end_execution(self, totals: dict[str, Any], pending: list[Any], callback_list: CallbackList, step: int,
                       epoch: int, warn_nan: bool) -> bool:
        """Add the pending steps' sums (reading deferred ones back now), run ``on_train_batch_end`` and warn
        once about a non-finite loss; return whether it warned."""
        for sums in pending:
            _add_sums(totals, sums() if callable(sums) else sums)
        pending.clear()
        logs = _pythonify(self._metric_results(totals))
        callback_list.on_train_batch_end(step, logs)
        if warn_nan and "loss" in logs and not np.all(np.isfinite(logs["loss"])):
            warnings.warn(f"fit(): the loss became {logs['loss']} at epoch {epoch + 1}, batch {step}; "
                          "training goes on. Add onnxforge.callbacks.TerminateOnNaN() to stop at the "
                          "first invalid loss.", RuntimeWarning, stacklevel=3)
            return True
        return False

    # --------------------------------------------------------------------------------------- evaluate
    def _eval_source(self, method: str, x: Any, y: Any, sample_weight: Any, batch_size: int,
                     steps: int | None, names: tuple[str, str, str] = ("x", "y", "sample_weight")):
        if data_lib.is_batch_source(x):
            return data_lib.make_source(method, self, x, y, sample_weight, batch_size, steps=steps,
                                        step="test_step")
        if x is None:
            raise ValueError(f"{method}(): {names[0]} is required. Received: {names[0]}=None")
        data = data_lib.array_data(method, self, x, y, sample_weight, x_arg=names[0], y_arg=names[1],
                                   sw_arg=names[2], step="test_step")
        return data_lib.ArraySource(data, batch_size, steps=steps)

    def _test_loop(self, source: Any, callback_list: CallbackList, method: str) -> dict[str, Any]:
        """One evaluation pass; the metric results in the model's order (loss first)."""
        self.stop_evaluating = False
        reset_metrics = getattr(self, "reset_metrics", None)
        if reset_metrics is not None:
            reset_metrics()   # as Keras's evaluate does
        callback_list.on_test_begin()
        totals: dict[str, Any] = {}
        logs: dict[str, Any] = {}
        steps = 0
        for step, (xs, ys, sw) in enumerate(source.epoch()):
            callback_list.on_test_batch_begin(step)
            _add_sums(totals, self._eval_batch(xs, ys, sw))
            steps += 1
            logs = _pythonify(self._metric_results(totals))
            callback_list.on_test_batch_end(step, logs)
            if self.stop_evaluating:
                break
        if not steps:   # (a custom test_step logging only metric trackers adds no sums)
            raise ValueError(f"{method}(): the evaluation data produced no batches.")
        results = _pythonify(self._metric_results(totals, final=True), sort=False)
        callback_list.on_test_end(_pythonify(results))
        return results

    def evaluate(self, x: Any = None, y: Any = None, batch_size: int | None = None,
                 verbose: int | str = "auto", sample_weight: Any = None, steps: int | None = None,
                 callbacks: list[Callback] | None = None, return_dict: bool = False) -> Any:
        """Returns the loss and metrics of the model on data (Keras ``Model.evaluate``).

        Args:
            x: inputs (array, list, dict or dataset), as in ``fit``.
            y: targets; ``None`` when ``x`` yields ``(x, y)`` batches.
            batch_size: samples per batch (default 32); the last, partial batch counts fully.
            verbose: 0 silent, 1 progress bar, 2 one line, ``"auto"`` (1).
            sample_weight: one weight per sample.
            steps: evaluate at most this many batches.
            callbacks: callbacks whose ``on_test_*`` hooks run.
            return_dict: return ``{"loss": ..., "accuracy": ...}`` instead of a list.

        Returns:
            The scalar loss if the model has no metrics, else a list ``[loss, metric, ...]`` in the
            model's metrics order, or a dict when ``return_dict=True``.

        Example:
            >>> loss, acc = model.evaluate(x_test, y_test, verbose=0)  # doctest: +SKIP
        """
        self._require_compiled("evaluate")
        verbose = _resolve_verbose(verbose, "evaluate")
        batch_size = _positive_int(batch_size, "batch_size", "evaluate", 32)
        steps = _positive_int(steps, "steps", "evaluate")
        if y is None and x is not None and not data_lib.is_batch_source(x) and self._needs_eval_targets():
            raise ValueError("evaluate(): y (the targets) is required when x holds arrays. Received: y=None")
        source = self._eval_source("evaluate", x, y, sample_weight, batch_size, steps)
        self._retrace_for_new_host_arrays()
        callbacks, verbose = self._distributed_loop("evaluate", callbacks, verbose)
        callback_list = self._make_callbacks(callbacks, "evaluate", add_progbar=verbose != 0, model=self,
                                             verbose=verbose, epochs=1, steps=source.steps)
        results = self._test_loop(source, callback_list, "evaluate")
        if return_dict:   # keys sorted, as Keras's pythonify_logs returns them; the list keeps the metrics' order
            return dict(sorted(results.items()))
        values = list(results.values())
        return values[0] if len(values) == 1 else values

    # ---------------------------------------------------------------------------------------- predict
    def predict(self, x: Any, batch_size: int | None = None, verbose: int | str = "auto",
                steps: int | None = None, callbacks: list[Callback] | None = None) -> Any:
        """Runs the inference program on ``x`` batch by batch (Keras ``Model.predict``).

        Args:
            x: inputs (array, list, dict or dataset of ``x`` / ``(x, ...)`` batches).
            batch_size: samples per batch (default 32); the last, partial batch is predicted too.
            verbose: 0 silent, 1 progress bar, 2 one line, ``"auto"`` (1).
            steps: predict at most this many batches.
            callbacks: callbacks whose ``on_predict_*`` hooks run.

        Returns:
            One numpy array for a single-output model, else a list of arrays (one per output), or a dict
            keyed like the model's outputs when it was built with a dict; all batches concatenated along the
            first axis.

        Example:
            >>> probabilities = model.predict(x_test, verbose=0)  # doctest: +SKIP
        """
        verbose = _resolve_verbose(verbose, "predict")
        batch_size = _positive_int(batch_size, "batch_size", "predict", 32)
        steps = _positive_int(steps, "steps", "predict")
        if x is None:
            raise ValueError("predict(): x is required: the inputs (a numpy array, a list or dict of "
                             "arrays, or a dataset). Received: x=None")
        if data_lib.is_batch_source(x):
            source = data_lib.make_source("predict", self, x, None, None, batch_size, steps=steps)
        else:
            data = data_lib.array_data("predict", self, x, None, None)
            source = data_lib.ArraySource(data, batch_size, steps=steps)
        self._retrace_for_new_host_arrays()
        callbacks, verbose = self._distributed_loop("predict", callbacks, verbose)
        callback_list = self._make_callbacks(callbacks, "predict", add_progbar=verbose != 0, model=self,
                                             verbose=verbose, epochs=1, steps=source.steps)
        self.stop_predicting = False
        callback_list.on_predict_begin()
        chunks: list[Any] = []
        custom = getattr(self, "_has_custom_predict_step", lambda: False)()   # its result: any structure
        for step, (xs, _, _) in enumerate(source.epoch()):
            callback_list.on_predict_batch_begin(step)
            outputs = self._predict_batch(xs)
            outputs = outputs if custom else [np.asarray(o) for o in outputs]
            chunks.append(outputs)
            callback_list.on_predict_batch_end(step, {"outputs": outputs})
            if self.stop_predicting:
                break
        callback_list.on_predict_end()
        if not chunks:
            raise ValueError("predict(): the input data produced no batches; x is empty or an exhausted "
                             "generator.")
        if custom:
            return concat_batches(chunks, f"{type(self).__name__}.predict_step")
        merged = [np.concatenate(parts, axis=0) for parts in zip(*chunks)]
        # String outputs (StringLookup(invert=True)) as Keras on TensorFlow returns them: arrays of bytes.
        return self._pack_outputs([as_tf_bytes(m) if is_text(m) else m for m in merged])

    def _pack_outputs(self, outputs: list) -> Any:
        """One array for a single output, else a list (models built on a dict of outputs return a dict)."""
        return outputs[0] if len(outputs) == 1 else outputs


def _debug_caps(epochs: int, steps_per_epoch: int | None) -> tuple[int, int | None]:
    """``keras.config.set_max_epochs`` / ``set_max_steps_per_epoch`` caps, with Keras's warnings."""
    from ..backend_config import max_epochs, max_steps_per_epoch

    if max_epochs() and max_epochs() < epochs:
        warnings.warn(f"Limiting epochs to {max_epochs()}", stacklevel=3)
        epochs = max_epochs()
    cap = max_steps_per_epoch()
    if cap and (not steps_per_epoch or cap < steps_per_epoch):
        warnings.warn(f"Limiting steps_per_epoch to {cap}", stacklevel=3)
        steps_per_epoch = cap
    return epochs, steps_per_epoch
