"""What ``adapt()`` accepts, as Keras 3: a NumPy array (or anything ``np.asarray`` takes, such as a list of
numbers or strings), or an iterable of batches (a list of arrays, a generator, a ``keras.utils.PyDataset``
or any object yielding arrays or ``(x, y)`` tuples, whose first element is used).
"""
from __future__ import annotations

__all__ = ["batches"]

from collections.abc import Iterator
from typing import Any

import numpy as np


def _first(batch: Any) -> Any:
    return batch[0] if isinstance(batch, tuple) else batch


def _array(value: Any, layer: str) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind in "US":  # text: object arrays are what onnxruntime takes for ONNX strings
        array = array.astype(object)
    return array


def batches(data: Any, layer: str, steps: int | None = None, list_is_batches: bool = False) -> Iterator[np.ndarray]:
    """The batches of ``data`` as NumPy arrays (one batch for an array).

    ``list_is_batches``: a Python list or tuple is a sequence of batches (Keras's ``Normalization``), rather
    than the data itself (Keras's lookup layers: ``adapt(["a", "b"])``).

    Raises:
        TypeError: ``data`` is neither array-like nor an iterable of batches.
        ValueError: an iterable that yields nothing.
    """
    if isinstance(data, (str, bytes)):
        raise TypeError(f"{layer}.adapt() expects an array or an iterable of batches. Received a single string: "
                        f"{data!r}")
    if isinstance(data, np.ndarray) or np.isscalar(data) or (isinstance(data, (list, tuple)) and not list_is_batches):
        yield _array(data, layer)
        return
    if hasattr(data, "__getitem__") and hasattr(data, "__len__") and hasattr(data, "num_batches"):
        count = data.num_batches if steps is None else min(steps, data.num_batches)
        for i in range(count):  # a PyDataset
            yield _array(_first(data[i]), layer)
        return
    if not hasattr(data, "__iter__"):
        raise TypeError(f"{layer}.adapt() supports NumPy arrays, lists and iterables of batches. Received: "
                        f"{type(data).__name__}")
    seen = False
    for i, batch in enumerate(data):
        if steps is not None and i >= steps:
            break
        seen = True
        yield _array(_first(batch), layer)
    if not seen:
        raise ValueError(f"{layer}.adapt() received an empty iterable (no batches). Expected at least one batch.")
