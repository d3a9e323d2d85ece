"""Muon: momentum orthogonalized by Newton-Schulz iterations for matrices, Adam for every other weight."""
from __future__ import annotations

__all__ = ["Muon"]

import re
from typing import Any

from ..graph import GraphBuilder, Value
from ..variables import Variable
from .base import Optimizer


class Muon(Optimizer):
    """Keras 3's Muon. A 2-D weight (not an embedding when ``exclude_embeddings``, and whose path matches none of
    ``exclude_layers``) takes the Muon step::

        m = momentum * m + g
        u = g + momentum * m  (nesterov)  or  m
        w -= lr * NS(u) * sqrt(max(rows, cols)) * rms_rate    (rms_rate=None: no rescaling)

    where ``NS`` runs ``ns_steps`` quintic Newton-Schulz iterations ``X = a X + (b A + c A A) X``, ``A = X X^T``,
    on ``u`` divided by its Frobenius norm (transposed first when it has more rows than columns). Every other
    weight takes Adam's step at ``lr * adam_lr_ratio`` with Keras's Adam formulas. Decoupled weight decay is
    ``weight_decay`` for Muon weights and ``adam_weight_decay`` for Adam ones, both scaled by the plain ``lr``.

    Each weight has a ``momentum`` slot; the Adam-stepped ones also a ``velocity``. The update reads whole
    matrices, so it is not cut into element ranges. Keras matches ``exclude_layers`` against ``variable.path``;
    onnxforge's paths do not start with a Sequential or subclassed model's name (see ``Variable.path``).

    Args:
        learning_rate: default 0.001.
        adam_beta_1, adam_beta_2: Adam's decay rates (0.9, 0.999).
        adam_weight_decay: the decay of Adam-stepped weights (0.004).
        epsilon: Adam's epsilon (1e-7).
        weight_decay: the decay of Muon-stepped weights (0.004).
        exclude_layers: regular expressions; a weight whose path matches one takes the Adam step.
        exclude_embeddings: weights with ``embedding`` in their path take the Adam step (True).
        muon_a, muon_b, muon_c: the Newton-Schulz coefficients (3.4445, -4.7750, 2.0315).
        adam_lr_ratio: the Adam step's learning rate over ``learning_rate`` (1).
        momentum: the Muon momentum (0.95).
        ns_steps: Newton-Schulz iterations (5).
        nesterov: Nesterov momentum (True).
        rms_rate: the Moonlight update scale (0.2), or None.
        **kwargs: the ``Optimizer`` arguments (clipnorm, use_ema, ...).

    Example:
        >>> import numpy as np
        >>> opt = Muon(exclude_layers=["head"])
        >>> opt.build([Variable(np.zeros((3, 2), np.float32), name="dense/kernel"),
        ...            Variable(np.zeros((2,), np.float32), name="dense/bias")])
        >>> [v.path for v in opt.variables[1:]]
        ['muon/dense_kernel_momentum', 'muon/dense_bias_momentum', 'muon/dense_bias_velocity']
    """

    elementwise = False

    def __init__(self, learning_rate: Any = 0.001, adam_beta_1: float = 0.9, adam_beta_2: float = 0.999,
                 adam_weight_decay: float | None = 0.004, epsilon: float = 1e-7, weight_decay: float | None = 0.004,
                 name: str | None = None, exclude_layers: list[str] | None = None, exclude_embeddings: bool = True,
                 muon_a: float = 3.4445, muon_b: float = -4.7750, muon_c: float = 2.0315, adam_lr_ratio: float = 1,
                 momentum: float = 0.95, ns_steps: int = 5, nesterov: bool = True, rms_rate: float | None = 0.2,
                 **kwargs: Any):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, name=name or "muon", **kwargs)
        if isinstance(ns_steps, bool) or not isinstance(ns_steps, int) or ns_steps < 0:
            raise ValueError(f"Argument `ns_steps` must be a non-negative integer. Received: ns_steps={ns_steps!r}")
        if exclude_layers is not None and (isinstance(exclude_layers, str)
                                           or not all(isinstance(k, str) for k in exclude_layers)):
            raise ValueError("Argument `exclude_layers` must be a list of strings (regular expressions). "
                             f"Received: exclude_layers={exclude_layers!r}")
        self.adam_beta_1 = adam_beta_1
        self.adam_beta_2 = adam_beta_2
        self.adam_weight_decay = adam_weight_decay
        self.epsilon = epsilon
        self.exclude_layers = list(exclude_layers or [])
        self.exclude_embeddings = exclude_embeddings
        self.muon_a, self.muon_b, self.muon_c = muon_a, muon_b, muon_c
        self.adam_lr_ratio = adam_lr_ratio
        self.momentum = momentum
        self.ns_steps = ns_steps
        self.nesterov = nesterov
        self.rms_rate = rms_rate
        self._adam_alpha: Value | None = None

    def uses_adam(self, var: Variable) -> bool:
        """Whether ``var`` takes the Adam step (Keras's rule: not 2-D, an embedding, or an excluded layer)."""
        if len(var.shape) != 2:
            return True
        path = getattr(var, "path", var.name)
        if self.exclude_embeddings and "embedding" in path.lower():
            return True
        return any(re.search(keyword, path) for keyword in self.exclude_layers)

    def slot_specs(self) -> list[tuple[str, float]]:
        return [("momentum", 0.0), ("velocity", 0.0)]

    def slot_specs_for(self, var: Variable) -> list[tuple[str, Any]]:
        return [("momentum", 0.0), ("velocity", 0.0)] if self.uses_adam(var) else [("momentum", 0.0)]

    def weight_decay_for(self, var: Variable) -> float | None:
        if not self._use_weight_decay(var):
            return None
        decay = self.adam_weight_decay if self.uses_adam(var) else self.weight_decay
        return None if decay is None else float(decay)

    def _prepare_step(self, b: GraphBuilder, lr: Value, local_step: Value) -> None:
        beta_1_power = b.op("Pow", [b.const(self.adam_beta_1, lr.dtype), local_step], shape=())
        beta_2_power = b.op("Pow", [b.const(self.adam_beta_2, lr.dtype), local_step], shape=())
        adam_lr = lr * float(self.adam_lr_ratio)
        self._adam_alpha = adam_lr * b.op("Sqrt", [1.0 - beta_2_power]) / (1.0 - beta_1_power)

    def update_step(self, b: GraphBuilder, param: Value, grad: Value, slots: dict[str, Value], lr: Value,
                    local_step: Value) -> tuple[Value, dict[str, Value]]:
        if "velocity" in slots:   # an Adam-stepped weight (its velocity exists only then)
            m = slots["momentum"] + (grad - slots["momentum"]) * (1.0 - self.adam_beta_1)
            v = slots["velocity"] + (grad * grad - slots["velocity"]) * (1.0 - self.adam_beta_2)
            step = (m * self._adam_alpha) / (b.op("Sqrt", [v]) + self.epsilon)
            return param - step, {"momentum": m, "velocity": v}
        shape = tuple(param.shape or ())
        if len(shape) != 2 or not all(isinstance(d, int) for d in shape):
            raise ValueError(f"Muon's Newton-Schulz step needs a 2-D weight of static shape. Received: "
                             f"shape={param.shape}")
        m = slots["momentum"] * float(self.momentum) + grad
        direction = grad + m * float(self.momentum) if self.nesterov else m
        update = self._newton_schulz(b, direction, shape) * lr
        if self.rms_rate is not None:
            update = update * (float(max(shape)) ** 0.5 * float(self.rms_rate))
        return param - update, {"momentum": m}

    def _newton_schulz(self, b: GraphBuilder, x: Value, shape: tuple[int, int]) -> Value:
        """The approximate orthogonalization of ``x`` (the quintic iteration of Keras and Keller Jordan)."""
        tall = shape[0] > shape[1]
        if tall:   # iterate on the wide orientation so X X^T is the smaller Gram matrix
            x = b.op("Transpose", [x], perm=[1, 0], shape=(shape[1], shape[0]))
        norm = b.op("Sqrt", [b.op("ReduceSum", [x * x], keepdims=1)])
        x = x / (norm + 1e-7)
        for _ in range(self.ns_steps):
            gram = b.op("MatMul", [x, b.op("Transpose", [x], perm=[1, 0])])
            poly = gram * float(self.muon_b) + b.op("MatMul", [gram * float(self.muon_c), gram])
            x = x * float(self.muon_a) + b.op("MatMul", [poly, x])
        if tall:
            x = b.op("Transpose", [x], perm=[1, 0], shape=shape)
        return x

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "adam_beta_1": self.adam_beta_1, "adam_beta_2": self.adam_beta_2,
                "epsilon": self.epsilon, "exclude_layers": list(self.exclude_layers), "muon_a": self.muon_a,
                "muon_b": self.muon_b, "muon_c": self.muon_c, "adam_lr_ratio": self.adam_lr_ratio,
                "momentum": self.momentum, "ns_steps": self.ns_steps, "nesterov": self.nesterov,
                "exclude_embeddings": self.exclude_embeddings, "adam_weight_decay": self.adam_weight_decay,
                "rms_rate": self.rms_rate}
