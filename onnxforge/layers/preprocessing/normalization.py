"""``Normalization``: ``(x - mean) / max(sqrt(variance), epsilon)`` with statistics from ``adapt()`` or
given values (Keras 3 semantics, weights and config)."""
from __future__ import annotations

__all__ = ["Normalization"]

import math
from typing import Any

import numpy as np

from ...eager_tensor import EagerTensor
from ...graph import Value
from ...graph import emit as _ops
from ..base import Layer
from .adapt_data import batches

_EPSILON = 1e-7  # Keras's backend.epsilon()


class Normalization(Layer):
    """Feature-wise normalization, Keras 3's ``keras.layers.Normalization``.

    Args:
        axis: the axes that keep their own statistics (default ``-1``: one mean per feature; ``None``: one
            mean for everything).
        mean, variance: fixed statistics (both or neither), broadcast over the kept axes; otherwise call
            ``adapt(data)`` before using the layer.
        invert: map normalized values back (``mean + x * sqrt(variance)``).

    Weights (when adapted): ``mean``, ``variance`` (shaped like the kept axes) and ``count`` (int64),
    non-trainable.

    Example:
        >>> import numpy as np
        >>> from onnxforge.layers import Normalization
        >>> layer = Normalization()
        >>> layer.adapt(np.array([[1.0, 10.0], [3.0, 30.0]]))
        >>> layer.adapt_mean.numpy().tolist(), layer.adapt_variance.numpy().tolist()
        ([2.0, 20.0], [1.0, 100.0])
    """

    supports_masking = True

    def __init__(self, axis: Any = -1, mean: Any = None, variance: Any = None, invert: bool = False,
                 **kwargs: Any):
        super().__init__(**kwargs)
        if axis is None:
            axis = ()
        elif isinstance(axis, (int, np.integer)):
            axis = (int(axis),)
        else:
            axis = tuple(int(a) for a in axis)
        self.axis = axis
        if (mean is not None) != (variance is not None):
            raise ValueError("When setting values directly, both `mean` and `variance` must be set. "
                             f"Received: mean={mean} and variance={variance}")
        if mean is not None:
            if np.shape(mean) != np.shape(variance):
                raise ValueError("When setting values directly, `mean` and `variance` must have the same shape. "
                                 f"Received: mean shape {np.shape(mean)} and variance shape {np.shape(variance)}")
            if len(np.shape(mean)) > len(self.axis):
                raise ValueError(f"The rank of `mean` must be less than or equal to the number of axes "
                                 f"({len(self.axis)}). Received: mean shape {np.shape(mean)} for axis {self.axis}")
        self.input_mean, self.input_variance = mean, variance
        self.invert = bool(invert)
        self._build_input_shape: tuple | None = None
        self._fixed: tuple[np.ndarray, np.ndarray] | None = None

    def build(self, input_shape):
        if input_shape is None:
            return
        input_shape = tuple(input_shape)
        ndim = len(input_shape)
        if any(a < -ndim or a >= ndim for a in self.axis):
            raise ValueError(f"All `axis` values must be in the range [-ndim, ndim). Received inputs with "
                             f"ndim={ndim}, while axis={self.axis}")
        self._build_input_shape = input_shape
        self._keep_axis = tuple(sorted(a % ndim for a in self.axis))
        for d in self._keep_axis:
            if input_shape[d] is None:
                raise ValueError(f"All `axis` values to be kept must have a known shape. Received axis={self.axis}, "
                                 f"inputs.shape={input_shape}, with unknown axis at index {d}")
        self._reduce_axis = tuple(d for d in range(ndim) if d not in self._keep_axis)
        self._broadcast_shape = [input_shape[d] if d in self._keep_axis else 1 for d in range(ndim)]
        shape = tuple(input_shape[d] for d in self._keep_axis)
        if self.input_mean is None:
            self.adapt_mean = self.add_weight(name="mean", shape=shape, initializer="zeros", trainable=False)
            self.adapt_variance = self.add_weight(name="variance", shape=shape, initializer="ones", trainable=False)
            self.count = self.add_weight(name="count", shape=(), dtype="int64", initializer="zeros", trainable=False)
        else:
            mean, variance = np.asarray(self.input_mean, np.float64), np.asarray(self.input_variance, np.float64)
            if mean.ndim:
                expanded = [1] * ndim
                for i in range(1, mean.ndim + 1):
                    expanded[self._keep_axis[-i]] = mean.shape[-i]
                mean, variance = mean.reshape(expanded), variance.reshape(expanded)
            target = tuple(self._broadcast_shape)
            self._fixed = (np.broadcast_to(mean, target).astype(self.compute_dtype),
                           np.broadcast_to(variance, target).astype(self.compute_dtype))

    def adapt(self, data: Any, steps: int | None = None) -> None:
        """Compute the mean and variance of ``data`` (an array or an iterable of batches) per kept axis."""
        if self.input_mean is not None:
            raise ValueError(f"Normalization {self.name!r} was given `mean` and `variance`: there is nothing to adapt.")
        first = True
        total_mean = total_var = None
        total_count = 0
        for batch in batches(data, f"Normalization {self.name!r}", steps, list_is_batches=True):
            batch = np.asarray(batch, np.float64)
            if first:
                if not self.built:
                    self._maybe_build(tuple(batch.shape))
                first = False
            for d in self._keep_axis:
                if batch.shape[d] != self._build_input_shape[d]:
                    raise ValueError(f"The layer was built with input_shape={self._build_input_shape}, but adapt() "
                                     f"is being called with data with an incompatible shape, data.shape={batch.shape}")
            batch_mean = batch.mean(axis=self._reduce_axis)
            batch_var = batch.var(axis=self._reduce_axis)
            count = math.prod(batch.shape[d] for d in self._reduce_axis) if self._reduce_axis else 1
            if total_mean is None:
                total_mean, total_var, total_count = batch_mean, batch_var, count
                continue
            # Keras's running merge of (mean, variance) across batches.
            total_count += count
            w = count / total_count
            new_mean = total_mean * (1 - w) + batch_mean * w
            total_var = (total_var + (total_mean - new_mean) ** 2) * (1 - w) + (batch_var + (batch_mean - new_mean) ** 2) * w
            total_mean = new_mean
        self.adapt_mean.assign(np.asarray(total_mean, np.float32).reshape(self.adapt_mean.shape))
        self.adapt_variance.assign(np.asarray(total_var, np.float32).reshape(self.adapt_variance.shape))

    # Keras's ``layer.mean`` / ``layer.variance``: the statistics broadcast to the input's rank (1 on the
    # reduced axes) in the compute dtype, ``None`` before build. Read from the weights on each access, so
    # they follow adapt(), set_weights() and loading (Keras refreshes them at those points).
    @property
    def mean(self) -> EagerTensor | None:
        """The mean, shaped ``(1, features)`` for the default axis (Keras prints ``normalizer.mean.numpy()``)."""
        return self._broadcast_statistic(0)

    @property
    def variance(self) -> EagerTensor | None:
        """The variance, shaped like ``mean``."""
        return self._broadcast_statistic(1)

    def _broadcast_statistic(self, k: int) -> EagerTensor | None:
        if self._fixed is not None:
            return EagerTensor(self._fixed[k])
        if self._build_input_shape is None:
            return None
        weight = (self.adapt_mean, self.adapt_variance)[k]
        return EagerTensor(np.asarray(weight.numpy()).reshape(self._broadcast_shape).astype(self.compute_dtype))

    def _statistics(self, x: Value) -> tuple[Any, Any]:
        b = x.builder
        if self._fixed is not None:
            return b.const(self._fixed[0], x.dtype), b.const(self._fixed[1], x.dtype)
        shape = _ops.ints(b, self._broadcast_shape)
        return b.op("Reshape", [self.adapt_mean, shape]), b.op("Reshape", [self.adapt_variance, shape])

    def call(self, inputs):
        b = inputs.builder
        mean, variance = self._statistics(inputs)
        scale = b.op("Max", [b.op("Sqrt", [variance]), b.const(np.asarray(_EPSILON, np.float32), inputs.dtype)])
        if self.invert:
            return mean + inputs * scale
        return (inputs - mean) / scale

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _count_flops(self, input_shapes, output_shapes):
        return 2 * int(np.prod([d or 1 for d in input_shapes[0][1:]]))

    def get_build_config(self) -> dict | None:
        return None if self._build_input_shape is None else {"input_shape": list(self._build_input_shape)}

    def build_from_config(self, config: dict | None) -> None:
        if config and not self.built:
            self._maybe_build(tuple(config["input_shape"]))

    def get_config(self):
        return {**super().get_config(), "axis": list(self.axis), "invert": self.invert,
                "mean": np.array(self.input_mean).tolist(), "variance": np.array(self.input_variance).tolist()}
