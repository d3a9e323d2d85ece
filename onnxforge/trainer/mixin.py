"""The training methods every ``Model`` has: ``compile``, the ``*_on_batch`` methods, and the batch
runners the ``fit`` / ``evaluate`` / ``predict`` loops (``FitMixin``) drive."""
from __future__ import annotations

__all__ = ["TrainingMixin"]

import threading
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import optimizers as optimizers_module
from ..compiler import CompileConfig, Program, build_eval_step, build_infer, build_train_step, resolve_config
from ..compiler.programs import CompileError
from ..compiler.config import keras_dtype
from .compile_metrics import compiled_trackers
from ..compiler.custom_loss import default_compute_loss, mark_default as mark_default_compute_loss
from ..metrics import Metric
from ..runtime import Device, ProgramRunner, fused_training_ops, resolve_device
from ..variables import Variable
from . import distribution
from .fit import FitMixin

_PROBABILISTIC = ("SparseCategoricalCrossentropy", "CategoricalCrossentropy", "BinaryCrossentropy")
#: Held while a model builds its programs lazily (first predict / fit); rare, so one lock for all models.
_BUILD_LOCK = threading.RLock()


class TrainingMixin(FitMixin):
    """Mixed into ``onnxforge.Model``: ``compile``, ``train_on_batch``, ``test_on_batch``,
    ``predict_on_batch``, ``reset_metrics``, and ``fit`` / ``evaluate`` / ``predict`` (``FitMixin``).

    ``compile()`` resolves the loss, metrics and optimizer per output, captures which weights are
    trainable, and builds three programs (``infer``; with a loss, ``eval_step`` and ``train_step``; see
    ``onnxforge.compiler``). Each runs in one onnxruntime session created on first use; weights,
    statistics, optimizer slots and the RNG state stay on the device between steps.

    Internal API for the loops (all arrays are host numpy arrays, lists in the model's input / output
    order; ``sample_weight`` is one vector for every output, or ``None``):

    * ``_train_batch(xs, ys, sample_weight) -> dict[str, np.ndarray]``: one training step; returns this
      batch's metric SUMS keyed ``"<tracker>/<state>"`` (``"loss/total"``, ``"loss/count"``,
      ``"accuracy/total"``, ``"auc/true_positives"``, ...). Sums of several batches add up.
    * ``_eval_batch(xs, ys, sample_weight) -> dict[str, np.ndarray]``: the same without updating anything.
    * ``_predict_batch(xs) -> list[np.ndarray]``: one array per output (no compile needed).
    * ``_metric_results(sums) -> dict[str, float]``: Keras's logs from accumulated sums, in Keras's order
      (``loss``, ``<output>_loss`` for several outputs, then the metrics): the ``History`` keys.

    The batch runners check what they receive against ``model.inputs`` / ``model.outputs`` (rank,
    fixed dims, dtype, label range of sparse crossentropy, sample counts) and raise errors that name
    the input or output, the value received and what was expected.

    Like Keras 3, ``train_on_batch`` / ``test_on_batch`` reset the metric state before each call (they
    report that one batch's values); ``fit`` and ``evaluate`` start from fresh sums.
    """

    _compiled_config: CompileConfig | None = None
    _programs: dict[str, Program]
    _runners: dict[str, ProgramRunner]

    # ------------------------------------------------------------------------------------ compile
    def compile(self, optimizer: Any = "rmsprop", loss: Any = None, loss_weights: Any = None, metrics: Any = None,
                weighted_metrics: Any = None, run_eagerly: bool = False, steps_per_execution: int = 1,
                jit_compile: Any = "auto", auto_scale_loss: bool = True, device: str | Device = "auto",
                seed: int | None = None) -> None:
        """Configures the model for training (Keras ``Model.compile``) and builds its programs.

        Args:
            optimizer: name (``"adam"``, ``"sgd"``, ``"rmsprop"``, ``"adamw"``, ``"adagrad"``) or an
                ``onnxforge.optimizers.Optimizer``.
            loss: a name (``"sparse_categorical_crossentropy"``, ``"mse"``, ...), a ``Loss``, a function
                ``fn(y_true, y_pred)`` of graph values, or a list / dict of those per output.
            loss_weights: a float per output (list or dict); the total loss is the weighted sum.
            metrics: names (``"accuracy"``, ``"mae"``, ``"auc"``, ...) or ``Metric`` objects, or a list /
                dict of them per output. Not weighted by ``sample_weight`` (Keras 3).
            weighted_metrics: like ``metrics``, but weighted by ``sample_weight``.
            auto_scale_loss: under the ``mixed_float16`` dtype policy, wrap the optimizer in a
                ``LossScaleOptimizer`` (Keras's default).
            steps_per_execution: ``fit`` reads the loss and metric sums back from the device, and calls
                ``on_train_batch_begin`` / ``on_train_batch_end``, once per this many steps (as Keras does):
                the steps in between never wait for the device.
            run_eagerly, jit_compile: accepted for Keras compatibility; programs are
                always compiled graphs.
            device: ``"cpu"``, ``"cuda"`` (an error without the CUDA provider), ``"cuda:N"`` or ``"auto"``.
            seed: the seed of in-graph randomness (Dropout); default: drawn from numpy's global RNG, so
                ``np.random.seed`` makes runs reproducible. Recompiling keeps the RNG state.

        Example:
            >>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
            ...               metrics=["accuracy"])                                  # doctest: +SKIP
        """
        if not isinstance(steps_per_execution, int) or steps_per_execution < 1:
            raise ValueError("Argument `steps_per_execution` must be a positive integer. "
                             f"Received: steps_per_execution={steps_per_execution!r}")
        if seed is not None and (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool)):
            raise ValueError(f"Argument `seed` must be an integer or None. Received: seed={seed!r}")
        self.optimizer = optimizers_module.get(optimizer, "optimizer")
        policy = getattr(self, "dtype_policy", None)
        if auto_scale_loss and getattr(policy, "name", None) == "mixed_float16" \
                and not isinstance(self.optimizer, optimizers_module.LossScaleOptimizer):
            # Keras: float16 gradients underflow without loss scaling, so a mixed_float16 model's optimizer
            # is wrapped (the scale lives in the training graph as optimizer state).
            self.optimizer = optimizers_module.LossScaleOptimizer(self.optimizer, name="loss_scale_optimizer")
        self.loss = loss
        self._compile_args = dict(loss=loss, loss_weights=loss_weights, metrics=metrics,
                                  weighted_metrics=weighted_metrics)
        self._device = resolve_device(device)
        self._seed = seed
        self.steps_per_execution = steps_per_execution
        self.compiled = True
        self._compiled_config = None
        self._programs, self._runners = {}, {}
        self._custom_steps: dict = {}
        self._custom_program: Program | None = None
        self._running_sums: dict[str, np.ndarray] = {}
        self._capture_trainable()
        # Compiled inside `with strategy.scope():` (or earlier so): fit / evaluate / predict run data-parallel.
        self._distribute_strategy = distribution.current_strategy() or distribution.strategy_of(self)
        if self._distribute_strategy is not None:
            self._distribute_strategy.on_compile(self)
        if self._has_custom_train_step():
            self._rng_variable()   # compile(seed=...) restarts the custom step's random streams too
        elif getattr(self, "built", False):
            self._build_programs()

    def get_compile_config(self) -> dict[str, Any] | None:
        """The ``compile()`` arguments as JSON-friendly data (Keras ``get_compile_config``), or ``None``.

        Built-in losses, metrics and optimizers become ``{"class_name": ..., "config": ...}``; strings stay
        strings; other callables are stored by their ``__name__`` (they must be passed again on load).
        """
        if not getattr(self, "compiled", False):
            return None
        args = self._compile_args
        return {"optimizer": optimizers_module.serialize(self.optimizer), "loss": _serialize(args["loss"]),
                "loss_weights": args["loss_weights"], "metrics": _serialize(args["metrics"]),
                "weighted_metrics": _serialize(args["weighted_metrics"]), "seed": self._seed}

    @mark_default_compute_loss
    def compute_loss(self, x: Any = None, y: Any = None, y_pred: Any = None, sample_weight: Any = None,
                     training: bool = True) -> Any:
        """Keras 3's loss hook: the compiled losses of ``y_pred`` against ``y`` plus the layers' ``add_loss``
        terms. Override it to compute the loss another way (``fit`` and ``evaluate`` trace the override into
        their programs; see ``onnxforge.compiler.custom_loss``)."""
        return default_compute_loss(self, x, y, y_pred, sample_weight)

    def compile_from_config(self, config: Mapping[str, Any], device: str | Device = "auto") -> None:
        """``compile()`` with the output of ``get_compile_config`` (the optimizer's state is not included)."""
        self.compile(optimizer=optimizers_module.deserialize(config["optimizer"]), loss=config.get("loss"),
                     loss_weights=config.get("loss_weights"), metrics=config.get("metrics"),
                     weighted_metrics=config.get("weighted_metrics"), seed=config.get("seed"), device=device)

    @property
    def distribute_strategy(self) -> Any:
        """The ``onnxforge.distribute`` strategy the model was compiled under, or ``None`` (one process)."""
        return distribution.strategy_of(self)

    def _assert_compile_called(self, method: str) -> None:
        if not getattr(self, "compiled", False):
            raise RuntimeError(f"You must call `compile()` before calling `{method}()`. Model "
                               f"{getattr(self, 'name', type(self).__name__)!r} has no optimizer and loss yet.")

    def _build_programs(self) -> None:
        """Resolve the compile arguments against the built model and make its programs (once)."""
        args = self._compile_args
        config = resolve_config(self, self.optimizer, args["loss"], args["loss_weights"], args["metrics"],
                                args["weighted_metrics"])
        self._warn_linear_outputs(config)
        trainable = self._compiled_trainable()
        self.optimizer.build(trainable)
        programs = {"infer": build_infer(self, rng_state=self._rng_stream())}
        try:
            programs["eval_step"] = build_eval_step(self, config, self._rng_stream())
            programs["train_step"] = build_train_step(self, config, trainable, self._rng_variable(),
                                                      fused_ops=fused_training_ops(self._device))
        except CompileError:
            if config.has_loss:
                raise
            # compile(loss=None) and no layer adds a loss (add_loss): a model for predict() only.
            programs.pop("eval_step", None)
        self._runners = {kind: self._make_runner(p) for kind, p in programs.items()}
        self._trackers = config.trackers() + _layer_trackers(programs)
        self._compiled_config = config
        self._portable_programs: dict[str, Program] = {}
        self._programs = programs   # last: a non-empty _programs tells other threads everything is ready

    def _portable_program(self, kind: str) -> Program:
        """The compiled ``kind`` program as any runtime runs it: the one this process runs unless it holds a
        fused training kernel only the CPU provider runs (see ``fused_training_ops``); that one is traced
        again without (once), for files. Same inputs, outputs and state pairs, the same step in other ops."""
        program = self._programs[kind]
        if program.portable:
            return program
        cached = self._portable_programs.get(kind)
        if cached is None:   # only a train_step is ever built with fused kernels; the RNG is not reseeded
            cached = build_train_step(self, self._compiled_config, self._compiled_trainable(), self._rng_stream())
            self._portable_programs[kind] = cached
        return cached

    # ------------------------------------------------------------------------------------ trainable capture
    def _capture_trainable(self) -> None:
        """Record what trains, at ``compile()`` time, as tf.keras 2 does.

        The classic GAN pattern depends on it: compile the discriminator, then set
        ``discriminator.trainable = False`` and compile the combined model; the discriminator's own program
        still trains it, the combined model's does not. (Keras 3 reads the flag when the step is first
        traced instead, so in that order its discriminator silently stops learning.) A built model keeps
        the list of trainable Variables; an unbuilt one keeps every layer's flag, applied while its
        weights are created on the first batch.
        """
        if getattr(self, "built", False):
            self._trainable_at_compile: list[Variable] | None = list(self.trainable_weights)
            self._trainable_flags: list[tuple[Any, bool]] = []
        else:
            self._trainable_at_compile = None
            self._trainable_flags = [(layer, layer.trainable) for layer in _all_layers(self)]

    def _compiled_trainable(self) -> list[Variable]:
        captured = getattr(self, "_trainable_at_compile", None)
        if captured is not None:
            return list(captured)
        flags = getattr(self, "_trainable_flags", None)
        if not flags:
            return list(self.trainable_weights)
        now = [(layer, layer.trainable) for layer, _ in flags]
        try:
            for layer, flag in flags:   # parents first: a layer's setter also sets its sub-layers
                layer.trainable = flag
            trainable = list(self.trainable_weights)
        finally:
            for layer, flag in now:
                layer.trainable = flag
        self._trainable_at_compile = trainable
        return list(trainable)

    # ------------------------------------------------------------------------------------ custom steps
    def train_step(self, data: Any) -> dict[str, Any]:
        """Override to write the training step yourself (Keras ``Model.train_step``).

        ``fit`` and ``train_on_batch`` trace an override once into a single ONNX training graph (see
        ``onnxforge.trainer.custom_step``): use ``onnxforge.ops``, ``onnxforge.GradientTape`` and
        ``optimizer.apply_gradients``, and return a dict of scalar values to log. Without an override the
        compiled loss and optimizer train the model; that default step is built by the compiler and
        cannot be called from an override (``super().train_step(data)``).

        Example:
            >>> class GAN(Model):                                           # doctest: +SKIP
            ...     def train_step(self, real):
            ...         with onnxforge.GradientTape() as tape:
            ...             d_loss = ...
            ...         grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
            ...         self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))
            ...         return {"d_loss": d_loss}
        """
        raise NotImplementedError(
            f"{type(self).__name__}.train_step: the default training step is compiled by onnxforge from "
            "compile(loss=...) and cannot be called from a custom train_step (super().train_step(data)). Write "
            "the step with onnxforge.GradientTape and optimizer.apply_gradients instead.")

    def test_step(self, data: Any) -> dict[str, Any]:
        """Override to write the evaluation step yourself (Keras ``Model.test_step``): traced once for
        ``evaluate`` like a custom ``train_step`` (no optimizer applied); return a dict of values or
        metric results to log. Without an override, ``evaluate`` uses the compiled loss and metrics."""
        raise NotImplementedError(
            f"{type(self).__name__}.test_step: the default evaluation step is compiled by onnxforge from "
            "compile(loss=...) and cannot be called from an override (super().test_step(data)).")

    def _has_custom_train_step(self) -> bool:
        return type(self).train_step is not TrainingMixin.train_step

    def _has_custom_test_step(self) -> bool:
        return type(self).test_step is not TrainingMixin.test_step

    def _needs_targets(self) -> bool:
        """``fit(x)`` without ``y`` is fine for a custom ``train_step`` (a GAN trains on images alone) and for
        ``compile(loss=None)`` when layers add the loss themselves (``add_loss``)."""
        args = getattr(self, "_compile_args", None) or {}
        return not self._has_custom_train_step() and args.get("loss") is not None

    def _needs_eval_targets(self) -> bool:
        """``evaluate(x)`` without ``y``: fine for a custom ``test_step`` and for ``compile(loss=None)``."""
        args = getattr(self, "_compile_args", None) or {}
        return not self._has_custom_test_step() and args.get("loss") is not None

    def rng_variables(self) -> list[Variable]:
        """The state Variables of this model's random streams, to save and restore with its weights.

        The model's in-graph RNG (``seed_generator/state``: Dropout, GaussianNoise, ``ops.random`` without
        a seed), once created, then the state of every ``ops.random.SeedGenerator`` held by the model or
        its layers. Restoring them with the weights and optimizer variables resumes a run exactly.
        """
        from ..ops.random import SeedGenerator

        out: list[Variable] = []
        if getattr(self, "_rng_state", None) is not None:
            out.append(self._rng_state)
        for layer in _all_layers(self):
            for value in vars(layer).values():
                if isinstance(value, SeedGenerator) and all(value.state is not v for v in out):
                    out.append(value.state)
        return out

    def tracked_optimizers(self) -> list[Any]:
        """``self.optimizer`` (once compiled) and any other optimizer held as an attribute (a GAN's
        ``d_optimizer`` / ``g_optimizer``), in that order: what to save with a custom-step model."""
        out: list[Any] = []
        for key, value in vars(self).items():
            if isinstance(value, optimizers_module.Optimizer) and all(value is not o for o in out):
                out.append(value)
        opt = getattr(self, "optimizer", None)
        if isinstance(opt, optimizers_module.Optimizer):
            out = [opt] + [o for o in out if o is not opt]
        return out

    def _rng_variable(self) -> Variable:
        """The model's in-graph RNG state ``[seed, counter]``, kept across recompiles (exact resumption)."""
        var = getattr(self, "_rng_state", None)
        chosen = getattr(self, "_seed", None)   # None before compile(): predict draws need a stream too
        seed = chosen if chosen is not None else int(np.random.randint(0, 2 ** 31 - 1))
        if var is None:
            var = Variable(np.asarray([seed, 0], np.int64), name="seed_generator/state", trainable=False,
                           dtype=np.int64)
            self._rng_state = var
        elif chosen is not None:
            var.assign(np.asarray([seed, 0], np.int64))
        return var

    def _rng_stream(self) -> Variable:
        """The model's RNG state Variable, created if needed but never reseeded (predict, export)."""
        var = getattr(self, "_rng_state", None)
        return var if var is not None else self._rng_variable()

    def _make_runner(self, program: Program) -> ProgramRunner:
        return ProgramRunner(program.model, self._device, program.inputs, program.outputs, params=program.params,
                             state=program.state, learning_rate=program.learning_rate, name=program.kind)

    def _warn_linear_outputs(self, config: CompileConfig) -> None:
        """The seed bug: ``Dense(10)`` (linear) + a crossentropy that expects probabilities."""
        for out in config.outputs:
            loss = out.loss
            if loss is None or type(loss).__name__ not in _PROBABILISTIC or getattr(loss, "from_logits", True):
                continue
            layer = _output_layer(self, out.index)
            activation = getattr(layer, "activation", None) if layer is not None else None
            if activation is None or getattr(activation, "__name__", activation) != "linear":
                continue
            name = type(loss).__name__
            fix = "activation='sigmoid'" if name == "BinaryCrossentropy" else "activation='softmax'"
            warnings.warn(
                f"Output {out.name!r} comes from layer {layer.name!r} ({type(layer).__name__}) with a linear "
                f"activation, but the loss {name} has from_logits=False, so the raw scores are treated as "
                "probabilities (as Keras does: clipped to [1e-7, 1 - 1e-7]"
                + (" after dividing by their sum" if name != "BinaryCrossentropy" else "")
                + "), which trains poorly. Use loss=onnxforge.losses."
                f"{name}(from_logits=True), or give layer {layer.name!r} {fix}.", UserWarning,
                stacklevel=_user_stacklevel())

    def _ensure_programs(self, xs: Sequence[np.ndarray], method: str) -> None:
        """Build the model from the first batch if compile() came before it was built."""
        if getattr(self, "_programs", None):
            return
        with _BUILD_LOCK:   # first calls from several threads: one builds, the others use its programs
            if not getattr(self, "_programs", None):
                self._build_for(xs, method)

    def _build_for(self, xs: Sequence[np.ndarray], method: str) -> None:
        if not getattr(self, "built", False):
            build = getattr(self, "build", None)
            if build is None or not xs:
                raise RuntimeError(f"{method}(): the model is not built; call it on an Input first.")
            shapes = [(None,) + tuple(x.shape() if _is_ort_value(x) else x.shape)[1:] for x in xs]
            build(shapes[0] if len(shapes) == 1 else shapes)
        if getattr(self, "compiled", False):
            self._build_programs()
        else:
            program = build_infer(self, rng_state=self._rng_stream())
            self._device = getattr(self, "_device", None) or resolve_device("auto")
            self._runners = {"infer": self._make_runner(program)}
            self._programs = {"infer": program}   # last: see _build_programs

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
        self._ensure_programs(xs, "train_on_batch")
        runner = self._step_runner("train_step", "train_on_batch")
        feeds = self._feeds(xs, ys, sample_weight, "train_on_batch")
        values = runner.run(feeds, learning_rate=self.optimizer.learning_rate, fetch=fetch)
        self.optimizer._advance()
        program = self._programs["train_step"]
        if not fetch:
            return lambda: self._sums(program, [v.numpy() for v in values])
        return self._sums(program, values)

    def _eval_batch(self, xs: Sequence[np.ndarray], ys: Sequence[np.ndarray] | None,
                    sample_weight: Any = None) -> dict[str, np.ndarray]:
        self._assert_compile_called("test_on_batch")
        strategy = distribution.strategy_of(self)
        if strategy is not None:
            return strategy.eval_batch(self, xs, ys, sample_weight)
        if self._has_custom_test_step():
            from .custom_step import train_batch

            return train_batch(self, xs, ys, sample_weight, method="test_step")
        self._ensure_programs(xs, "test_on_batch")
        runner = self._step_runner("eval_step", "test_on_batch")
        values = runner.run(self._feeds(xs, ys, sample_weight, "test_on_batch"))
        return self._sums(self._programs["eval_step"], values)

    def _predict_batch(self, xs: Sequence[np.ndarray]) -> list[np.ndarray]:
        strategy = distribution.strategy_of(self)
        if strategy is not None:
            return strategy.predict_batch(self, xs)
        self._ensure_programs(xs, "predict")
        return self._runners["infer"].run(self._input_feeds(xs, "predict"))

    def _metric_results(self, sums: Mapping[str, Any]) -> dict[str, Any]:
        results: dict[str, Any] = {}
        for name, metric in getattr(self, "_trackers", []):
            keys = [f"{name}/{state}" for state, _ in metric.state_spec()]
            if all(k in sums for k in keys):
                results[name] = metric.result_from([np.asarray(sums[k], np.float64) for k in keys])
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
        from ..compiler import names as io_names

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
                expected = tuple(o.shape)[:-1] if o.sparse_labels else tuple(o.shape)
                dtype = np.dtype(np.int64) if o.sparse_labels else np.dtype(o.target_dtype)
                feeds[io_names.target(o.name)] = _check_ort_value(y, expected, dtype, f"{method}(): {label}")
            else:
                y = np.asarray(y)
                feeds[io_names.target(o.name)] = _check_target(y, o, label, method)
            counts[label] = _length(y)
            w = weights[k]
            if w is None:
                w = _ones(n)
            else:
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
        if return_dict:
            return logs
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
        for metric in self.metrics:
            reset = getattr(metric, "reset_state", None)
            if reset is not None:
                reset()

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
        """The names of the reported quantities, in order (``["loss", "accuracy"]``)."""
        return [name for name, _ in getattr(self, "_trackers", [])]

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
        sums = self._train_batch(xs, ys, sample_weight)
        return self._logs(self._accumulate(sums), return_dict)

    def test_on_batch(self, x: Any, y: Any = None, sample_weight: Any = None, return_dict: bool = False) -> Any:
        """Computes the loss and metrics on one batch without training (Keras ``Model.test_on_batch``)."""
        self._assert_compile_called("test_on_batch")
        data = self._batch_data("test_on_batch", x, y, sample_weight)
        self.reset_metrics()
        sums = self._eval_batch(data.xs, data.ys, data.sample_weight)
        return self._logs(self._accumulate(sums), return_dict)

    def predict_on_batch(self, x: Any) -> Any:
        """The model's outputs on one batch: an array, or a list of arrays for several outputs."""
        data = self._batch_data("predict_on_batch", x, None, None)
        return self._pack_outputs(self._predict_batch(data.xs))

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
    def compiled_metrics(self) -> list[tuple[str, Metric]]:
        """``(name, metric)`` of every reported quantity, the loss trackers included."""
        return list(getattr(self, "_trackers", []))


