"""MultiOptimizer and OptimizerMap: each weight updated by the optimizer its path selects (Keras 3.15)."""
from __future__ import annotations

__all__ = ["OptimizerMap", "MultiOptimizer"]

import re
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from typing import Any

import numpy as np

from ..graph import GraphBuilder, Value
from ..variables import Variable
from .base import Optimizer
from .loss_scale import LossScaleOptimizer


def _check_member(optimizer: Any, where: str) -> None:
    if not isinstance(optimizer, Optimizer):
        raise ValueError(f"{where} must be a Keras Optimizer instance. Received: {optimizer!r}")
    if isinstance(optimizer, LossScaleOptimizer):
        raise ValueError(f"{where} cannot be a LossScaleOptimizer (set `loss_scale_factor` on the MultiOptimizer "
                         f"instead). Received: {optimizer!r}")
    if isinstance(optimizer, MultiOptimizer):
        raise ValueError(f"{where} cannot be a MultiOptimizer. Received: {optimizer!r}")


def _keras_entry(optimizer: Optimizer) -> dict[str, Any]:
    """``optimizer`` serialized with the ``module`` Keras needs to find a class nested in another object's config
    (its own schedules included)."""
    from . import serialize

    entry = serialize(optimizer)
    config = dict(entry["config"])
    if isinstance(config.get("learning_rate"), dict):
        config["learning_rate"] = {"module": "keras.optimizers.schedules", **config["learning_rate"],
                                   "registered_name": None}
    return {"module": "keras.optimizers", **entry, "config": config, "registered_name": entry.get("registered_name")}


class OptimizerMap(MutableMapping):
    """Weight paths (or regular expressions matched whole against them) to optimizers, with a default.

    A key equal to the path wins; otherwise the one key that ``re.fullmatch``-es it (two matching keys are an
    error); otherwise ``default_optimizer``. Calling the map on a Variable looks up its ``path``.

    Example:
        >>> from onnxforge import optimizers
        >>> m = OptimizerMap(optimizers.RMSprop(), {"encoder/.*": optimizers.SGD()})
        >>> m["decoder"] = optimizers.Adam()
        >>> [type(m[k]).__name__ for k in ("decoder", "encoder/dense/kernel", "decoder/dense/kernel")]
        ['Adam', 'SGD', 'RMSprop']
    """

    def __init__(self, default_optimizer: Optimizer, optimizer_map: dict[str, Optimizer] | None = None):
        if not isinstance(default_optimizer, Optimizer):
            raise TypeError(f"default_optimizer must be a Keras Optimizer instance. Received: {default_optimizer!r}")
        if optimizer_map is not None and not isinstance(optimizer_map, dict):
            raise TypeError(f"optimizer_map must be a dictionary. Received: {optimizer_map!r}")
        self._default_optimizer = default_optimizer
        self._optimizer_map: dict[str, Optimizer] = {}
        for key, optimizer in (optimizer_map or {}).items():
            self[key] = optimizer

    @property
    def default_optimizer(self) -> Optimizer:
        return self._default_optimizer

    def __getitem__(self, key: str) -> Optimizer:
        if key in self._optimizer_map:
            return self._optimizer_map[key]
        matching = [pattern for pattern in self._optimizer_map if re.fullmatch(pattern, key)]
        if len(matching) > 1:
            raise ValueError(f"Multiple optimizers assigned to variable {key!r}: the patterns {matching} all match.")
        return self._optimizer_map[matching[0]] if matching else self._default_optimizer

    def __setitem__(self, key: str, optimizer: Optimizer) -> None:
        if key in self._optimizer_map:
            raise ValueError(f"{key!r} already exists in the OptimizerMap with value {self._optimizer_map[key]!r}. "
                             "Please make sure to not use duplicated keys.")
        if not isinstance(key, str):
            raise ValueError(f"key must be a string. Received: {key!r}")
        _check_member(optimizer, "optimizer")
        self._optimizer_map[key] = optimizer

    def __delitem__(self, key: str) -> None:
        del self._optimizer_map[key]

    def __len__(self) -> int:
        return len(self._optimizer_map)

    def __iter__(self) -> Iterator[str]:
        return iter(self._optimizer_map)

    def __call__(self, variable: Variable) -> Optimizer:
        return self[getattr(variable, "path", variable.name)]

    def get_config(self) -> dict[str, Any]:
        return {"default_optimizer": _keras_entry(self._default_optimizer),
                "optimizer_map": {k: _keras_entry(v) for k, v in self._optimizer_map.items()}}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> OptimizerMap:
        from . import deserialize

        entries = config.get("optimizer_map") or {}
        if isinstance(entries, dict) and entries.get("class_name") == "__typed_dict__":   # Keras's typed dict
            entries = entries.get("config", {})
        return cls(deserialize(config["default_optimizer"]), {k: deserialize(v) for k, v in entries.items()})


