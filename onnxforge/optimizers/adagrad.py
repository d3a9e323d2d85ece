"""Adagrad."""
from __future__ import annotations

__all__ = ["Adagrad"]

from typing import Any

from ..graph import GraphBuilder, Value
from .base import Optimizer


class Adagrad(Optimizer):
    """Adagrad with Keras's formulas::

        acc += g^2
        w -= lr * g / sqrt(acc + epsilon)

    Args:
        learning_rate: default 0.001.
        initial_accumulator_value: starting value of the accumulators (0.1).
        epsilon: default 1e-7.
        **kwargs: the ``Optimizer`` arguments (weight_decay, clipnorm, ...).

    Example:
        >>> Adagrad().slot_specs()
        [('accumulator', 0.1)]
    """

    def __init__(self, learning_rate: Any = 0.001, initial_accumulator_value: float = 0.1, epsilon: float = 1e-7,
                 name: str = "adagrad", **kwargs: Any):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.initial_accumulator_value = initial_accumulator_value
        self.epsilon = epsilon

    def slot_specs(self) -> list[tuple[str, float]]:
        return [("accumulator", float(self.initial_accumulator_value))]

    def update_step(self, b: GraphBuilder, param: Value, grad: Value, slots: dict[str, Value], lr: Value,
                    local_step: Value) -> tuple[Value, dict[str, Value]]:
        acc = slots["accumulator"] + grad * grad
        return param - (grad * lr) / b.op("Sqrt", [acc + self.epsilon]), {"accumulator": acc}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}