# ------------------------------------------------------------------------------------------ helpers
def _layer_trackers(programs: Mapping[str, Program]) -> list[tuple[str, Any]]:
    """The metrics layers update in ``call()``, by tracker name, from the step programs (the training step's
    first: a metric updated only with ``training=True`` still reports in ``fit``)."""
    out: dict[str, Any] = {}
    for kind in ("train_step", "eval_step"):
        program = programs.get(kind)
        for name, metric in (program.layer_metrics if program is not None else []):
            out.setdefault(name, metric)
    return list(out.items())


_ONES: dict[int, np.ndarray] = {}


def _ones(n: int) -> np.ndarray:
    """Unit sample weights for a batch of ``n`` (cached: most batches share a size)."""
    ones = _ONES.get(n)
    if ones is None:
        ones = _ONES[n] = np.ones(n, np.float32)
        ones.setflags(write=False)
    return ones


def _all_layers(model: Any) -> list[Any]:
    """``model`` and every layer under it, parents before children."""
    out: list[Any] = []

    def visit(layer: Any) -> None:
        if any(layer is seen for seen in out):
            return
        out.append(layer)
        for sub in layer._flat_sublayers() if hasattr(layer, "_flat_sublayers") else []:
            visit(sub)

    visit(model)
    return out


def _serialize(value: Any) -> Any:
    """Compile arguments as data: strings as they are, Keras objects as class name and config."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Mapping):
        return {k: _serialize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_serialize(v) for v in value]
    if hasattr(value, "get_config") and not isinstance(value, type):
        return {"class_name": type(value).__name__, "config": value.get_config()}
    return getattr(value, "__name__", repr(value))


def _user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first caller outside onnxforge."""
    import os
    import sys

    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def _output_layer(model: Any, index: int) -> Any:
    outputs = getattr(model, "outputs", None) or []
    if index < len(outputs):
        history = getattr(outputs[index], "_keras_history", None)
        if history is not None:
            return history[0]
    layers = getattr(model, "layers", None) or []
    return layers[-1] if layers and len(outputs) <= 1 else None


