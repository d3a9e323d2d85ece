"""What callbacks that watch a metric share: the mode (min/max) a monitored name implies, and reading it."""
from __future__ import annotations

from typing import Any

import numpy as np


def _is_scalar(value: Any) -> bool:
    return np.ndim(value) == 0 and not isinstance(value, str)


# Metric names whose better value is the larger one. Others containing a loss-like word are minimized.
_MAXIMIZED = ("acc", "auc", "precision", "recall", "f1", "fbeta", "fmeasure", "iou", "r2",
              "true_positives", "true_negatives")
_MINIMIZED = ("loss", "error", "crossentropy", "hinge", "mse", "mae", "mape", "msle", "divergence",
              "false_positives", "false_negatives", "poisson", "cosh")


def _auto_mode(monitor: str, model: Any) -> str | None:
    """``"min"`` / ``"max"`` for a monitored name, or ``None`` if it cannot be told."""
    name = monitor[4:] if monitor.startswith("val_") else monitor
    for metric in getattr(model, "metrics", None) or ():
        direction = getattr(metric, "_direction", None)
        if getattr(metric, "name", None) == name and direction in ("up", "down"):
            return "max" if direction == "up" else "min"
    lowered = name.lower()
    if any(word in lowered for word in _MINIMIZED):
        return "min"
    if any(word in lowered for word in _MAXIMIZED):
        return "max"
    return None


def _check_mode(cls: str, mode: str) -> None:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{cls}: mode must be one of 'auto', 'min' or 'max'. Received: mode={mode!r}")


def _to_float(value: Any) -> float:
    return float(np.asarray(value))
