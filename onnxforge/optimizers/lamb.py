"""Lamb."""
from __future__ import annotations

__all__ = ["Lamb"]

from typing import Any

import numpy as np

from ..graph import GraphBuilder, Value
from .base import Optimizer


class Lamb(Optimizer):
    """Lamb (layer-wise adaptive moments) with Keras's formulas: Adam's bias-corrected step, rescaled per weight
    by the trust ratio ``||w|| / ||update||`` (1 where either norm is 0)::

        m += (g - m) * (1 - beta_1);   v += (g^2 - v) * (1 - beta_2)
        update = (m / (1 - beta_1^t)) / (sqrt(v / (1 - beta_2^t)) + epsilon)
        w -= ratio * lr * update

    The ratio reads whole tensors, so the sharded CPU step applies Lamb in its one-program update.

    Args:
        learning_rate: default 0.001.
        beta_1, beta_2: decay rates of the moment estimates (0.9, 0.999).
        epsilon: default 1e-7.
        **kwargs: the ``Optimizer`` arguments (weight_decay, clipnorm, use_ema, ...).

    Example:
        >>> import onnxforge as tf
        >>> model = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(1)])
        >>> model.compile(optimizer=tf.keras.optimizers.Lamb(learning_rate=0.01), loss="mse")
        >>> _ = model.fit(np.ones((4, 3), "float32"), np.ones((4, 1), "float32"), verbose=0)
        >>> [name for name, _ in model.optimizer.slot_specs()]
        ['momentum', 'velocity']
    """

    elementwise = False

    def __init__(self, learning_rate: Any = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, name: str = "lamb", **kwargs: Any):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self._corrections: tuple[Value, Value] | None = None

    def slot_specs(self) -> list[tuple[str, float]]:
        return [("momentum", 0.0), ("velocity", 0.0)]

    def _prepare_step(self, b: GraphBuilder, lr: Value, local_step: Value) -> None:
        beta_1_power = b.op("Pow", [b.const(self.beta_1, lr.dtype), local_step], shape=())
        beta_2_power = b.op("Pow", [b.const(self.beta_2, lr.dtype), local_step], shape=())
        self._corrections = (1.0 - beta_1_power, 1.0 - beta_2_power)

    def update_step(self, b: GraphBuilder, param: Value, grad: Value, slots: dict[str, Value], lr: Value,
                    local_step: Value) -> tuple[Value, dict[str, Value]]:
        first, second = self._corrections
        m = slots["momentum"] + (grad - slots["momentum"]) * (1.0 - self.beta_1)
        v = slots["velocity"] + (grad * grad - slots["velocity"]) * (1.0 - self.beta_2)
        update = (m / first) / (b.op("Sqrt", [v / second]) + self.epsilon)
        w_norm = b.op("Sqrt", [b.op("ReduceSum", [param * param], keepdims=0)], shape=())
        u_norm = b.op("Sqrt", [b.op("ReduceSum", [update * update], keepdims=0)], shape=())
        one = b.const(np.asarray(1.0, np.float32))
        # Each norm is compared with 0 before dividing (the division is computed either way; Where picks).
        ratio = b.op("Where", [b.op("Greater", [w_norm, 0.0]),
                               b.op("Where", [b.op("Greater", [u_norm, 0.0]), w_norm / u_norm, one]), one])
        return param - update * (ratio * lr), {"momentum": m, "velocity": v}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}
