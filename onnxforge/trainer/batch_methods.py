"""The batch half of ``TrainingMixin``: the runners ``fit`` / ``evaluate`` / ``predict`` drive
(``_train_batch``, ``_eval_batch``, ``_predict_batch``), the feeds they check and build, the public
``train_on_batch`` / ``test_on_batch`` / ``predict_on_batch``, metric sums and logs, and introspection.
"""
from __future__ import annotations

__all__ = ["BatchMethodsMixin"]

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..compiler import Program
from ..compiler.config import keras_dtype
from ..metrics import Metric
from ..runtime import ProgramRunner
from ..runtime.frozen import FrozenProgram
from . import distribution
from .core_parallel import CoreShards, ShardedProgram, plan_shards
from .target_shapes import adopt_target_shapes
from .temporal_weights import temporal_step
from .compile_metrics import CompiledMetrics, compiled_trackers, keras_metrics_names, listed_trackers
from .feed_checks import (_adjust_rank, _all_layers, _check_array, _check_cardinality, _check_ort_value,
                          _check_target, _is_ort_value, _length, _ones, _per_output_weights,
                          check_weights)
from .input_specs import widen_input_specs



class BatchMethodsMixin:
    """Mixed into ``TrainingMixin`` (which documents the internal API): one batch at a time, checked on the
    host before onnxruntime sees it."""

    # ------------------------------------------------------------------------------------ batch runners
    def _train_batch(self, xs: Sequence[np.ndarray], ys: Sequence[np.ndarray] | None,
                     sample_weight: Any = None, fetch: bool = True) -> Any:
        """One step; its metric sums, or with ``fetch=False`` a function that reads them later (the step's
        outputs stay on the device until then)."""
        self._assert_compile_called("train_on_batch")
        strategy = distribution.strategy_of(self)
        if strategy is not None:
            return strategy.train_batch(self, xs, ys, sample_weight)
        if self._has_custom_train_step():
            from .custom_step import train_batch

            return train_batch(self, xs, ys, sample_weight)
        adopt_target_shapes(self, ys)
        self._widen_inputs(xs)
        self._ensure_programs(xs, "train_on_batch")
        runner = self._step_runner("train_step", "train_on_batch")
        feeds = self._feeds(xs, ys, sample_weight, "train_on_batch")
        program = self._programs["train_step"]
        temporal = temporal_step(self, "train_step", feeds)
        if temporal is not None:   # rank-2 weights: their own programs, run whole (rare; kept simple)
            program, runner = temporal
        sharded = None if temporal is not None else self._core_shards(feeds)
        if sharded is not None:
            runner.check_feeds(feeds)
            sums = sharded.train_batch(feeds, self.optimizer.fed_learning_rate())
            self.optimizer._advance()
            return sums if fetch else (lambda: sums)
        values = runner.run(feeds, learning_rate=self.optimizer.fed_learning_rate(), fetch=fetch)
        self.optimizer._advance()
        if not fetch:
            return lambda: self._sums(program, [v.numpy() for v in values])
        return self._sums(program, values)

    def _core_shards(self, feeds: Mapping[str, Any]) -> CoreShards | None:
        """The step sharded over this machine's cores for a batch like ``feeds``, or ``None`` for the
        one-session step (see ``core_parallel``); built once per compile and shard count."""
        return self._shard_cache("train_step", feeds, lambda shards: CoreShards.for_model(self, shards))

    def _sharded_program(self, kind: str, feeds: Mapping[str, Any]) -> ShardedProgram | None:
        """``predict``'s or ``evaluate``'s program in shards for a batch like ``feeds``, or ``None``."""
        return self._shard_cache(kind, feeds, lambda shards: ShardedProgram.for_model(self, kind, shards))

    def _shard_cache(self, kind: str, feeds: Mapping[str, Any], build: Any) -> Any:
        if not all(isinstance(v, np.ndarray) for v in feeds.values()):
            return None   # OrtValues the caller placed: bound whole, as given
        shards = plan_shards(_length(next(iter(feeds.values()))))
        if shards < 2:
            return None
        cache = getattr(self, "_shard_steps", None)
        if cache is None or cache[0] is not self._programs:
            cache = self._shard_steps = (self._programs, {}, {})
        key = shards if kind == "train_step" else (kind, shards)
        if key not in cache[1]:
            from .mixin import _BUILD_LOCK   # tracing is process-global: builds take turns across threads

            with _BUILD_LOCK:
                cache[1][key], cache[2][key] = build(shards)
                if kind == "train_step":
                    self._shard_reason = cache[2][key]
        return cache[1][key]

    def _eval_batch(self, xs: Sequence[np.ndarray], ys: Sequence[np.ndarray] | None,
                    sample_weight: Any = None) -> dict[str, np.ndarray]:
        self._assert_compile_called("test_on_batch")
        strategy = distribution.strategy_of(self)
        if strategy is not None:
            return strategy.eval_batch(self, xs, ys, sample_weight)
        if self._has_custom_test_step():
            from .custom_step import train_batch

            return train_batch(self, xs, ys, sample_weight, method="test_step")
        adopt_target_shapes(self, ys)
        self._widen_inputs(xs)
        self._ensure_programs(xs, "test_on_batch")
        compiled = self.__dict__.get("_compiled_trackers")
        if compiled is not None and getattr(self, "_trackers", None) is not compiled:
            # A custom train_step reported its own logs last (custom_step.train_batch); the default test step
            # reports the compiled trackers, whose sums this program returns (else val_* read 0 from epoch 2 on).
            self._trackers, self._final_trackers = compiled, None
        self._step_runner("eval_step", "test_on_batch")   # a clear error where compile() had no loss
        feeds = self._feeds(xs, ys, sample_weight, "test_on_batch")
        temporal = temporal_step(self, "eval_step", feeds)
        if temporal is not None:
            program, runner = temporal
            return self._sums(program, runner.run(feeds))
        return self._sums(self._programs["eval_step"], self._run_inference("eval_step", feeds, ShardedProgram.sums))

    def _predict_batch(self, xs: Sequence[np.ndarray]) -> Any:
        """The outputs on one batch: one array per output, or a ``predict_step`` override's result."""
        strategy = distribution.strategy_of(self)
        if self._has_custom_predict_step():
            if strategy is not None:
                raise NotImplementedError(f"{type(self).__name__} overrides predict_step, which "
                                          f"{type(strategy).__name__} does not run data-parallel yet; predict in one "
                                          "process.")
            from .custom_predict import predict_batch

            return predict_batch(self, xs)
        if strategy is not None:
            return strategy.predict_batch(self, xs)
        self._widen_inputs(xs)
        self._ensure_programs(xs, "predict")
        feeds = self._input_feeds(xs, "predict")
        return self._run_inference("infer", feeds, ShardedProgram.predict)

    def _widen_inputs(self, xs: Sequence[np.ndarray]) -> None:
        """A subclassed model fed sizes it was not built for: its programs are traced again (``input_specs``)."""
        if widen_input_specs(self, xs):
            self._programs, self._runners = {}, {}

    def _run_inference(self, kind: str, feeds: Mapping[str, Any],
                       combine: Callable[[ShardedProgram, Mapping[str, Any]], list[np.ndarray]]) -> list[np.ndarray]:
        """``kind``'s outputs for ``feeds``: from the constant-weight session while it holds the current weights
        (``runtime.frozen``), else from the compiled program, in shards (``combine`` joins their outputs) where
        that is exact. The feeds are checked once, before either runs."""
        runner = self._runners[kind]
        runner.check_feeds(feeds)

        def compiled() -> list[np.ndarray]:
            sharded = self._sharded_program(kind, feeds)
            return runner.run(feeds, checked=True) if sharded is None else combine(sharded, feeds)

        frozen = self._frozen_program(kind, feeds)
        return compiled() if frozen is None else frozen.run(feeds, compiled)

    def _frozen_program(self, kind: str, feeds: Mapping[str, Any]) -> FrozenProgram | None:
        """``kind`` (``"infer"`` or ``"eval_step"``) run with constant weights while they do not change
        (``runtime.frozen``), or ``None`` where it cannot be; built once per compile."""
        if not all(isinstance(v, np.ndarray) for v in feeds.values()):
            return None   # OrtValues the caller placed stay bound as given
        cache = getattr(self, "_frozen_programs", None)
        if cache is None or cache[0] is not self._programs:
            cache = self._frozen_programs = (self._programs, {})
        if kind not in cache[1]:
            program = self._programs[kind]
            # Metrics updated inside layers read their state from the compiled session's runs.
            layer_metrics = kind == "eval_step" and getattr(program, "layer_metrics", None)
            cache[1][kind] = None if layer_metrics else FrozenProgram.for_runner(program.model, self._runners[kind])
        return cache[1][kind]

    def _metric_results(self, sums: Mapping[str, Any], final: bool = False) -> dict[str, Any]:
        """The logs from the summed states; ``final``: at an epoch's or evaluation's end, where a custom step
        whose keys are ``model.metrics``' names reports those metrics instead (``custom_step.log_trackers``)."""
        results: dict[str, Any] = {}
        self.__dict__["_last_metric_sums"] = sums   # get_metrics_result() reads the latest states
        # Keras lists the per-output loss trackers in metrics_names once a step has computed the loss.
        self.__dict__["_reported_for"] = getattr(self, "_compile_args", None)
        trackers = getattr(self, "_trackers", [])
        swap = getattr(self, "_final_trackers", None) if final else None
        if swap is not None and swap[0] is trackers:
            trackers = swap[1]
        listed = self.__dict__.get("_listed")   # (trackers, what a class listing its own metrics logs of them)
        if listed is None or listed[0] is not getattr(self, "_trackers", None):
            listed = self.__dict__["_listed"] = (getattr(self, "_trackers", None), listed_trackers(self, trackers))
        entries = [(name, name, metric) for name, metric in trackers] if listed[1] is None or \
            trackers is not listed[0] else listed[1]
        for name, log_name, metric in entries:
            keys = [f"{name}/{state}" for state, _ in metric.state_spec()]
            if all(k in sums for k in keys):
                results[log_name] = metric.result_from([np.asarray(sums[k], np.float64) for k in keys])
        return results

    def _step_runner(self, kind: str, method: str) -> ProgramRunner:
        runner = self._runners.get(kind)
        if runner is None:
            raise RuntimeError(f"{method}(): no loss to compute. Provide a `loss` argument in `compile()`.")
        return runner

    @staticmethod
    def _sums(program: Program, values: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        by_output = dict(zip(program.outputs, values))
        return {f"{tracker}/{state}": np.asarray(by_output[out], np.float64) for tracker, state, out in program.sums}

    # ------------------------------------------------------------------------------------ host-side checks
    def _model_name(self) -> str:
        return getattr(self, "name", type(self).__name__)

    def _input_feeds(self, xs: Sequence[np.ndarray], method: str) -> dict[str, np.ndarray]:
        names = list(self.input_names)
        xs = list(xs) if isinstance(xs, (list, tuple)) else [xs]
        if len(xs) != len(names):
            raise ValueError(f"{method}(): model {self._model_name()!r} has {len(names)} input(s) {names}, but "
                             f"received {len(xs)} array(s).")
        runner = (getattr(self, "_runners", None) or {}).get("infer")
        if runner is not None and runner.value_checks:   # on the arrays as given, before any cast
            raw = {name: np.asarray(x) for name, x in zip(names, xs)}
            for check in runner.value_checks:
                check(raw)
        feeds = {}
        for i, (name, kt, x) in enumerate(zip(names, self.inputs, xs)):
            what = f'Input {i} ("{name}") of model "{self._model_name()}"'
            if _is_ort_value(x):
                feeds[name] = _check_ort_value(x, tuple(kt.shape), keras_dtype(kt.dtype), what)
            else:
                feeds[name] = _check_array(_adjust_rank(np.asarray(x), tuple(kt.shape)), tuple(kt.shape), keras_dtype(kt.dtype),
                                           what, method)
        counts = {f"x[{n!r}]" if len(names) > 1 else "x": _length(a) for n, a in feeds.items()}
        _check_cardinality(method, counts)
        return feeds

    def _feeds(self, xs: Sequence[np.ndarray], ys: Sequence[np.ndarray] | None, sample_weight: Any,
               method: str) -> dict[str, np.ndarray]:
        """Host arrays for a step program: inputs, targets, sample weights, all checked."""
        from ..graph import contract as io_names

        feeds = self._input_feeds(xs, method)
        config = self._compiled_config
        outs = [o for o in config.outputs if o.has_target]
        ys = [] if ys is None else (list(ys) if isinstance(ys, (list, tuple)) else [ys])
        n_outputs = len(config.outputs)
        if len(ys) not in (n_outputs, len(outs)):
            raise ValueError(f"{method}(): model {self._model_name()!r} has {n_outputs} output(s) "
                             f"{[o.name for o in config.outputs]} that need targets, but y holds {len(ys)} "
                             "array(s).")
        counts = {("x" if len(feeds) == 1 else f"x[{k!r}]"): _length(v) for k, v in feeds.items()}
        n = next(iter(counts.values()))
        weights = _per_output_weights(sample_weight, outs, method)
        for k, o in enumerate(outs):
            y = ys[o.index] if len(ys) == n_outputs else ys[k]
            label = "y" if len(outs) == 1 else f"y[{o.name!r}]"
            if y is None:
                raise ValueError(f"{method}(): output {o.name!r} of model {self._model_name()!r} has a loss or metrics "
                                 f"but y has no targets for it. Received targets for "
                                 f"{[c.name for c in config.outputs if ys[c.index] is not None]}")
            if _is_ort_value(y):
                expected, dtype = tuple(o.target_shape), np.dtype(o.target_dtype)
                feeds[io_names.target(o.name)] = _check_ort_value(y, expected, dtype, f"{method}(): {label}")
            else:
                y = np.asarray(y)
                feeds[io_names.target(o.name)] = _check_target(y, o, label, method)
            counts[label] = _length(y)
            w = weights[k]
            if w is None:
                w = _ones(n)
            else:
                w = check_weights(w, feeds[io_names.target(o.name)], o, label.replace("y", "sample_weight", 1),
                                  method)
                counts["sample_weight" if len(outs) == 1 else f"sample_weight[{o.name!r}]"] = len(w)
            feeds[io_names.sample_weight(o.name)] = w
        _check_cardinality(method, counts)
        return feeds

    # ------------------------------------------------------------------------------------ public batch API
    def _batch_data(self, method: str, x: Any, y: Any, sample_weight: Any, class_weight: Any = None):
        from . import data as data_lib

        return data_lib.array_data(method, self, x, y, sample_weight, class_weight)

    def _logs(self, sums: Mapping[str, Any], return_dict: bool) -> Any:
        logs = {k: (float(v) if np.ndim(v) == 0 else np.asarray(v)) for k, v in self._metric_results(sums).items()}
        if return_dict:   # keys sorted, as Keras's pythonify_logs returns them; the list keeps the metrics' order
            return dict(sorted(logs.items()))
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def _accumulate(self, sums: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        running = getattr(self, "_running_sums", None) or {}
        for k, v in sums.items():
            running[k] = running[k] + v if k in running else np.array(v, np.float64)
        self._running_sums = running
        return running

    def reset_metrics(self) -> None:
        """Clear the metric state: what ``train_on_batch`` / ``test_on_batch`` accumulate, and every metric in
        ``model.metrics`` (Keras resets them at the start of each epoch and of ``evaluate``)."""
        self._running_sums = {}
        self.__dict__.pop("_last_metric_sums", None)
        for metric in self.metrics:
            reset = getattr(metric, "reset_state", None)
            if reset is not None:
                reset()

    def reset_states(self) -> None:
        """Zero the states of every stateful recurrent layer (tf.keras 2's ``model.reset_states()``; Keras 3
        calls ``reset_states()`` on the layers)."""
        for layer in self._all_sublayers():
            if getattr(layer, "stateful", False) and callable(getattr(layer, "reset_states", None)):
                layer.reset_states()

    @property
    def metrics(self) -> list[Metric]:
        """The model's metrics (Keras ``Model.metrics``): the compiled trackers, then the ``Metric`` objects held
        as attributes of the model and its layers (a custom step's ``keras.metrics.Mean`` trackers).
        Override it as Keras's examples do (``return [self.loss_tracker]``) to choose what ``fit`` resets."""
        out: list[Metric] = [m for _, m in getattr(self, "_trackers", []) if isinstance(m, Metric)]
        if not out and self._has_custom_train_step():
            out = compiled_trackers(self)   # Keras's loss tracker and compile_metrics, for the step to update
        for layer in _all_layers(self):
            for value in vars(layer).values():
                if isinstance(value, Metric) and all(value is not m for m in out):
                    out.append(value)
        return out

    @property
    def metrics_names(self) -> list[str]:
        """Keras 3's names of ``model.metrics``: ``"loss"``, ``"compile_metrics"`` (one entry for all the compiled
        metrics), the per-output losses once a step has run, then the metrics layers update
        (``["loss", "compile_metrics", "a_loss", "b_loss"]``); a custom ``train_step``'s trackers by name."""
        own_metrics = type(self).metrics is not BatchMethodsMixin.__dict__["metrics"]
        return keras_metrics_names(self, metrics_overridden=own_metrics)

    def train_on_batch(self, x: Any, y: Any = None, sample_weight: Any = None, class_weight: Any = None,
                       return_dict: bool = False) -> Any:
        """Runs one training step on one batch (Keras ``Model.train_on_batch``).

        Returns:
            The loss (a float) if the model has no metrics, else ``[loss, metric, ...]``, or a dict with
            ``return_dict=True``; the values of this batch alone (Keras 3 resets the metrics first).

        Example:
            >>> loss, acc = model.train_on_batch(x[:32], y[:32])                 # doctest: +SKIP
        """
        self._assert_compile_called("train_on_batch")
        if _is_ort_value(x) or _is_ort_value(y):
            # A batch already on the model's device (``onnxruntime.OrtValue``): bound as it is, no copy.
            if sample_weight is not None or class_weight is not None:
                raise ValueError("train_on_batch(): sample_weight and class_weight need host arrays; a batch given "
                                 "as OrtValues trains unweighted.")
            xs, ys = [x], (None if y is None else [y])
            if _length(x) == 0:
                raise ValueError("train_on_batch(): received an empty batch (0 samples); a training step needs "
                                 f"at least one sample. Received: x with shape {tuple(x.shape())}")
        else:
            data = self._batch_data("train_on_batch", x, y, sample_weight, class_weight)
            if data.n == 0:   # Keras fails too (deep in the backend); nothing runs, the step count stays
                raise ValueError("train_on_batch(): received an empty batch (0 samples); a training step needs "
                                 f"at least one sample. Received: x with shapes {[a.shape for a in data.xs]}")
            xs, ys, sample_weight = data.xs, data.ys, data.sample_weight
        self.reset_metrics()   # Keras 3 (every backend) resets before the step: one batch's logs
        self._retrace_for_new_host_arrays()
        sums = self._train_batch(xs, ys, sample_weight)
        return self._logs(self._accumulate(sums), return_dict)

    def test_on_batch(self, x: Any, y: Any = None, sample_weight: Any = None, return_dict: bool = False) -> Any:
        """Computes the loss and metrics on one batch without training (Keras ``Model.test_on_batch``)."""
        self._assert_compile_called("test_on_batch")
        data = self._batch_data("test_on_batch", x, y, sample_weight)
        self.reset_metrics()
        self._retrace_for_new_host_arrays()
        sums = self._eval_batch(data.xs, data.ys, data.sample_weight)
        return self._logs(self._accumulate(sums), return_dict)

    def predict_on_batch(self, x: Any) -> Any:
        """The model's outputs on one batch: an array, or a list of arrays for several outputs (what an
        overridden ``predict_step`` returns, if any)."""
        data = self._batch_data("predict_on_batch", x, None, None)
        self._retrace_for_new_host_arrays()
        outputs = self._predict_batch(data.xs)
        return outputs if self._has_custom_predict_step() else self._pack_outputs(outputs)

    # ------------------------------------------------------------------------------------ introspection
    @property
    def compiled_programs(self) -> dict[str, Program]:
        """The compiled programs by kind (``infer``, ``eval_step``, ``train_step``; a custom ``train_step``
        once traced)."""
        programs = dict(getattr(self, "_programs", {}) or {})
        custom = getattr(self, "_custom_program", None)
        if custom is not None:
            programs["train_step"] = custom
        return programs

    @property
    def compiled_metrics(self) -> CompiledMetrics:
        """``(name, metric)`` of every reported quantity, the loss trackers included; its ``update_state(y,
        y_pred)`` is tf.keras 2's call in a custom ``train_step`` (deprecated in Keras 3; see ``CompiledMetrics``)."""
        return CompiledMetrics(list(getattr(self, "_trackers", [])), self)