class MultiOptimizer(Optimizer):
    """Delegates each trained weight to the optimizer that ``optimizer_map`` (an ``OptimizerMap``, or a callable
    of the Variable) gives it, as Keras 3 does: every sub-optimizer keeps its own learning rate (or schedule),
    step counter and slots, and counts only the steps it updated weights in.

    The update is one graph: each sub-optimizer emits its part. Their learning rates reach it as small state
    values written from the host before each step (the step's own learning-rate input is unused), so
    schedules and assignments to a sub-optimizer's ``learning_rate`` take effect at the next step. As in
    Keras, the MultiOptimizer itself has no ``learning_rate``; ``loss_scale_factor`` is passed to every
    sub-optimizer.

    Args:
        optimizer_map: an ``OptimizerMap`` or a callable ``variable -> Optimizer``.
        loss_scale_factor: the loss is multiplied by it and every gradient divided by it.
        name: prefix of its variables.

    Example:
        >>> import numpy as np, onnxforge as tf
        >>> model = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(2, name="encoder"),
        ...                              tf.keras.layers.Dense(1, name="head")])
        >>> opt = MultiOptimizer(OptimizerMap(tf.keras.optimizers.SGD(0.1), {"encoder/.*": tf.keras.optimizers.Adam()}))
        >>> model.compile(optimizer=opt, loss="mse")
        >>> _ = model.fit(np.ones((4, 3), "float32"), np.ones((4, 1), "float32"), verbose=0)
        >>> [(type(o).__name__, int(o.iterations)) for o in opt.optimizers]
        [('Adam', 1), ('SGD', 1)]
    """

    elementwise = False   # the sub-optimizers differ; the one-program update keeps it simple

    def __init__(self, optimizer_map: OptimizerMap | Callable[[Variable], Optimizer],
                 loss_scale_factor: float | None = None, name: str | None = None):
        if not callable(optimizer_map):
            raise TypeError("Argument `optimizer_map` must be an OptimizerMap or a callable that returns an optimizer "
                            f"for a variable. Received: optimizer_map={optimizer_map!r}")
        self._inner_optimizers: list[Optimizer] = []
        super().__init__(learning_rate=0.0, loss_scale_factor=loss_scale_factor, name=name)
        self._optimizer_map = optimizer_map
        members = list(optimizer_map.values()) if hasattr(optimizer_map, "values") else []
        default = getattr(optimizer_map, "default_optimizer", None)
        for opt in members + ([default] if default is not None else []):
            self._add_inner(opt)
        self._assigned: dict[int, int] = {}      # weight uid -> index of its sub-optimizer
        self._fed_rates: dict[int, Variable] = {}  # sub-optimizer index -> its learning rate, as step state
        self._written_rates: dict[int, tuple[float, Any]] = {}  # index -> (rate, host array) last assigned

    def _add_inner(self, opt: Optimizer) -> int:
        if not any(opt is o for o in self._inner_optimizers):
            opt.loss_scale_factor = self.loss_scale_factor
            self._inner_optimizers.append(opt)
        return next(i for i, o in enumerate(self._inner_optimizers) if o is opt)

    # ---------------------------------------------------------------- Keras's surface
    @property
    def optimizers(self) -> list[Optimizer]:
        """The sub-optimizers, in the order Keras lists them."""
        return list(self._inner_optimizers)

    @property
    def learning_rate(self) -> Any:
        raise AttributeError("Learning rate cannot be accessed on a MultiOptimizer. Access the learning rate on the "
                             "individual sub-optimizers instead (`optimizer.optimizers`).")

    @learning_rate.setter
    def learning_rate(self, value: Any) -> None:
        raise AttributeError("Learning rate cannot be set on a MultiOptimizer. Set the learning rate on the "
                             "individual sub-optimizers instead (`optimizer.optimizers`).")

    lr = learning_rate

    @property
    def loss_scale_factor(self) -> float | None:
        return getattr(self, "_loss_scale_factor", None)

    @loss_scale_factor.setter
    def loss_scale_factor(self, value: float | None) -> None:
        self._loss_scale_factor = value
        for opt in getattr(self, "_inner_optimizers", []):
            opt.loss_scale_factor = value

    def optimizer_for(self, var: Variable) -> Optimizer:
        """The sub-optimizer of ``var`` (chosen once, when the weight is first built)."""
        self.build([var])
        return self._inner_optimizers[self._assigned[var.uid]]

    def build(self, var_list: Sequence[Variable]) -> None:
        groups: dict[int, list[Variable]] = {}
        for var in var_list:
            if var.uid not in self._assigned:
                opt = self._optimizer_map(var)
                _check_member(opt, f"The optimizer for variable {var.path!r}")
                self._assigned[var.uid] = self._add_inner(opt)
            groups.setdefault(self._assigned[var.uid], []).append(var)
        for index, variables in sorted(groups.items()):
            self._inner_optimizers[index].build(variables)
        self._built = True

    def slots(self, var: Variable) -> dict[str, Variable]:
        return self.optimizer_for(var).slots(var)

    @property
    def built(self) -> bool:
        return self._built

    @built.setter
    def built(self, value: bool) -> None:
        self._built = bool(value)

    @property
    def variables(self) -> list[Variable]:
        """Its own ``iterations``, then each sub-optimizer's variables (Keras's order)."""
        return [self.iterations] + [v for opt in self._inner_optimizers for v in opt.variables]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        if len(weights) != len(self.variables):
            raise ValueError(f"Optimizer {self.name!r} has {len(self.variables)} variables; received {len(weights)} "
                             "weights.")
        self.iterations.assign(weights[0])
        at = 1
        for opt in self._inner_optimizers:
            count = len(opt.variables)
            opt.set_weights(weights[at:at + count])
            at += count
        self._step_mirror = None

    def finalize_variable_values(self, var_list: Sequence[Variable]) -> None:
        for index, opt in enumerate(self._inner_optimizers):
            mine = [v for v in var_list if self._assigned.get(v.uid) == index]
            if mine:
                opt.finalize_variable_values(mine)

    # ---------------------------------------------------------------- the step
    def fed_learning_rate(self) -> float:
        """Writes each used sub-optimizer's learning rate of this step into its state value; the step's own
        learning-rate input is unused (0)."""
        for index, rate in self._fed_rates.items():
            value = float(np.float32(self._inner_optimizers[index].learning_rate))
            # Compared with what was last written here, not read back: reading a rate that lives in
            # onnxruntime would copy it to the host and re-upload it every step. Any other write (a restore)
            # replaces the host array, so the identity check sees it.
            written = self._written_rates.get(index)
            if written is None or written[0] != value or written[1] is not rate._host:
                rate.assign(np.float32(value))
                self._written_rates[index] = (value, rate._host)
        return 0.0

    def _advance(self) -> None:
        super()._advance()
        for index in self._fed_rates:
            self._inner_optimizers[index]._advance()

    def apply_graph(self, b: GraphBuilder, read: Callable[[Variable], Value], variables: Sequence[Variable],
                    params: Sequence[Value], grads: Sequence[Value], lr: Value) -> list[tuple[Variable, Value]]:
        self.build(variables)
        updates: list[tuple[Variable, Value]] = []
        for index, opt in enumerate(self._inner_optimizers):
            picked = [i for i, v in enumerate(variables) if self._assigned[v.uid] == index]
            if not picked:
                continue
            rate = self._fed_rates.get(index)
            if rate is None:
                rate = self._fed_rates[index] = Variable(
                    np.asarray(float(opt.learning_rate), np.float32), name=f"{self.name}/{opt.name}_learning_rate",
                    trainable=False, dtype=np.float32)
            updates += opt.apply_graph(b, read, [variables[i] for i in picked], [params[i] for i in picked],
                                       [grads[i] for i in picked], read(rate))
        return updates + [(self.iterations, read(self.iterations) + 1)]

    def update_graph(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("A MultiOptimizer's update is emitted by apply_graph, one sub-optimizer at a time.")

    # ---------------------------------------------------------------- config
    def get_config(self) -> dict[str, Any]:
        if not hasattr(self._optimizer_map, "get_config"):
            raise ValueError("This MultiOptimizer selects optimizers with a function, which cannot be serialized: "
                             f"use an OptimizerMap. Received: optimizer_map={self._optimizer_map!r}")
        return {"optimizer_map": {"module": "keras.optimizers", "class_name": "OptimizerMap",
                                  "config": self._optimizer_map.get_config(), "registered_name": None},
                "loss_scale_factor": self.loss_scale_factor, "name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> MultiOptimizer:
        config = dict(config)
        entry = config["optimizer_map"]
        if isinstance(entry, dict) and "config" in entry:
            config["optimizer_map"] = OptimizerMap.from_config(entry["config"])
        return cls(**config)
