"""Keras-style optimizers whose update is emitted as graph ops, and learning-rate schedules.

Example:
    >>> opt = get("adam")
    >>> type(opt).__name__, opt.learning_rate
    ('Adam', 0.001)
"""
from __future__ import annotations

from typing import Any

from . import schedules
from .adadelta import Adadelta
from .adafactor import Adafactor
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .adamax import Adamax
from ..keras_objects import get_registered_name
from .base import Optimizer
from .ftrl import Ftrl
from .lamb import Lamb
from .lion import Lion
from .loss_scale import LossScaleOptimizer
from .multi_optimizer import MultiOptimizer, OptimizerMap
from .muon import Muon
from .nadam import Nadam
from .rmsprop import RMSprop
from .schedule_free_adamw import ScheduleFreeAdamW
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "Nadam", "Adamax", "Adadelta", "Lion", "RMSprop", "Adagrad",
           "Lamb", "Adafactor", "Ftrl", "Muon", "ScheduleFreeAdamW", "MultiOptimizer",
           "OptimizerMap", "LossScaleOptimizer", "schedules", "get",
           "serialize", "deserialize", "ALIASES"]

#: Names accepted by ``get`` and ``compile(optimizer=...)`` (case-insensitive, as in Keras).
ALIASES: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "nadam": Nadam, "adamax": Adamax,
                                       "adadelta": Adadelta, "lion": Lion, "rmsprop": RMSprop, "adagrad": Adagrad,
                                       "lamb": Lamb, "adafactor": Adafactor, "ftrl": Ftrl,
                                       "muon": Muon, "schedulefreeadamw": ScheduleFreeAdamW}


def get(identifier: Any, argument: str = "optimizer") -> Optimizer:
    """An optimizer from a name (``"adam"``), a config dict, or an ``Optimizer`` (returned as is)."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        cls = ALIASES.get(identifier.lower())
        if cls is None:
            raise ValueError(f"Unknown optimizer for argument `{argument}`: {identifier!r}. Valid choices are: "
                             f"{sorted(ALIASES)} (or an onnxforge.optimizers.Optimizer). Received: "
                             f"{argument}={identifier!r}")
        return cls()
    if isinstance(identifier, dict) and "class_name" in identifier:
        wrappers = {"lossscaleoptimizer": LossScaleOptimizer, "multioptimizer": MultiOptimizer}
        cls = {**ALIASES, **wrappers}.get(str(identifier["class_name"]).lower())
        if cls is None:
            raise ValueError(f"Unknown optimizer class {identifier['class_name']!r} for argument `{argument}`. "
                             f"Valid choices are: {sorted(c.__name__ for c in ALIASES.values())}, "
                             "LossScaleOptimizer and MultiOptimizer.")
        return cls.from_config(identifier.get("config", {}))
    raise ValueError(f"Could not interpret optimizer identifier for argument `{argument}`. "
                     f"Received: {argument}={identifier!r}")


def serialize(optimizer: Optimizer) -> dict[str, Any]:
    """``{"class_name": ..., "config": ...}``; a user's optimizer class also names its module and registered name,
    as Keras writes them, so Keras (given the class in ``custom_objects``) reads the file back."""
    kind = type(optimizer)
    out = {"class_name": kind.__name__, "config": optimizer.get_config()}
    if not kind.__module__.startswith("onnxforge."):
        out.update(module=kind.__module__, registered_name=get_registered_name(kind))
    return out


def deserialize(config: dict[str, Any], custom_objects: dict[str, Any] | None = None) -> Optimizer:
    """The optimizer described by ``serialize``'s output; a ``custom_objects`` class of that name first."""
    cls = (custom_objects or {}).get(config.get("class_name")) if isinstance(config, dict) else None
    if cls is not None:
        return cls.from_config(config.get("config") or {})
    return get(config)
