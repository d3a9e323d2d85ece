"""``tf.image``: the image functions TensorFlow's image tutorials call in ``dataset.map`` and in Lambda layers.

Resizing (``resize`` with TensorFlow's method names, ``resize_with_crop_or_pad``, ``resize_with_pad``,
``central_crop``, the bounding-box crops and pads), flips and ``rot90``, colour (``rgb_to_grayscale``, ``grayscale_to_rgb``, the
``adjust_*`` functions, ``per_image_standardization``; the YUV / YIQ / HSV conversions, ``psnr``,
``total_variation`` and ``image_gradients`` come from ``image_color``; ``extract_patches`` from
``image_patches``), ``convert_image_dtype``, and the
random augmentations (``random_*`` and the ``stateless_random_*`` forms, whose ``seed`` pair fixes the draw).
They are ``keras.ops`` compositions, so they run on arrays, in a traced step and inside a Lambda layer. Images
are ``[height, width, channels]`` or ``[batch, height, width, channels]``; integer images go through float32
and back, as TensorFlow's do. The random draws come from onnxforge's generator: their distributions are
TensorFlow's, their numbers are not.

Example:
    >>> import numpy as np
    >>> image = np.arange(12, dtype="float32").reshape(2, 2, 3)
    >>> flip_left_right(image)[0, 0].tolist()
    [3.0, 4.0, 5.0]
    >>> resize(np.zeros((4, 6, 3), "uint8"), [2, 3]).shape, str(resize(np.zeros((4, 6, 3)), [2, 3]).dtype)
    (TensorShape([2, 3, 3]), 'float32')
"""
from __future__ import annotations

__all__ = ["image"]

import builtins
import types
from typing import Any

import numpy as np
import onnx

from .. import ops as _ops
from ..ops import random as _random
from ..ops._image_kernels import resize_images
from ..graph import Value
from ..ops._util import as_value, builder_of, cast_value, symbolic
from . import image_boxes as _boxes
from . import image_color as _color
from . import image_codecs as _codecs
from .image_patches import extract_patches

ResizeMethod = types.SimpleNamespace(BILINEAR="bilinear", NEAREST_NEIGHBOR="nearest", BICUBIC="bicubic",
                                     AREA="area", LANCZOS3="lanczos3", LANCZOS5="lanczos5", GAUSSIAN="gaussian",
                                     MITCHELLCUBIC="mitchellcubic")
_METHODS = {"bilinear": "bilinear", "nearest": "nearest", "bicubic": "bicubic", "area": "area"}


def _array(image: Any) -> Any:
    return np.asarray(image) if isinstance(image, (list, tuple)) else image


def _dims(image: Any, fn: str) -> tuple:
    shape = tuple(_ops.shape(image))
    if len(shape) not in (3, 4):
        raise ValueError(f"tf.image.{fn}: 'image' must be 3-D [height, width, channels] or 4-D [batch, height, "
                         f"width, channels]. Received shape {shape}")
    return shape


def _dtype(image: Any) -> np.dtype:
    return np.dtype(_ops.dtype(image) if hasattr(image, "dtype") else "float32")


def _as_float(image: Any) -> tuple[Any, np.dtype]:
    """``image`` in float32 ([0, 1] for integer images), and the dtype to return."""
    dtype = _dtype(image)
    return (image, dtype) if dtype.kind == "f" else (convert_image_dtype(image, "float32"), dtype)


def _back(image: Any, dtype: np.dtype) -> Any:
    return image if dtype.kind == "f" else convert_image_dtype(image, dtype.name, saturate=True)


