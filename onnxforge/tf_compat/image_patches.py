"""``tf.image.extract_patches``: TensorFlow's four-element ``sizes`` / ``strides`` / ``rates`` form of
``keras.ops.image.extract_patches``.

Vision-transformer programs written for TensorFlow (keras.io's "ViT on small datasets", its shifted patch
tokenizer) patchify with ``tf.image.extract_patches(images, sizes=[1, p, p, 1], strides=[1, p, p, 1],
rates=[1, 1, 1, 1], padding="VALID")``. The result is the same ``[batch, rows, cols, p * p * channels]``
tensor, each patch flattened row by row with the channels innermost, that ``keras.ops.image.extract_patches``
returns, so the function checks TensorFlow's argument rules (4-D images, lists of four with ones at both
ends, upper-case padding) and hands the middle two numbers over.

Example:
    >>> import numpy as np
    >>> images = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    >>> patches = extract_patches(images, sizes=[1, 2, 2, 1], strides=[1, 2, 2, 1], rates=[1, 1, 1, 1],
    ...                           padding="VALID")
    >>> patches.shape, patches[0, 0, 1].numpy().tolist()
    (TensorShape([1, 2, 2, 4]), [2.0, 3.0, 6.0, 7.0])
"""
from __future__ import annotations

__all__ = ["extract_patches"]

from typing import Any, Sequence

from ..ops import image as _image
from ..ops._util import symbolic
from .errors import InvalidArgumentError, UnimplementedError


def _middle(values: Sequence[int], attr: str) -> tuple[int, int]:
    """The spatial pair of a TensorFlow ``[1, h, w, 1]`` attribute, with TensorFlow's complaints otherwise."""
    values = [int(v) for v in values]
    if len(values) < 4:
        raise InvalidArgumentError(f"tf.image.extract_patches: length for attr '{attr}' of {len(values)} must "
                                   f"be at least minimum 4. Received: {attr}={values}")
    if len(values) != 4 or values[0] != 1 or values[3] != 1:
        raise UnimplementedError(f"tf.image.extract_patches: only support {attr} across space "
                                 f"([1, h, w, 1]). Received: {attr}={values}")
    return values[1], values[2]


@symbolic
def extract_patches(images: Any, sizes: Sequence[int], strides: Sequence[int], rates: Sequence[int],
                    padding: str, name: str | None = None) -> Any:
    """``tf.image.extract_patches``: ``[batch, height, width, channels]`` images as patches in the channels."""
    del name
    size = _middle(sizes, "ksizes")
    step = _middle(strides, "strides")
    rate = _middle(rates, "rates")
    if padding not in ("SAME", "VALID"):
        raise InvalidArgumentError(f"tf.image.extract_patches: value for attr 'padding' of {padding!r} is not "
                                   "in the list of allowed values: \"SAME\", \"VALID\"")
    rank = len(getattr(images, "shape", None) or ())
    if rank != 4:
        raise InvalidArgumentError(f"tf.image.extract_patches: input must be 4-dimensional. Received shape "
                                   f"{tuple(getattr(images, 'shape', ()))}")
    if max(step) > 1 and max(rate) > 1:
        # Keras's kernel (one identity convolution) takes either a stride or a dilation, not both.
        raise UnimplementedError("tf.image.extract_patches: strides > 1 together with rates > 1 is not "
                                 f"supported by onnxforge. Received: strides={list(strides)}, rates={list(rates)}")
    return _image.extract_patches(images, size, strides=step, dilation_rate=rate, padding=padding.lower(),
                                  data_format="channels_last")
