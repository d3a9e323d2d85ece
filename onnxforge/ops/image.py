"""Image ops (``keras.ops.image``): ``extract_patches``, ``resize``, ``affine_transform``, ``rgb_to_grayscale`` here;
the colour and filter ops (``image_filters``), crops, pads and ``scale_and_translate`` (``image_geometry``) and
the warps (``image_warp``) re-exported from their modules.

Symbolic on graph values (inside a traced layer or ``train_step``), eager on NumPy arrays, with Keras 3's
arguments and numbers: ``extract_patches`` is Keras's convolution with an identity kernel (patch values in
``(row, column, channel)`` order), differentiable through the ``Conv`` gradient rule; ``resize`` and
``affine_transform`` share the implementations of the ``Resizing`` and random-augmentation layers.

Example:
    >>> import numpy as np
    >>> from onnxforge import ops
    >>> ops.image.extract_patches(np.ones((1, 4, 4, 3), np.float32), 2).shape
    TensorShape([1, 2, 2, 12])
"""
from __future__ import annotations

__all__ = ["extract_patches", "extract_patches_3d", "resize", "affine_transform", "rgb_to_grayscale", "rgb_to_hsv",
           "hsv_to_rgb", "gaussian_blur", "sobel_edges", "ssim", "crop_images", "pad_images", "scale_and_translate",
           "map_coordinates", "perspective_transform", "elastic_transform"]

from typing import Any

import numpy as np

from ..backend_config import normalize_data_format
from ..graph.shape_inference import fill_shapes
from ..graph.size_limits import check_constant
from ..graph import Value
from ._util import as_value, builder_of, symbolic
from . import _conv_utils as cu
from ._image_kernels import affine_transform as _affine
from ._image_kernels import resize_images


def _b(*args: Any):
    return builder_of(args)


def _tuple(value: Any, n: int, name: str) -> tuple[int, ...]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return (int(value),) * n
    if isinstance(value, (list, tuple)) and len(value) == n and all(isinstance(v, (int, np.integer)) for v in value):
        return tuple(int(v) for v in value)
    raise ValueError(f"extract_patches(): `{name}` must be an int or a tuple of {n} ints. Received: {name}={value!r}")


@symbolic
def extract_patches(images: Any, size: Any, strides: Any = None, dilation_rate: Any = 1, padding: str = "valid",
                    data_format: str | None = None) -> Value:
    """Patches of ``images`` as channels: ``(N, H, W, C)`` -> ``(N, h', w', ph * pw * C)`` (3-D patches for a
    ``size`` of 3 ints on ``(N, D, H, W, C)``), Keras 3's ``ops.image.extract_patches``.

    Args:
        images: a batch (or a single image / volume).
        size: the patch size: an int or ``(ph, pw)`` (``(pd, ph, pw)`` for volumes).
        strides: steps between patches (default ``size``: non-overlapping).
        dilation_rate: spacing of the sampled pixels (not with ``strides > 1``).
        padding: ``"valid"`` or ``"same"``.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
    """
    if not isinstance(size, (int, np.integer)) and not (isinstance(size, (tuple, list)) and len(size) in (2, 3)):
        raise ValueError(f"Invalid `size` argument. Expected an int or a tuple of length 2 or 3. Received: size={size}")
    b = _b(images)
    x = as_value(images, b)
    rank = 3 if isinstance(size, (tuple, list)) and len(size) == 3 else 2
    kernel = _tuple(size, rank, "size")
    strides = kernel if not strides else _tuple(strides, rank, "strides")
    dilations = _tuple(dilation_rate, rank, "dilation_rate")
    if max(strides) > 1 and max(dilations) > 1:
        raise ValueError("`strides > 1` not supported in conjunction with `dilation_rate > 1`. "
                         f"Received: strides={strides} and dilation_rate={dilations}")
    padding = cu.check_padding("extract_patches", padding, ("valid", "same"))
    data_format = normalize_data_format(data_format)
    unbatched = len(x.shape) == rank + 1
    if unbatched:
        x = b.op("Unsqueeze", [x, b.const(np.asarray([0], np.int64))], shape=(1, *x.shape))
    cf = cu.to_channels_first(x, data_format)
    channels = cf.shape[1]
    if not isinstance(channels, int):
        raise ValueError(f"extract_patches(): the channel dimension must be known. Received shape {x.shape}")
    out = int(np.prod(kernel)) * channels
    # The identity kernel in Keras's layout (*k, C, out), moved to ONNX's (out, C, *k).
    check_constant((out, out), 4, "extract_patches's identity kernel")   # before numpy allocates it
    eye = np.eye(out, dtype=np.float32).reshape(*kernel, channels, out)
    weight = b.const(np.ascontiguousarray(np.moveaxis(eye, [-1, -2], [0, 1])), cf.dtype)
    attrs = cu.padding_attrs(tuple(cf.shape[2:]), kernel, strides, dilations, padding)
    y = b.op("Conv", [cf, weight], kernel_shape=list(kernel), strides=list(strides), dilations=list(dilations),
             **attrs)
    fill_shapes(b, len(b.nodes) - 1)
    y = cu.to_channels_last(y, data_format)
    if unbatched:
        y = b.op("Squeeze", [y, b.const(np.asarray([0], np.int64))])
    return y


