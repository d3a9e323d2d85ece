"""``keras.datasets.fashion_mnist``: Zalando's Fashion-MNIST from Keras's cache (``datasets/fashion-mnist``)."""
from __future__ import annotations

__all__ = ["load_data"]

import numpy as np

from . import _cache
from ._untrusted_files import read_gzip

_LOADER = "keras.datasets.fashion_mnist.load_data"
_SUBDIR = "datasets/fashion-mnist"
_FILES = ("train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
          "t10k-images-idx3-ubyte.gz")


def _path(name: str) -> str:
    found = _cache.find(name, _SUBDIR)
    if found is None:
        raise _cache.missing(_LOADER, name, _cache.ORIGIN + name, _SUBDIR)
    return found


def _split(labels_file: str, images_file: str) -> tuple[np.ndarray, np.ndarray]:
    labels_path, images_path = _path(labels_file), _path(images_file)
    labels, images = read_gzip(labels_path, _LOADER), read_gzip(images_path, _LOADER)
    # IDX files: an 8-byte header before the labels, a 16-byte one before the 28x28 images (as Keras reads them).
    if len(labels) < 8 or len(images) < 16:
        raise ValueError(f"{_LOADER}: {labels_path} or {images_path} is too short to be an IDX file.")
    y = np.frombuffer(labels, np.uint8, offset=8).copy()
    if len(images) - 16 != len(y) * 28 * 28:
        raise ValueError(f"{_LOADER}: {images_path} holds {len(images) - 16} bytes of images, but {labels_path} "
                         f"has {len(y)} labels ({len(y) * 28 * 28} bytes of 28x28 images expected).")
    x = np.frombuffer(images, np.uint8, offset=16).reshape(len(y), 28, 28).copy()
    return x, y


def load_data() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Loads Fashion-MNIST as Keras 3 does, from the four IDX ``.gz`` files in Keras's cache.

    The files are ``train-labels-idx1-ubyte.gz``, ``train-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``
    and ``t10k-images-idx3-ubyte.gz`` in ``$KERAS_HOME/datasets/fashion-mnist`` (``~/.keras/...``). The labels
    are 0 T-shirt/top, 1 Trouser, 2 Pullover, 3 Dress, 4 Coat, 5 Sandal, 6 Shirt, 7 Sneaker, 8 Bag, 9 Ankle boot.

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: ``x`` uint8 of shape ``(n, 28, 28)`` (60,000 / 10,000),
        ``y`` uint8 labels in 0..9.

    Raises:
        FileNotFoundError: a file is not cached (the message says where to put it; onnxforge does not download).
        ValueError: a file is not a readable gzip IDX file, or images and labels disagree in number.

    Example:
        >>> (x_train, y_train), (x_test, y_test) = load_data()  # doctest: +SKIP
        >>> x_train.shape  # doctest: +SKIP
        (60000, 28, 28)
    """
    x_train, y_train = _split(_FILES[0], _FILES[1])
    x_test, y_test = _split(_FILES[2], _FILES[3])
    return (x_train, y_train), (x_test, y_test)
