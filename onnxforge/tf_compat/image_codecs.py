"""``tf.image.decode_png`` / ``decode_jpeg`` / ``decode_image`` / ``encode_png`` / ``encode_jpeg`` and
``tf.io.decode_png`` ...: image file bytes (``tf.io.read_file``'s result) to ``(height, width, channels)``
arrays and back, with Pillow, on concrete values (a ``Dataset.map`` function or eager code), as the input
pipelines of keras.io's vision examples use them (Zero-DCE's ``load_data``). A traced tensor is refused.

``channels``: 0 keeps the file's own (grey 1, grey+alpha 2, RGB 3, RGBA 4), 1 / 3 / 4 convert as TensorFlow
does (a colour PNG to grey with libpng's weights, a JPEG's luma from libjpeg, as TensorFlow's decoders). JPEG pixels come from Pillow's
libjpeg with its accurate integer IDCT: TensorFlow's with ``dct_method="INTEGER_ACCURATE"``; its default (``""``,
the fast integer IDCT) differs by a few levels (up to 14, 2.8 on average, measured on a smooth 40x36 image). ``decode_png`` gives uint8, or uint16 for 16-bit files with ``dtype=tf.uint16``; ``decode_image``'s
``dtype=tf.float32`` rescales to ``[0, 1]`` (``convert_image_dtype``).

Example:
    >>> import io, numpy as np
    >>> from PIL import Image
    >>> buffer = io.BytesIO()
    >>> Image.fromarray(np.full((2, 3, 3), 7, np.uint8)).save(buffer, format="PNG")
    >>> tuple(decode_png(buffer.getvalue(), channels=1).shape)
    (2, 3, 1)
"""
from __future__ import annotations

__all__ = ["decode_png", "decode_jpeg", "decode_image", "encode_png", "encode_jpeg", "decode_bmp", "decode_gif"]

import io as _io
from typing import Any

import numpy as np

from ..eager_tensor import EagerTensor
from ..trainer.compiled_function import HostFunctionInTrace
from .io_audio import _host

_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def _decode(contents: Any, channels: Any, fn: str, dtype: Any = "uint8") -> EagerTensor:
    from PIL import Image

    data = _host(contents, fn)
    if not isinstance(data, bytes):
        raise TypeError(f"tf.{fn} expects the bytes of an image file (tf.io.read_file's result). "
                        f"Received: {type(data).__name__}")
    channels = 0 if channels is None else int(channels)
    if channels not in (0, 1, 3, 4):
        raise ValueError(f"tf.{fn}: channels must be 0 (the file's own), 1, 3 or 4. Received: channels={channels}")
    try:
        image = Image.open(_io.BytesIO(data))
        if channels == 1 and image.format == "JPEG":
            image.draft("L", image.size)   # libjpeg's own luma, as TensorFlow's decoder asks for
        image.load()
    except Exception as e:   # Pillow raises several types for a file it cannot read
        raise ValueError(f"tf.{fn}: the bytes are not an image file Pillow can decode ({e}). "
                         f"Received {len(data)} bytes starting {data[:8]!r}") from None
    name = dtype if isinstance(dtype, str) else np.dtype(dtype).name
    wide = name == "uint16" and image.mode.startswith("I")   # a 16-bit grey PNG kept at 16 bits
    if wide:
        array = np.asarray(image).astype(np.uint16)
    else:
        if image.mode.startswith("I") or image.mode == "F":   # 16/32-bit grey: TensorFlow keeps the high byte
            image = Image.fromarray((np.asarray(image).astype(np.uint32) >> 8).clip(0, 255).astype(np.uint8))
        if channels == 4 and image.format == "JPEG":
            raise ValueError(f"tf.{fn}: JPEG does not support 4 channels. Received: channels=4")
        mode = _MODES.get(channels) or {"L": "L", "LA": "LA", "RGBA": "RGBA", "P": "RGBA" if "transparency" in
                                        image.info else "RGB"}.get(image.mode, "RGB")
        if mode in ("L", "LA") and image.format == "PNG" and image.mode not in ("L", "LA", "1"):
            array = _png_grey(np.asarray(image.convert("RGBA")), keep_alpha=mode == "LA")
        else:
            array = np.asarray(image.convert(mode))
    if array.ndim == 2:
        array = array[..., None]
    if name == "uint16" and not wide:
        array = array.astype(np.uint16) * 257
    elif name not in ("uint8", "uint16"):
        from .image_fns import convert_image_dtype

        return EagerTensor(np.asarray(convert_image_dtype(array, name)))
    return EagerTensor(np.ascontiguousarray(array))