def _check_cardinality(method: str, counts: Mapping[str, int]) -> None:
    if len(set(counts.values())) > 1:
        detail = ", ".join(f"{name}: {n} samples" for name, n in counts.items())
        raise ValueError(f"{method}(): data cardinality is ambiguous; all arrays must contain the same number of "
                         f"samples (first dimension). Received: {detail}")


def _adjust_rank(array: np.ndarray, expected: tuple) -> np.ndarray:
    """Keras's functional rule on data: ``(n, 28, 28)`` feeds an ``Input((28, 28, 1))`` and a trailing axis
    of size 1 too many is dropped (the model's call applies the same rule to tensors)."""
    if array.ndim == len(expected) - 1 and expected and expected[-1] == 1:
        return array[..., None]
    if array.ndim == len(expected) + 1 and array.shape[-1] == 1:
        return array[..., 0]
    return array


def _shape_ok(shape: tuple, expected: tuple) -> bool:
    return len(shape) == len(expected) and all(e is None or e == s for s, e in zip(shape, expected))


def _cast(array: np.ndarray, dtype: np.dtype, what: str, method: str) -> np.ndarray:
    if array.dtype == dtype:
        return array
    if dtype == object:  # a string input: onnxruntime takes str objects
        if array.dtype.kind not in "USO":
            raise TypeError(f"{method}(): {what} expects strings. Received an array of dtype {array.dtype}")
        return array.astype(str).astype(object) if array.dtype.kind == "S" else array.astype(object)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{method}(): {what} must hold numbers of dtype {dtype.name}. Received an array of "
                        f"dtype {array.dtype}")
    if dtype.kind in "iu" and array.dtype.kind == "f" and not np.all(np.isfinite(array) & (array == np.round(array))):
        raise ValueError(f"{method}(): {what} expects integers (dtype {dtype.name}). Received an array of "
                        f"dtype {array.dtype} with non-integer values")
    if dtype.kind in "iu" and array.size:
        # astype would wrap (uint64 2**63 -> 0) or saturate (1e19 -> INT_MIN) values that do not fit.
        info, low, high = np.iinfo(dtype), array.min(), array.max()
        if low < info.min or high > info.max:
            raise ValueError(f"{method}(): {what} expects {dtype.name} values in [{info.min}, {info.max}]. "
                             f"Received values in [{low}, {high}]")
    return array.astype(dtype)


