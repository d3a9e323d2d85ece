"""tf.keras's ``keras.preprocessing.sequence.TimeseriesGenerator``, which TensorFlow still ships under
``tf.keras`` (Keras 3 keeps it among its legacy utilities): batches of sliding windows over a series, each window
paired with the target at the step right after it. keras.io's multivariate stock-forecasting page trains on it.

Batch ``i`` holds the windows ending before the rows ``start_index + length + i * batch_size * stride``,
``... + stride``, and so on up to ``end_index`` (the last row by default); a window is
``data[row - length:row:sampling_rate]`` and its target ``targets[row]``. ``shuffle=True`` draws each batch's rows
at random (NumPy's global generator, as tf.keras does); ``reverse=True`` flips every window in time.

Example:
    >>> import numpy as np
    >>> gen = TimeseriesGenerator(np.arange(10), np.arange(10) * 10, length=3, batch_size=4)
    >>> len(gen)
    2
    >>> windows, targets = gen[0]
    >>> windows.tolist(), targets.tolist()
    ([[0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5]], [30, 40, 50, 60])
"""
from __future__ import annotations

__all__ = ["TimeseriesGenerator"]

from typing import Any

import numpy as np

from ..utils.py_dataset import PyDataset


class TimeseriesGenerator(PyDataset):
    """Windows of ``length`` steps over ``data`` (taking every ``sampling_rate``-th), with ``targets`` of the step
    after each, ``batch_size`` windows a batch, consecutive windows ``stride`` steps apart (see the module
    docstring). ``fit`` / ``evaluate`` / ``predict`` take it as any ``keras.utils.PyDataset``.

    Args:
        data: a series indexable by row (an array of shape ``(steps, ...)``).
        targets: as many rows as ``data``.
        length, sampling_rate, stride, start_index, end_index, shuffle, reverse, batch_size: as tf.keras's.
        **kwargs: ``workers`` / ``use_multiprocessing`` / ``max_queue_size`` for ``PyDataset``.
    """

    def __init__(self, data: Any, targets: Any, length: int, sampling_rate: int = 1, stride: int = 1,
                 start_index: int = 0, end_index: int | None = None, shuffle: bool = False, reverse: bool = False,
                 batch_size: int = 128, **kwargs: Any):
        super().__init__(**kwargs)
        if len(data) != len(targets):
            raise ValueError("TimeseriesGenerator: data and targets have to be of same length. Data length is "
                             f"{len(data)} while target length is {len(targets)}")
        for name, value in (("length", length), ("sampling_rate", sampling_rate), ("stride", stride),
                            ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"TimeseriesGenerator: `{name}` must be a positive integer. Received: {value!r}")
        self.data, self.targets = data, targets
        self.length, self.sampling_rate, self.stride = int(length), int(sampling_rate), int(stride)
        self.start_index = int(start_index) + self.length
        self.end_index = len(data) - 1 if end_index is None else int(end_index)
        self.shuffle, self.reverse, self.batch_size = shuffle, reverse, int(batch_size)
        if self.start_index > self.end_index:
            raise ValueError(f"TimeseriesGenerator: `start_index+length={self.start_index} > "
                             f"end_index={self.end_index}` is disallowed, as no part of the sequence would be left "
                             "to be used as current step.")

    def __len__(self) -> int:
        span = self.batch_size * self.stride
        return (self.end_index - self.start_index + span) // span

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if self.shuffle:
            rows = np.random.randint(self.start_index, self.end_index + 1, size=self.batch_size)
        else:
            first = self.start_index + self.batch_size * self.stride * index
            rows = np.arange(first, min(first + self.batch_size * self.stride, self.end_index + 1), self.stride)
        samples = np.array([self.data[row - self.length:row:self.sampling_rate] for row in rows])
        targets = np.array([self.targets[row] for row in rows])
        return (samples[:, ::-1, ...] if self.reverse else samples), targets
