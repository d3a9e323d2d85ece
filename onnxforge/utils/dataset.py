"""``Dataset``: a small in-memory stand-in for the ``tf.data.Dataset`` that Keras's dataset utilities return,
with the methods tutorials chain onto them (``batch``, ``shuffle``, ``map``, ``prefetch``, ``cache``,
``take``, ``skip``, ``repeat``, ``filter``, ``unbatch``, ``as_numpy_iterator``). ``fit`` / ``evaluate`` /
``predict`` iterate it afresh each epoch, as they do a ``tf.data.Dataset``. ``split_dataset`` lives here too.

Elements are NumPy arrays, or tuples / dicts of them; a batched dataset yields them stacked along a new
first axis.

Example:
    >>> import numpy as np
    >>> ds = Dataset.from_tensor_slices((np.arange(5.0), np.arange(5) % 2)).batch(2)
    >>> [x.tolist() for x, _ in ds]
    [[0.0, 1.0], [2.0, 3.0], [4.0]]
    >>> len(ds)
    3
"""
from __future__ import annotations

__all__ = ["Dataset", "split_dataset", "AUTOTUNE"]

import itertools
import math
import random
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from ..eager_tensor import as_eager, as_tf_bytes, is_text
from .dataset_methods import EXTRA_STAGES, DatasetMethods
from .dataset_structure import as_element
from .dataset_structure import call_spread as _call
from .dataset_structure import leaves as _leaves
from .dataset_structure import pipeline_call as _pipeline_call
from .dataset_structure import map_leaves as _map_leaves
from .dataset_structure import split_batch as _split_batch
from .dataset_structure import stack as _stack

#: Accepted wherever tf.data takes ``tf.data.AUTOTUNE`` (``prefetch``, ``num_parallel_calls``).
AUTOTUNE = -1
_UNKNOWN = -2


def _python_numbers(values: list) -> bool:
    """Whether a (nested) list holds only Python ``int`` / ``float`` / ``bool`` values, no NumPy ones."""
    return all(_python_numbers(v) if isinstance(v, list) else type(v) in (int, float, bool) for v in values)


def _tensor_leaves(structure: Any) -> Any:
    """``structure`` with its leaves as arrays, where tuples and dicts nest but lists are leaves (tf.data's rule)."""
    if isinstance(structure, tuple):
        return tuple(_tensor_leaves(s) for s in structure)
    if isinstance(structure, dict):
        return {k: _tensor_leaves(v) for k, v in structure.items()}
    array = np.asarray(structure)
    if isinstance(structure, list) and array.dtype in (np.float64, np.int64) and _python_numbers(structure):
        # tf.data converts a list of Python numbers as tf.constant does: float32, and int32 where every value
        # fits (keras.io's Transformer ASR slices token-id lists and gets int32 targets); NumPy says 64 bits.
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        elif not array.size or (-2**31 <= array.min() and array.max() < 2**31):
            array = array.astype(np.int32)
    if array.dtype == object and array.size and all(isinstance(v, (str, bytes)) for v in array.flat):
        # A pandas text column is an object array; tf.data makes it a string tensor, so rows are string
        # scalars that layers accept (not Python str objects).
        array = array.astype(bytes if isinstance(array.flat[0], bytes) else str)
    return array


