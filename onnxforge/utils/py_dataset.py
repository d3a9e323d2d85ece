"""``PyDataset`` (alias ``Sequence``): a Python object that hands out batches by index, for ``fit``,
``evaluate`` and ``predict``.

Subclasses implement ``__len__`` (the number of batches, or the ``num_batches`` property, ``None`` for an
endless dataset) and ``__getitem__(index)`` returning ``x``, ``(x, y)`` or ``(x, y, sample_weight)``; they
may implement ``on_epoch_begin`` / ``on_epoch_end``. As in Keras 3, ``fit(shuffle=True)`` (its default)
visits the batches in a new random order each epoch (Python's ``random``, which ``set_random_seed`` seeds);
``evaluate`` and ``predict`` go in order. Batches are loaded in the calling thread: ``workers``,
``use_multiprocessing`` and ``max_queue_size`` are accepted and kept for compatibility.

Example:
    >>> import numpy as np
    >>> class Squares(PyDataset):
    ...     def __len__(self):
    ...         return 2
    ...     def __getitem__(self, i):
    ...         x = np.arange(4, dtype="float32")[:, None] + 4 * i
    ...         return x, x ** 2
    >>> len(Squares()), Squares()[1][0][:2, 0].tolist()
    (2, [4.0, 5.0])
"""
from __future__ import annotations

__all__ = ["PyDataset", "Sequence"]

import itertools
import warnings
from collections.abc import Iterator
from typing import Any


class PyDataset:
    """Base class for datasets of batches indexed from 0 (Keras ``keras.utils.PyDataset``).

    Args:
        workers: accepted for compatibility (batches load in the calling thread).
        use_multiprocessing: accepted for compatibility.
        max_queue_size: accepted for compatibility.
    """

    def __init__(self, workers: int = 1, use_multiprocessing: bool = False, max_queue_size: int = 10):
        self._workers = workers
        self._use_multiprocessing = use_multiprocessing
        self._max_queue_size = max_queue_size

    def _warn_if_super_not_called(self) -> None:
        if not hasattr(self, "_workers"):
            self._workers, self._use_multiprocessing, self._max_queue_size = 1, False, 10
            warnings.warn("Your `PyDataset` class should call `super().__init__(**kwargs)` in its constructor. "
                          "`**kwargs` can include `workers`, `use_multiprocessing`, `max_queue_size`. Do not pass "
                          "these arguments to `fit()`, as they will be ignored.", stacklevel=3)

    @property
    def workers(self) -> int:
        self._warn_if_super_not_called()
        return self._workers

    @workers.setter
    def workers(self, value: int) -> None:
        self._workers = value

    @property
    def use_multiprocessing(self) -> bool:
        self._warn_if_super_not_called()
        return self._use_multiprocessing

    @use_multiprocessing.setter
    def use_multiprocessing(self, value: bool) -> None:
        self._use_multiprocessing = value

    @property
    def max_queue_size(self) -> int:
        self._warn_if_super_not_called()
        return self._max_queue_size

    @max_queue_size.setter
    def max_queue_size(self, value: int) -> None:
        self._max_queue_size = value

    def __getitem__(self, index: int) -> Any:
        """The batch at ``index``: ``x``, ``(x, y)`` or ``(x, y, sample_weight)``."""
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__(index) returning a batch.")

    @property
    def num_batches(self) -> int | None:
        """The number of batches (``len(self)``), or ``None`` for an endless dataset."""
        if hasattr(self, "__len__"):
            return len(self)
        raise NotImplementedError(f"{type(self).__name__} must implement __len__ (or the num_batches property; "
                                  "None for an endless dataset).")

    def __iter__(self) -> Iterator[Any]:
        try:
            count = self.num_batches
        except NotImplementedError:
            count = None
        for index in (range(count) if count is not None else itertools.count()):
            yield self[index]

    def on_epoch_begin(self) -> None:
        """Called at the start of every epoch."""

    def on_epoch_end(self) -> None:
        """Called at the end of every epoch (shuffle your samples here)."""


#: Keras 3 keeps ``keras.utils.Sequence`` as another name of ``PyDataset``.
Sequence = PyDataset