@symbolic
def resize(images: Any, size: Any, interpolation: str = "bilinear", antialias: bool = False,
           crop_to_aspect_ratio: bool = False, pad_to_aspect_ratio: bool = False, fill_mode: str = "constant",
           fill_value: float = 0.0, data_format: str | None = None) -> Value:
    """Resize images to ``size = (height, width)``: Keras 3's ``ops.image.resize`` on its torch backend
    (``bilinear`` / ``bicubic`` with half-pixel centers, ``nearest`` as ``nearest-exact``)."""
    if fill_mode != "constant":
        raise ValueError(f"Invalid value for argument `fill_mode`. Only `'constant'` is supported. "
                         f"Received: fill_mode={fill_mode}")
    if interpolation not in ("bilinear", "nearest", "bicubic"):
        raise ValueError(f"Invalid value for argument `interpolation`. Expected one of ('bilinear', 'nearest', "
                         f"'bicubic'). Received: interpolation={interpolation}")
    if len(tuple(size)) != 2:
        raise ValueError(f"Argument `size` must be a tuple of two elements (height, width). Received: size={size}")
    b = _b(images)
    x = as_value(images, b)
    if not x.is_float:
        x = b.op("Cast", [x], to=1, shape=x.shape)
    return resize_images(x, tuple(size), interpolation, antialias, crop_to_aspect_ratio, pad_to_aspect_ratio,
                         fill_value, normalize_data_format(data_format), "ops.image.resize")


@symbolic
def affine_transform(images: Any, transform: Any, interpolation: str = "bilinear", fill_mode: str = "constant",
                     fill_value: float = 0.0, data_format: str | None = None) -> Value:
    """Keras 3's ``ops.image.affine_transform``: ``transform`` ``(N, 8)`` maps output pixels to input points."""
    b = _b(images, transform)
    x, t = as_value(images, b), as_value(transform, b)
    if x.shape is None or len(x.shape) not in (3, 4):
        raise ValueError("Invalid images rank: expected rank 3 (single image) or rank 4 (batch of images). "
                         f"Received input with shape: images.shape={x.shape}")
    if t.shape is None or len(t.shape) not in (1, 2):
        raise ValueError("Invalid transform rank: expected rank 1 (single transform) or rank 2 (batch of "
                         f"transforms). Received input with shape: transform.shape={t.shape}")
    zero = b.const(np.asarray([0], np.int64))
    unbatched = len(x.shape) == 3   # one image, as Keras allows: a batch of one inside
    if unbatched:
        x = b.op("Unsqueeze", [x, zero], shape=(1, *x.shape))
    if len(t.shape) == 1:
        t = b.op("Unsqueeze", [t, zero])
    y = _affine(x, t, interpolation, fill_mode, fill_value, normalize_data_format(data_format))
    if not unbatched:
        return y
    return b.op("Squeeze", [y, zero], shape=None if y.shape is None else tuple(y.shape[1:]))


