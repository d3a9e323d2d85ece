"""Image helpers of ``keras.utils`` / ``keras.preprocessing.image``: arrays to and from PIL images, image
files, and ``smart_resize``. Pillow is an optional dependency: the file and PIL functions say so when it
is missing; ``img_to_array`` and ``smart_resize`` need only NumPy.

Example:
    >>> import numpy as np
    >>> img_to_array(np.zeros((2, 3), np.uint8)).shape
    (2, 3, 1)
    >>> smart_resize(np.ones((4, 8, 3), np.float32), (2, 2)).shape
    (2, 2, 3)
"""
from __future__ import annotations

__all__ = ["array_to_img", "img_to_array", "load_img", "save_img", "smart_resize"]

import io
import os
import pathlib
import stat
import warnings
from typing import Any

import numpy as np

_INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "hamming", "box", "lanczos")


def _pil() -> Any:
    try:
        from PIL import Image
    except ImportError as e:   # pragma: no cover - depends on the environment
        raise ImportError("This image function needs Pillow (PIL), which is not installed: "
                          "`pip install pillow`.") from e
    return Image


def _data_format(data_format: str | None) -> str:
    data_format = data_format or "channels_last"
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError("The `data_format` argument must be one of {'channels_first', 'channels_last'}. "
                         f"Received: data_format={data_format}")
    return data_format


def array_to_img(x: Any, data_format: str | None = None, scale: bool = True, dtype: Any = None) -> Any:
    """A PIL image from a (height, width, channels) array: 1 channel is grayscale, 3 RGB, 4 RGBA.

    Args:
        x: the image array.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        scale: rescale the values to [0, 255] (min to 0, max to 255) first.
        dtype: the dtype the array is read as (default float32).
    """
    Image = _pil()
    arr = np.asarray(x, dtype=dtype or "float32")
    if arr.ndim != 3:
        raise ValueError(f"Expected image array to have rank 3 (single image). Got array with shape: {arr.shape}")
    if _data_format(data_format) == "channels_first":
        arr = arr.transpose(1, 2, 0)
    if scale:
        arr = arr - np.min(arr)
        top = np.max(arr)
        if top != 0:
            arr = arr / top
        arr = arr * 255
    channels = arr.shape[2]
    if channels == 4:
        return Image.fromarray(arr.astype("uint8"), "RGBA")
    if channels == 3:
        return Image.fromarray(arr.astype("uint8"), "RGB")
    if channels == 1:
        if np.max(arr) > 255:   # 32-bit integer grayscale
            return Image.fromarray(arr[:, :, 0].astype("int32"), "I")
        return Image.fromarray(arr[:, :, 0].astype("uint8"), "L")
    raise ValueError(f"Unsupported channel number: {channels}. Expected 1 (grayscale), 3 (RGB) or 4 (RGBA).")


def img_to_array(img: Any, data_format: str | None = None, dtype: Any = None) -> np.ndarray:
    """A (height, width, channels) float array from a PIL image (or any 2D/3D array-like)."""
    arr = np.asarray(img, dtype=dtype or "float32")
    channels_first = _data_format(data_format) == "channels_first"
    if arr.ndim == 3:
        return arr.transpose(2, 0, 1) if channels_first else arr
    if arr.ndim == 2:
        return arr.reshape((1,) + arr.shape) if channels_first else arr.reshape(arr.shape + (1,))
    raise ValueError(f"Unsupported image shape: {arr.shape}")


def save_img(path: Any, x: Any, data_format: str | None = None, file_format: str | None = None, scale: bool = True,
             **kwargs: Any) -> None:
    """Write an image array to ``path`` (the format from ``file_format`` or the file extension)."""
    if file_format is None and isinstance(path, (str, pathlib.Path)):
        file_format = pathlib.Path(path).suffix[1:].lower() or None
    if file_format and file_format.lower() == "jpg":
        file_format = "jpeg"
    img = array_to_img(x, data_format=data_format, scale=scale)
    if img.mode == "RGBA" and file_format == "jpeg":
        warnings.warn("The JPEG format does not support RGBA images, converting to RGB.", stacklevel=2)
        img = img.convert("RGB")
    img.save(path, format=file_format, **kwargs)


class ImageFileError(OSError, ValueError):
    """An image file Pillow cannot decode (not an image, truncated, corrupt, or over Pillow's pixel bound),
    named in the message. An ``OSError`` as Pillow's own errors are, and a ``ValueError`` as onnxforge's
    refusals of bad files are."""


def _decoded(Image: Any, stream: Any, what: str) -> Any:
    """``Image.open`` and the decoding itself, which Pillow defers: a corrupt file fails here naming the file
    (Pillow's message names only a BytesIO), not later inside a dataset's batch."""
    try:
        img = Image.open(stream)
        img.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:   # SyntaxError: some decoders
        raise ImageFileError(f"load_img(): cannot decode {what} as an image ({type(e).__name__}: {e})") from None
    return img


