"""Adadelta."""
from __future__ import annotations

__all__ = ["Adadelta"]

from typing import Any

from ..graph import GraphBuilder, Value
from .base import Optimizer


class Adadelta(Optimizer):
    """Adadelta with Keras's formulas (``learning_rate`` scales the step, default 0.001 as in Keras)::

        acc_g = rho * acc_g + (1 - rho) * g^2
        delta = -sqrt(acc_d + epsilon) * g / sqrt(acc_g + epsilon)
        acc_d = rho * acc_d + (1 - rho) * delta^2
        w += lr * delta

    Args:
        learning_rate: default 0.001.
        rho: decay rate of the accumulators (0.95).
        epsilon: default 1e-7.
        **kwargs: the ``Optimizer`` arguments (weight_decay, clipnorm, ...).

    Example:
        >>> [name for name, _ in Adadelta().slot_specs()]
        ['accumulated_grad', 'accumulated_delta_var']
    """

    def __init__(self, learning_rate: Any = 0.001, rho: float = 0.95, epsilon: float = 1e-7,
                 name: str = "adadelta", **kwargs: Any):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.rho = rho
        self.epsilon = epsilon

    def slot_specs(self) -> list[tuple[str, float]]:
        return [("accumulated_grad", 0.0), ("accumulated_delta_var", 0.0)]

    def update_step(self, b: GraphBuilder, param: Value, grad: Value, slots: dict[str, Value], lr: Value,
                    local_step: Value) -> tuple[Value, dict[str, Value]]:
        rho = self.rho
        acc_g = slots["accumulated_grad"] * rho + grad * grad * (1.0 - rho)
        rms_d = b.op("Sqrt", [slots["accumulated_delta_var"] + self.epsilon])
        delta = -((rms_d * grad) / b.op("Sqrt", [acc_g + self.epsilon]))
        acc_d = slots["accumulated_delta_var"] * rho + delta * delta * (1.0 - rho)
        return param + delta * lr, {"accumulated_grad": acc_g, "accumulated_delta_var": acc_d}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}