# ITU-R 601 luma weights, as Keras 3 (and torchvision) use them.
_LUMA = (0.2989, 0.587, 0.114)


@symbolic
def rgb_to_grayscale(images: Any, data_format: str | None = None) -> Value:
    """Keras 3's ``ops.image.rgb_to_grayscale``: ``0.2989 R + 0.587 G + 0.114 B`` as one channel (a
    one-channel input is returned as it is), in the images' own type, for a single image or a batch.

    Example:
        >>> import numpy as np
        >>> from onnxforge import ops
        >>> ops.image.rgb_to_grayscale(np.ones((2, 4, 4, 3), np.float32)).shape
        TensorShape([2, 4, 4, 1])
    """
    b = _b(images)
    x = as_value(images, b)
    shape = x.shape
    if shape is None or len(shape) not in (3, 4):
        raise ValueError("Invalid images rank: expected rank 3 (single image) or rank 4 (batch of images). "
                         f"Received input with shape: images.shape={shape}")
    axis = len(shape) - 3 if normalize_data_format(data_format) == "channels_first" else len(shape) - 1
    if shape[axis] not in (1, 3):
        raise ValueError("Invalid channel size: expected 3 (RGB) or 1 (Grayscale). "
                         f"Received input with shape: images.shape={shape}")
    if shape[axis] == 1:
        return x
    weights_shape = [1] * len(shape)
    weights_shape[axis] = 3
    compute = x if x.is_float else b.op("Cast", [x], to=1, shape=shape)
    weights = b.const(np.asarray(_LUMA, np.float32).reshape(weights_shape), compute.dtype)
    out_shape = tuple(1 if i == axis else d for i, d in enumerate(shape))
    gray = b.op("ReduceSum", [compute * weights, b.const(np.asarray([axis], np.int64))], keepdims=1, shape=out_shape)
    return gray if x.is_float else b.op("Cast", [gray], to=x.dtype, shape=out_shape)


@symbolic
def extract_patches_3d(volumes: Any, size: Any, strides: Any = None, dilation_rate: Any = 1, padding: str = "valid",
                       data_format: str | None = None) -> Value:
    """Patches of volumes as channels, ``(N, D, H, W, C)`` -> ``(N, d', h', w', pd * ph * pw * C)`` (one volume
    without the batch axis), Keras 3's ``ops.image.extract_patches_3d``.

    Example:
        >>> import numpy as np
        >>> from onnxforge import ops
        >>> ops.image.extract_patches_3d(np.ones((4, 4, 4, 2), np.float32), 2).shape
        TensorShape([2, 2, 2, 16])
    """
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (int(size),) * 3
    if not isinstance(size, (tuple, list)) or len(size) != 3:
        raise TypeError(f"Invalid `size` argument. Expected an int or a tuple of length 3. Received: size={size}")
    if isinstance(strides, (int, np.integer)) and not isinstance(strides, bool):
        strides = (int(strides),) * 3
    if strides is not None and (not isinstance(strides, (tuple, list)) or len(strides) != 3):
        raise ValueError(f"Invalid `strides` argument. Got: {strides}")
    b = _b(volumes)
    x = as_value(volumes, b)
    if x.shape is None or len(x.shape) not in (4, 5):
        raise ValueError(f"extract_patches_3d(): `volumes` must be 4D or 5D. Received: volumes.shape={x.shape}")
    return extract_patches(x, tuple(size), strides, dilation_rate, padding, data_format)


# The other families of keras.ops.image, written in their own modules.
from .image_filters import gaussian_blur, hsv_to_rgb, rgb_to_hsv, sobel_edges, ssim  # noqa: E402
from .image_geometry import crop_images, pad_images, scale_and_translate  # noqa: E402
from .image_warp import elastic_transform, map_coordinates, perspective_transform  # noqa: E402
