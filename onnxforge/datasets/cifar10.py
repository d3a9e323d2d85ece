"""``keras.datasets.cifar10``: the CIFAR-10 batches from Keras's dataset cache (see ``_cifar``)."""
from __future__ import annotations

__all__ = ["load_data"]

import os

import numpy as np

from ._cifar import batches_folder, load_batch, to_image_layout

_LOADER = "keras.datasets.cifar10.load_data"
_ORIGIN = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)


def _labels(labels: object, path: str) -> np.ndarray:
    y = np.asarray(labels)
    if y.dtype.kind not in "ui" or (y.size and (y.min() < 0 or y.max() > 255)):
        raise ValueError(f"{_LOADER}: {path}: the labels are not integers in 0..255.")
    return y.astype(np.uint8)


def load_data() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Loads CIFAR-10 as Keras 3 does: 50,000 training and 10,000 test 32x32 colour images of 10 classes.

    The batches are read from Keras's cache (``$KERAS_HOME/datasets``, else ``~/.keras/datasets``): the folder
    Keras 3.15 extracts (``cifar-10-batches-py-target/cifar-10-batches-py/``), tf.keras 2's
    (``cifar-10-batches-py/``), or a cached tarball, extracted safely on first use. The batches are pickles, read
    with an unpickler that only rebuilds numpy arrays and builtin containers. Classes: 0 airplane, 1 automobile,
    2 bird, 3 cat, 4 deer, 5 dog, 6 frog, 7 horse, 8 ship, 9 truck.

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: ``x`` uint8 of shape ``(n, 32, 32, 3)`` (channels last, as
        ``keras.config.image_data_format()``), ``y`` uint8 of shape ``(n, 1)``.

    Raises:
        FileNotFoundError: nothing of CIFAR-10 is cached (the message says where to put the tarball).
        ValueError / pickle.UnpicklingError: a batch or the tarball is malformed or hostile.

    Example:
        >>> (x_train, y_train), (x_test, y_test) = load_data()  # doctest: +SKIP
        >>> x_train.shape, y_train.shape  # doctest: +SKIP
        ((50000, 32, 32, 3), (50000, 1))
    """
    folder = batches_folder(_LOADER, "cifar-10-batches-py", _ORIGIN, _FILES)
    xs, ys = [], []
    for name in _FILES[:5]:
        x, y = load_batch(os.path.join(folder, name), _LOADER)
        xs.append(x.astype(np.uint8))
        ys.append(_labels(y, os.path.join(folder, name)))
    x_test, y_test = load_batch(os.path.join(folder, "test_batch"), _LOADER)
    x_train, y_train = np.concatenate(xs), np.concatenate(ys)
    y_test = _labels(y_test, os.path.join(folder, "test_batch"))
    return ((to_image_layout(x_train), y_train.reshape(-1, 1)),
            (to_image_layout(x_test.astype(np.uint8)), y_test.reshape(-1, 1)))
