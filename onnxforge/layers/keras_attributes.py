"""Keras 3 layer attributes read by user code and tools: ``path``, ``metrics``, ``metrics_variables``.

Metrics sit above layers in the import flow, so a metric is recognised here by its interface (``state_spec``,
``result``, ``update_state``), and its state is offered as :class:`MetricState` views with Keras's paths
(``"<metric name>/<state name>"``: ``"loss/total"``) that read and assign the sums the trainer keeps.
"""
from __future__ import annotations

__all__ = ["LayerAttributesMixin", "MetricState", "is_metric", "metric_state_variables"]

from typing import Any

import numpy as np


def is_metric(value: Any) -> bool:
    """Whether ``value`` is a Keras-style metric object (onnxforge's or a subclass)."""
    return all(callable(getattr(value, m, None)) for m in ("state_spec", "result", "update_state", "reset_state"))


class MetricState:
    """One state of a metric as a Keras variable: ``path``, ``name``, ``shape``, ``dtype``, ``numpy()``,
    ``value``, ``assign``.

    Example:
        >>> from onnxforge import metrics
        >>> total, count = metric_state_variables(metrics.Mean(name="loss"))
        >>> total.path, float(count.numpy())
        ('loss/total', 0.0)
    """

    def __init__(self, metric: Any, index: int, name: str, shape: tuple[int, ...]):
        self._metric = metric
        self._index = index
        self.name = name
        self._shape = tuple(shape)

    @property
    def path(self) -> str:
        return f"{getattr(self._metric, '_variable_prefix', None) or self._metric.name}/{self.name}"

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def dtype(self) -> str:
        return "float32"

    @property
    def trainable(self) -> bool:
        return False

    def numpy(self) -> np.ndarray:
        return np.asarray(self._metric._state_arrays()[self._index], np.float32).reshape(self._shape)

    @property
    def value(self) -> np.ndarray:
        return self.numpy()

    def assign(self, value: Any) -> None:
        array = np.asarray(value, np.float32)
        if array.size != int(np.prod(self._shape)):
            raise ValueError(f"Cannot assign a value of shape {array.shape} to metric variable {self.path!r} of "
                             f"shape {self._shape}.")
        metric = self._metric
        if metric._states is None:
            metric._states = [np.zeros(s, np.float32) for _, s in metric.state_spec()]
        metric._states[self._index] = array.reshape(self._shape).copy()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.array(self.numpy(), dtype=dtype)

    def __repr__(self) -> str:
        return f"<MetricState path={self.path!r} shape={self._shape}>"


def metric_state_variables(metric: Any) -> list[Any]:
    """The variables of ``metric`` (Keras's ``metric.variables``, each with a ``path``)."""
    own = getattr(metric, "_metric_variables", None)
    if own:
        for var in own:   # a metric written with add_variable: its own variables, given Keras's path
            if getattr(var, "path", None) is None:
                try:
                    var.path = f"{metric.name}/{var.name}"
                except AttributeError:
                    pass
        return list(own)
    return [MetricState(metric, i, name, shape) for i, (name, shape) in enumerate(metric.state_spec())]


class LayerAttributesMixin:
    """``path``, ``metrics`` and ``metrics_variables`` of every layer and model."""

    @property
    def path(self) -> str | None:
        """Where the layer's weights live (Keras 3's ``layer.path``): the prefix of its own weights' paths
        (``"dense"`` for ``"dense/kernel"``), else its name; ``None`` before it is built, as in Keras.

        Like ``Variable.path``, the name of an enclosing ``Sequential`` or subclassed model is not part of it
        (Keras: ``"sequential/dense"``); a model's own path is its name.

        Example:
            >>> from onnxforge import keras
            >>> layer = keras.layers.Dense(2, name="head")
            >>> layer.path is None
            True
            >>> _ = layer(np.zeros((1, 3), np.float32)); layer.path
            'head'
        """
        if not getattr(self, "built", False):
            return None
        own = self._own_weights() if hasattr(self, "_own_weights") else []
        for weight in own:
            path = str(getattr(weight, "path", weight.name))
            if "/" in path:
                return path.rsplit("/", 1)[0]
        return self.name

    @property
    def metrics(self) -> list[Any]:
        """The metric objects held as attributes of the layer and of its sub-layers (Keras's ``layer.metrics``)."""
        out: list[Any] = [value for value in vars(self).values() if is_metric(value)]
        out += getattr(self, "_own_added_metrics", list)()   # tf.keras 2's add_metric trackers
        for layer in self._flat_sublayers() if hasattr(self, "_flat_sublayers") else []:
            out += [m for m in layer.metrics if all(m is not o for o in out)]
        return out

    @property
    def metrics_variables(self) -> list[Any]:
        """The variables of every metric in ``metrics`` (Keras 3), each with its ``path`` (``"loss/total"``).

        Example:
            >>> from onnxforge import keras
            >>> keras.layers.Dense(2).metrics_variables
            []
        """
        return [v for metric in self.metrics for v in metric_state_variables(metric)]