class Dataset(DatasetMethods):
    """An iterable, re-iterable pipeline over in-memory elements.

    Build one with ``Dataset.from_tensor_slices(arrays)`` (one element per row) or get one from
    ``split_dataset``, ``image_dataset_from_directory``, ``text_dataset_from_directory`` or
    ``timeseries_dataset_from_array``. Every method returns a new ``Dataset``; nothing runs until iterated.

    Attributes:
        class_names: the class names of a dataset read from directories (else ``None``).
        file_paths: the files of a dataset read from directories (else ``None``).
    """

    def __init__(self, source: Callable[[], Iterable[Any]], length: int, stages: tuple = (),
                 class_names: list[str] | None = None, file_paths: list[str] | None = None):
        self._source = source
        self._length = length
        self._stages = stages
        self.class_names = class_names
        self.file_paths = file_paths

    @classmethod
    def from_tensor_slices(cls, tensors: Any) -> Dataset:
        """A dataset of the rows of ``tensors`` (an array, or a tuple / dict of arrays with as many rows).

        As in tf.data, a Python list is one tensor, not a structure: ``(["a b", "c"], [0, 1])`` slices into two
        (text, label) pairs, and a list of equal-shaped arrays into its stacked rows."""
        arrays = _tensor_leaves(tensors)
        counts = {len(a) for a in _leaves(arrays)}
        if len(counts) != 1:
            raise ValueError(f"Dataset.from_tensor_slices: every array must have the same number of rows. Received "
                             f"row counts {sorted(counts)}")
        n = counts.pop()
        return cls(lambda: (_map_leaves(lambda a, i=i: a[i], arrays) for i in range(n)), n)

    # ------------------------------------------------------------------ pipeline
    def _with(self, stage: tuple, length: int) -> Dataset:
        return Dataset(self._source, length, self._stages + (stage,), self.class_names, self.file_paths)

    def batch(self, batch_size: int, drop_remainder: bool = False, **_: Any) -> Dataset:
        """Consecutive elements stacked ``batch_size`` at a time (the last batch may be smaller)."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"Dataset.batch: batch_size must be a positive integer. Received: {batch_size!r}")
        n = self._length
        length = n if n < 0 else (n // batch_size if drop_remainder else math.ceil(n / batch_size))
        return self._with(("batch", int(batch_size), drop_remainder), length)

    def unbatch(self) -> Dataset:
        """Split every batch back into its elements."""
        return self._with(("unbatch",), _UNKNOWN)

    def shuffle(self, buffer_size: int, seed: int | None = None, reshuffle_each_iteration: bool = True) -> Dataset:
        """Elements in random order, drawn from a buffer of ``buffer_size`` as tf.data does (a buffer as large as
        the dataset shuffles it fully); a new order each iteration unless ``reshuffle_each_iteration=False``."""
        return self._with(("shuffle", max(int(buffer_size), 1), seed, reshuffle_each_iteration, [0]), self._length)

    def map(self, map_func: Callable[..., Any], num_parallel_calls: Any = None, deterministic: Any = None,
            **_: Any) -> Dataset:
        """``map_func`` applied to every element (a tuple element is passed as separate arguments)."""
        return self._with(("map", map_func), self._length)

    def filter(self, predicate: Callable[..., Any]) -> Dataset:
        """The elements for which ``predicate`` is true."""
        return self._with(("filter", predicate), _UNKNOWN)

    def take(self, count: int) -> Dataset:
        """The first ``count`` elements (all of them for -1)."""
        n = self._length
        length = n if count < 0 else (count if n < 0 else min(n, count))
        return self._with(("take", int(count)), length)

    def skip(self, count: int) -> Dataset:
        """All but the first ``count`` elements."""
        return self._with(("skip", int(count)), self._length if self._length < 0 else max(self._length - count, 0))

    def repeat(self, count: int | None = None) -> Dataset:
        """The dataset ``count`` times over (forever for ``None`` or -1)."""
        forever = count is None or count < 0
        if self._length == -1:
            return self   # an endless dataset repeated is itself (nothing to cache)
        length = -1 if forever else (self._length * count if self._length >= 0 else self._length)
        return self._with(("repeat", None if forever else int(count)), length)

    def prefetch(self, buffer_size: Any = None) -> Dataset:
        """Accepted for tf.data compatibility (elements are already in memory)."""
        return self

    def snapshot(self, path: str, compression: str = "AUTO", reader_func: Any = None, shard_func: Any = None,
                 name: str | None = None) -> Dataset:
        """Accepted for tf.data compatibility (TensorFlow's CSV tutorial): TensorFlow writes the elements under
        ``path`` to reuse them in later runs; here the pipeline gives the same elements without it."""
        return self

    def cache(self, filename: str = "") -> Dataset:
        """Accepted for tf.data compatibility (elements are already in memory)."""
        return self

    # ------------------------------------------------------------------ iteration
    def _elements(self) -> Iterator[Any]:
        it: Iterator[Any] = iter(self._source())
        for stage in self._stages:
            it = _STAGES[stage[0]](it, *stage[1:])
        return it

    def __iter__(self) -> Iterator[Any]:
        # tf.data yields tensors, and tutorials call ``.numpy()`` on them (``for x, y in ds.take(1):``):
        # the arrays come as EagerTensors, numpy arrays with that method.
        return (_map_leaves(as_eager, element) for element in self._elements())

    def as_numpy_iterator(self) -> Iterator[Any]:
        """The elements as plain NumPy arrays; strings as tf.data gives them: ``bytes``, or object arrays of
        UTF-8 ``bytes``."""
        return (_map_leaves(_numpy_leaf, element) for element in self._elements())

    def cardinality(self) -> Any:
        """The number of elements: -1 for infinite, -2 when unknown (tf.data's codes), as tf.data gives it: a
        0-d int64 tensor (programs call ``.numpy()`` on it)."""
        return as_eager(np.int64(self._length))

    def __len__(self) -> int:
        if self._length == -1:
            raise TypeError("The dataset is infinite.")
        if self._length < 0:
            raise TypeError("The dataset length is unknown.")
        return self._length

    def __repr__(self) -> str:
        return f"<Dataset cardinality={self._length}>"


def _numpy_leaf(leaf: Any) -> Any:
    if isinstance(leaf, (np.ndarray, np.str_, np.bytes_)) and is_text(np.asarray(leaf)):
        return as_tf_bytes(np.asarray(leaf))
    return leaf


# ---------------------------------------------------------------------- stages
def _batch(it: Iterator[Any], size: int, drop_remainder: bool) -> Iterator[Any]:
    while True:
        chunk = list(itertools.islice(it, size))
        if not chunk or (drop_remainder and len(chunk) < size):
            return
        yield _stack(chunk)


def _unbatch(it: Iterator[Any]) -> Iterator[Any]:
    for batch in it:
        yield from _split_batch(batch)


def _shuffle(it: Iterator[Any], buffer_size: int, seed: int | None, reshuffle: bool, epoch: list[int]
             ) -> Iterator[Any]:
    # A seeded dataset gives the same orders in every run; with reshuffling each pass gets its own.
    base = seed if seed is not None else random.randrange(2 ** 31)
    rng = random.Random(base + epoch[0] if reshuffle else base)
    epoch[0] += 1
    buffer: list[Any] = []
    for element in it:
        buffer.append(element)
        if len(buffer) >= buffer_size:
            yield buffer.pop(rng.randrange(len(buffer)))
    while buffer:
        yield buffer.pop(rng.randrange(len(buffer)))


def _map(it: Iterator[Any], fn: Callable[..., Any]) -> Iterator[Any]:
    for element in it:
        yield as_element(_pipeline_call(fn, element))


def _filter(it: Iterator[Any], predicate: Callable[..., Any]) -> Iterator[Any]:
    for element in it:
        if bool(np.asarray(_call(predicate, element))):
            yield element


def _take(it: Iterator[Any], count: int) -> Iterator[Any]:
    return it if count < 0 else itertools.islice(it, count)


def _skip(it: Iterator[Any], count: int) -> Iterator[Any]:
    return itertools.islice(it, count, None)


def _repeat(it: Iterator[Any], count: int | None) -> Iterator[Any]:
    # The pipeline above this stage is rebuilt from its elements: cache them on the first pass, handing each
    # out at once, so an endless upstream (make_csv_dataset's default, then filter) streams instead of hanging
    # (TensorFlow's data guide), and an empty one ends the repeat instead of looping forever.
    if count == 0:
        return
    cached = []
    for element in it:
        cached.append(element)
        yield element
    for _ in (itertools.count() if count is None else range(count - 1)):
        if not cached:
            return
        yield from cached


_STAGES = {"batch": _batch, "unbatch": _unbatch, "shuffle": _shuffle, "map": _map, "filter": _filter,
           "take": _take, "skip": _skip, "repeat": _repeat, **EXTRA_STAGES}


# ---------------------------------------------------------------------- split_dataset
def _split_sizes(left: Any, right: Any, total: int) -> tuple[int, int]:
    """Keras's rules for ``left_size`` / ``right_size``: ints are counts, floats fractions in (0, 1)."""
    for name, size in (("left_size", left), ("right_size", right)):
        if size is not None and type(size) not in (int, float):
            raise TypeError(f"Invalid `{name}` Type. Expected: int or float or None, Received: type({name})="
                            f"{type(size)}.")
        if isinstance(size, int) and not 0 < size < total or isinstance(size, float) and not 0 < size < 1:
            raise ValueError(f"`{name}` should be either a positive integer smaller than {total}, or a float within "
                             f"the range `[0, 1]`. Received: {name}={size}")
    if left is None and right is None:
        raise ValueError("At least one of the `left_size` or `right_size` must be specified. Received: "
                         "left_size=None and right_size=None")
    if isinstance(left, float) and isinstance(right, float) and left + right > 1:
        raise ValueError("The sum of `left_size` and `right_size` is greater than 1. It must be less than or equal "
                         "to 1.")
    n_left = round(left * total) if isinstance(left, float) else left
    n_right = round(right * total) if isinstance(right, float) else right
    n_left = total - n_right if n_left is None else n_left
    n_right = total - n_left if n_right is None else n_right
    if n_left + n_right > total:
        raise ValueError(f"The sum of `left_size` and `right_size` should be smaller than the {total}. Received: "
                         f"left_size + right_size = {n_left + n_right} and total_length = {total}")
    for n, side in ((n_left, "left"), (n_right, "right")):
        if n == 0:
            raise ValueError(f"With `dataset` of length={total}, `left_size`={left} and `right_size`={right}. "
                             f"Resulting {side} side dataset split will be empty. Adjust any of the aforementioned "
                             "parameters")
    return int(n_left), int(n_right)


def split_dataset(dataset: Any, left_size: int | float | None = None, right_size: int | float | None = None,
                  shuffle: bool = False, seed: int | None = None, preferred_backend: str | None = None
                  ) -> tuple[Dataset, Dataset]:
    """Split a dataset of samples in two (Keras ``split_dataset``, its tf.data semantics).

    Args:
        dataset: an array, a tuple or list of arrays with as many rows, a dict of them, a ``Dataset`` (batched
            ones are unbatched), or any iterable of samples.
        left_size: the left part: a count, or a fraction in (0, 1); default: what ``right_size`` leaves.
        right_size: the right part, likewise; default: what ``left_size`` leaves.
        shuffle: shuffle the samples first (Python's ``random`` seeded with ``seed``, as Keras does).
        seed: the shuffle's seed.
        preferred_backend: accepted for compatibility.

    Returns:
        ``(left, right)``: two unbatched ``Dataset`` objects (the left part the first samples, the right part
        the last ones).

    Example:
        >>> import numpy as np
        >>> left, right = split_dataset(np.arange(10), left_size=0.8)
        >>> len(left), len(right)
        (8, 2)
    """
    if isinstance(dataset, np.ndarray) or hasattr(dataset, "__array__") and not isinstance(dataset, (list, tuple)):
        samples = list(np.asarray(dataset))
    elif isinstance(dataset, (list, tuple)):
        arrays = [np.asarray(a) for a in dataset]
        if not arrays:
            raise ValueError("Received an empty list dataset. Please provide a non-empty list of arrays.")
        if len({len(a) for a in arrays}) != 1:
            raise ValueError(f"Received a {type(dataset).__name__} of NumPy arrays with different lengths: "
                             f"{[len(a) for a in arrays]}. Please provide arrays of the same length.")
        samples = list(zip(*arrays))
    elif isinstance(dataset, dict):
        samples = list(Dataset.from_tensor_slices(dataset))
    elif isinstance(dataset, Dataset):
        rows = dataset.unbatch() if any(stage[0] == "batch" for stage in dataset._stages) else dataset
        samples = list(rows)
    elif hasattr(dataset, "__iter__"):
        samples = list(dataset)
    else:
        raise TypeError("The `dataset` argument must be an array, a list/tuple of arrays, a dict of arrays or a "
                        f"Dataset. Received: dataset={dataset!r} of type {type(dataset).__name__}")
    if not samples:
        raise ValueError("Received an empty dataset. Argument `dataset` must be a non-empty list/tuple of arrays or "
                         "a Dataset.")
    if shuffle:
        random.Random(seed if seed is not None else random.randint(0, int(1e6))).shuffle(samples)
    n_left, n_right = _split_sizes(left_size, right_size, len(samples))
    left, right = samples[:n_left], samples[len(samples) - n_right:]
    as_tuple = isinstance(dataset, (list, tuple))
    return (Dataset(lambda: iter(left), len(left)) if not as_tuple else _tuple_rows(left),
            Dataset(lambda: iter(right), len(right)) if not as_tuple else _tuple_rows(right))


def _tuple_rows(rows: list[tuple]) -> Dataset:
    return Dataset(lambda: (tuple(r) for r in rows), len(rows))
