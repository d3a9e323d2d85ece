"""Adamax."""
from __future__ import annotations

__all__ = ["Adamax"]

from typing import Any

from ..graph import GraphBuilder, Value
from .base import Optimizer


class Adamax(Optimizer):
    """Adamax (Adam with the infinity norm) with Keras's formulas::

        t = iterations + 1
        m += (g - m) * (1 - beta_1)
        u = max(beta_2 * u, |g|)
        w -= lr * m / ((1 - beta_1^t) * (u + epsilon))

    Args:
        learning_rate: default 0.001.
        beta_1: decay rate of the first moment (0.9).
        beta_2: decay rate of the exponentially weighted infinity norm (0.999).
        epsilon: default 1e-7.
        **kwargs: the ``Optimizer`` arguments (weight_decay, clipnorm, ...).

    Example:
        >>> [name for name, _ in Adamax().slot_specs()]
        ['momentum', 'norm']
    """

    def __init__(self, learning_rate: Any = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, name: str = "adamax", **kwargs: Any):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self._correction: Value | None = None

    def slot_specs(self) -> list[tuple[str, float]]:
        return [("momentum", 0.0), ("norm", 0.0)]

    def _prepare_step(self, b: GraphBuilder, lr: Value, local_step: Value) -> None:
        self._correction = 1.0 - b.op("Pow", [b.const(self.beta_1, lr.dtype), local_step], shape=())

    def update_step(self, b: GraphBuilder, param: Value, grad: Value, slots: dict[str, Value], lr: Value,
                    local_step: Value) -> tuple[Value, dict[str, Value]]:
        m = slots["momentum"] + (grad - slots["momentum"]) * (1.0 - self.beta_1)
        u = b.op("Max", [slots["norm"] * self.beta_2, b.op("Abs", [grad])])
        step = (m * lr) / ((u + self.epsilon) * self._correction)
        return param - step, {"momentum": m, "norm": u}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}
