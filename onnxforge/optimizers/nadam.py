"""Nadam."""
from __future__ import annotations

__all__ = ["Nadam"]

from typing import Any

from ..graph import GraphBuilder, Value
from .base import Optimizer

#: Past this many steps ``1 - 0.5 * 0.96^k`` is 1 in float32 (``0.96^425 < 2^-25``), so the momentum-schedule
#: product needs no more factors: the product stays a bounded ``Range`` whatever the step count.
_SCHEDULE_FACTORS = 512


class Nadam(Optimizer):
    """Nadam (Adam with Nesterov momentum) with Keras's formulas and momentum schedule::

        t = iterations + 1;   u_t = beta_1 * (1 - 0.5 * 0.96^t);   u_t1 = beta_1 * (1 - 0.5 * 0.96^(t+1))
        u_prod = u_1 * ... * u_t
        m += (g - m) * (1 - beta_1);   v += (g^2 - v) * (1 - beta_2)
        m_hat = u_t1 * m / (1 - u_prod * u_t1) + (1 - u_t) * g / (1 - u_prod)
        w -= lr * m_hat / (sqrt(v / (1 - beta_2^t)) + epsilon)

    Keras keeps ``u_prod`` as a scalar variable multiplied once per step; here it is recomputed from
    ``iterations`` (``beta_1^t`` times the product of the schedule factors, which reach 1 in float32 after ~425
    steps), so the update stays a pure function of the step counter and element-wise (the ranged update of
    ``compiler.segment_apply`` applies to it).

    Args:
        learning_rate: default 0.001.
        beta_1, beta_2: decay rates of the moment estimates (0.9, 0.999).
        epsilon: default 1e-7.
        **kwargs: the ``Optimizer`` arguments (weight_decay, clipnorm, ...).

    Example:
        >>> [name for name, _ in Nadam().slot_specs()]
        ['momentum', 'velocity']
    """

    def __init__(self, learning_rate: Any = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, name: str = "nadam", **kwargs: Any):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self._scalars: dict[str, Value] = {}

    def slot_specs(self) -> list[tuple[str, float]]:
        return [("momentum", 0.0), ("velocity", 0.0)]

    def _prepare_step(self, b: GraphBuilder, lr: Value, local_step: Value) -> None:
        dtype = lr.dtype
        decay = b.const(0.96, dtype)
        u_t = (1.0 - b.op("Pow", [decay, local_step], shape=()) * 0.5) * self.beta_1
        u_t1 = (1.0 - b.op("Pow", [decay, local_step + 1.0], shape=()) * 0.5) * self.beta_1
        count = b.op("Min", [local_step, b.const(float(_SCHEDULE_FACTORS), dtype)], shape=())
        k = b.op("Range", [b.const(1.0, dtype), count + 1.0, b.const(1.0, dtype)], shape=(None,))
        factors = 1.0 - b.op("Pow", [decay, k], shape=(None,)) * 0.5
        product = b.op("ReduceProd", [factors], keepdims=0, shape=())
        u_product = product * b.op("Pow", [b.const(self.beta_1, dtype), local_step], shape=())
        self._scalars = {
            "m_scale": u_t1 / (1.0 - u_product * u_t1),
            "g_scale": (1.0 - u_t) / (1.0 - u_product),
            "v_scale": 1.0 - b.op("Pow", [b.const(self.beta_2, dtype), local_step], shape=()),
        }

    def update_step(self, b: GraphBuilder, param: Value, grad: Value, slots: dict[str, Value], lr: Value,
                    local_step: Value) -> tuple[Value, dict[str, Value]]:
        s = self._scalars
        m = slots["momentum"] + (grad - slots["momentum"]) * (1.0 - self.beta_1)
        v = slots["velocity"] + (grad * grad - slots["velocity"]) * (1.0 - self.beta_2)
        m_hat = m * s["m_scale"] + grad * s["g_scale"]
        v_hat = v / s["v_scale"]
        return param - (m_hat * lr) / (b.op("Sqrt", [v_hat]) + self.epsilon), {"momentum": m, "velocity": v}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}
