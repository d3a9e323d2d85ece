"""Adafactor."""
from __future__ import annotations

__all__ = ["Adafactor"]

from typing import Any

import numpy as np

from ..graph import GraphBuilder, Value
from .base import Optimizer


class Adafactor(Optimizer):
    """Adafactor with Keras's formulas. A weight of rank >= 2 keeps its second moment *factored* over its last
    two axes: a row statistic ``r`` (shape ``w.shape[:-1]``) and a column statistic ``c`` (``w.shape[:-2] +
    w.shape[-1:]``), whose outer product, normalised by the mean of ``r``, stands for the full moment ``v``.
    A weight of rank 0 or 1 keeps ``v`` itself (its ``r`` and ``c`` are unused scalars, as in Keras)::

        t = iterations + 1;  beta_2_t = 1 - t^beta_2_decay;  rho = min(lr, 1 / sqrt(t))
        alpha = max(epsilon_2, rms(w)) * rho
        s = g^2 + epsilon_1
        r = beta_2_t * r + (1 - beta_2_t) * mean(s, axis=-1)
        c = beta_2_t * c + (1 - beta_2_t) * mean(s, axis=-2)
        v = (r / mean(r, axis=-1))[..., None] * c[..., None, :]       (rank < 2: v = beta_2_t v + (1-beta_2_t) s)
        u = g / sqrt(v);   w -= alpha * u / max(1, rms(u) / clip_threshold)

    The root-mean-squares read whole tensors, so the sharded CPU step applies Adafactor in its one-program
    update.

    Args:
        learning_rate: default 0.001 (capped by ``1 / sqrt(t)``).
        beta_2_decay: exponent of the second moment's decay schedule (-0.8).
        epsilon_1: added to the squared gradient (1e-30).
        epsilon_2: lower bound of the weight's RMS in the step size (1e-3).
        clip_threshold: the update's RMS is clipped to it (1.0).
        relative_step: Keras's flag, kept in the config; the ``1 / sqrt(t)`` cap applies either way, as in Keras.
        **kwargs: the ``Optimizer`` arguments (weight_decay, clipnorm, use_ema, ...).

    Example:
        >>> from onnxforge.variables import Variable
        >>> opt = Adafactor()
        >>> slots = opt.slots(Variable(np.zeros((4, 3), np.float32), name="kernel"))
        >>> {name: slot.shape for name, slot in slots.items()}
        {'r': (4,), 'c': (3,), 'velocity': (4, 3)}
    """

    elementwise = False

    def __init__(self, learning_rate: Any = 0.001, beta_2_decay: float = -0.8, epsilon_1: float = 1e-30,
                 epsilon_2: float = 1e-3, clip_threshold: float = 1.0, relative_step: bool = True,
                 name: str = "adafactor", **kwargs: Any):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_2_decay = beta_2_decay
        self.epsilon_1 = epsilon_1
        self.epsilon_2 = epsilon_2
        self.clip_threshold = clip_threshold
        self.relative_step = relative_step
        self._step: tuple[Value, Value, Value] | None = None

    def slot_specs(self) -> list[tuple[str, float]]:
        return [("r", 0.0), ("c", 0.0), ("velocity", 0.0)]

    def slot_shape(self, slot: str, shape: tuple[int, ...]) -> tuple[int, ...]:
        if slot == "velocity":
            return shape
        if len(shape) < 2:
            return ()
        return shape[:-1] if slot == "r" else shape[:-2] + shape[-1:]

    def _prepare_step(self, b: GraphBuilder, lr: Value, local_step: Value) -> None:
        rho = b.op("Min", [lr, b.op("Reciprocal", [b.op("Sqrt", [local_step])])], shape=())
        decay = b.op("Pow", [local_step, b.const(np.asarray(self.beta_2_decay, np.float32))], shape=())
        beta_2_t = 1.0 - decay
        self._step = (rho, beta_2_t, 1.0 - beta_2_t)

    def update_step(self, b: GraphBuilder, param: Value, grad: Value, slots: dict[str, Value], lr: Value,
                    local_step: Value) -> tuple[Value, dict[str, Value]]:
        rho, keep, take = self._step
        alpha = b.op("Max", [b.const(np.asarray(self.epsilon_2, np.float32)), _rms(b, param)]) * rho
        square = grad * grad + float(self.epsilon_1)
        new = dict(slots)
        if len(param.shape) >= 2:
            rank = len(param.shape)
            r = slots["r"] * keep + _mean(b, square, [rank - 1], keep_dims=False) * take
            c = slots["c"] * keep + _mean(b, square, [rank - 2], keep_dims=False) * take
            row = r / _mean(b, r, [rank - 2], keep_dims=True)
            v = b.op("Unsqueeze", [row, b.const(np.asarray([rank - 1], np.int64))]) * \
                b.op("Unsqueeze", [c, b.const(np.asarray([rank - 2], np.int64))])
            new.update(r=r, c=c)
        else:
            v = slots["velocity"] * keep + square * take
        new["velocity"] = v
        u = grad / b.op("Sqrt", [v])
        clip = b.op("Max", [b.const(np.asarray(1.0, np.float32)), _rms(b, u) / float(self.clip_threshold)])
        return param - (u / clip) * alpha, new

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "beta_2_decay": self.beta_2_decay, "epsilon_1": self.epsilon_1,
                "epsilon_2": self.epsilon_2, "clip_threshold": self.clip_threshold,
                "relative_step": self.relative_step}


def _mean(b: GraphBuilder, x: Value, axes: list[int], keep_dims: bool) -> Value:
    return b.op("ReduceMean", [x, b.const(np.asarray(axes, np.int64))], keepdims=int(keep_dims))


def _rms(b: GraphBuilder, x: Value) -> Value:
    """The root mean square of every entry of ``x``, a scalar."""
    return b.op("Sqrt", [b.op("ReduceMean", [x * x], keepdims=0)], shape=())
