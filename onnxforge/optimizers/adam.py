"""Adam and AdamW."""
from __future__ import annotations

__all__ = ["Adam", "AdamW"]

from typing import Any

from ..graph import GraphBuilder, Value
from .base import Optimizer


class Adam(Optimizer):
    """Adam with Keras's formulas (``epsilon`` outside the square root, bias correction folded into ``alpha``)::

        t = iterations + 1
        alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)
        m += (g - m) * (1 - beta_1);   v += (g^2 - v) * (1 - beta_2)
        v_hat = max(v_hat, v); v = v_hat                 (amsgrad)
        w -= alpha * m / (sqrt(v) + epsilon)

    Args:
        learning_rate: default 0.001.
        beta_1, beta_2: decay rates of the moment estimates (0.9, 0.999).
        epsilon: default 1e-7 (Keras's, not PyTorch's 1e-8).
        amsgrad: use the AMSGrad variant.
        **kwargs: the ``Optimizer`` arguments (weight_decay, clipnorm, ...).

    Example:
        >>> [name for name, _ in Adam(amsgrad=True).slot_specs()]
        ['momentum', 'velocity', 'velocity_hat']
    """

    def __init__(self, learning_rate: Any = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, amsgrad: bool = False, name: str = "adam", **kwargs: Any):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.amsgrad = amsgrad
        self._alpha: Value | None = None

    def slot_specs(self) -> list[tuple[str, float]]:
        specs = [("momentum", 0.0), ("velocity", 0.0)]
        return specs + [("velocity_hat", 0.0)] if self.amsgrad else specs

    def _prepare_step(self, b: GraphBuilder, lr: Value, local_step: Value) -> None:
        beta_1_power = b.op("Pow", [b.const(self.beta_1, lr.dtype), local_step], shape=())
        beta_2_power = b.op("Pow", [b.const(self.beta_2, lr.dtype), local_step], shape=())
        self._alpha = lr * b.op("Sqrt", [1.0 - beta_2_power]) / (1.0 - beta_1_power)

    def update_step(self, b: GraphBuilder, param: Value, grad: Value, slots: dict[str, Value], lr: Value,
                    local_step: Value) -> tuple[Value, dict[str, Value]]:
        m = slots["momentum"] + (grad - slots["momentum"]) * (1.0 - self.beta_1)
        v = slots["velocity"] + (grad * grad - slots["velocity"]) * (1.0 - self.beta_2)
        new = {"momentum": m, "velocity": v}
        if self.amsgrad:
            v = b.op("Max", [slots["velocity_hat"], v])
            new["velocity_hat"] = v
        return param - (m * self._alpha) / (b.op("Sqrt", [v]) + self.epsilon), new

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                "amsgrad": self.amsgrad}


class AdamW(Adam):
    """Adam with decoupled weight decay (default ``weight_decay=0.004``): ``w -= w * weight_decay * lr``
    before each Adam update, as Keras does.

    Example:
        >>> AdamW().weight_decay
        0.004
    """

    def __init__(self, learning_rate: Any = 0.001, weight_decay: float = 0.004, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, amsgrad: bool = False, name: str = "adam_w",
                 **kwargs: Any):
        if weight_decay is None:
            raise ValueError("Argument `weight_decay` must be a float. Received: weight_decay=None")
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                         amsgrad=amsgrad, name=name, weight_decay=weight_decay, **kwargs)
