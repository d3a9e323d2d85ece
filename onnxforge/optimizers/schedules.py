"""Learning-rate schedules, evaluated on the host once per step and fed to the training graph.

A schedule maps the optimizer's step counter (the number of updates applied so far) to a learning rate.
The training program takes the learning rate as an input, so a schedule never rebuilds a graph.

Example:
    >>> s = ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    >>> round(s(10), 6), round(s(5), 6)
    (0.05, 0.070711)
"""
from __future__ import annotations

__all__ = ["LearningRateSchedule", "ExponentialDecay", "CosineDecay", "CosineDecayRestarts", "PiecewiseConstantDecay",
           "PolynomialDecay", "InverseTimeDecay", "serialize", "deserialize"]

import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def _elementwise(call: Any) -> Any:
    """A schedule's ``__call__`` that also takes an array of steps and returns the float32 rates, as
    TensorFlow's do on a tensor (the overfit-and-underfit tutorial plots ``lr_schedule(np.linspace(...))``)."""
    @functools.wraps(call)
    def rates(self: Any, step: Any) -> Any:
        if np.ndim(step) == 0:
            return call(self, step)
        steps = np.asarray(step)
        return np.asarray([call(self, s) for s in steps.reshape(-1).tolist()], np.float32).reshape(steps.shape)
    return rates


class LearningRateSchedule:
    """Base class: ``schedule(step) -> learning rate`` (a Python float), with a Keras-style config."""

    def __call__(self, step: int) -> float:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LearningRateSchedule:
        return cls(**config)


class _PeriodDecay(LearningRateSchedule):
    """The constructor and config that ExponentialDecay and InverseTimeDecay share: a rate that decays by
    ``decay_rate`` per ``decay_steps`` steps, continuously or (``staircase``) at each period's end."""

    def __init__(self, initial_learning_rate: float, decay_steps: int, decay_rate: float, staircase: bool = False,
                 name: str | None = None):
        if decay_steps <= 0:
            raise ValueError(f"Argument `decay_steps` must be > 0. Received: decay_steps={decay_steps}")
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.decay_rate = decay_rate
        self.staircase = staircase
        self.name = name or type(self).__name__

    def _periods(self, step: int) -> float:
        p = step / self.decay_steps
        return math.floor(p) if self.staircase else p

    def get_config(self) -> dict[str, Any]:
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase, "name": self.name}