def _is_ort_value(value: Any) -> bool:
    """Whether ``value`` is an onnxruntime ``OrtValue`` (a tensor that may live on a device)."""
    return type(value).__name__ == "OrtValue" and callable(getattr(value, "data_type", None))


def _length(value: Any) -> int:
    shape = value.shape() if _is_ort_value(value) else np.shape(value)
    return int(shape[0]) if len(shape) else 1


_ORT_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
              "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(bool)": np.bool_}


def _check_ort_value(value: Any, expected: tuple, dtype: np.dtype, what: str) -> Any:
    """Shape and dtype checks for an ``OrtValue`` feed, without reading it back (it is bound as it is)."""
    shape, kind = tuple(value.shape()), value.data_type()
    if not _shape_ok(shape, expected):
        raise ValueError(f"{what} is incompatible: expected shape={expected}, found shape={shape}")
    if _ORT_TYPES.get(kind) != np.dtype(dtype):
        raise TypeError(f"{what} must be an OrtValue of dtype {np.dtype(dtype).name} (an OrtValue is bound without "
                        f"a conversion). Received: an OrtValue of type {kind}")
    return value


def _check_array(array: np.ndarray, expected: tuple, dtype: np.dtype, what: str, method: str) -> np.ndarray:
    if not _shape_ok(array.shape, expected):
        raise ValueError(f"{what} is incompatible: expected shape={expected}, found shape={array.shape}")
    return _cast(array, dtype, what, method)


