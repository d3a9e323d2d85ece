"""``keras.datasets.cifar100``: the CIFAR-100 ``train`` / ``test`` files from Keras's cache (see ``_cifar``)."""
from __future__ import annotations

__all__ = ["load_data"]

import os

import numpy as np

from ._cifar import batches_folder, load_batch, to_image_layout

_LOADER = "keras.datasets.cifar100.load_data"
_ORIGIN = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"


def load_data(label_mode: str = "fine") -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Loads CIFAR-100 as Keras 3 does: 50,000 training and 10,000 test 32x32 colour images.

    Read from Keras's cache like ``cifar10.load_data`` (``cifar-100-python-target/cifar-100-python/``,
    ``cifar-100-python/`` or a cached tarball, extracted safely on first use).

    Args:
        label_mode: ``"fine"`` (100 classes) or ``"coarse"`` (their 20 superclasses).

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: ``x`` uint8 of shape ``(n, 32, 32, 3)``, ``y`` of shape
        ``(n, 1)`` (int64, as Keras's: the labels are read from the file's lists).

    Raises:
        ValueError: ``label_mode`` is neither ``"fine"`` nor ``"coarse"``, or a file is malformed.
        FileNotFoundError: nothing of CIFAR-100 is cached (the message says where to put the tarball).

    Example:
        >>> load_data(label_mode="superclass")
        Traceback (most recent call last):
        ...
        ValueError: `label_mode` must be one of "fine", "coarse". Received: label_mode='superclass'.
    """
    if label_mode not in ("fine", "coarse"):
        raise ValueError(f'`label_mode` must be one of "fine", "coarse". Received: label_mode={label_mode!r}.')
    folder = batches_folder(_LOADER, "cifar-100-python", _ORIGIN, ("train", "test"))
    loaded = []
    for name in ("train", "test"):
        x, labels = load_batch(os.path.join(folder, name), _LOADER, label_key=f"{label_mode}_labels")
        y = np.reshape(np.asarray(labels), (len(labels), 1))
        if y.dtype.kind not in "ui":
            raise ValueError(f"{_LOADER}: {os.path.join(folder, name)}: the {label_mode} labels are not integers.")
        loaded.append((to_image_layout(x), y))
    return loaded[0], loaded[1]
