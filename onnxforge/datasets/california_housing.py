"""``keras.datasets.california_housing``: 20,640 Californian block groups of 1990, 8 features, house value."""
from __future__ import annotations

__all__ = ["load_data"]

import numpy as np

from . import _cache
from ._regression import check_test_split, read_and_split


def load_data(version: str = "large", path: str = "california_housing.npz", test_split: float = 0.2,
              seed: int = 113) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Loads the California Housing regression data as Keras 3 does, from ``california_housing.npz``.

    Features: median income, house age, average rooms, average bedrooms, population, average occupancy,
    latitude, longitude; the target is the median house value in dollars.

    Args:
        version: ``"large"`` (all 20,640 rows) or ``"small"`` (the first 600, Keras's stand-in for Boston).
        path: the file's name in ``$KERAS_HOME/datasets`` (``~/.keras/datasets``).
        test_split: the fraction kept for testing, in [0, 1).
        seed: seed of the shuffle before the split (numpy ``RandomState``, as Keras).

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: ``x`` of shape ``(n, 8)``, ``y`` of shape ``(n,)``.

    Raises:
        ValueError: ``version`` or ``test_split`` is invalid, or the file is not California Housing's.
        FileNotFoundError: the file is not cached (the message says where to put it).

    Example:
        >>> load_data(version="medium")
        Traceback (most recent call last):
        ...
        ValueError: Argument `version` must be one of 'small', 'large'. Received: version='medium'
    """
    check_test_split(test_split)
    if version not in ("small", "large"):
        raise ValueError(f"Argument `version` must be one of 'small', 'large'. Received: version={version!r}")
    select = (lambda x, y: (x[:600], y[:600])) if version == "small" else None
    return read_and_split("keras.datasets.california_housing.load_data", path,
                          _cache.ORIGIN + "california_housing.npz", 8, test_split, seed, select)
