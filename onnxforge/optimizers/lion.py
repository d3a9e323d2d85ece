"""Lion."""
from __future__ import annotations

__all__ = ["Lion"]

from typing import Any

from ..graph import GraphBuilder, Value
from .base import Optimizer


class Lion(Optimizer):
    """Lion (evolved sign momentum) with Keras's formulas::

        w -= lr * sign(beta_1 * m + (1 - beta_1) * g)
        m = beta_2 * m + (1 - beta_2) * g

    Args:
        learning_rate: default 0.001.
        beta_1: interpolation between momentum and gradient for the step's sign, in (0, 1] (0.9).
        beta_2: decay rate of the momentum (0.99).
        **kwargs: the ``Optimizer`` arguments (weight_decay, clipnorm, ...).

    Example:
        >>> Lion().slot_specs()
        [('momentum', 0.0)]
    """

    def __init__(self, learning_rate: Any = 0.001, beta_1: float = 0.9, beta_2: float = 0.99, name: str = "lion",
                 **kwargs: Any):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if beta_1 <= 0 or beta_1 > 1:
            raise ValueError("Argument `beta_1` must be in the [0, 1] range. Otherwise, the optimizer degenerates "
                             f"to SignSGD. Received: beta_1={beta_1}.")
        self.beta_1 = beta_1
        self.beta_2 = beta_2

    def slot_specs(self) -> list[tuple[str, float]]:
        return [("momentum", 0.0)]

    def update_step(self, b: GraphBuilder, param: Value, grad: Value, slots: dict[str, Value], lr: Value,
                    local_step: Value) -> tuple[Value, dict[str, Value]]:
        m = slots["momentum"]
        direction = b.op("Sign", [m * self.beta_1 + grad * (1.0 - self.beta_1)])
        new_m = m * self.beta_2 + grad * (1.0 - self.beta_2)
        return param - direction * lr, {"momentum": new_m}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2}
