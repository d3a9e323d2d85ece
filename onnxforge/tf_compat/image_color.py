"""``tf.image``'s colour-space conversions and image-quality measures: ``rgb_to_yuv`` / ``yuv_to_rgb``,
``rgb_to_yiq`` / ``yiq_to_rgb``, ``rgb_to_hsv`` / ``hsv_to_rgb``, ``psnr``, ``total_variation`` and
``image_gradients``.

Super-resolution programs (keras.io's ESPCN) train on the Y channel of ``rgb_to_yuv`` and report ``psnr``;
both are ``keras.ops`` compositions here, so they run on arrays in ``dataset.map``, in a traced step and in
a Lambda layer. The YUV and YIQ conversions are TensorFlow's 3x3 matrices on the last axis and, as in
TensorFlow, need float images.

Example:
    >>> import numpy as np
    >>> rgb = np.array([[[1.0, 0.0, 0.0]]], "float32")
    >>> np.asarray(rgb_to_yuv(rgb)).astype(float).round(3).tolist()
    [[[0.299, -0.147, 0.615]]]
    >>> float(np.round(psnr(np.zeros((2, 2, 1), "float32"), np.full((2, 2, 1), 0.1, "float32"), 1.0), 3))
    20.0
"""
from __future__ import annotations

__all__ = ["rgb_to_yuv", "yuv_to_rgb", "rgb_to_yiq", "yiq_to_rgb", "rgb_to_hsv", "hsv_to_rgb", "psnr",
           "total_variation", "image_gradients"]

from typing import Any

import numpy as np

from .. import ops as _ops

# TensorFlow's matrices (rows: input channels, columns: output channels), as its image_ops_impl defines them.
_RGB_TO_YUV = [[0.299, -0.14714119, 0.61497538], [0.587, -0.28886916, -0.51496512],
               [0.114, 0.43601035, -0.10001026]]
_YUV_TO_RGB = [[1.0, 1.0, 1.0], [0.0, -0.394642334, 2.03206185], [1.13988303, -0.58062185, 0.0]]
_RGB_TO_YIQ = [[0.299, 0.59590059, 0.2115], [0.587, -0.27455667, -0.52273617],
               [0.114, -0.32134392, 0.31119955]]
_YIQ_TO_RGB = [[1.0, 1.0, 1.0], [0.95598634, -0.27201283, -1.10674021], [0.6208248, -0.64720424, 1.70423049]]


def _static_shape(x: Any) -> tuple:
    """The shape known while building (``None`` for a batch axis of a symbolic tensor), never a graph value."""
    return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)


def _float_images(images: Any, fn: str) -> Any:
    """``images`` as a tensor with a last axis of 3 in a float dtype (TensorFlow refuses integer images)."""
    if isinstance(images, (list, tuple)):
        images = np.asarray(images, dtype="float32")
    shape = _static_shape(images)
    if not shape or shape[-1] != 3:
        raise ValueError(f"tf.image.{fn}: 'images' must have 3 channels on the last axis. "
                         f"Received: images.shape={shape}")
    dtype = np.dtype(str(_ops.dtype(images)))
    if dtype.kind != "f":
        raise TypeError(f"tf.image.{fn}: 'images' must be a float tensor (convert integer images with "
                        f"tf.image.convert_image_dtype first). Received: dtype={dtype.name}")
    return images, dtype


def _mix(images: Any, matrix: list, fn: str) -> Any:
    images, dtype = _float_images(images, fn)
    return _ops.tensordot(images, np.asarray(matrix, dtype=dtype), axes=[[-1], [0]])


def rgb_to_yuv(images: Any) -> Any:
    """``tf.image.rgb_to_yuv``: Y in [0, 1], U in [-0.436, 0.436], V in [-0.615, 0.615] for RGB in [0, 1]."""
    return _mix(images, _RGB_TO_YUV, "rgb_to_yuv")


def yuv_to_rgb(images: Any) -> Any:
    """``tf.image.yuv_to_rgb``: the inverse of ``rgb_to_yuv``."""
    return _mix(images, _YUV_TO_RGB, "yuv_to_rgb")


def rgb_to_yiq(images: Any) -> Any:
    """``tf.image.rgb_to_yiq``: NTSC's luma and two chroma axes."""
    return _mix(images, _RGB_TO_YIQ, "rgb_to_yiq")


def yiq_to_rgb(images: Any) -> Any:
    """``tf.image.yiq_to_rgb``: the inverse of ``rgb_to_yiq``."""
    return _mix(images, _YIQ_TO_RGB, "yiq_to_rgb")


