"""The optimizer base class: state as Variables, the update as a pure function emitted in graph ops."""
from __future__ import annotations

__all__ = ["Optimizer", "StepCounter", "apply_constraints", "set_eager_apply"]

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx

from ..graph import GraphBuilder, Value
from ..variables import Variable
from .accumulation import accumulated_update, check_accumulation_steps
from .ema import check_ema_arguments, ema_graph, overwrite_with_averages
from .custom_steps import CustomStepMixin, set_eager_apply
from .keras_style import KerasOptimizerAPI, is_keras_style, keras_style_apply
from .learning_rate import LearningRate, _scalar

from .schedules import LearningRateSchedule, deserialize, serialize

_FLOAT = onnx.TensorProto.FLOAT


class Optimizer(CustomStepMixin, KerasOptimizerAPI):
    """Base of Keras-style optimizers.

    An optimizer owns its state as ``Variable``s: ``iterations`` (int64, the number of updates applied)
    and per-weight *slots* (momentum, velocity, ...). ``update_graph`` emits one training step's update
    as graph ops, a pure function ``(params, grads, slots, lr, iterations) -> (new params, new slots)``,
    with Keras's order: clip gradients, apply decoupled weight decay, then ``update_step`` per weight.
    The learning rate is a graph *input*: ``learning_rate`` (the value for the current step, from a
    schedule if there is one) is computed on the host and fed every step.

    Args:
        learning_rate: a float, a ``LearningRateSchedule``, or a callable with no arguments.
        weight_decay: decoupled weight decay: ``w -= w * weight_decay * lr`` before each update.
        clipnorm: clip each gradient to this L2 norm.
        clipvalue: clip each gradient entry to [-clipvalue, clipvalue].
        global_clipnorm: clip all gradients together to this global L2 norm.
        loss_scale_factor: the loss is multiplied by it and the gradients divided by it.
        use_ema: keep an exponential moving average of each trained weight (``average`` Variables updated in
            the step graph; ``fit`` ends with the weights set to them; ``SwapEMAWeights`` swaps them in).
        ema_momentum: the average's momentum, in [0, 1] (0.99).
        ema_overwrite_frequency: every this many steps the weights are replaced by their averages (None).
        gradient_accumulation_steps: update every this many steps, with the mean of their gradients
            (``accumulation.py``; ``iterations`` still counts every step).
        name: prefix of the optimizer's variables.
    """

    #: Learning rate used when the subclass does not say otherwise.
    default_learning_rate = 0.001
    #: Whether ``update_step`` reads each element of a weight alone, so the update may be cut into element
    #: ranges (``compiler/segment_apply.py``); one that takes a norm or a mean over a weight says False.
    elementwise = True

    def __init__(self, learning_rate: Any, weight_decay: float | None = None, clipnorm: float | None = None,
                 clipvalue: float | None = None, global_clipnorm: float | None = None, use_ema: bool = False,
                 ema_momentum: float = 0.99, ema_overwrite_frequency: int | None = None,
                 loss_scale_factor: float | None = None, gradient_accumulation_steps: int | None = None,
                 name: str | None = None, **kwargs: Any):
        kwargs.pop("decay", None)  # Keras ignores the legacy argument too
        if kwargs:
            hint = " (`lr` is tf.keras 2's name: pass `learning_rate=` instead)" if "lr" in kwargs else ""
            raise ValueError(f"Argument(s) not recognized: {kwargs}{hint}")
        if sum(a is not None for a in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError("Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. Received: "
                             f"clipnorm={clipnorm}, clipvalue={clipvalue}, global_clipnorm={global_clipnorm}")
        steps = check_accumulation_steps(gradient_accumulation_steps)
        check_ema_arguments(use_ema, ema_momentum, ema_overwrite_frequency)
        self.name = name or _snake(type(self).__name__)
        self.weight_decay = weight_decay
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.global_clipnorm = global_clipnorm
        self.loss_scale_factor = loss_scale_factor
        self.use_ema = bool(use_ema)
        self.ema_momentum = ema_momentum
        self.ema_overwrite_frequency = ema_overwrite_frequency
        self.gradient_accumulation_steps = steps
        self._accumulators: dict[int, Variable] = {}   # gradient_accumulation_steps: each weight's running sum
        self._learning_rate = _check_learning_rate(learning_rate)
        self.iterations = StepCounter(np.asarray(0, np.int64), name=f"{self.name}/iteration", trainable=False,
                                      dtype=np.int64)
        self._step_mirror: int | None = None
        self._slots: dict[int, dict[str, Variable]] = {}
        self._slot_order: list[Variable] = []
        self._averages: dict[int, Variable] = {}   # use_ema: each trained weight's moving average
        self._averaged: list[Variable] = []        # the weights behind them, in creation order
        self._exclude_ids: set[int] = set()
        self._exclude_pattern: re.Pattern[str] | None = None
        # Keras 3's bookkeeping for optimizers written its way (``keras_style.py``): the list ``build`` got.
        self._trainable_variables: list[Variable] = []
        self._trainable_variables_indices: dict[int, int] = {}
        self._built = False
        self._traced_learning_rate: Value | None = None

    # ---------------------------------------------------------------- learning rate (host side)
    @property
    def learning_rate(self) -> LearningRate:
        """The learning rate of the next step (a schedule is evaluated at the current ``iterations``): a float
        with Keras Variable's ``assign`` and ``numpy`` (``optimizer.learning_rate.assign(0.5)``)."""
        if getattr(self, "_traced_learning_rate", None) is not None:
            return self._traced_learning_rate   # inside a Keras-style update_step: the step's input
        lr = self._learning_rate
        if isinstance(lr, LearningRateSchedule):
            return LearningRate(lr(self._host_iterations()), self)
        if callable(lr):
            return LearningRate(lr(), self)
        return LearningRate(lr, self)

    @learning_rate.setter
    def learning_rate(self, value: Any) -> None:
        if isinstance(self._learning_rate, LearningRateSchedule) and not isinstance(value, LearningRateSchedule) \
                and not callable(value):
            raise TypeError("This optimizer was created with a `LearningRateSchedule` object as its "
                            "`learning_rate` constructor argument, hence its learning rate is not settable. If you "
                            "need the learning rate to be settable, you should instantiate the optimizer with a "
                            "float `learning_rate` argument.")
        self._learning_rate = _check_learning_rate(value)

    # Keras 2 spelling, still used by callbacks written for tf.keras.
    lr = learning_rate

    def fed_learning_rate(self) -> Any:
        """The value the trainer feeds to a step's learning-rate input (the current ``learning_rate``)."""
        return self.learning_rate

    def fed_learning_rate_at(self, applies: int) -> Any:
        """The rate fed to the ``applies``-th later ``apply_gradients`` of one step (a custom step applying this
        optimizer several times): a schedule evaluated that many iterations on, each apply advancing them."""
        schedule = getattr(self, "_learning_rate", None)
        if isinstance(schedule, LearningRateSchedule):
            return LearningRate(schedule(self._host_iterations() + applies), self)
        return self.fed_learning_rate()

    def _host_iterations(self) -> int:
        """The step counter without a device round trip: a host mirror, re-read only when the host copy
        of ``iterations`` is authoritative (after ``assign``/``numpy``)."""
        if self.iterations._get_device() is None or self._step_mirror is None:
            self._step_mirror = int(self.iterations.numpy())
        return self._step_mirror

    def _advance(self) -> None:
        """Called by the runtime after each applied training step."""
        self._step_mirror = self._host_iterations() + 1

    # ---------------------------------------------------------------- state
    def slot_specs(self) -> list[tuple[str, float]]:
        """``[(slot name, initial value), ...]`` created for every trained weight."""
        return []

    def slot_specs_for(self, var: Variable) -> list[tuple[str, Any]]:
        """The slots of one weight: ``slot_specs()`` unless the optimizer treats weights differently (Muon keeps
        a velocity only for the weights it updates the Adam way). An initial value may be a callable of the
        weight, returning the array (ScheduleFreeAdamW starts its momentum at the weight's value)."""
        return self.slot_specs()

    def weight_decay_for(self, var: Variable) -> float | None:
        """The decoupled weight decay ``var`` gets this step (None: none), after ``exclude_from_weight_decay``."""
        if self.weight_decay is None or not self._use_weight_decay(var):
            return None
        return float(self.weight_decay)

    def slot_shape(self, slot: str, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape of ``slot`` for a weight of ``shape`` (the weight's own, unless a factored moment says
        otherwise: Adafactor's row and column statistics)."""
        return shape

    def build(self, var_list: Sequence[Variable]) -> None:
        """Create the slots of every weight in ``var_list`` that has none yet (idempotent)."""
        for var in var_list:
            if var.uid in self._slots:
                continue
            self._trainable_variables_indices[self._var_key(var)] = len(self._trainable_variables)
            self._trainable_variables.append(var)
            if self.use_ema:
                name = f"{self.name}/{var.path.replace('/', '_').replace(':', '_')}_average"
                self._averages[var.uid] = Variable(np.zeros(var.shape, dtype=var.dtype), name=name,
                                                   trainable=False, dtype=var.dtype)
                self._averaged.append(var)
            if self.gradient_accumulation_steps:
                name = f"{self.name}/{var.path.replace('/', '_').replace(':', '_')}_gradient_accumulator"
                self._accumulators[var.uid] = Variable(np.zeros(var.shape, dtype=var.dtype), name=name,
                                                       trainable=False, dtype=var.dtype)
            slots = {}
            for slot, init in self.slot_specs_for(var):
                name = f"{self.name}/{var.path.replace('/', '_').replace(':', '_')}_{slot}"
                shape = self.slot_shape(slot, tuple(var.shape))
                value = np.asarray(init(var), dtype=var.dtype).reshape(shape) if callable(init) else \
                    np.full(shape, init, dtype=var.dtype)
                slots[slot] = Variable(value, name=name, trainable=False, dtype=var.dtype)
                self._slot_order.append(slots[slot])
            self._slots[var.uid] = slots
        self._built = True

    @property
    def built(self) -> bool:
        return self._built or bool(self._slots)

    @built.setter
    def built(self, value: bool) -> None:
        self._built = bool(value)

    def slots(self, var: Variable) -> dict[str, Variable]:
        """The slots of ``var`` (built on demand)."""
        if var.uid not in self._slots:
            self.build([var])
        return self._slots[var.uid]

    @property
    def variables(self) -> list[Variable]:
        """``iterations``, the EMA averages (``use_ema``), the gradient accumulators, then every slot, in
        creation order (the order ``get_weights`` uses; Keras creates the averages and accumulators first too)."""
        return [self.iterations] + [self._averages[v.uid] for v in self._averaged] + \
            [self._accumulators[v.uid] for v in self._trainable_variables if v.uid in self._accumulators] + \
            list(self._slot_order)

    def accumulator(self, var: Variable) -> Variable:
        """The gradient accumulator of ``var`` (``gradient_accumulation_steps``; built on demand)."""
        if var.uid not in self._accumulators:
            self.build([var])
        return self._accumulators[var.uid]

    def forget_variables(self, variables: Sequence[Variable]) -> None:
        """Drop the slots and moving averages of ``variables``, which the model no longer has (a layer's float
        kernel replaced by its int8 one in ``quantize``), so saved optimizer state lists only live weights."""
        uids = {v.uid for v in variables}
        dropped = {id(s) for u in uids if u in self._slots for s in self._slots.pop(u).values()}
        self._slot_order = [s for s in self._slot_order if id(s) not in dropped]
        self._averaged = [v for v in self._averaged if v.uid not in uids]
        for u in uids:
            self._averages.pop(u, None)
            self._accumulators.pop(u, None)

    def average_of(self, var: Variable) -> Variable:
        """The moving average of ``var`` (``use_ema``; built on demand)."""
        if var.uid not in self._averages:
            self.build([var])
        return self._averages[var.uid]

    def averaged_pairs(self) -> list[tuple[Variable, Variable]]:
        """``(weight, its moving average)`` for every averaged weight, in creation order."""
        return [(v, self._averages[v.uid]) for v in self._averaged]

    def finalize_variable_values(self, var_list: Sequence[Variable]) -> None:
        """Keras's end of ``fit``: with ``use_ema``, each weight of ``var_list`` takes its moving average."""
        if self.use_ema:
            overwrite_with_averages(self, var_list)

    def get_weights(self) -> list[np.ndarray]:
        return [v.numpy() for v in self.variables]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        if len(weights) != len(self.variables):
            raise ValueError(f"Optimizer {self.name!r} has {len(self.variables)} variables; received "
                             f"{len(weights)} weights.")
        for v, w in zip(self.variables, weights):
            v.assign(w)
        self._step_mirror = None

    # ---------------------------------------------------------------- weight decay
    def exclude_from_weight_decay(self, var_list: Sequence[Variable] | None = None,
                                  var_names: Sequence[str] | None = None) -> None:
        """Leave the given variables, or those whose name contains any of ``var_names``, undecayed."""
        self._exclude_ids = {v.uid for v in var_list or []}
        self._exclude_pattern = re.compile("|".join(set(var_names))) if var_names else None

    def _use_weight_decay(self, var: Variable) -> bool:
        if var.uid in self._exclude_ids:
            return False
        return not (self._exclude_pattern is not None and self._exclude_pattern.search(var.name))

    def scale_loss_graph(self, loss: Value, read: Callable[[Variable], Value]) -> Value:
        """The objective the gradients are taken of, in graph ops (``read`` gives a Variable's value)."""
        return loss * float(self.loss_scale_factor) if self.loss_scale_factor is not None else loss

    def apply_graph(self, b: GraphBuilder, read: Callable[[Variable], Value], variables: Sequence[Variable],
                    params: Sequence[Value], grads: Sequence[Value], lr: Value) -> list[tuple[Variable, Value]]:
        """One training step's update as ``(Variable, new value)`` pairs: the weights, then the slots, then the
        step counter (every piece of optimizer state the step changes).

        Args:
            b: the graph.
            read: a Variable's current graph value (slots, ``iterations``).
            variables: the trained Variables; ``params`` their values, ``grads`` their gradients.
            lr: the float32 learning-rate input.

        A weight's ``constraint`` projects its new value, after the update, as Keras's ``apply`` does.
        """
        if self.gradient_accumulation_steps:
            return self._accumulated_apply_graph(b, read, variables, params, grads, lr)
        if is_keras_style(self):   # update_step(gradient, variable, learning_rate), traced per weight
            iterations = read(self.iterations)
            new_params, others = keras_style_apply(self, b, read, variables, params, grads, lr)
            averages: list[tuple[Variable, Value]] = []
            if self.use_ema:
                new_params, averages = ema_graph(self, b, read, variables, new_params, iterations)
            return list(zip(variables, apply_constraints(variables, new_params))) + averages + others + [
                (self.iterations, iterations + 1)]
        self.build(variables)
        iterations = read(self.iterations)
        slot_vars = [self.slots(v) for v in variables]
        slot_vals = [{k: read(sv) for k, sv in slots.items()} for slots in slot_vars]
        new_params, new_slots = self.update_graph(b, variables, params, grads, slot_vals, lr, iterations)
        averages = []
        if self.use_ema:   # Keras: the averages follow the update, before the constraints
            new_params, averages = ema_graph(self, b, read, variables, new_params, iterations)
        updates = list(zip(variables, apply_constraints(variables, new_params))) + averages
        for slots, news in zip(slot_vars, new_slots):
            updates += [(sv, news[k]) for k, sv in slots.items()]
        updates.append((self.iterations, iterations + 1))
        return updates

    def _accumulated_apply_graph(self, b: GraphBuilder, read: Callable[[Variable], Value],
                                 variables: Sequence[Variable], params: Sequence[Value], grads: Sequence[Value],
                                 lr: Value) -> list[tuple[Variable, Value]]:
        """``apply_graph`` under ``gradient_accumulation_steps`` (``accumulation.py``)."""
        if is_keras_style(self):
            raise ValueError(f"{type(self).__name__}: gradient_accumulation_steps is not supported for an "
                             "optimizer written the Keras 3 way (update_step(gradient, variable, learning_rate)). "
                             f"Received: gradient_accumulation_steps={self.gradient_accumulation_steps}")
        new_params, state = accumulated_update(self, b, read, variables, params, grads, lr)
        return list(zip(variables, apply_constraints(variables, new_params))) + state + [
            (self.iterations, read(self.iterations) + 1)]

    # ---------------------------------------------------------------- the update, in graph ops
    def update_graph(self, b: GraphBuilder, variables: Sequence[Variable], params: Sequence[Value],
                     grads: Sequence[Value], slots: Sequence[dict[str, Value]], lr: Value,
                     iterations: Value, unscaled: bool = False) -> tuple[list[Value], list[dict[str, Value]]]:
        """Emit one update step. Returns the new parameters and the new slots, in the order given.

        ``variables`` are the Variables behind ``params`` (for weight-decay exclusions); ``lr`` is a
        float32 scalar and ``iterations`` the int64 step counter *before* this update. ``unscaled``: the
        gradients were divided by ``loss_scale_factor`` already (accumulated sums, ``accumulation.py``).
        """
        if is_keras_style(self):
            raise NotImplementedError(f"{type(self).__name__} updates the Keras 3 way (update_step(gradient, "
                                      "variable, learning_rate)): its update is emitted by apply_graph.")
        grads = self._prepared_gradients(b, list(grads), unscale=not unscaled)
        local_step = b.op("Cast", [iterations + 1], to=_FLOAT, shape=())
        self._prepare_step(b, lr, local_step)
        new_params, new_slots = [], []
        for var, p, g, s in zip(variables, params, grads, slots):
            decay = self.weight_decay_for(var)
            if decay is not None:
                p = p - p * (lr * decay)
            p_new, s_new = self.update_step(b, p, g, dict(s), lr, local_step)
            new_params.append(p_new)
            new_slots.append(s_new)
        return new_params, new_slots

    def _prepared_gradients(self, b: GraphBuilder, grads: list[Value], unscale: bool = True) -> list[Value]:
        """The gradients divided by ``loss_scale_factor`` (unless ``unscale`` is False) and clipped, as Keras's
        ``apply`` does first."""
        if self.loss_scale_factor is not None and unscale:
            grads = [g * (1.0 / self.loss_scale_factor) for g in grads]
        return self._clip(b, grads)

    def _prepare_step(self, b: GraphBuilder, lr: Value, local_step: Value) -> None:
        """Per-step scalars shared by every weight (Adam's bias corrections)."""

    def update_step(self, b: GraphBuilder, param: Value, grad: Value, slots: dict[str, Value], lr: Value,
                    local_step: Value) -> tuple[Value, dict[str, Value]]:
        """The new value of one weight and of its slots. ``local_step`` is ``iterations + 1`` as float."""
        raise NotImplementedError

    def _clip(self, b: GraphBuilder, grads: list[Value]) -> list[Value]:
        if self.clipnorm and self.clipnorm > 0:
            return [_clip_by_norm(b, g, float(self.clipnorm)) for g in grads]
        if self.global_clipnorm and self.global_clipnorm > 0:
            return _clip_by_global_norm(b, grads, float(self.global_clipnorm))
        if self.clipvalue and self.clipvalue > 0:
            v = np.asarray(self.clipvalue, np.float32)
            return [b.op("Clip", [g, -v, v], shape=g.shape) for g in grads]
        return grads

    # ---------------------------------------------------------------- config
    def get_config(self) -> dict[str, Any]:
        lr = self._learning_rate
        return {
            "name": self.name,
            "learning_rate": serialize(lr) if isinstance(lr, LearningRateSchedule) else
            (lr if not callable(lr) else None),
            "weight_decay": self.weight_decay, "clipnorm": self.clipnorm, "global_clipnorm": self.global_clipnorm,
            "clipvalue": self.clipvalue, "use_ema": self.use_ema, "ema_momentum": self.ema_momentum,
            "ema_overwrite_frequency": self.ema_overwrite_frequency, "loss_scale_factor": self.loss_scale_factor,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Optimizer:
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = deserialize(config["learning_rate"])
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} learning_rate={self._learning_rate!r}>"


class StepCounter(Variable):
    """``iterations``: the int64 Variable counting applied updates, readable as a Python int (``int(...)``,
    ``range(...)``) as Keras code reads ``optimizer.iterations``.

    Example:
        >>> int(StepCounter(np.asarray(3, np.int64), name="sgd/iteration", trainable=False, dtype=np.int64))
        3
    """

    def __int__(self) -> int:
        return int(self.numpy())

    __index__ = __int__


# ------------------------------------------------------------------------------------------ helpers
def apply_constraints(variables: Sequence[Variable], new_params: Sequence[Value]) -> list[Value]:
    """Each updated weight through its Variable's ``constraint`` (if any), Keras's
    ``variable.assign(variable.constraint(variable))`` after the update, in graph ops.

    Example:
        >>> from onnxforge import constraints
        >>> from onnxforge.graph import GraphBuilder
        >>> b = GraphBuilder()
        >>> w = Variable(np.zeros(2, np.float32))
        >>> w.constraint = constraints.NonNeg()
        >>> p = b.input("p", onnx.TensorProto.FLOAT, (2,))
        >>> apply_constraints([w], [p])[0].builder.nodes[-1].op_type
        'Max'
    """
    out = []
    for var, new in zip(variables, new_params):
        constraint = getattr(var, "constraint", None)
        if constraint is None:
            out.append(new)
            continue
        projected = constraint(new)
        projected = projected.__onnx_value__() if hasattr(projected, "__onnx_value__") else projected
        if not isinstance(projected, Value):
            raise TypeError(f"The constraint {constraint!r} of {var.path!r} must return a tensor computed from its "
                            f"argument with keras.ops (it runs inside the training graph). Received: {projected!r}")
        if projected.dtype is not None and new.dtype is not None and projected.dtype != new.dtype:
            projected = projected.builder.op("Cast", [projected], to=new.dtype, shape=projected.shape)
        projected.dtype = projected.dtype or new.dtype
        projected.shape = projected.shape if projected.shape is not None else new.shape
        out.append(projected)
    return out


def _snake(name: str) -> str:
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _check_learning_rate(lr: Any) -> Any:
    if isinstance(lr, LearningRateSchedule) or callable(lr):
        return lr
    lr = _scalar(lr)   # numpy scalars, 0-d arrays, tensors: what Keras code assigns to a Variable
    if isinstance(lr, (int, float, np.floating, np.integer)) and not isinstance(lr, bool):
        return float(lr)
    raise ValueError("Argument `learning_rate` should be float, or an instance of LearningRateSchedule, or a "
                     "callable (that takes in the current iteration value and returns the corresponding learning "
                     f"rate value). Received instead: learning_rate={lr!r}")


def _sum_all(b: GraphBuilder, x: Value, keepdims: bool = False) -> Value:
    return b.op("ReduceSum", [x], keepdims=int(keepdims))


def _clip_by_norm(b: GraphBuilder, g: Value, clip: float) -> Value:
    """Keras's ``_clip_by_norm``: ``g * clip / max(||g||, clip)``, safe at ``||g|| = 0``."""
    l2sum = _sum_all(b, g * g, keepdims=True)
    positive = b.op("Greater", [l2sum, 0.0])
    safe = b.op("Where", [positive, l2sum, b.const(np.asarray(1.0, np.float32))])
    l2norm = b.op("Where", [positive, b.op("Sqrt", [safe]), l2sum])
    return b.op("Div", [g * clip, b.op("Max", [l2norm, b.const(np.asarray(clip, np.float32))])], shape=g.shape)


def _clip_by_global_norm(b: GraphBuilder, grads: list[Value], clip: float) -> list[Value]:
    """Keras's ``clip_by_global_norm``: scale every gradient by ``clip * min(1/norm, 1/clip)``; a non-finite
    norm makes the scale NaN (as in Keras), so a broken step is visible rather than silently clipped."""
    total = b.op("Sum", [_sum_all(b, g * g) for g in grads]) if len(grads) > 1 else _sum_all(b, grads[0] * grads[0])
    norm = b.op("Sqrt", [total])
    scale = b.op("Min", [b.op("Reciprocal", [norm]), b.const(np.asarray(1.0 / clip, np.float32))]) * clip
    scale = scale + (norm - norm)
    return [b.op("Mul", [g, scale], shape=g.shape) for g in grads]
