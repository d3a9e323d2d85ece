"""``LossScaleOptimizer``: Keras's dynamic loss scaling for float16 training, inside the training graph.

The loss is multiplied by ``dynamic_scale`` before the gradients are taken, so small float16 gradients do
not underflow; the float32 gradients of the master weights are divided by it again before the wrapped
optimizer's update. The scale is optimizer state (a Variable, input -> output of the training program),
updated in the graph exactly as Keras's ``LossScaleOptimizer`` does:

* all gradients finite: apply the inner update; after ``dynamic_growth_steps`` such steps in a row the
  scale doubles (and the counter restarts);
* any gradient ``inf``/``nan``: the step is skipped (weights, slots and the inner step counter keep their
  values), the scale halves and the counter restarts.

``compile`` wraps the optimizer in one automatically when the model's dtype policy is ``mixed_float16``
(``auto_scale_loss=True``), as Keras does.

Example:
    >>> from onnxforge.optimizers import SGD
    >>> opt = LossScaleOptimizer(SGD(0.1))
    >>> opt.initial_scale, opt.dynamic_growth_steps, opt.learning_rate
    (32768.0, 2000, 0.1)
"""
from __future__ import annotations

__all__ = ["LossScaleOptimizer"]

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx

from ..graph import GraphBuilder, Value
from ..variables import Variable
from .base import Optimizer

_FLOAT = onnx.TensorProto.FLOAT
_DOUBLE = onnx.TensorProto.DOUBLE
_INT64 = onnx.TensorProto.INT64

# Base-optimizer arguments a LossScaleOptimizer accepts only at their defaults (older Keras configs).
_BASE_DEFAULTS = {"weight_decay": None, "clipnorm": None, "global_clipnorm": None, "clipvalue": None,
                  "use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None,
                  "loss_scale_factor": None, "gradient_accumulation_steps": None}


