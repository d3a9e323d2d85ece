"""scikit-learn's 1,797 handwritten digits (8x8, gray levels 0..16), read from its package data."""
from __future__ import annotations

__all__ = ["load_data"]

import numpy as np

from ._package_data import package_file, read_csv_gz, stratified_split


def load_data(test_size: int = 360, seed: int | None = 0
              ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Loads the UCI optical digits that scikit-learn ships, split Keras-style.

    The file is ``sklearn/datasets/data/digits.csv.gz`` (64 pixel columns then the label); scikit-learn
    is located, not imported. The test set is stratified by digit.

    Args:
        test_size: number of test samples (default 360, about 20%).
        seed: seed of the split and of the sample order; ``None`` for a fresh random split.

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: ``x`` uint8 of shape ``(n, 8, 8)`` in [0, 16],
        ``y`` uint8 labels in 0..9.

    Raises:
        ModuleNotFoundError: scikit-learn is not installed (``pip install scikit-learn``).

    Example:
        >>> (x_train, y_train), (x_test, y_test) = load_data()
        >>> x_train.shape, x_test.shape
        ((1437, 8, 8), (360, 8, 8))
    """
    path = package_file("sklearn", "datasets/data/digits.csv.gz", "scikit-learn", "digits")
    table = read_csv_gz(path, 8 * 8 + 1)
    x = table[:, :-1].astype(np.uint8).reshape(-1, 8, 8)
    y = table[:, -1].astype(np.uint8)
    train, test = stratified_split(y, test_size, seed)
    return (x[train], y[train]), (x[test], y[test])
