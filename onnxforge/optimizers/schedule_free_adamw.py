"""Schedule-Free AdamW (Defazio et al., 2024) with Keras 3's formulas."""
from __future__ import annotations

__all__ = ["ScheduleFreeAdamW"]

from typing import Any

import numpy as np

from ..graph import GraphBuilder, Value
from ..variables import Variable
from .base import Optimizer


def _weight_value(var: Variable) -> np.ndarray:
    return np.array(var.numpy(), copy=True)


class ScheduleFreeAdamW(Optimizer):
    """Keras 3's ScheduleFreeAdamW: the trained weights are ``y``, an interpolation between the gradient-stepped
    sequence ``z`` (the ``momentum`` slot, starting at the weight's value when the optimizer is built) and the
    running average ``x``, which is recovered from ``y`` and ``z`` each step::

        t = iterations + 1;  lr_t = lr * min(t / warmup_steps, 1)  (warmup_steps > 0)
        v += (g^2 - v) * (1 - beta_2)
        z_new = z - lr_t * g / (sqrt(v / (1 - beta_2^t)) + epsilon)
        x = (y - (1 - beta_1) * z_new) / beta_1
        x_new = (1 - 1/t) * x + z_new / t
        y_new = (1 - beta_1) * z_new + beta_1 * x_new

    ``x`` is recovered from the *updated* ``z``: Keras reads its ``momentum`` slot after assigning it, so on its
    TensorFlow and torch backends (checked against both) that is what it computes, rather than the paper's
    ``z`` before the step (which Keras's JAX backend, with immutable arrays, would use). onnxforge follows
    TensorFlow and torch.

    Decoupled weight decay (``weight_decay``) shrinks ``y`` first, as Keras's base optimizer does.

    Args:
        learning_rate: default 0.0025.
        beta_1: interpolation between ``z`` and ``x`` (0.9); must not be 0 (``x`` is divided by it).
        beta_2: decay of the second-moment estimate (0.999).
        epsilon: default 1e-8.
        warmup_steps: linear warm-up of the learning rate over this many steps (0: none).
        **kwargs: the ``Optimizer`` arguments (weight_decay, clipnorm, use_ema, ...).

    Example:
        >>> import onnxforge as tf
        >>> model = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(1)])
        >>> model.compile(optimizer=ScheduleFreeAdamW(learning_rate=0.01, warmup_steps=2), loss="mse")
        >>> _ = model.fit(np.ones((4, 3), "float32"), np.ones((4, 1), "float32"), verbose=0)
        >>> [name for name, _ in model.optimizer.slot_specs()]
        ['momentum', 'velocity']
    """

    def __init__(self, learning_rate: Any = 0.0025, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8, warmup_steps: int = 0, name: str | None = None, **kwargs: Any):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if not beta_1:
            raise ValueError("Argument `beta_1` must be non-zero: ScheduleFreeAdamW recovers its average by dividing "
                             f"by it. Received: beta_1={beta_1!r}")
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, (int, np.integer)) or warmup_steps < 0:
            raise ValueError("Argument `warmup_steps` must be a non-negative integer. Received: "
                             f"warmup_steps={warmup_steps!r}")
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.warmup_steps = int(warmup_steps)
        self._step_scalars: tuple[Value, Value, Value] | None = None

    def slot_specs(self) -> list[tuple[str, Any]]:
        return [("momentum", _weight_value), ("velocity", 0.0)]

    def _prepare_step(self, b: GraphBuilder, lr: Value, local_step: Value) -> None:
        if self.warmup_steps > 0:
            lr = lr * b.op("Min", [local_step / float(self.warmup_steps), b.const(1.0, lr.dtype)])
        correction = 1.0 - b.op("Pow", [b.const(self.beta_2, lr.dtype), local_step], shape=())
        self._step_scalars = (lr, correction, b.op("Reciprocal", [local_step]))

    def update_step(self, b: GraphBuilder, param: Value, grad: Value, slots: dict[str, Value], lr: Value,
                    local_step: Value) -> tuple[Value, dict[str, Value]]:
        lr_t, correction, weight = self._step_scalars
        beta_1 = float(self.beta_1)
        v = slots["velocity"] + (grad * grad - slots["velocity"]) * (1.0 - self.beta_2)
        z = slots["momentum"] - (lr_t * grad) / (b.op("Sqrt", [v / correction]) + self.epsilon)
        x_old = (param - z * (1.0 - beta_1)) / beta_1   # Keras's TF / torch read of the updated slot
        x = x_old * (1.0 - weight) + z * weight
        y = z * (1.0 - beta_1) + x * beta_1
        return y, {"momentum": z, "velocity": v}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                "warmup_steps": self.warmup_steps}