def convert_image_dtype(image: Any, dtype: Any, saturate: builtins.bool = False, name: str | None = None) -> Any:
    """``tf.image.convert_image_dtype``: integers span ``[0, MAX]``, floats ``[0, 1]``; converting between
    them rescales (float to integer by ``x * (MAX + 0.5)``, truncated, as TensorFlow), float to float casts."""
    image = _array(image)
    src, dst = _dtype(image), np.dtype(dtype.name if hasattr(dtype, "name") else str(dtype))
    if src == dst:
        return image
    if src.kind == "f" and dst.kind == "f":
        return _ops.cast(image, dst.name)
    if src.kind != "f" and dst.kind != "f":   # integer to integer: a power-of-two shift of the ranges
        src_span, dst_span = int(np.iinfo(src).max) + 1, int(np.iinfo(dst).max) + 1
        if src_span > dst_span:
            return _ops.cast(_ops.floor_divide(image, src_span // dst_span), dst.name)
        return _ops.cast(_ops.multiply(_ops.cast(image, dst.name), dst_span // src_span), dst.name)
    if src.kind != "f":
        return _ops.multiply(_ops.cast(image, dst.name), 1.0 / float(np.iinfo(src).max))
    if saturate:
        image = _ops.clip(image, 0.0, 1.0)
    return _ops.cast(_ops.multiply(image, float(np.iinfo(dst).max) + 0.5), dst.name)


def resize(images: Any, size: Any, method: str = "bilinear", preserve_aspect_ratio: builtins.bool = False,
           antialias: builtins.bool = False, name: str | None = None) -> Any:
    """``tf.image.resize``: float32 results, except ``nearest`` which keeps the images' dtype."""
    images = _array(images)
    shape = _dims(images, "resize")
    key = str(getattr(method, "value", method)).lower()
    if key not in _METHODS:
        raise ValueError(f"tf.image.resize: method must be one of {sorted(_METHODS)} (tf.image.ResizeMethod."
                         f"BILINEAR, NEAREST_NEIGHBOR, BICUBIC, AREA). Received: method={method!r}")
    size = [int(s) for s in np.asarray(size).tolist()]
    if len(size) != 2 or min(size) <= 0:
        raise ValueError(f"tf.image.resize: size must be [new_height, new_width], both positive. Received: size={size}")
    if preserve_aspect_ratio:
        height, width = shape[-3], shape[-2]
        scale = min(size[0] / height, size[1] / width)
        size = [int(np.round(scale * height)), int(np.round(scale * width))]
    if key == "area":
        out = _resize_area(_ops.cast(images, "float32"), (shape[-3], shape[-2]), tuple(size))
    else:
        out = _resize(images, tuple(size), _METHODS[key], bool(antialias))
    dtype = _dtype(images)
    if key == "nearest":
        return out if _dtype(out) == dtype else _ops.cast(out, dtype.name)
    return out if _dtype(out) == np.float32 else _ops.cast(out, "float32")   # float64 images too, as TensorFlow


def _area_matrix(length: int, out: int) -> np.ndarray:
    """``(out, length)`` weights of TensorFlow's ``ResizeArea`` along one axis: each output cell averages the
    input cells its span ``[i * scale, (i + 1) * scale)`` overlaps, by the overlap (cells past the edge read
    the last one)."""
    scale = length / out
    weights = np.zeros((out, length), np.float64)
    for i in range(out):
        lo, hi = i * scale, (i + 1) * scale
        for j in range(int(np.floor(lo)), int(np.ceil(hi))):
            weights[i, min(j, length - 1)] += min(j + 1, hi) - max(j, lo)
    return (weights / scale).astype(np.float32)


def _resize_area(images: Any, sizes: tuple, size: tuple[int, int]) -> Any:
    """``method="area"`` as two constant matrices, the image's spatial axes moved last for the products."""
    if sizes[0] is None or sizes[1] is None:
        raise ValueError(f"tf.image.resize: method='area' needs known image sizes. Received: height={sizes[0]}, "
                         f"width={sizes[1]}")
    planes = _ops.moveaxis(images, -1, -3)   # (..., channels, height, width)
    planes = _ops.matmul(_area_matrix(sizes[0], size[0]), planes)
    planes = _ops.matmul(planes, _area_matrix(sizes[1], size[1]).T)
    return _ops.moveaxis(planes, -3, -1)


@symbolic
def _resize(images: Any, size: tuple[int, int], interpolation: str, antialias: bool) -> Any:
    # Keras's resize on torch, but with TensorFlow's bicubic kernel (Keys a = -0.5, torch's is -0.75, and no
    # taps outside the image).
    b = builder_of((images,))
    x = as_value(images, b)
    if not x.is_float:
        x = b.op("Cast", [x], to=1, shape=x.shape)
    return resize_images(x, size, interpolation, antialias, layer="tf.image.resize", cubic_coeff_a=-0.5,
                         cubic_exclude_outside=True)


def flip_left_right(image: Any) -> Any:
    """``tf.image.flip_left_right``: the width axis reversed."""
    image = _array(image)
    _dims(image, "flip_left_right")
    return _ops.flip(image, axis=-2)


def flip_up_down(image: Any) -> Any:
    """``tf.image.flip_up_down``: the height axis reversed."""
    image = _array(image)
    _dims(image, "flip_up_down")
    return _ops.flip(image, axis=-3)


def rot90(image: Any, k: int = 1, name: str | None = None) -> Any:
    """``tf.image.rot90``: ``k`` quarter turns counter-clockwise."""
    image = _array(image)
    rank = len(_dims(image, "rot90"))
    perm = list(range(rank))
    perm[-3], perm[-2] = perm[-2], perm[-3]
    for _ in range(int(k) % 4):
        image = _ops.flip(_ops.transpose(image, perm), axis=-3)
    return image


def rgb_to_grayscale(images: Any, name: str | None = None) -> Any:
    """``tf.image.rgb_to_grayscale``: one channel of ITU-R 601 luma, in the images' dtype."""
    images, dtype = _as_float(_array(images))
    return _back(_ops.image.rgb_to_grayscale(images), dtype)


def grayscale_to_rgb(images: Any, name: str | None = None) -> Any:
    """``tf.image.grayscale_to_rgb``: the one channel repeated three times."""
    return _ops.repeat(_array(images), 3, axis=-1)


def adjust_brightness(image: Any, delta: Any) -> Any:
    """``tf.image.adjust_brightness``: ``delta`` added (in [0, 1] units for integer images)."""
    image, dtype = _as_float(_array(image))
    return _back(_ops.add(image, _ops.cast(delta, "float32")), dtype)


def adjust_contrast(images: Any, contrast_factor: Any) -> Any:
    """``tf.image.adjust_contrast``: each channel's distance from its per-image mean scaled by the factor."""
    images, dtype = _as_float(_array(images))
    _dims(images, "adjust_contrast")
    mean = _ops.mean(images, axis=(-3, -2), keepdims=True)
    return _back(_ops.add(_ops.multiply(_ops.subtract(images, mean), contrast_factor), mean), dtype)


def _hsv_adjust(image: Any, fn: str, hue: Any = None, saturation: Any = None) -> Any:
    image, dtype = _as_float(_array(image))
    _dims(image, fn)
    hsv = _ops.image.rgb_to_hsv(image)
    h, s, v = _ops.split(hsv, 3, axis=-1)
    if hue is not None:
        h = _ops.mod(_ops.add(h, hue), 1.0)
    if saturation is not None:
        s = _ops.clip(_ops.multiply(s, saturation), 0.0, 1.0)
    return _back(_ops.image.hsv_to_rgb(_ops.concatenate([h, s, v], axis=-1)), dtype)


def adjust_saturation(image: Any, saturation_factor: Any, name: str | None = None) -> Any:
    """``tf.image.adjust_saturation``: HSV saturation times the factor, clipped to [0, 1]."""
    return _hsv_adjust(image, "adjust_saturation", saturation=saturation_factor)


def adjust_hue(image: Any, delta: Any, name: str | None = None) -> Any:
    """``tf.image.adjust_hue``: HSV hue turned by ``delta`` (a fraction of the colour circle, in [-1, 1])."""
    return _hsv_adjust(image, "adjust_hue", hue=delta)


def adjust_gamma(image: Any, gamma: Any = 1, gain: Any = 1) -> Any:
    """``tf.image.adjust_gamma``: ``gain * image ** gamma`` (integer images in [0, 1] units)."""
    image, dtype = _as_float(_array(image))
    return _back(_ops.multiply(_ops.power(image, gamma), gain), dtype)


def per_image_standardization(image: Any) -> Any:
    """``tf.image.per_image_standardization``: each image to zero mean and unit variance (the deviation held
    at least ``1 / sqrt(pixels)``), in float32."""
    image = _ops.cast(_array(image), "float32")
    shape = _dims(image, "per_image_standardization")
    axes = (-3, -2, -1)
    count = float(np.prod(shape[-3:]))
    mean = _ops.mean(image, axis=axes, keepdims=True)
    std = _ops.maximum(_ops.std(image, axis=axes, keepdims=True), 1.0 / np.sqrt(count))
    return _ops.divide(_ops.subtract(image, mean), std)


def crop_to_bounding_box(image: Any, offset_height: int, offset_width: int, target_height: int,
                         target_width: int) -> Any:
    """``tf.image.crop_to_bounding_box``: the ``target_height x target_width`` window at the offsets."""
    image = _array(image)
    shape = _dims(image, "crop_to_bounding_box")
    if _traced(offset_height, offset_width, target_height, target_width):
        return _crop_traced(image, offset_height, offset_width, target_height, target_width)
    height, width = shape[-3], shape[-2]
    if offset_height < 0 or offset_width < 0 or offset_height + target_height > height or \
            offset_width + target_width > width or target_height <= 0 or target_width <= 0:
        raise ValueError(f"tf.image.crop_to_bounding_box: the box ({offset_height}, {offset_width}, "
                         f"{target_height}, {target_width}) does not fit a {height}x{width} image.")
    return image[..., offset_height:offset_height + target_height, offset_width:offset_width + target_width, :]


def pad_to_bounding_box(image: Any, offset_height: int, offset_width: int, target_height: int,
                        target_width: int) -> Any:
    """``tf.image.pad_to_bounding_box``: zeros above and left by the offsets, out to the target size."""
    image = _array(image)
    shape = _dims(image, "pad_to_bounding_box")
    if _traced(offset_height, offset_width, target_height, target_width):
        return _pad_traced(image, offset_height, offset_width, target_height, target_width)
    after_h, after_w = target_height - offset_height - shape[-3], target_width - offset_width - shape[-2]
    if min(offset_height, offset_width, after_h, after_w) < 0:
        raise ValueError(f"tf.image.pad_to_bounding_box: a {shape[-3]}x{shape[-2]} image at offsets "
                         f"({offset_height}, {offset_width}) does not fit {target_height}x{target_width}.")
    pads = [[0, 0]] * (len(shape) - 3) + [[offset_height, after_h], [offset_width, after_w], [0, 0]]
    return _ops.pad(image, pads)


def _traced(*values: Any) -> builtins.bool:
    """Whether a box offset or size is a value of the graph being traced (cutmix's ``tf.function`` computes
    them from random draws), so it cannot be read or checked while building."""
    return any(isinstance(v, Value) for v in values)


def _box_scalars(b: Any, *values: Any) -> list[Any]:
    return [b.op("Reshape", [cast_value(as_value(v, b), onnx.TensorProto.INT64), b.const(np.asarray([1], np.int64))])
            for v in values]


@symbolic
def _crop_traced(image: Any, offset_height: Any, offset_width: Any, target_height: Any, target_width: Any) -> Any:
    b = builder_of(image, offset_height, offset_width, target_height, target_width)
    x = as_value(image, b)
    oh, ow, th, tw = _box_scalars(b, offset_height, offset_width, target_height, target_width)
    starts = b.op("Concat", [oh, ow], axis=0)
    ends = b.op("Concat", [b.op("Add", [oh, th]), b.op("Add", [ow, tw])], axis=0)
    rank = len(x.shape)
    return b.op("Slice", [x, starts, ends, b.const(np.asarray([rank - 3, rank - 2], np.int64))])


@symbolic
def _pad_traced(image: Any, offset_height: Any, offset_width: Any, target_height: Any, target_width: Any) -> Any:
    b = builder_of(image, offset_height, offset_width, target_height, target_width)
    x = as_value(image, b)
    oh, ow, th, tw = _box_scalars(b, offset_height, offset_width, target_height, target_width)
    rank = len(x.shape)
    sizes = b.op("Slice", [b.op("Shape", [x]), b.const(np.asarray([rank - 3], np.int64)),
                           b.const(np.asarray([rank - 1], np.int64))])   # [height, width]
    after = b.op("Sub", [b.op("Sub", [b.op("Concat", [th, tw], axis=0), b.op("Concat", [oh, ow], axis=0)]), sizes])
    zeros = b.const(np.zeros(rank - 3, np.int64))
    zero = b.const(np.zeros(1, np.int64))
    pads = b.op("Concat", [zeros, oh, ow, zero, zeros, after, zero], axis=0)
    return b.op("Pad", [x, pads], mode="constant")


def resize_with_crop_or_pad(image: Any, target_height: int, target_width: int) -> Any:
    """``tf.image.resize_with_crop_or_pad``: centred crop of a larger side, centred zero padding of a
    smaller one."""
    image = _array(image)
    shape = _dims(image, "resize_with_crop_or_pad")
    height, width = shape[-3], shape[-2]
    crop_h, crop_w = max((height - target_height) // 2, 0), max((width - target_width) // 2, 0)
    image = crop_to_bounding_box(image, crop_h, crop_w, min(height, target_height), min(width, target_width))
    pad_h, pad_w = max((target_height - height) // 2, 0), max((target_width - width) // 2, 0)
    return pad_to_bounding_box(image, pad_h, pad_w, target_height, target_width)


def resize_with_pad(image: Any, target_height: int, target_width: int, method: str = "bilinear",
                    antialias: builtins.bool = False) -> Any:
    """``tf.image.resize_with_pad``: resized to fit the target keeping the aspect ratio, then centred in zeros
    (float32 out, as ``resize``); sizes are rounded as TensorFlow does, in float32.

    Example:
        >>> tuple(resize_with_pad(np.ones((2, 4, 1), "uint8"), 4, 4)[:, 0, 0].numpy().tolist())
        (0.0, 1.0, 1.0, 0.0)
    """
    image = _array(image)
    shape = _dims(image, "resize_with_pad")
    if target_height <= 0 or target_width <= 0:
        raise ValueError(f"tf.image.resize_with_pad: target_height and target_width must be > 0. Received: "
                         f"target_height={target_height}, target_width={target_width}")
    height, width = np.float32(shape[-3]), np.float32(shape[-2])
    ratio = max(width / np.float32(target_width), height / np.float32(target_height))
    new_h, new_w = height / ratio, width / ratio   # float32, as TensorFlow's graph computes them
    pad_h = max(0, int(np.floor((np.float32(target_height) - new_h) / np.float32(2))))
    pad_w = max(0, int(np.floor((np.float32(target_width) - new_w) / np.float32(2))))
    resized = resize(image, [int(np.floor(new_h)), int(np.floor(new_w))], method, antialias=antialias)
    return pad_to_bounding_box(resized, pad_h, pad_w, target_height, target_width)


def central_crop(image: Any, central_fraction: float) -> Any:
    """``tf.image.central_crop``: the centred ``central_fraction`` of each side (TensorFlow's rounding)."""
    if not 0.0 < central_fraction <= 1.0:
        raise ValueError(f"tf.image.central_crop: central_fraction must be within (0, 1]. "
                         f"Received: central_fraction={central_fraction}")
    image = _array(image)
    shape = _dims(image, "central_crop")
    if central_fraction == 1.0:
        return image
    height, width = shape[-3], shape[-2]
    start_h = int((height - height * central_fraction) / 2)
    start_w = int((width - width * central_fraction) / 2)
    return crop_to_bounding_box(image, start_h, start_w, height - 2 * start_h, width - 2 * start_w)


# ------------------------------------------------------------------------------------------- random
def _per_image(image: Any, seed: Any) -> Any:
    """One U[0, 1) draw per image, shaped to broadcast over it."""
    shape = tuple(_ops.shape(image))
    return _random.uniform((shape[0], 1, 1, 1) if len(shape) == 4 else (1, 1, 1), seed=seed)


def _flip_randomly(image: Any, seed: Any, flip: Any) -> Any:
    image = _array(image)
    return _ops.where(_ops.less(_per_image(image, seed), 0.5), flip(image), image)


def random_flip_left_right(image: Any, seed: Any = None) -> Any:
    """``tf.image.random_flip_left_right``: each image flipped with probability 1/2."""
    return _flip_randomly(image, seed, flip_left_right)


def random_flip_up_down(image: Any, seed: Any = None) -> Any:
    """``tf.image.random_flip_up_down``: each image flipped with probability 1/2."""
    return _flip_randomly(image, seed, flip_up_down)


def _check_range(lower: float, upper: float, fn: str) -> None:
    if upper <= lower or lower < 0:
        raise ValueError(f"tf.image.{fn}: need 0 <= lower < upper. Received: lower={lower}, upper={upper}")


def random_brightness(image: Any, max_delta: float, seed: Any = None) -> Any:
    """``tf.image.random_brightness``: one ``delta`` from ``[-max_delta, max_delta)`` added."""
    if max_delta < 0:
        raise ValueError(f"tf.image.random_brightness: max_delta must be non-negative. Received: {max_delta}")
    return adjust_brightness(image, _random.uniform((), -max_delta, max_delta, seed=seed))


def random_contrast(image: Any, lower: float, upper: float, seed: Any = None) -> Any:
    """``tf.image.random_contrast``: ``adjust_contrast`` by one factor from ``[lower, upper)``."""
    _check_range(lower, upper, "random_contrast")
    return adjust_contrast(image, _random.uniform((), lower, upper, seed=seed))


def random_saturation(image: Any, lower: float, upper: float, seed: Any = None) -> Any:
    """``tf.image.random_saturation``: ``adjust_saturation`` by one factor from ``[lower, upper)``."""
    _check_range(lower, upper, "random_saturation")
    return adjust_saturation(image, _random.uniform((), lower, upper, seed=seed))


def random_hue(image: Any, max_delta: float, seed: Any = None) -> Any:
    """``tf.image.random_hue``: ``adjust_hue`` by one delta from ``[-max_delta, max_delta)``, within 0.5."""
    if not 0 <= max_delta <= 0.5:
        raise ValueError(f"tf.image.random_hue: max_delta must be in [0, 0.5]. Received: max_delta={max_delta}")
    return adjust_hue(image, _random.uniform((), -max_delta, max_delta, seed=seed))


def random_crop(value: Any, size: Any, seed: Any = None, name: str | None = None) -> Any:
    """``tf.image.random_crop``: a ``size`` window at a uniformly random offset."""
    value = _array(value)
    shape = tuple(_ops.shape(value))
    if _traced(*(size if isinstance(size, (list, tuple)) else [size])):
        # barlow_twins draws the crop side inside the traced call: offsets and the window are read in the graph.
        from .array_more import slice as _tf_slice

        sizes = _ops.stack([_ops.cast(s, "int32") for s in size]) if isinstance(size, (list, tuple)) else \
            _ops.cast(size, "int32")
        span = _ops.cast(_ops.add(_ops.subtract(_ops.cast(_ops.shape(value), "int32") if not all(
            isinstance(d, int) for d in shape) else np.asarray(shape, np.int32), sizes), 1), "float32")
        offsets = _ops.cast(_ops.floor(_ops.multiply(_random.uniform((len(shape),), seed=seed), span)), "int32")
        out = _tf_slice(value, offsets, sizes)
        if isinstance(out, Value) and isinstance(size, (list, tuple)):   # the sizes known now stay known
            out.set_shape([None if _traced(s) else int(s) for s in size])
        return out
    size = [int(s) for s in np.asarray(size).tolist()]
    if len(size) != len(shape) or any(s > d or s <= 0 for s, d in zip(size, shape)):
        raise ValueError(f"tf.image.random_crop: size must give each axis of a {shape} value a length in "
                         f"[1, that axis]. Received: size={size}")
    span = np.asarray([d - s + 1 for s, d in zip(size, shape)], np.float32)
    offsets = _ops.cast(_ops.floor(_ops.multiply(_random.uniform((len(shape),), seed=seed), span)), "int32")
    return _ops.slice(value, offsets, size)


def _stateless(seed: Any) -> int:
    """A ``(2,)`` stateless seed as the one int that fixes onnxforge's draw."""
    pair = np.asarray(seed).astype(np.int64).ravel()
    if pair.size != 2:
        raise ValueError(f"tf.image.stateless_random_*: seed must be a shape [2] tensor. Received: seed={seed!r}")
    return int((pair[0] * 1_000_003 + pair[1]) % (2**31 - 1))


def _stateless_form(fn: Any) -> Any:
    """TensorFlow's ``stateless_`` form of a random function: the same draw for the same ``seed`` pair (the
    last argument, as TensorFlow orders it, or ``seed=``)."""
    def stateless(*args: Any, seed: Any = None, **kwargs: Any) -> Any:
        if seed is None:
            if not args:
                raise ValueError(f"tf.image.stateless_{fn.__name__}: seed is required (a shape [2] tensor).")
            *args, seed = args
        return fn(*args, seed=_stateless(seed), **kwargs)

    stateless.__name__ = f"stateless_{fn.__name__}"
    stateless.__doc__ = f"``tf.image.stateless_{fn.__name__}``: ``{fn.__name__}`` with its draw fixed by ``seed``."
    return stateless


def transpose(image: Any, name: str | None = None) -> Any:
    """``tf.image.transpose``: height and width swapped (a 3-D image or a 4-D batch)."""
    rank = len(_ops.shape(image))
    return _ops.transpose(image, [1, 0, 2] if rank == 3 else [0, 2, 1, 3])


image = types.SimpleNamespace(transpose=transpose,
    **{fn: getattr(_codecs, fn) for fn in _codecs.__all__},
    ResizeMethod=ResizeMethod, resize=resize, convert_image_dtype=convert_image_dtype,
    flip_left_right=flip_left_right, flip_up_down=flip_up_down, rot90=rot90, rgb_to_grayscale=rgb_to_grayscale,
    grayscale_to_rgb=grayscale_to_rgb, adjust_brightness=adjust_brightness, adjust_contrast=adjust_contrast,
    adjust_saturation=adjust_saturation, adjust_hue=adjust_hue, adjust_gamma=adjust_gamma,
    per_image_standardization=per_image_standardization, crop_to_bounding_box=crop_to_bounding_box,
    pad_to_bounding_box=pad_to_bounding_box, resize_with_crop_or_pad=resize_with_crop_or_pad,
    resize_with_pad=resize_with_pad,
    central_crop=central_crop, extract_patches=extract_patches, random_flip_left_right=random_flip_left_right,
    random_flip_up_down=random_flip_up_down, random_brightness=random_brightness, random_contrast=random_contrast,
    random_saturation=random_saturation, random_hue=random_hue, random_crop=random_crop,
    **{fn: getattr(_color, fn) for fn in _color.__all__},
    **{fn: getattr(_boxes, fn) for fn in _boxes.__all__},
    **{f"stateless_{fn.__name__}": _stateless_form(fn) for fn in (
        random_flip_left_right, random_flip_up_down, random_brightness, random_contrast, random_saturation,
        random_hue, random_crop)},
)