class ExponentialDecay(_PeriodDecay):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)`` (integer division if ``staircase``).

    Args:
        initial_learning_rate: the rate at step 0.
        decay_steps: positive number of steps per decay period.
        decay_rate: the factor per period.
        staircase: decay at discrete intervals.
        name: name of the schedule (default ``"ExponentialDecay"``).
    """

    @_elementwise
    def __call__(self, step: int) -> float:
        return float(self.initial_learning_rate * self.decay_rate ** self._periods(step))


class CosineDecay(LearningRateSchedule):
    """Cosine decay from ``initial_learning_rate`` (or ``warmup_target``) to ``alpha`` times it over
    ``decay_steps``, after an optional linear warmup of ``warmup_steps`` steps (Keras semantics).

    Example:
        >>> s = CosineDecay(1.0, decay_steps=10, alpha=0.1)
        >>> s(0), round(s(5), 6), round(s(100), 6)
        (1.0, 0.55, 0.1)
    """

    def __init__(self, initial_learning_rate: float, decay_steps: int, alpha: float = 0.0, name: str = "CosineDecay",
                 warmup_target: float | None = None, warmup_steps: int = 0):
        if decay_steps <= 0:
            raise ValueError(f"Argument `decay_steps` must be > 0. Received: decay_steps={decay_steps}")
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.alpha = alpha
        self.name = name
        self.warmup_target = warmup_target
        self.warmup_steps = warmup_steps

    def _decay(self, step: float, decay_from: float) -> float:
        cosine = 0.5 * (1.0 + math.cos(math.pi * step / self.decay_steps))
        return decay_from * ((1.0 - self.alpha) * cosine + self.alpha)

    @_elementwise
    def __call__(self, step: int) -> float:
        if self.warmup_target is None:
            return float(self._decay(min(step, self.decay_steps), self.initial_learning_rate))
        step = min(step, self.decay_steps + self.warmup_steps)
        if step < self.warmup_steps:
            fraction = step / self.warmup_steps
            return float((self.warmup_target - self.initial_learning_rate) * fraction + self.initial_learning_rate)
        return float(self._decay(step - self.warmup_steps, self.warmup_target))

    def get_config(self) -> dict[str, Any]:
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "alpha": self.alpha, "name": self.name, "warmup_target": self.warmup_target,
                "warmup_steps": self.warmup_steps}


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[0]`` while ``step <= boundaries[0]``, ``values[i]`` while ``boundaries[i-1] < step <=
    boundaries[i]``, and ``values[-1]`` after the last boundary.

    Example:
        >>> s = PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1])
        >>> s(10), s(11), s(21)
        (1.0, 0.5, 0.1)
    """

    def __init__(self, boundaries: Sequence[float], values: Sequence[float], name: str = "PiecewiseConstant"):
        if len(boundaries) != len(values) - 1:
            raise ValueError("The length of boundaries should be 1 less than the length of values. Received: "
                             f"boundaries={list(boundaries)} of length {len(boundaries)}, and values={list(values)} "
                             f"of length {len(values)}.")
        self.boundaries = list(boundaries)
        self.values = list(values)
        self.name = name

    @_elementwise
    def __call__(self, step: int) -> float:
        for boundary, value in zip(self.boundaries, self.values):
            if step <= boundary:
                return float(value)
        return float(self.values[-1])

    def get_config(self) -> dict[str, Any]:
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class PolynomialDecay(LearningRateSchedule):
    """``(initial - end) * (1 - step / decay_steps) ** power + end``, the step held at ``decay_steps``; with
    ``cycle`` the period grows to the first multiple of ``decay_steps`` above the step instead (Keras semantics).

    Example:
        >>> s = PolynomialDecay(1.0, decay_steps=10, end_learning_rate=0.0, power=2.0)
        >>> s(0), round(s(5), 6), s(20)
        (1.0, 0.25, 0.0)
        >>> round(PolynomialDecay(1.0, 10, 0.0, cycle=True)(15), 6)
        0.25
    """

    def __init__(self, initial_learning_rate: float, decay_steps: int, end_learning_rate: float = 0.0001,
                 power: float = 1.0, cycle: bool = False, name: str = "PolynomialDecay"):
        if decay_steps <= 0:
            raise ValueError(f"Argument `decay_steps` must be > 0. Received: decay_steps={decay_steps}")
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.end_learning_rate = end_learning_rate
        self.power = power
        self.cycle = cycle
        self.name = name

    @_elementwise
    def __call__(self, step: int) -> float:
        decay_steps = float(self.decay_steps)
        if self.cycle:
            # Keras: the first multiple of decay_steps at or above the step, and one period at step 0.
            decay_steps *= 1.0 if step == 0 else math.ceil(step / self.decay_steps)
        else:
            step = min(step, decay_steps)
        p = step / decay_steps
        end = self.end_learning_rate
        return float((self.initial_learning_rate - end) * (1.0 - p) ** self.power + end)

    def get_config(self) -> dict[str, Any]:
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "end_learning_rate": self.end_learning_rate, "power": self.power, "cycle": self.cycle,
                "name": self.name}


