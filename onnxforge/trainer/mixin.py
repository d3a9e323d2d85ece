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
from ..compiler.custom_loss import default_compute_loss, mark_default as mark_default_compute_loss
from ..autodiff.tuning import session_threads
from ..layers import array_attributes
from ..layers.lora import lora_enablings
from ..tracing import active_trace
from ..runtime import Device, ProgramRunner, fused_training_ops, resolve_device
from ..runtime.session import planned_threads
from ..variables import Variable
from . import distribution
from .batch_methods import BatchMethodsMixin
from .compile_checks import check_compile_args, listed_metrics
from .compile_metrics import CompileMetrics
from .feed_checks import _all_layers, _is_ort_value, _layer_trackers, _output_layer, _serialize, _user_stacklevel
from .fit import FitMixin
from .generator_methods import GeneratorMethodsMixin
from .model_state import ModelStateMixin
from .target_shapes import apply_target_shapes, may_wait_for_targets

_PROBABILISTIC = ("SparseCategoricalCrossentropy", "CategoricalCrossentropy", "BinaryCrossentropy")
#: Held while a model builds its programs lazily (first predict / fit); rare, so one lock for all models.
_BUILD_LOCK = threading.RLock()


class TrainingMixin(BatchMethodsMixin, FitMixin, GeneratorMethodsMixin, ModelStateMixin):
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

    #: Whether ``compile()`` has run (Keras's ``model.compiled``); saving and cloning read it too.
    compiled: bool = False
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
            run_eagerly, jit_compile: stored as Keras stores them (``model.run_eagerly``, ``model.jit_compile``;
                ``"auto"`` is ``False``, and ``run_eagerly=True`` turns ``jit_compile`` off); programs are
                always compiled graphs.
            device: ``"cpu"``, ``"cuda"`` (an error without the CUDA provider), ``"cuda:N"`` or ``"auto"``.
            seed: the seed of in-graph randomness (Dropout); default: drawn from numpy's global RNG, so
                ``np.random.seed`` makes runs reproducible. Recompiling keeps the RNG state.

        Example:
            >>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
            ...               metrics=["accuracy"])                                  # doctest: +SKIP
        """
        check_compile_args(metrics, weighted_metrics, steps_per_execution, seed)
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
        self._set_execution_flags(run_eagerly, jit_compile)
        self.compiled = True
        self._compiled_config = None
        self._programs, self._runners = {}, {}
        self._custom_steps: dict = {}
        self._custom_predict_steps: dict = {}   # traced on this compile's device
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

    def compiled_loss(self, y: Any, y_pred: Any, sample_weight: Any = None, regularization_losses: Any = None) -> Any:
        """tf.keras 2's loss call in a custom ``train_step``, kept as Keras 3 keeps it (deprecated): it is
        ``self.compute_loss(x=None, y=y, y_pred=y_pred, sample_weight=sample_weight)``. ``regularization_losses``
        is ignored, as in Keras 3: ``compute_loss`` already adds ``self.losses``; adding them here would count
        them twice. It updates no metric (``compiled_metrics.update_state`` does that).

        Example:
            >>> loss = self.compiled_loss(y, y_pred, regularization_losses=self.losses)  # doctest: +SKIP
        """
        warnings.warn("`model.compiled_loss()` is deprecated. Instead, use "
                      "`model.compute_loss(x, y, y_pred, sample_weight, training)`.", stacklevel=2)
        return self.compute_loss(x=None, y=y, y_pred=y_pred, sample_weight=sample_weight)

    def compute_metrics(self, x: Any, y: Any, y_pred: Any, sample_weight: Any = None) -> dict[str, Any]:
        """Keras 3's metrics hook for a custom ``train_step``: update the metrics given to ``compile()`` with
        ``y`` and ``y_pred`` (not the ``loss`` tracker, as in Keras) and return ``get_metrics_result()``.

        Example:
            >>> return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)   # doctest: +SKIP
        """
        del x   # the default implementation does not use it (Keras 3)
        for metric in self.metrics:
            if isinstance(metric, CompileMetrics):
                metric.update_state(y, y_pred, sample_weight)
        return self.get_metrics_result()

    def get_metrics_result(self) -> dict[str, Any]:
        """``{name: result}`` of every metric in ``self.metrics``, a dict result (``compile_metrics``) flattened
        into the top level, as Keras 3 returns it: after fit / evaluate / train_on_batch, the states they left
        (a compiled step keeps them in its graph, not in the Metric objects)."""
        sums = self.__dict__.get("_last_metric_sums")
        if sums is not None and active_trace() is None:
            return self._metric_results(sums)
        out: dict[str, Any] = {}
        for metric in self.metrics:
            result = metric.result()
            if isinstance(result, dict):
                out.update(result)
            else:
                out[metric.name] = result
        return out

    def compile_from_config(self, config: Mapping[str, Any], device: str | Device = "auto") -> None:
        """``compile()`` with the output of ``get_compile_config`` (the optimizer's state is not included)."""
        self.compile(optimizer=optimizers_module.deserialize(config["optimizer"]), loss=config.get("loss"),
                     loss_weights=config.get("loss_weights"), metrics=listed_metrics(config.get("metrics")),
                     weighted_metrics=listed_metrics(config.get("weighted_metrics")), seed=config.get("seed"),
                     device=device)

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
        programs = {"infer": build_infer(self, rng_state=self._rng_stream())}
        apply_target_shapes(self, config, programs["infer"])
        self._warn_linear_outputs(config)
        trainable = self._compiled_trainable()
        self.optimizer.build(trainable)
        try:
            programs["eval_step"] = build_eval_step(self, config, self._rng_stream())
            with session_threads(planned_threads(self._device)):
                programs["train_step"] = build_train_step(self, config, trainable, self._rng_variable(),
                                                          fused_ops=fused_training_ops(self._device))
        except CompileError:
            if config.has_loss:
                raise
            # compile(loss=None) and no layer adds a loss (add_loss): a model for predict() only.
            programs.pop("eval_step", None)
        except Exception:
            if getattr(self, "_fed_target_shapes", None) or not may_wait_for_targets(config):
                raise
            # A user loss that does not take output-shaped targets (sparse ids for logits): the steps are built
            # for the first batch's targets instead (trainer/target_shapes.py); predict() needs none.
            self._runners = {"infer": self._make_runner(programs["infer"])}
            self._mark_weights()
            self._programs = {"infer": programs["infer"]}
            return
        self._runners = {kind: self._make_runner(p) for kind, p in programs.items()}
        self._trackers = config.trackers() + _layer_trackers(programs)
        self._compiled_config = config
        self._portable_programs: dict[str, Program] = {}
        self._host_arrays = array_attributes.snapshot(self)
        self._mark_weights()
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
        # Parents first: a layer's setter also sets its sub-layers. Only flags that changed since compile are
        # set again: a model sharing another's layers (a Distiller's feature extractor over its frozen teacher)
        # is itself trainable, and setting that flag again would unfreeze the teacher's layers.
        try:
            for layer, flag in flags:
                if layer.trainable != flag:
                    layer.trainable = flag
            trainable = list(self.trainable_weights)
        finally:
            for layer, flag in now:
                if layer.trainable != flag:
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

    def predict_step(self, data: Any) -> Any:
        """The model's outputs on one batch (Keras ``Model.predict_step``): ``self(x, training=False)`` for the
        ``x`` of ``data``. Override it to return something else (a dict of probabilities and classes): ``predict``
        traces the override once into an inference program and joins its results over the batches, leaf by
        leaf (see ``onnxforge.trainer.custom_predict``); ``super().predict_step(data)`` works inside it.

        Example:
            >>> class Classifier(Model):                                           # doctest: +SKIP
            ...     def predict_step(self, data):
            ...         y = super().predict_step(data)
            ...         return {"probs": ops.softmax(y), "cls": ops.argmax(y, axis=-1)}
        """
        from .data import unpack_batch

        x, _, _ = unpack_batch(data)
        return self(x, training=False)

    def _has_custom_predict_step(self) -> bool:
        return type(self).predict_step is not TrainingMixin.predict_step

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
        its layers. Restoring them with the weights and optimizer variables resumes a run exactly. A built-in
        layer's ``LayerSeedGenerator`` is left out: it is listed in ``variables``, never drawn from by the layer.
        """
        from ..layers.seed_state import LayerSeedGenerator, SeedGenerator

        out: list[Variable] = []
        if getattr(self, "_rng_state", None) is not None:
            out.append(self._rng_state)
        for layer in _all_layers(self):
            for value in vars(layer).values():
                if isinstance(value, SeedGenerator) and not isinstance(value, LayerSeedGenerator) \
                        and all(value.state is not v for v in out):
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
            if self.__dict__.get("_weights_mark", (0, 0))[0] != lora_enablings():
                self._check_weights_unchanged(xs, method)
            return
        with _BUILD_LOCK:   # first calls from several threads: one builds, the others use its programs
            if not getattr(self, "_programs", None):
                self._build_for(xs, method)

    def _mark_weights(self) -> None:
        """Record what the programs about to be kept were built over (see ``_check_weights_unchanged``)."""
        self.__dict__["_weights_mark"] = (lora_enablings(), len(self.weights))

    def _check_weights_unchanged(self, xs: Sequence[np.ndarray], method: str) -> None:
        """A layer's ``enable_lora`` somewhere since the programs were built: if it was one of this model's, the
        programs compute with the old weights. A predict-only model rebuilds them; a compiled one must be
        compiled again, as in Keras (the training step's variables and optimizer slots are fixed there)."""
        built_with = self.__dict__["_weights_mark"][1]
        if len(self.weights) == built_with:
            self._mark_weights()
            return
        if getattr(self, "compiled", False):
            raise RuntimeError(f"Model {getattr(self, 'name', '')!r} gained weights after compile() ({built_with} -> "
                               f"{len(self.weights)} variables: a layer's enable_lora()), noticed by {method}(). "
                               "Call compile() again before training or predicting, as in Keras, so the compiled "
                               "programs use the new weights and train what is now trainable.")
        with _BUILD_LOCK:
            self._programs = {}
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
            self._host_arrays = array_attributes.snapshot(self)
            self._mark_weights()
            self._programs = {"infer": program}   # last: see _build_programs