def _png_grey(rgba: np.ndarray, keep_alpha: bool) -> np.ndarray:
    """libpng's colour-to-grey conversion as TensorFlow's PNG decoder sets it up (0.299 / 0.587 in 1/32768ths,
    blue the rest, truncated); Pillow's ``convert("L")`` rounds and lands one level off on some pixels."""
    rgb = rgba[..., :3].astype(np.uint32)
    grey = ((9797 * rgb[..., 0] + 19234 * rgb[..., 1] + 3737 * rgb[..., 2]) >> 15).astype(np.uint8)
    return np.stack([grey, rgba[..., 3]], -1) if keep_alpha else grey


def decode_png(contents: Any, channels: int = 0, dtype: Any = "uint8", name: str | None = None) -> EagerTensor:
    """``tf.image.decode_png``: PNG bytes as a ``(height, width, channels)`` uint8 (or uint16) array."""
    return _decode(contents, channels, "image.decode_png", dtype)


def decode_jpeg(contents: Any, channels: int = 0, ratio: int = 1, fancy_upscaling: bool = True,
                try_recover_truncated: bool = False, acceptable_fraction: float = 1, dct_method: str = "",
                name: str | None = None) -> EagerTensor:
    """``tf.image.decode_jpeg``: JPEG bytes as a ``(height, width, channels)`` uint8 array (``ratio`` 1 only)."""
    if int(ratio) != 1:
        raise ValueError(f"tf.image.decode_jpeg: only ratio=1 is supported (resize afterwards). Received: ratio={ratio}")
    return _decode(contents, channels, "image.decode_jpeg")


def decode_bmp(contents: Any, channels: int = 0, name: str | None = None) -> EagerTensor:
    """``tf.image.decode_bmp``."""
    return _decode(contents, channels, "image.decode_bmp")


def decode_gif(contents: Any, name: str | None = None) -> EagerTensor:
    """``tf.image.decode_gif``: ``(1, height, width, 3)`` (the first frame; animations are not expanded)."""
    return EagerTensor(_decode(contents, 3, "image.decode_gif")[None])


def decode_image(contents: Any, channels: int | None = None, dtype: Any = "uint8", name: str | None = None,
                 expand_animations: bool = True) -> EagerTensor:
    """``tf.image.decode_image``: PNG, JPEG, BMP or GIF (its first frame) bytes as ``(height, width, channels)``;
    ``dtype=tf.float32`` rescales to ``[0, 1]``."""
    return _decode(contents, channels, "image.decode_image", dtype)


def _encode(image: Any, fmt: str, fn: str, **options: Any) -> EagerTensor:
    from PIL import Image

    array = np.asarray(_host_array(image, fn))
    if array.ndim != 3 or array.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(f"tf.{fn} expects a (height, width, channels) image with 1 to 4 channels. "
                         f"Received shape {array.shape}")
    if array.dtype != np.uint8:
        raise TypeError(f"tf.{fn} expects a uint8 image (tf.image.convert_image_dtype(image, tf.uint8) first). "
                        f"Received dtype {array.dtype}")
    buffer = _io.BytesIO()
    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(buffer, format=fmt, **options)
    out = np.empty((), dtype=object)
    out[()] = buffer.getvalue()
    return out.view(EagerTensor)


def _host_array(x: Any, fn: str) -> Any:
    from ..graph import Value

    if isinstance(x, Value) or type(x).__name__ == "KerasTensor":
        raise HostFunctionInTrace(f"tf.{fn} runs on concrete values (in a Dataset.map function or eagerly; a "
                                  f"tf.function that calls it runs as Python), not inside a compiled model. "
                                  f"Received: {x!r}")
    return x.numpy() if hasattr(x, "numpy") else x


def encode_png(image: Any, compression: int = -1, name: str | None = None) -> EagerTensor:
    """``tf.image.encode_png``: a uint8 ``(height, width, channels)`` image as PNG bytes (a scalar string)."""
    return _encode(image, "PNG", "image.encode_png", compress_level=6 if compression < 0 else int(compression))


def encode_jpeg(image: Any, format: str = "", quality: int = 95, name: str | None = None, **_: Any) -> EagerTensor:
    """``tf.image.encode_jpeg``: a uint8 image with 1 or 3 channels as JPEG bytes (a scalar string)."""
    return _encode(image, "JPEG", "image.encode_jpeg", quality=int(quality))
