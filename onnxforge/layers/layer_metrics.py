"""``Layer.add_metric``: tf.keras 2's way for a layer to log a value from ``call()`` (keras.io's TensorFlow-era
training guide: ``self.add_metric(keras.backend.std(inputs), name="std_of_activation", aggregation="mean")``).

Keras 3 removed it; onnxforge keeps it for ``import onnxforge as tf`` programs. Each name gets one ``Mean``
tracker on the layer, updated with the value where ``call()`` runs: ``fit`` / ``evaluate`` report its mean over
the epoch under that name, like a metric the layer updates itself. ``metrics/`` sits above the layers, so the
tracker class is registered from there (``register_mean_factory``).

Example:
    >>> import numpy as np
    >>> from onnxforge import keras
    >>> class Logged(keras.layers.Layer):
    ...     def call(self, x):
    ...         self.add_metric(keras.ops.mean(x), name="activation_mean")
    ...         return x
    >>> layer = Logged()
    >>> _ = layer(np.ones((2, 3), np.float32))
    >>> [m.name for m in layer.metrics], float(layer.metrics[0].result())
    (['activation_mean'], 1.0)
"""
from __future__ import annotations

__all__ = ["MetricsMixin", "register_mean_factory"]

from collections.abc import Callable
from typing import Any

from ..tracing import MetricResult
from .keras_tensor import KerasTensor

#: ``metrics.Mean``, set by ``onnxforge.metrics`` when it is imported.
_MEAN: list[Callable[..., Any]] = []


def register_mean_factory(factory: Callable[..., Any]) -> None:
    """Set the class ``add_metric`` makes its trackers with (``onnxforge.metrics.Mean``)."""
    _MEAN[:] = [factory]


class MetricsMixin:
    """``add_metric`` for ``Layer`` (which supplies ``name``)."""

    def add_metric(self, value: Any, name: str | None = None, aggregation: str | None = "mean") -> None:
        """Log the mean of ``value`` over each epoch as the metric ``name`` (tf.keras 2's ``Layer.add_metric``).

        Args:
            value: a tensor computed in ``call()`` (averaged when it has more than one element).
            name: the key ``fit`` and ``evaluate`` report it under.
            aggregation: ``"mean"`` (tf.keras 2's only aggregation), or ``None``.
        """
        if aggregation not in (None, "mean"):
            raise ValueError(f"Layer {self.name!r}: add_metric() aggregates by 'mean' only. Received: "
                             f"aggregation={aggregation!r}")
        if not isinstance(name, str) or not name:
            raise ValueError(f"Layer {self.name!r}: add_metric() needs the metric's name (a non-empty string). "
                             f"Received: name={name!r}")
        if isinstance(value, MetricResult):
            return   # a metric's own result: updating the metric already tracks it
        if isinstance(value, KerasTensor):
            raise ValueError(f"add_metric() on {self.name!r} received a functional-API tensor ({value!r}): tf.keras "
                             "2's model.add_metric(tensor) is not supported (Keras 3 removed it). Compute the value "
                             "in a layer's call() and call self.add_metric(value, name=...) there.")
        trackers = self.__dict__.setdefault("_added_metrics", {})
        if name not in trackers:
            trackers[name] = _MEAN[0](name=name)
        trackers[name].update_state(value)

    def _own_added_metrics(self) -> list[Any]:
        return list(self.__dict__.get("_added_metrics", {}).values())
