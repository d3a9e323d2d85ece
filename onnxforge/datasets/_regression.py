"""The shuffle-and-split that ``boston_housing`` and ``california_housing`` share (Keras's exact draw)."""
from __future__ import annotations

__all__ = ["check_test_split", "read_and_split"]

import numbers
from typing import Any, Callable

import numpy as np

from . import _cache
from ._untrusted_files import read_npz


def check_test_split(test_split: Any) -> None:
    if isinstance(test_split, bool) or not isinstance(test_split, numbers.Real) or not 0 <= test_split < 1:
        raise ValueError(f"Invalid `test_split` argument: {test_split!r}. It must be between 0 and 1 (exclusive "
                         "of 1).")


def read_and_split(loader: str, path: Any, origin: str, features: int, test_split: float, seed: Any,
                   select: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None
                   ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The cached ``.npz`` (arrays ``x``, ``y``) shuffled with ``RandomState(seed)``, the last part for tests."""
    name = _cache.cached_name(loader, path)
    found = _cache.find(name)
    if found is None:
        raise _cache.missing(loader, name, origin)
    arrays = read_npz(found, loader, ("x", "y"), allow_objects=False)
    x, y = arrays["x"], arrays["y"]
    if x.ndim != 2 or x.shape[1] != features or y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"{loader}: {found} holds x of shape {x.shape} and y of shape {y.shape}; expected "
                         f"(n, {features}) and (n,).")
    if select is not None:
        x, y = select(x, y)
    indices = np.arange(len(x))
    np.random.RandomState(seed).shuffle(indices)
    x, y = x[indices], y[indices]
    split = int(len(x) * (1 - test_split))
    return (x[:split], y[:split]), (x[split:], y[split:])