class InverseTimeDecay(_PeriodDecay):
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)`` (integer division if ``staircase``).

    Example:
        >>> s = InverseTimeDecay(1.0, decay_steps=10, decay_rate=0.5)
        >>> s(0), s(10), round(s(15), 6), InverseTimeDecay(1.0, 10, 0.5, staircase=True)(15)
        (1.0, 0.6666666666666666, 0.571429, 0.6666666666666666)
    """

    @_elementwise
    def __call__(self, step: int) -> float:
        return float(self.initial_learning_rate / (1.0 + self.decay_rate * self._periods(step)))


class CosineDecayRestarts(LearningRateSchedule):
    """Cosine decay with warm restarts (SGDR): the first period lasts ``first_decay_steps``, each next one
    ``t_mul`` times longer and starting from ``m_mul`` times the previous initial rate; within a period the
    rate falls from its start to ``alpha`` times the initial rate (Keras semantics).

    Example:
        >>> s = CosineDecayRestarts(1.0, first_decay_steps=10, t_mul=2.0, m_mul=0.5)
        >>> s(0), round(s(5), 6), s(10), round(s(20), 6), s(30)
        (1.0, 0.5, 0.5, 0.25, 0.25)
    """

    def __init__(self, initial_learning_rate: float, first_decay_steps: int, t_mul: float = 2.0, m_mul: float = 1.0,
                 alpha: float = 0.0, name: str = "SGDRDecay"):
        if first_decay_steps <= 0:
            raise ValueError("Argument `first_decay_steps` must be > 0. Received: "
                             f"first_decay_steps={first_decay_steps}")
        self.initial_learning_rate = initial_learning_rate
        self.first_decay_steps = first_decay_steps
        self._t_mul = t_mul
        self._m_mul = m_mul
        self.alpha = alpha
        self.name = name

    @_elementwise
    def __call__(self, step: int) -> float:
        # float32 as in Keras: which period a step falls in is a floor of a logarithm, and at a period's
        # boundary float32 and float64 may land on either side of it.
        f32 = np.float32
        fraction = f32(step) / f32(self.first_decay_steps)
        t_mul = f32(self._t_mul)
        if t_mul == 1.0:
            i_restart = np.floor(fraction)
            fraction = fraction - i_restart
        else:
            i_restart = np.floor(np.log(f32(1.0) - fraction * (f32(1.0) - t_mul)) / np.log(t_mul))
            sum_r = (f32(1.0) - t_mul ** i_restart) / (f32(1.0) - t_mul)
            fraction = (fraction - sum_r) / t_mul ** i_restart
        cosine = f32(0.5) * f32(self._m_mul) ** i_restart * (f32(1.0) + np.cos(f32(math.pi) * fraction))
        alpha = f32(self.alpha)
        return float(f32(self.initial_learning_rate) * ((f32(1.0) - alpha) * cosine + alpha))

    def get_config(self) -> dict[str, Any]:
        return {"initial_learning_rate": self.initial_learning_rate, "first_decay_steps": self.first_decay_steps,
                "t_mul": self._t_mul, "m_mul": self._m_mul, "alpha": self.alpha, "name": self.name}


_SCHEDULES = {c.__name__: c for c in (ExponentialDecay, CosineDecay, CosineDecayRestarts, PiecewiseConstantDecay,
                                      PolynomialDecay, InverseTimeDecay)}


def serialize(learning_rate_schedule: LearningRateSchedule) -> dict[str, Any]:
    """Keras 3's ``{"module", "class_name", "config", "registered_name"}`` of a schedule (Keras's argument name).

    Example:
        >>> serialize(ExponentialDecay(0.1, decay_steps=10, decay_rate=0.9))["module"]
        'keras.optimizers.schedules'
    """
    from ..keras_objects import object_config

    return object_config(learning_rate_schedule, "keras.optimizers.schedules")


def deserialize(config: dict[str, Any], custom_objects: dict[str, Any] | None = None) -> LearningRateSchedule:
    """The schedule described by ``serialize``'s output; a ``custom_objects`` class of that name first."""
    cls = (custom_objects or {}).get(config.get("class_name")) or _SCHEDULES.get(config.get("class_name"))
    if cls is None:
        raise ValueError(f"Unknown learning rate schedule {config.get('class_name')!r}. Valid choices are: "
                         f"{sorted(_SCHEDULES)}.")
    return cls.from_config(config.get("config", {}))
