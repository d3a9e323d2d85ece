"""Stochastic gradient descent, with optional (Nesterov) momentum."""
from __future__ import annotations

__all__ = ["SGD"]

from typing import Any

from ..graph import GraphBuilder, Value
from .base import Optimizer


class SGD(Optimizer):
    """Gradient descent with momentum, Keras's formulas::

        m = momentum * m - lr * g                      (when momentum != 0)
        w = w + momentum * m - lr * g   if nesterov   else   w + m
        w = w - lr * g                                 (when momentum == 0)

    Args:
        learning_rate: default 0.01.
        momentum: float >= 0 (default 0.0).
        nesterov: whether to apply Nesterov momentum.
        **kwargs: the ``Optimizer`` arguments (weight_decay, clipnorm, ...).

    Example:
        >>> SGD(momentum=0.9).slot_specs()
        [('momentum', 0.0)]
    """

    def __init__(self, learning_rate: Any = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 name: str = "sgd", **kwargs: Any):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if not isinstance(momentum, (int, float)) or momentum < 0 or momentum > 1:
            raise ValueError(f"`momentum` must be a float between [0, 1]. Received: momentum={momentum!r}")
        self.momentum = float(momentum)
        self.nesterov = nesterov

    def slot_specs(self) -> list[tuple[str, float]]:
        return [("momentum", 0.0)] if self.momentum != 0 else []

    def update_step(self, b: GraphBuilder, param: Value, grad: Value, slots: dict[str, Value], lr: Value,
                    local_step: Value) -> tuple[Value, dict[str, Value]]:
        step = grad * lr
        if self.momentum == 0:
            return param - step, slots
        m = slots["momentum"] * self.momentum - step
        if self.nesterov:
            return param + (m * self.momentum - step), {"momentum": m}
        return param + m, {"momentum": m}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}
