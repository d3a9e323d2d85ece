"""Ftrl."""
from __future__ import annotations

__all__ = ["Ftrl"]

from typing import Any

import numpy as np

from ..graph import GraphBuilder, Value
from .base import Optimizer


class Ftrl(Optimizer):
    """FTRL-Proximal ("Follow The Regularized Leader") with Keras's formulas, element by element::

        l2 = l2_regularization_strength + beta / (2 * lr)
        n_new = n + g^2
        z += g + 2 * l2_shrinkage * w - (n_new^(-p) - n^(-p)) / lr * w      (p = learning_rate_power)
        w = (clip(z, -l1, l1) - z) / (n_new^(-p) / lr + 2 * l2)

    Args:
        learning_rate: default 0.001.
        learning_rate_power: how the per-element rate shrinks as squared gradients accumulate, <= 0 (-0.5).
        initial_accumulator_value: starting value of the accumulators, >= 0 (0.1).
        l1_regularization_strength, l2_regularization_strength: >= 0 (0.0).
        l2_shrinkage_regularization_strength: an L2 pull on the weights added to the gradient, >= 0 (0.0).
        beta: added to the L2 term as ``beta / (2 * lr)`` (0.0).
        **kwargs: the ``Optimizer`` arguments (weight_decay, clipnorm, use_ema, ...).

    Example:
        >>> Ftrl(initial_accumulator_value=0.5).slot_specs()
        [('accumulator', 0.5), ('linear', 0.0)]
    """

    def __init__(self, learning_rate: Any = 0.001, learning_rate_power: float = -0.5,
                 initial_accumulator_value: float = 0.1, l1_regularization_strength: float = 0.0,
                 l2_regularization_strength: float = 0.0, l2_shrinkage_regularization_strength: float = 0.0,
                 beta: float = 0.0, name: str = "ftrl", **kwargs: Any):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        for arg, value, wanted in [
                ("initial_accumulator_value", initial_accumulator_value, "positive or zero"),
                ("learning_rate_power", -learning_rate_power, "negative or zero"),
                ("l1_regularization_strength", l1_regularization_strength, "positive or zero"),
                ("l2_regularization_strength", l2_regularization_strength, "positive or zero"),
                ("l2_shrinkage_regularization_strength", l2_shrinkage_regularization_strength, "positive or zero")]:
            if value < 0.0:
                shown = learning_rate_power if arg == "learning_rate_power" else value
                raise ValueError(f"`{arg}` needs to be {wanted}. Received: {arg}={shown}.")
        self.learning_rate_power = learning_rate_power
        self.initial_accumulator_value = initial_accumulator_value
        self.l1_regularization_strength = l1_regularization_strength
        self.l2_regularization_strength = l2_regularization_strength
        self.l2_shrinkage_regularization_strength = l2_shrinkage_regularization_strength
        self.beta = beta

    def slot_specs(self) -> list[tuple[str, float]]:
        return [("accumulator", float(self.initial_accumulator_value)), ("linear", 0.0)]

    def update_step(self, b: GraphBuilder, param: Value, grad: Value, slots: dict[str, Value], lr: Value,
                    local_step: Value) -> tuple[Value, dict[str, Value]]:
        power = b.const(np.asarray(-self.learning_rate_power, np.float32))
        accum = slots["accumulator"]
        new_accum = accum + grad * grad
        new_root = b.op("Pow", [new_accum, power], shape=grad.shape)
        old_root = b.op("Pow", [accum, power], shape=grad.shape)
        l2 = (1.0 / (lr * 2.0)) * float(self.beta) + float(self.l2_regularization_strength)
        grad_to_use = grad + param * (2.0 * float(self.l2_shrinkage_regularization_strength))
        linear = slots["linear"] + (grad_to_use - ((new_root - old_root) / lr) * param)
        quadratic = new_root / lr + l2 * 2.0
        l1 = np.asarray(self.l1_regularization_strength, np.float32)
        clipped = b.op("Clip", [linear, -l1, l1], shape=grad.shape)
        return (clipped - linear) / quadratic, {"accumulator": new_accum, "linear": linear}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "learning_rate_power": self.learning_rate_power,
                "initial_accumulator_value": self.initial_accumulator_value,
                "l1_regularization_strength": self.l1_regularization_strength,
                "l2_regularization_strength": self.l2_regularization_strength,
                "l2_shrinkage_regularization_strength": self.l2_shrinkage_regularization_strength,
                "beta": self.beta}
