"""The log entries of a traced custom step (``CustomStep.log_trackers``): what the fit / evaluate loops read
after each step and at an epoch's end, from a live metric tracker or from the step's last returned value."""
from __future__ import annotations

__all__ = ["LAST_STATE", "TrackerLog", "LastLog", "metric_results_by_name"]

from collections.abc import Sequence
from typing import Any

import numpy as np

#: The state of a plain returned value in the loops' sums: the last step's, which ``fit``'s totals replace.
LAST_STATE = "last"


def metric_results_by_name(model: Any) -> dict[str, tuple[Any, str | None]]:
    """``{name: (metric, key in its dict result or None)}`` for the results of ``model.metrics``, as Keras's
    ``get_metrics_result`` names them (a dict result, ``compile_metrics``', contributes its keys)."""
    named: dict[str, tuple[Any, str | None]] = {}
    for metric in model.metrics:
        result = metric.result() if hasattr(metric, "metrics") else None   # a container's result is a dict
        if isinstance(result, dict):
            named.update({key: (metric, key) for key in result})
        else:
            named[metric.name] = (metric, None)
    return named


class TrackerLog:
    """A log entry read from a live metric tracker (no sums of its own in the fit loop)."""

    def __init__(self, metric: Any, key: str | None = None):
        self.metric, self.key = metric, key
        self.name = metric.name if key is None else key

    def state_spec(self) -> list[tuple[str, tuple[int, ...]]]:
        return []

    def result_from(self, states: Sequence[np.ndarray]) -> Any:
        result = self.metric.result()
        return result if self.key is None else result[self.key]


class LastLog:
    """A plain returned value: the loops keep the last step's (``LAST_STATE`` sums replace, not add)."""

    def __init__(self, name: str):
        self.name = name

    def state_spec(self) -> list[tuple[str, tuple[int, ...]]]:
        return [(LAST_STATE, ())]

    def result_from(self, states: Sequence[np.ndarray]) -> Any:
        return states[0]
