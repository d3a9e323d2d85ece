"""RMSprop."""
from __future__ import annotations

__all__ = ["RMSprop"]

from typing import Any

from ..graph import GraphBuilder, Value
from .base import Optimizer


class RMSprop(Optimizer):
    """RMSprop with Keras's formulas (``epsilon`` *inside* the square root)::

        v = rho * v + (1 - rho) * g^2
        a = rho * a + (1 - rho) * g;  denom = v - a^2 + eps     (centered)   else   denom = v + eps
        inc = lr * g / sqrt(denom)
        m = momentum * m + inc; w -= m                          (momentum > 0)   else   w -= inc

    Args:
        learning_rate: default 0.001.
        rho: discounting factor of the squared-gradient average (0.9).
        momentum: default 0.0.
        epsilon: default 1e-7.
        centered: normalize by the estimated variance of the gradient.
        **kwargs: the ``Optimizer`` arguments (weight_decay, clipnorm, ...).

    Example:
        >>> [n for n, _ in RMSprop(momentum=0.5, centered=True).slot_specs()]
        ['velocity', 'momentum', 'average_gradient']
    """

    def __init__(self, learning_rate: Any = 0.001, rho: float = 0.9, momentum: float = 0.0, epsilon: float = 1e-7,
                 centered: bool = False, name: str = "rm_sprop", **kwargs: Any):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.rho = rho
        self.momentum = momentum
        self.epsilon = epsilon
        self.centered = centered

    def slot_specs(self) -> list[tuple[str, float]]:
        specs = [("velocity", 0.0)]
        if self.momentum > 0:
            specs.append(("momentum", 0.0))
        if self.centered:
            specs.append(("average_gradient", 0.0))
        return specs

    def update_step(self, b: GraphBuilder, param: Value, grad: Value, slots: dict[str, Value], lr: Value,
                    local_step: Value) -> tuple[Value, dict[str, Value]]:
        rho = self.rho
        v = slots["velocity"] * rho + grad * grad * (1.0 - rho)
        new = {"velocity": v}
        if self.centered:
            a = slots["average_gradient"] * rho + grad * (1.0 - rho)
            new["average_gradient"] = a
            denominator = v - a * a + self.epsilon
        else:
            denominator = v + self.epsilon
        increment = (grad * lr) / b.op("Sqrt", [denominator])
        if self.momentum > 0:
            m = slots["momentum"] * self.momentum + increment
            new["momentum"] = m
            return param - m, new
        return param - increment, new

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon,
                "centered": self.centered}