class LossScaleOptimizer(Optimizer):
    """Dynamic loss scaling around another optimizer (Keras 3 ``keras.optimizers.LossScaleOptimizer``).

    Args:
        inner_optimizer: the optimizer that updates the weights (an ``Optimizer``).
        initial_scale: the starting loss scale (``2 ** 15``).
        dynamic_growth_steps: after this many steps with finite gradients, the scale doubles.
        name: prefix of its variables (``step_counter``, ``dynamic_scale``).
    """

    def __init__(self, inner_optimizer: Any, initial_scale: float = 2.0 ** 15, dynamic_growth_steps: int = 2000,
                 name: str | None = None, **kwargs: Any):
        if not kwargs.pop("dynamic", True):
            raise ValueError("LossScaleOptimizer no longer supports `dynamic=False`. Instead, simply set "
                             "`loss_scale_factor` directly on the `inner_optimizer`.")
        for arg, default in _BASE_DEFAULTS.items():
            if arg in kwargs and kwargs.pop(arg) != default:
                raise ValueError(f"LossScaleOptimizer does not support `{arg}`. Instead, set `{arg}` on the "
                                 "`inner_optimizer`.")
        if kwargs:
            raise ValueError(f"LossScaleOptimizer does not support arguments: `{'`, `'.join(kwargs)}`.")
        if isinstance(inner_optimizer, dict):
            from . import deserialize

            inner_optimizer = deserialize(inner_optimizer)
        if not isinstance(inner_optimizer, Optimizer) or isinstance(inner_optimizer, LossScaleOptimizer):
            raise ValueError("LossScaleOptimizer wraps one onnxforge Optimizer (not a LossScaleOptimizer). "
                             f"Received: inner_optimizer={inner_optimizer!r}")
        if not float(initial_scale) > 0.0:
            raise ValueError(f"`initial_scale` must be a positive float. Received: initial_scale={initial_scale!r}")
        if isinstance(dynamic_growth_steps, bool) or not isinstance(dynamic_growth_steps, (int, np.integer)) \
                or dynamic_growth_steps < 1:
            raise ValueError("`dynamic_growth_steps` must be a positive integer. Received: "
                             f"dynamic_growth_steps={dynamic_growth_steps!r}")
        super().__init__(learning_rate=0.0, name=name)
        self.inner_optimizer = inner_optimizer
        self.initial_scale = float(initial_scale)
        self.dynamic_growth_steps = int(dynamic_growth_steps)
        # Keras turns the inner optimizer's own scaling off, else gradients would be unscaled twice.
        self.inner_optimizer.loss_scale_factor = None
        self.step_counter = Variable(np.asarray(0, np.int64), name=f"{self.name}/step_counter", trainable=False,
                                     dtype=np.int64)
        self.dynamic_scale = Variable(np.asarray(self.initial_scale, np.float32), name=f"{self.name}/dynamic_scale",
                                      trainable=False, dtype=np.float32)

    # ---------------------------------------------------------------- the wrapped optimizer's face
    @property
    def iterations(self) -> Variable:
        """The inner optimizer's step counter (skipped steps do not count), as in Keras."""
        return self.inner_optimizer.iterations

    @iterations.setter
    def iterations(self, value: Variable) -> None:
        self._own_iterations = value   # Keras keeps one of its own too (it stays 0)

    @property
    def learning_rate(self) -> float:
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value: Any) -> None:
        if hasattr(self, "inner_optimizer"):
            self.inner_optimizer.learning_rate = value

    lr = learning_rate

    def _host_iterations(self) -> int:
        return self.inner_optimizer._host_iterations()

    def _advance(self) -> None:
        # A step may have been skipped in the graph: the host mirror of the inner counter is re-read (one
        # scalar) the next time a learning-rate schedule needs it.
        self.inner_optimizer._step_mirror = None

    @property
    def _slots(self) -> dict[int, dict[str, Variable]]:
        return self.inner_optimizer._slots

    @_slots.setter
    def _slots(self, value: Any) -> None:
        pass   # the base __init__ sets it; the inner optimizer's slots are the real ones

    def build(self, var_list: Sequence[Variable]) -> None:
        self.inner_optimizer.build(var_list)

    def slots(self, var: Variable) -> dict[str, Variable]:
        return self.inner_optimizer.slots(var)

    @property
    def variables(self) -> list[Variable]:
        """Its own ``iteration``, ``step_counter`` and ``dynamic_scale``, then the inner optimizer's (Keras's
        order, without Keras's learning-rate variables)."""
        return [self._own_iterations, self.step_counter, self.dynamic_scale] + self.inner_optimizer.variables

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        super().set_weights(weights)
        self.inner_optimizer._step_mirror = None

    # ---------------------------------------------------------------- the step, in graph ops
    def scale_loss(self, loss: Any) -> Any:
        """``loss * dynamic_scale``: call it on the loss before ``GradientTape.gradient`` in a custom step."""
        if isinstance(loss, Value):
            from ..tracing import current_trace

            return self.scale_loss_graph(loss, current_trace().read)
        return loss * float(self.dynamic_scale.numpy())

    def scale_loss_graph(self, loss: Value, read: Callable[[Variable], Value]) -> Value:
        scale = read(self.dynamic_scale)
        if loss.dtype not in (None, _FLOAT):
            scale = loss.builder.op("Cast", [scale], to=loss.dtype, shape=())
        return loss * scale

    def apply_graph(self, b: GraphBuilder, read: Callable[[Variable], Value], variables: Sequence[Variable],
                    params: Sequence[Value], grads: Sequence[Value], lr: Value) -> list[tuple[Variable, Value]]:
        scale = read(self.dynamic_scale)
        counter = read(self.step_counter)
        finite = _all_finite(b, grads)
        unscaled = [g / (scale if g.dtype in (None, _FLOAT) else b.op("Cast", [scale], to=g.dtype, shape=()))
                    for g in grads]
        updates = []
        for var, new in self.inner_optimizer.apply_graph(b, read, variables, params, unscaled, lr):
            old = read(var)
            # A non-finite step is skipped: every value the inner update would change keeps its old value.
            updates.append((var, b.op("Where", [finite, new, old], dtype=old.dtype, shape=old.shape)))
        grow = b.op("Equal", [counter, b.const(np.asarray(self.dynamic_growth_steps - 1, np.int64))], shape=())
        zero = b.const(np.asarray(0, np.int64))
        new_counter = b.op("Where", [finite, b.op("Where", [grow, zero, counter + 1], dtype=_INT64, shape=()), zero],
                           dtype=_INT64, shape=())
        grown = b.op("Where", [grow, scale * 2.0, scale], dtype=_FLOAT, shape=())
        new_scale = b.op("Where", [finite, grown, scale * 0.5], dtype=_FLOAT, shape=())
        return updates + [(self.step_counter, new_counter), (self.dynamic_scale, new_scale)]

    def finalize_variable_values(self, var_list: Sequence[Variable]) -> None:
        self.inner_optimizer.finalize_variable_values(var_list)

    def update_graph(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner_optimizer.update_graph(*args, **kwargs)

    # ---------------------------------------------------------------- config
    def get_config(self) -> dict[str, Any]:
        from . import serialize

        return {"name": self.name, "inner_optimizer": serialize(self.inner_optimizer),
                "initial_scale": self.initial_scale, "dynamic_growth_steps": self.dynamic_growth_steps}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LossScaleOptimizer:
        return cls(**dict(config))

    def __repr__(self) -> str:
        return f"<LossScaleOptimizer name={self.name!r} inner={self.inner_optimizer!r}>"


def _all_finite(b: GraphBuilder, grads: Sequence[Value]) -> Value:
    """Whether every entry of every gradient is finite, as one bool scalar.

    ``g * 0`` is 0 for finite entries and NaN for inf / NaN ones, so one sum per gradient is NaN exactly
    when some entry is not finite (cheaper than IsInf and IsNaN on every entry).
    """
    sums = []
    for g in grads:
        if g.dtype not in (None, _FLOAT, _DOUBLE):
            g = b.op("Cast", [g], to=_FLOAT, shape=g.shape)
        total = b.op("ReduceSum", [g * 0.0], keepdims=0, shape=())
        sums.append(total if total.dtype in (None, _FLOAT) else b.op("Cast", [total], to=_FLOAT, shape=()))
    total = sums[0] if len(sums) == 1 else b.op("Sum", sums, dtype=_FLOAT, shape=())
    return b.op("Not", [b.op("IsNaN", [total], shape=())], shape=())