def rgb_to_hsv(images: Any, name: str | None = None) -> Any:
    """``tf.image.rgb_to_hsv``: hue, saturation and value, each in [0, 1] for RGB in [0, 1]."""
    images, _ = _float_images(images, "rgb_to_hsv")
    return _ops.image.rgb_to_hsv(images, data_format="channels_last")


def hsv_to_rgb(images: Any, name: str | None = None) -> Any:
    """``tf.image.hsv_to_rgb``: the inverse of ``rgb_to_hsv``."""
    images, _ = _float_images(images, "hsv_to_rgb")
    return _ops.image.hsv_to_rgb(images, data_format="channels_last")


def _as_unit_float(images: Any) -> Any:
    """Integer images to float32 in [0, 1] (TensorFlow's ``convert_image_dtype``), float ones unchanged."""
    images = np.asarray(images) if isinstance(images, (list, tuple)) else images
    dtype = np.dtype(str(_ops.dtype(images)))
    if dtype.kind == "f":
        return images
    return _ops.multiply(_ops.cast(images, "float32"), 1.0 / float(np.iinfo(dtype).max))


def psnr(a: Any, b: Any, max_val: Any, name: str | None = None) -> Any:
    """``tf.image.psnr``: ``10 log10(max_val^2 / MSE)`` over the last three axes, one value per image.

    ``max_val`` is in the images' own units (255 for uint8 images, which are compared in [0, 1] with
    ``max_val`` scaled alike, as TensorFlow does).
    """
    shape_a, shape_b = _static_shape(a), _static_shape(b)
    # Only sizes known on both sides can disagree: inside a traced metric the height and width of a
    # fully convolutional model's output are symbolic (keras.io's MIRNet takes Input([None, None, 3])).
    clash = len(shape_a) != len(shape_b) or any(
        isinstance(x, int) and isinstance(y, int) and x != y for x, y in zip(shape_a, shape_b))
    if clash or len(shape_a) < 3:
        raise ValueError(f"tf.image.psnr: 'a' and 'b' must be images of one shape, at least 3-D "
                         f"[height, width, channels]. Received: a.shape={shape_a}, b.shape={shape_b}")
    kind = np.dtype(str(_ops.dtype(a))).kind
    if kind in "iu":
        max_val = _ops.divide(_ops.cast(max_val, "float32"), float(np.iinfo(np.dtype(str(_ops.dtype(a)))).max))
    a, b = _as_unit_float(a), _as_unit_float(b)
    mse = _ops.mean(_ops.square(_ops.subtract(a, b)), axis=(-3, -2, -1))
    max_val = _ops.cast(max_val, str(_ops.dtype(mse)))
    # TensorFlow's own arrangement of the formula, so that mse == 0 gives +inf as it does.
    return _ops.subtract(_ops.multiply(_ops.log(max_val), 20.0 / np.log(10.0)),
                         _ops.multiply(_ops.log(mse), 10.0 / np.log(10.0)))


def total_variation(images: Any, name: str | None = None) -> Any:
    """``tf.image.total_variation``: the sum of absolute differences between neighbouring pixels (one value
    per image for a batch)."""
    shape = _static_shape(images)
    if len(shape) not in (3, 4):
        raise ValueError(f"tf.image.total_variation: 'images' must be 3-D or 4-D. Received: shape={shape}")
    images = np.asarray(images) if isinstance(images, (list, tuple)) else images
    down = _ops.abs(_ops.subtract(images[..., 1:, :, :], images[..., :-1, :, :]))
    right = _ops.abs(_ops.subtract(images[..., :, 1:, :], images[..., :, :-1, :]))
    axes = (-3, -2, -1)
    return _ops.add(_ops.sum(down, axis=axes), _ops.sum(right, axis=axes))


def image_gradients(image: Any) -> tuple[Any, Any]:
    """``tf.image.image_gradients``: ``(dy, dx)``, forward differences with a zero last row / column."""
    shape = _static_shape(image)
    if len(shape) != 4:
        raise ValueError(f"tf.image.image_gradients: 'image' must be 4-D [batch, height, width, channels]. "
                         f"Received: shape={shape}")
    image = np.asarray(image) if isinstance(image, (list, tuple)) else image
    dy = _ops.subtract(image[:, 1:, :, :], image[:, :-1, :, :])
    dx = _ops.subtract(image[:, :, 1:, :], image[:, :, :-1, :])
    dy = _ops.pad(dy, [[0, 0], [0, 1], [0, 0], [0, 0]])
    dx = _ops.pad(dx, [[0, 0], [0, 0], [0, 1], [0, 0]])
    return dy, dx
