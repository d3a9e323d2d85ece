"""Checks of ``Model.compile``'s arguments, made before anything is built, with Keras 3's messages.

``metrics`` and ``weighted_metrics`` must be a list, tuple or dict (or empty): Keras 3 refuses a lone metric
(``metrics="accuracy"``, ``metrics=AUC()``) rather than guessing which outputs it belongs to, so a program that
runs here runs under Keras too. Files saved by earlier onnxforge versions may hold a lone metric in their compile
config; ``listed_metrics`` wraps it so that they still load.

Example:
    >>> check_compile_args(metrics=["mae"], weighted_metrics=None, steps_per_execution=1, seed=None)
    >>> check_compile_args(metrics="mae", weighted_metrics=None, steps_per_execution=1, seed=None)
    Traceback (most recent call last):
    ...
    ValueError: Expected `metrics` argument to be a list, tuple, or dict. Received instead: metrics=mae of type <class 'str'>
"""
from __future__ import annotations

__all__ = ["check_compile_args", "listed_metrics"]

from typing import Any

import numpy as np


def check_compile_args(metrics: Any, weighted_metrics: Any, steps_per_execution: Any, seed: Any) -> None:
    """Raise ``ValueError`` naming the argument, the value received and what was expected."""
    for name, value in (("metrics", metrics), ("weighted_metrics", weighted_metrics)):
        # Keras tests truthiness first: None, [] and "" all mean no metrics.
        if value and not isinstance(value, (list, tuple, dict)):
            raise ValueError(f"Expected `{name}` argument to be a list, tuple, or dict. Received instead: "
                             f"{name}={value} of type {type(value)}")
    if not isinstance(steps_per_execution, int) or steps_per_execution < 1:
        raise ValueError("Argument `steps_per_execution` must be a positive integer. "
                         f"Received: steps_per_execution={steps_per_execution!r}")
    if seed is not None and (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool)):
        raise ValueError(f"Argument `seed` must be an integer or None. Received: seed={seed!r}")


def listed_metrics(value: Any) -> Any:
    """A saved compile config's ``metrics`` as ``compile`` takes them: a lone metric (from a file written
    before ``compile`` refused one) becomes a one-element list; anything else is returned as it is."""
    if value and not isinstance(value, (list, tuple, dict)):
        return [value]
    return value
