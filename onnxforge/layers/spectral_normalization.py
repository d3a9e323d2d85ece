"""``SpectralNormalization``: divides a wrapped layer's kernel by its largest singular value (Miyato et al.,
2018), estimated by power iteration, as Keras 3's wrapper does.

Keras's semantics, which this follows step for step:

* In training (``training=True``), each call runs ``power_iterations`` steps from the stored ``vector_u``,
  then *assigns* both the new ``vector_u`` and the normalized kernel ``kernel / sigma`` to the variables, and
  the wrapped layer runs with the assigned kernel. A kernel that is all zeros is left as it is.
* In inference the wrapped layer runs with the stored kernel (normalized by the last training call), and
  nothing is updated.
* Gradients: an assignment is not differentiable in TensorFlow, so the kernel's gradient is the gradient
  with respect to the normalized kernel the layer used, with nothing flowing through ``sigma``; the
  optimizer then updates the variable from that normalized value (``compiler.programs`` sums a weight's
  gradient over the values it was read as and updates it from its last assigned value).

Example:
    >>> import numpy as np
    >>> from onnxforge import layers
    >>> sn = layers.SpectralNormalization(layers.Conv2D(2, 2))
    >>> sn(np.random.rand(1, 10, 10, 1).astype("float32")).shape
    TensorShape([1, 9, 9, 2])
"""
from __future__ import annotations

__all__ = ["SpectralNormalization"]

from typing import Any

import numpy as np

from .. import initializers, ops
from ..graph import Value, np_dtype
from ..tracing import current_trace
from ..variables import Variable
from .base import InputSpec, Layer
from .wrapper import Wrapper


def _normalize(x: Value) -> Value:
    """``x * min(1 / ||x||, 1 / epsilon)`` over all its entries (Keras's ``normalize(x, axis=None)``)."""
    from ..backend_config import epsilon

    b = x.builder
    square_sum = b.op("ReduceSum", [x * x], keepdims=1)
    inv = b.op("Min", [b.op("Reciprocal", [b.op("Sqrt", [square_sum])]),
                       b.const(np.asarray(1.0 / epsilon(), np_dtype(x.dtype)))])
    return x * inv


class SpectralNormalization(Wrapper):
    """Spectral normalization of the ``kernel`` (or ``embeddings``) of ``layer`` (Keras 3
    ``keras.layers.SpectralNormalization``), for Lipschitz-constrained layers such as GAN discriminators.

    Args:
        layer: a layer with a ``kernel`` (``Dense``, ``Conv2D``, ...) or an ``embeddings`` (``Embedding``)
            weight.
        power_iterations: power-iteration steps per training call, a positive int (default 1).
        **kwargs: base layer arguments (``name``, ``trainable``, ...).

    Weights, in Keras's order: the kernel, ``vector_u`` (non-trainable, ``(1, kernel.shape[-1])``,
    truncated normal with ``stddev=0.02``), then the wrapped layer's other weights.

    Example:
        >>> from onnxforge import keras
        >>> sn = keras.layers.SpectralNormalization(keras.layers.Dense(3, name="d"), name="sn")
        >>> model = keras.Sequential([keras.Input((4,)), sn])
        >>> [w.path for w in sn.weights]
        ['sn/d/kernel', 'sn/vector_u', 'sn/d/bias']
    """

    def __init__(self, layer: Layer, power_iterations: int = 1, **kwargs: Any):
        super().__init__(layer, **kwargs)
        if isinstance(power_iterations, bool) or not isinstance(power_iterations, (int, np.integer)) \
                or power_iterations <= 0:
            raise ValueError("`power_iterations` should be greater than zero. Received: "
                             f"`power_iterations={power_iterations}`")
        self.power_iterations = int(power_iterations)

    def build(self, input_shape: Any) -> None:
        super().build(input_shape)
        shape = tuple(input_shape)
        self.input_spec = InputSpec(min_ndim=1, axes={-1: shape[-1]})
        kernel = getattr(self.layer, "kernel", None)
        if not isinstance(kernel, Variable):
            kernel = getattr(self.layer, "embeddings", None)
        if not isinstance(kernel, Variable):
            raise ValueError(f"{type(self.layer).__name__} object has no attribute 'kernel' nor 'embeddings'")
        # Held as an attribute, as Keras does: it makes the kernel this wrapper's first weight.
        self.kernel = kernel
        self.kernel_shape = tuple(kernel.shape)
        self.vector_u = self.add_weight(shape=(1, self.kernel_shape[-1]),
                                        initializer=initializers.TruncatedNormal(stddev=0.02),
                                        trainable=False, name="vector_u", dtype=kernel.dtype)
        for w in self.layer.weights:   # Keras's paths: spectral_normalization/dense/kernel
            if not w.path.startswith(self.name + "/"):
                w.path = f"{self.name}/{w.path}"
        self.built = True

    def call(self, inputs, training=False):
        if training:
            ctx = current_trace()
            kernel, u = ctx.read(self.kernel), ctx.read(self.vector_u)
            b = kernel.builder
            new_u, new_kernel = self._normalized_weights(kernel, u)
            # Keras's ``cond``: an all-zero kernel (a fresh zeros initializer) keeps both values.
            nonzero = b.op("Cast", [b.op("Not", [b.op("Equal", [kernel, b.const(np.asarray(0, np_dtype(kernel.dtype)))])])],
                           to=1)
            all_zero = b.op("Equal", [b.op("ReduceMax", [b.op("Reshape", [nonzero, b.const(np.asarray([-1], np.int64))])],
                                           keepdims=0), b.const(np.asarray(0.0, np.float32))])
            self.vector_u.assign(b.op("Where", [all_zero, u, new_u], shape=u.shape))
            self.kernel.assign(b.op("Where", [all_zero, kernel, new_kernel], shape=kernel.shape))
        output = self.layer(inputs)
        return ops.cast(output, inputs.dtype) if output.dtype != inputs.dtype else output

    def _normalized_weights(self, kernel: Value, u: Value) -> tuple[Value, Value]:
        """The power iteration from ``u``: the new ``u`` and ``kernel / sigma``. ``u`` and ``v`` are
        constants to gradients, as Keras stops them."""
        b = kernel.builder
        columns = self.kernel_shape[-1]
        weights = b.op("Reshape", [kernel, b.const(np.asarray([-1, columns], np.int64))],
                       shape=(int(np.prod(self.kernel_shape[:-1])), columns))
        transposed = b.op("Transpose", [weights], perm=[1, 0])
        v = u
        for _ in range(self.power_iterations):
            v = _normalize(b.op("MatMul", [u, transposed]))
            u = _normalize(b.op("MatMul", [v, weights]))
        u, v = ops.stop_gradient(u), ops.stop_gradient(v)
        sigma = b.op("MatMul", [b.op("MatMul", [v, weights]), b.op("Transpose", [u], perm=[1, 0])], shape=(1, 1))
        normalized = b.op("Reshape", [b.op("Div", [weights, sigma]), b.const(np.asarray(self.kernel_shape, np.int64))],
                          shape=self.kernel_shape)
        return u, normalized

    def compute_output_shape(self, input_shape: Any) -> Any:
        return self.layer.compute_output_shape(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "power_iterations": self.power_iterations}
