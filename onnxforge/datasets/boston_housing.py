"""``keras.datasets.boston_housing``: 506 Boston districts of the 1970s, 13 features, median price in k$."""
from __future__ import annotations

__all__ = ["load_data"]

import numpy as np

from . import _cache
from ._regression import check_test_split, read_and_split


def load_data(path: str = "boston_housing.npz", test_split: float = 0.2, seed: int = 113
              ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Loads the Boston Housing regression data as Keras 3 does, from its cache's ``boston_housing.npz``.

    Keras discourages this dataset (one feature encodes a racial assumption); ``california_housing`` with
    ``version="small"`` stands in for it.

    Args:
        path: the file's name in ``$KERAS_HOME/datasets`` (``~/.keras/datasets``).
        test_split: the fraction kept for testing, in [0, 1).
        seed: seed of the shuffle before the split (numpy ``RandomState``, as Keras).

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: ``x`` float64 of shape ``(n, 13)``, ``y`` float64 ``(n,)``
        (404 train / 102 test with the defaults).

    Raises:
        ValueError: ``test_split`` is outside [0, 1), or the file is not Boston Housing's.
        FileNotFoundError: the file is not cached (the message says where to put it).

    Example:
        >>> load_data(test_split=1.0)
        Traceback (most recent call last):
        ...
        ValueError: Invalid `test_split` argument: 1.0. It must be between 0 and 1 (exclusive of 1).
    """
    check_test_split(test_split)
    return read_and_split("keras.datasets.boston_housing.load_data", path, _cache.ORIGIN + "boston_housing.npz",
                          13, test_split, seed)
