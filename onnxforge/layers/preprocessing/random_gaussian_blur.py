"""``RandomGaussianBlur`` as Keras 3.15 has it: in training each image is blurred with a probability of its
own, by one Gaussian kernel drawn for the whole batch, and the batch is clipped to ``value_range``.

Keras draws per image a probability ``p ~ U(factor)`` and a threshold ``t ~ U(0, 1)`` (blur when ``t < p``),
then one ``(sigma_x, sigma_y) ~ U(sigma) + 1e-6`` for the batch. The kernel is the outer product of two
normalised 1-D Gaussians over the offsets ``i - (k - 1) / 2`` (``sigma_y`` down the rows, ``sigma_x`` across);
since the sigmas are drawn at run time the kernel is computed in the graph and given to a ``Conv`` as its weight
input, one channel at a time (channels folded into the batch), zero padded like Keras's torch backend.
"""
from __future__ import annotations

__all__ = ["RandomGaussianBlur"]

from typing import Any

import numpy as np

from ...graph import emit as _ops
from ...graph.size_limits import check_constant
from ...tracing import current_trace
from .image_base import ImageAugmentationLayer, factor_pair


def _kernel_size(value: Any) -> tuple[int, int]:
    """Keras's check (odd numbers, one or a pair); onnxforge also needs a square kernel (see the class)."""
    error = f"kernel_size must be an odd number. Received: kernel_size={value}"
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError("The `kernel_size` argument should be a number (or a list of two numbers) "
                             f"Received: kernel_size={value}")
        pair = tuple(value)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        pair = (value, value)
    else:
        raise ValueError(error)
    if any(not float(v).is_integer() or v % 2 == 0 or v < 1 for v in pair):
        raise ValueError(error)
    if pair[0] != pair[1]:
        raise ValueError("RandomGaussianBlur supports square kernels only (Keras's torch backend reshapes a "
                         f"non-square kernel into the wrong shape). Received: kernel_size={value}")
    return int(pair[0]), int(pair[1])


class RandomGaussianBlur(ImageAugmentationLayer):
    """Blurs each image with probability ``U(factor)`` by a ``kernel_size`` Gaussian whose two standard
    deviations are drawn from ``sigma`` once per batch, then clips the batch to ``value_range``. Identity at
    inference, as Keras 3's ``RandomGaussianBlur``.

    Example:
        >>> import numpy as np
        >>> from onnxforge.layers import RandomGaussianBlur
        >>> image = np.zeros((1, 5, 5, 1), np.float32)
        >>> image[0, 2, 2, 0] = 255.0
        >>> out = RandomGaussianBlur(factor=(1.0, 1.0), sigma=(1.0, 1.0))(image, training=True)
        >>> float(out.sum().round(2)), bool(out[0, 2, 2, 0] < 255.0)   # the same mass, spread out
        (255.0, True)
        >>> bool((RandomGaussianBlur()(image, training=False) == image).all())
        True
    """

    def __init__(self, factor: Any = 1.0, kernel_size: Any = 3, sigma: Any = 1.0, value_range: Any = (0, 255),
                 data_format: str | None = None, seed: int | None = None, **kwargs: Any):
        super().__init__(data_format, seed, **kwargs)
        self.factor = factor_pair(factor, (0, 1))
        self.kernel_size = _kernel_size(kernel_size)
        self.sigma = factor_pair(sigma, (0, 1), "sigma")
        if not isinstance(value_range, (tuple, list)) or len(value_range) != 2:
            raise ValueError("The `value_range` argument should be a list of two numbers. "
                             f"Received: value_range={value_range}")
        self.value_range = list(value_range)   # kept as given, as Keras does (no sorting)

    def _draw(self, images):
        b = images.builder
        probability, threshold = self._uniform(images, *self.factor), self._uniform(images, 0.0, 1.0)
        apply = b.op("Less", [threshold[0], probability[0]])
        rank = len(images.shape)
        one = b.op("Slice", [images, _ops.ints(b, [0] * rank), _ops.ints(b, [1] * rank),
                             _ops.ints(b, list(range(rank)))], shape=(1,) * rank)
        low, high = self.sigma
        ctx = current_trace()
        sigma_x, sigma_y = (ctx.random_uniform(one) * float(high - low) + float(low) + 1e-6 for _ in range(2))
        return apply, sigma_x, sigma_y

    def _gaussian(self, sigma, size):
        """A normalised 1-D Gaussian over ``size`` offsets, shaped ``(size,)``."""
        b = sigma.builder
        check_constant((size,), 4, "the Gaussian kernel")   # before numpy allocates its offsets
        offsets = b.const(np.arange(size, dtype=np.float32) - np.float32((size - 1) / 2), sigma.dtype)
        scaled = offsets / b.op("Reshape", [sigma, _ops.ints(b, [1])])
        kernel = b.op("Exp", [scaled * scaled * -0.5])
        return kernel / _ops.reduce("ReduceSum", kernel, [0], True)

    def _transform(self, images, params):
        apply, sigma_x, sigma_y = params
        b = images.builder
        k = self.kernel_size[0]
        kx, ky = self._gaussian(sigma_x, k), self._gaussian(sigma_y, k)
        kernel = b.op("Mul", [b.op("Reshape", [ky, _ops.ints(b, [k, 1])]), b.op("Reshape", [kx, _ops.ints(b, [1, k])])])
        weight = b.op("Reshape", [kernel, _ops.ints(b, [1, 1, k, k])], shape=(1, 1, k, k))
        last = self.data_format == "channels_last"
        nchw = b.op("Transpose", [images], perm=[0, 3, 1, 2]) if last else images
        shape = b.op("Shape", [nchw])
        h, w = self._hw(images)
        planes = b.op("Reshape", [nchw, _ops.ints(b, [-1, 1, h, w])])
        if weight.dtype != planes.dtype:
            weight = b.op("Cast", [weight], to=planes.dtype)
        pad = k // 2
        blurred = b.op("Conv", [planes, weight], kernel_shape=[k, k], pads=[pad] * 4, group=1)
        blurred = b.op("Reshape", [blurred, shape])
        if last:
            blurred = b.op("Transpose", [blurred], perm=[0, 2, 3, 1])
        out = b.op("Where", [apply, blurred, images], dtype=images.dtype)
        low, high = (b.const(np.float32(v), images.dtype) for v in self.value_range)
        out = b.op("Min", [b.op("Max", [out, low]), high])
        return _ops.set_shape(out, images.shape)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor), "kernel_size": list(self.kernel_size),
                "sigma": list(self.sigma), "value_range": list(self.value_range)}

    def _count_flops(self, input_shapes, output_shapes):
        return 0