def load_img(path: Any, color_mode: str = "rgb", target_size: tuple[int, int] | None = None,
             interpolation: str = "nearest", keep_aspect_ratio: bool = False) -> Any:
    """Read an image file as a PIL image.

    Args:
        path: a path or an ``io.BytesIO``.
        color_mode: ``"rgb"``, ``"rgba"`` or ``"grayscale"``.
        target_size: ``(height, width)`` to resize to, or ``None``.
        interpolation: ``"nearest"``, ``"bilinear"``, ``"bicubic"``, ``"hamming"``, ``"box"`` or ``"lanczos"``.
        keep_aspect_ratio: crop the centre to the target's aspect ratio before resizing.
    """
    Image = _pil()
    if isinstance(path, io.BytesIO):
        img = _decoded(Image, path, "the io.BytesIO given")
    elif isinstance(path, (str, bytes, pathlib.Path, os.PathLike)):
        # A FIFO blocks the read forever and a device (a link to /dev/zero) never ends it: only regular files.
        if os.path.exists(path) and not stat.S_ISREG(os.stat(path).st_mode):
            raise ValueError(f"load_img(): {os.fsdecode(path)!r} is not a regular file (a device, FIFO or socket, "
                             "or a link to one); an image is read from a file")
        with open(path, "rb") as f:
            img = _decoded(Image, io.BytesIO(f.read()), repr(os.fsdecode(path)))
    else:
        raise TypeError(f"path should be path-like or io.BytesIO, not {type(path)}")
    if color_mode == "grayscale":
        if img.mode not in ("L", "I;16", "I"):
            img = img.convert("L")
    elif color_mode in ("rgb", "rgba"):
        mode = color_mode.upper()
        if img.mode != mode:
            img = img.convert(mode)
    else:
        raise ValueError(f'color_mode must be "grayscale", "rgb", or "rgba". Received: color_mode={color_mode!r}')
    if target_size is None:
        return img
    size = (int(target_size[1]), int(target_size[0]))
    if img.size == size:
        return img
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"Invalid interpolation method {interpolation} specified. Supported methods are "
                         f"{', '.join(_INTERPOLATIONS)}")
    resample = getattr(getattr(Image, "Resampling", Image), interpolation.upper())
    if not keep_aspect_ratio:
        return img.resize(size, resample)
    width, height = img.size
    crop_h = min(height, (width * size[1]) // size[0])
    crop_w = min(width, (height * size[0]) // size[1])
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    return img.resize(size, resample, box=[left, top, left + crop_w, top + crop_h])


def _resize_axis(x: np.ndarray, axis: int, size: int, interpolation: str) -> np.ndarray:
    """Resample one axis with half-pixel centres (torch's ``interpolate(align_corners=False)``)."""
    n = x.shape[axis]
    if n == size:
        return x
    scale = n / size
    if interpolation == "nearest":   # "nearest-exact": the source pixel under each output pixel's centre
        idx = np.minimum(np.floor((np.arange(size) + 0.5) * scale).astype(np.int64), n - 1)
        return np.take(x, idx, axis=axis)
    pos = np.maximum((np.arange(size) + 0.5) * scale - 0.5, 0.0)
    lo = np.minimum(np.floor(pos).astype(np.int64), n - 1)
    hi = np.minimum(lo + 1, n - 1)
    frac = (pos - lo).astype(x.dtype)
    shape = [1] * x.ndim
    shape[axis] = size
    frac = frac.reshape(shape)
    return np.take(x, lo, axis=axis) * (1 - frac) + np.take(x, hi, axis=axis) * frac


def smart_resize(x: Any, size: tuple[int, int], interpolation: str = "bilinear",
                 data_format: str = "channels_last", **kwargs: Any) -> np.ndarray:
    """Resize to ``size`` without distorting: crop the largest centred box of the target's aspect ratio,
    then resize it (an image of rank 3, or a batch of rank 4).

    Args:
        x: the image(s).
        size: ``(height, width)``.
        interpolation: ``"bilinear"`` (default) or ``"nearest"``.
        data_format: ``"channels_last"`` or ``"channels_first"``.
    """
    if kwargs:
        raise TypeError(f"smart_resize() got unexpected keyword arguments: {list(kwargs)}")
    if len(size) != 2:
        raise ValueError(f"Expected `size` to be a tuple of 2 integers, but got: {size}.")
    if interpolation not in ("bilinear", "nearest"):
        raise ValueError(f"smart_resize supports interpolation 'bilinear' or 'nearest'. Received: {interpolation!r}")
    img = np.asarray(x)
    img = img.astype(np.float32) if img.dtype.kind in "iub" else img
    if img.ndim not in (3, 4):
        raise ValueError("Expected an image array with shape `(height, width, channels)`, or `(batch_size, height, "
                         f"width, channels)`, but got input with incorrect rank, of shape {img.shape}.")
    h_axis = img.ndim - 3 if _data_format(data_format) == "channels_last" else img.ndim - 2
    height, width = img.shape[h_axis], img.shape[h_axis + 1]
    target_h, target_w = int(size[0]), int(size[1])
    crop_h = max(min(height, int(float(width * target_h) / target_w)), 1)
    crop_w = max(min(width, int(float(height * target_w) / target_h)), 1)
    top, left = int(float(height - crop_h) / 2), int(float(width - crop_w) / 2)
    index = [slice(None)] * img.ndim
    index[h_axis] = slice(top, top + crop_h)
    index[h_axis + 1] = slice(left, left + crop_w)
    out = img[tuple(index)]
    out = _resize_axis(out, h_axis, target_h, interpolation)
    return _resize_axis(out, h_axis + 1, target_w, interpolation)