def _check_target(y: np.ndarray, out: Any, label: str, method: str) -> np.ndarray:
    out_shape = tuple(out.shape)
    if out.sparse_labels:
        if y.ndim == len(out_shape) and y.shape[-1] == 1:
            y = y.reshape(y.shape[:-1])
        expected = out_shape[:-1]
        if not _shape_ok(y.shape, expected):
            hint = ""
            if y.ndim == len(out_shape) and y.shape[-1] == out_shape[-1]:
                hint = (" These look like one-hot labels: use loss='categorical_crossentropy' for one-hot "
                        "targets, or pass integer class ids.")
            raise ValueError(f"{method}(): arguments `target` and `output` must have the same shape up until the last "
                             f"dimension. Received: {label}.shape={y.shape}, output {out.name!r} shape="
                             f"{out_shape}.{hint}")
        y = _cast(y, np.dtype(np.int64), label, method)
        classes = out_shape[-1]
        if isinstance(classes, int) and y.size:
            ignore = getattr(out.loss, "ignore_class", None)
            valid = y if ignore is None else y[y != ignore]
            if valid.size and (valid.min() < 0 or valid.max() >= classes):
                bad = int(valid.min()) if valid.min() < 0 else int(valid.max())
                raise ValueError(f"{method}(): received a label value of {bad} in {label}, which is outside the valid "
                                 f"range of [0, {classes}) for output {out.name!r} ({classes} classes).")
        return y
    if y.ndim == len(out_shape) - 1 and out_shape[-1] == 1:
        y = y.reshape(y.shape + (1,))
    if not _shape_ok(y.shape, out_shape):
        hint = ""
        if y.ndim == len(out_shape) - 1 and isinstance(out_shape[-1], int) and out_shape[-1] > 1:
            hint = (" Integer class labels need loss='sparse_categorical_crossentropy' (or one-hot encode "
                    "them).")
        raise ValueError(f"{method}(): arguments `target` and `output` must have the same shape. Received: "
                         f"{label}.shape={y.shape}, output {out.name!r} shape={out_shape}.{hint}")
    return _cast(y, np.dtype(np.float32), label, method)


def _per_output_weights(sample_weight: Any, outs: list, method: str) -> list[np.ndarray | None]:
    if sample_weight is None:
        return [None] * len(outs)
    if isinstance(sample_weight, Mapping):
        return [None if sample_weight.get(o.name) is None else _weight_vector(sample_weight[o.name], method)
                for o in outs]
    if isinstance(sample_weight, (list, tuple)) and len(outs) > 1 and len(sample_weight) == len(outs):
        return [None if w is None else _weight_vector(w, method) for w in sample_weight]
    w = _weight_vector(sample_weight, method)
    return [w] * len(outs)


def _weight_vector(w: Any, method: str) -> np.ndarray:
    from .data import numeric_weights

    w = numeric_weights(w, "sample_weight", method)
    if w.ndim == 2 and w.shape[1] == 1:
        w = w[:, 0]
    if w.ndim != 1:
        raise ValueError(f"{method}(): sample_weight must be a 1D array with one weight per sample. "
                         f"Received shape {w.shape}")
    return w
