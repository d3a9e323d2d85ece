"""The rest of ``tf.data.Dataset`` that programs chain (mixed into ``Dataset``): sources (``range``,
``from_tensors``, ``from_generator``, ``list_files``, ``zip``, ``counter``, ``sample_from_datasets``,
``choose_from_datasets``), ``rejection_resample``, ``concatenate``, ``enumerate``, ``padded_batch``, ``window``, ``flat_map``,
``interleave``, ``scan``, ``reduce``, ``take_while``, ``shard``, ``rebatch``, ``unique``,
``group_by_window``, ``bucket_by_sequence_length``, ``get_single_element``, ``apply``, ``element_spec``
and the no-op ``options`` / ``with_options``, with tf.data's semantics (orders, partial windows, padding).

Example:
    >>> from onnxforge.utils.dataset import Dataset
    >>> windows = Dataset.range(7).window(3, shift=2).flat_map(lambda w: w.batch(3))
    >>> [w.tolist() for w in windows.as_numpy_iterator()]
    [[0, 1, 2], [2, 3, 4], [4, 5, 6], [6]]
    >>> [x.tolist() for x in Dataset.range(1, 4).map(lambda n: [n] * int(n)).padded_batch(3).as_numpy_iterator()]
    [[[1, 0, 0], [2, 2, 0], [3, 3, 3]]]
"""
from __future__ import annotations

__all__ = ["DatasetMethods", "EXTRA_STAGES", "Options", "INFINITE", "UNKNOWN"]

import glob
import itertools
import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..eager_tensor import as_eager
from .dataset_structure import leaves, map_leaves, same_structure
from .dataset_resample import rejection_resample
from .dataset_stages import EXTRA_STAGES
from .tensor_spec import TensorSpec, normalize_dtype, shape_compatible

#: tf.data's cardinality codes.
INFINITE, UNKNOWN = -1, -2


class Options:
    """``tf.data.Options``: accepted and kept (``with_options`` returns the dataset unchanged); nested option
    groups (``options.experimental_distribute.auto_shard_policy = ...``) are made on first use."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        child = Options()
        object.__setattr__(self, name, child)
        return child


def _combined_length(lengths: list[int], how: str) -> int:
    if how == "min":
        finite = [n for n in lengths if n >= 0]
        if finite:
            return min(finite) if UNKNOWN not in lengths else UNKNOWN
        return UNKNOWN if UNKNOWN in lengths else INFINITE
    if any(n == INFINITE for n in lengths):
        return INFINITE
    return UNKNOWN if any(n < 0 for n in lengths) else sum(lengths)


def _check_count(method: str, name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"Dataset.{method}: `{name}` must be an integer >= {minimum}. Received: {name}={value!r}")
    return int(value)


def _flatten_like(structure: Any, value: Any) -> list[Any]:
    """``value``'s parts at the leaves of ``structure`` (a list inside ``value`` where ``structure`` has a leaf
    is data, not nesting)."""
    if isinstance(structure, (tuple, list)):
        if not isinstance(value, (tuple, list)) or len(value) != len(structure):
            raise ValueError(f"expected {len(structure)} components, received {value!r}")
        return [leaf for s, v in zip(structure, value) for leaf in _flatten_like(s, v)]
    if isinstance(structure, dict):
        if not isinstance(value, dict) or set(value) != set(structure):
            raise ValueError(f"expected the keys {sorted(structure)}, received {value!r}")
        return [leaf for k in structure for leaf in _flatten_like(structure[k], value[k])]
    return [value]


def _generated(generator: Callable[..., Any], args: tuple, specs: Any) -> Iterator[Any]:
    for element in generator(*args):
        if specs is None:
            yield map_leaves(np.asarray, element)
            continue
        try:
            flat_values = _flatten_like(specs, element)
        except ValueError as err:
            raise ValueError("`generator` yielded an element that did not match the expected structure. The expected "
                             f"structure was {specs}, but the yielded element was {element!r} ({err}).") from None
        converted = []
        for spec, value in zip(leaves(specs), flat_values):
            array = np.asarray(value, dtype=spec.numpy_dtype())
            if not shape_compatible(spec.shape, array.shape):
                raise ValueError(f"`generator` yielded an element of shape {array.shape} where an element of shape "
                                 f"{spec.shape} was expected.")
            converted.append(array)
        it = iter(converted)
        yield map_leaves(lambda _: next(it), specs)


def _generator_specs(output_types: Any, output_shapes: Any, output_signature: Any) -> Any:
    if output_signature is not None:
        if output_types is not None or output_shapes is not None:
            raise TypeError("Dataset.from_generator: `output_types` and `output_shapes` cannot be used together with "
                            "`output_signature`.")
        for spec in leaves(output_signature):
            if not isinstance(spec, TensorSpec):
                raise TypeError("Dataset.from_generator: every leaf of `output_signature` must be a tf.TensorSpec. "
                                f"Received: {spec!r}")
        return output_signature
    if output_types is None:
        return None   # tf.data needs one of the two; here the arrays simply keep the generator's dtypes
    if output_shapes is None:
        return map_leaves(lambda t: TensorSpec(None, t), output_types)
    shapes = iter(_flatten_like(output_types, output_shapes))   # one shape per output type
    return map_leaves(lambda t: TensorSpec(next(shapes), t), output_types)


class DatasetMethods:
    """tf.data methods beyond the core pipeline of ``Dataset`` (see the module docstring)."""

    # ------------------------------------------------------------------ sources
    @classmethod
    def from_tensors(cls, tensors: Any, name: str | None = None) -> Any:
        """A dataset of one element: ``tensors`` whole."""
        element = map_leaves(np.asarray, tensors)
        return cls(lambda: iter([element]), 1)

    @classmethod
    def range(cls, *args: int, dtype: Any = "int64", name: str | None = None) -> Any:
        """``range(stop)``, ``range(start, stop[, step])`` as int64 scalars (Python's ``range`` semantics)."""
        numbers = range(*(int(a) for a in args))
        np_dtype = np.dtype(normalize_dtype(dtype))
        return cls(lambda: (np_dtype.type(i) for i in numbers), len(numbers))

    @classmethod
    def list_files(cls, file_pattern: Any, shuffle: bool | None = None, seed: int | None = None,
                   name: str | None = None) -> Any:
        """The paths matching ``file_pattern`` (a glob, or a list of them) as string scalars, sorted, then
        shuffled anew each iteration unless ``shuffle=False`` (tf.data's default is to shuffle).

        Raises:
            InvalidArgumentError: no file matches (TensorFlow's error).
        """
        patterns = np.asarray(file_pattern.numpy() if hasattr(file_pattern, "numpy") else file_pattern, object)
        patterns = [p.decode() if isinstance(p, bytes) else os.fspath(p) for p in patterns.ravel().tolist()]
        paths = sorted({path for pattern in patterns for path in glob.glob(pattern)})
        if not paths:
            from ..graph.tf_errors import InvalidArgumentError
            raise InvalidArgumentError(f"Dataset.list_files: no files matched pattern: {', '.join(patterns)}")
        files = cls(lambda: (np.asarray(path) for path in paths), len(paths))
        return files if shuffle is False else files.shuffle(len(paths), seed=seed)

    @classmethod
    def counter(cls, start: int = 0, step: int = 1, dtype: Any = "int64", name: str | None = None) -> Any:
        """``start, start + step, ...`` forever."""
        np_dtype = np.dtype(normalize_dtype(dtype))
        return cls(lambda: (np_dtype.type(i) for i in itertools.count(start, step)), INFINITE)

    @classmethod
    def from_generator(cls, generator: Callable[..., Any], output_types: Any = None, output_shapes: Any = None,
                       args: Any = None, output_signature: Any = None, name: str | None = None) -> Any:
        """The elements a Python generator yields, checked against and converted to ``output_signature``
        (a structure of ``tf.TensorSpec``) or ``output_types`` / ``output_shapes``. ``generator`` is called
        afresh (with ``args``) on every iteration, so ``fit`` can run several epochs over it."""
        if not callable(generator):
            raise TypeError(f"Dataset.from_generator: `generator` must be a Python callable. Received: {generator!r}")
        specs = _generator_specs(output_types, output_shapes, output_signature)
        call_args = tuple(np.asarray(a) for a in (args or ()))
        return cls(lambda: _generated(generator, call_args, specs), UNKNOWN)

    @staticmethod
    def zip(*args: Any, datasets: Any = None, name: str | None = None) -> Any:
        """Elements of several datasets side by side, in their structure (``zip((a, b))``, ``zip(a, b)``,
        ``zip({"x": a, "y": b})``), as long as the shortest."""
        structure = datasets if datasets is not None else (args[0] if len(args) == 1 else args)
        parts = leaves(structure)
        if not parts or not all(isinstance(p, DatasetMethods) for p in parts):
            raise TypeError(f"Dataset.zip: expected datasets, or a tuple / dict of datasets. Received: {structure!r}")
        cls = type(parts[0])

        def source() -> Iterator[Any]:
            for row in zip(*(p._elements() for p in parts)):
                it = iter(row)
                yield map_leaves(lambda _: next(it), structure)

        return cls(source, _combined_length([p._length for p in parts], "min"))

    @staticmethod
    def sample_from_datasets(datasets: list[Any], weights: Any = None, seed: int | None = None,
                             stop_on_empty_dataset: bool = False, rerandomize_each_iteration: Any = None) -> Any:
        """Elements drawn at random from ``datasets`` with probabilities ``weights`` (uniform by default);
        an exhausted dataset drops out, or ends the sampling with ``stop_on_empty_dataset=True``."""
        datasets = list(datasets)
        if not datasets:
            raise ValueError("Dataset.sample_from_datasets: `datasets` must be a non-empty list of datasets.")
        w = np.ones(len(datasets)) if weights is None else np.asarray(weights, np.float64).reshape(-1)
        if len(w) != len(datasets) or (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"Dataset.sample_from_datasets: `weights` must be {len(datasets)} non-negative numbers "
                             f"with a positive sum. Received: weights={weights!r}")

        def source() -> Iterator[Any]:
            rng = np.random.default_rng(seed)
            its = [d._elements() for d in datasets]
            live = w.copy()
            while live.sum() > 0:
                k = int(rng.choice(len(its), p=live / live.sum()))
                try:
                    yield next(its[k])
                except StopIteration:
                    if stop_on_empty_dataset:
                        return
                    live[k] = 0.0

        return type(datasets[0])(source, UNKNOWN)

    @staticmethod
    def choose_from_datasets(datasets: list[Any], choice_dataset: Any, stop_on_empty_dataset: bool = True) -> Any:
        """Element ``i`` from ``datasets[choice_i]``, the choices read from the int64 ``choice_dataset``."""
        datasets = list(datasets)
        if not datasets:
            raise ValueError("Dataset.choose_from_datasets: `datasets` must be a non-empty list of datasets.")

        def source() -> Iterator[Any]:
            its = [d._elements() for d in datasets]
            for choice in choice_dataset._elements():
                k = int(np.asarray(choice))
                if not 0 <= k < len(its):
                    raise ValueError(f"Dataset.choose_from_datasets: a choice {k} is outside [0, {len(its)}).")
                try:
                    yield next(its[k])
                except StopIteration:
                    if stop_on_empty_dataset:
                        return

        return type(datasets[0])(source, UNKNOWN)

    def rejection_resample(self, class_func: Callable[..., Any], target_dist: Any, initial_dist: Any = None,
                           seed: int | None = None, name: str | None = None) -> Any:
        """``(class, element)`` pairs resampled so ``class_func``'s classes follow ``target_dist``
        (tf.data's mixed rejection sampling; ``dataset_resample``)."""
        return rejection_resample(self, class_func, target_dist, initial_dist, seed)

    # ------------------------------------------------------------------ combining and reshaping
    def concatenate(self, dataset: Any, name: str | None = None) -> Any:
        """This dataset's elements, then ``dataset``'s (their structures must agree)."""
        first, second = self, dataset

        def source() -> Iterator[Any]:
            head = None
            for element in first._elements():
                head = element if head is None else head
                yield element
            for element in second._elements():
                if head is not None and not same_structure(head, element):
                    raise TypeError("Dataset.concatenate: the two datasets have incompatible element structures.")
                yield element

        return type(self)(source, _combined_length([self._length, dataset._length], "sum"))

    def enumerate(self, start: int = 0, name: str | None = None) -> Any:
        """``(index, element)`` pairs, the index an int64 counting from ``start``."""
        return self._with(("enumerate", int(start)), self._length)

    def padded_batch(self, batch_size: int, padded_shapes: Any = None, padding_values: Any = None,
                     drop_remainder: bool = False, name: str | None = None) -> Any:
        """``batch`` for elements of different shapes: each component padded with ``padding_values`` (0, or
        ``b""`` for strings) to ``padded_shapes`` (``None`` / -1 dims: the longest in the batch)."""
        size = _check_count("padded_batch", "batch_size", batch_size, 1)
        n = self._length
        length = n if n < 0 else (n // size if drop_remainder else -(-n // size))
        return self._with(("padded_batch", size, padded_shapes, padding_values, drop_remainder), length)

    def rebatch(self, batch_size: int, drop_remainder: bool = False, name: str | None = None) -> Any:
        """The batches cut again to ``batch_size`` rows."""
        return self.unbatch().batch(batch_size, drop_remainder=drop_remainder)

    def window(self, size: int, shift: int | None = None, stride: int = 1, drop_remainder: bool = False,
               name: str | None = None) -> Any:
        """Windows of ``size`` elements, one every ``shift`` (default ``size``), taking every ``stride``-th;
        each window is a dataset (a tuple / dict of datasets for structured elements). The last windows may be
        shorter unless ``drop_remainder``."""
        size = _check_count("window", "size", size, 1)
        shift = size if shift is None else _check_count("window", "shift", shift, 1)
        stride = _check_count("window", "stride", stride, 1)
        return self._with(("window", type(self), size, shift, stride, drop_remainder), UNKNOWN)

    def flat_map(self, map_func: Callable[..., Any], name: str | None = None) -> Any:
        """The elements of the dataset ``map_func`` returns for each element, one after the other."""
        return self._with(("flat_map", map_func), UNKNOWN)

    def interleave(self, map_func: Callable[..., Any], cycle_length: int | None = None,
                   block_length: int | None = None, num_parallel_calls: Any = None, deterministic: Any = None,
                   name: str | None = None) -> Any:
        """Like ``flat_map``, but ``cycle_length`` of the returned datasets at a time, ``block_length``
        elements from each in turn (tf.data's default cycle: the CPU count)."""
        if cycle_length is None or cycle_length < 0:   # None or AUTOTUNE
            cycle = os.cpu_count() or 1
        else:
            cycle = _check_count("interleave", "cycle_length", cycle_length, 1)
        block = 1 if block_length is None else _check_count("interleave", "block_length", block_length, 1)
        return self._with(("interleave", map_func, cycle, block), UNKNOWN)

    def scan(self, initial_state: Any, scan_func: Callable[[Any, Any], Any], name: str | None = None) -> Any:
        """``scan_func(state, element) -> (new_state, output)`` over the elements, yielding the outputs."""
        return self._with(("scan", initial_state, scan_func), self._length)

    def take_while(self, predicate: Callable[..., Any], name: str | None = None) -> Any:
        """The elements up to the first for which ``predicate`` is false."""
        return self._with(("take_while", predicate), UNKNOWN)

    def shard(self, num_shards: int, index: int, name: str | None = None) -> Any:
        """Every ``num_shards``-th element, starting at ``index``."""
        shards = _check_count("shard", "num_shards", num_shards, 1)
        index = _check_count("shard", "index", index, 0)
        if index >= shards:
            raise ValueError(f"Dataset.shard: `index` must be smaller than `num_shards`. Received: index={index}, "
                             f"num_shards={shards}")
        n = self._length
        length = n if n < 0 else max(0, -(-(n - index) // shards))
        return self._with(("shard", shards, index), length)

    def unique(self, name: str | None = None) -> Any:
        """The first occurrence of every distinct element (scalar elements)."""
        return self._with(("unique",), UNKNOWN)

    def group_by_window(self, key_func: Callable[..., Any], reduce_func: Callable[[Any, Any], Any],
                        window_size: int | None = None, window_size_func: Callable[[Any], Any] | None = None,
                        name: str | None = None) -> Any:
        """Elements grouped by ``key_func``; each full window (and at the end, each partial one) becomes the
        dataset ``reduce_func(key, window)`` returns."""
        if (window_size is None) == (window_size_func is None):
            raise ValueError("Dataset.group_by_window: give exactly one of `window_size` and `window_size_func`.")
        sizes = (lambda key: window_size) if window_size is not None else window_size_func
        return self._with(("group_by_window", type(self), key_func, reduce_func, sizes), UNKNOWN)

    def bucket_by_sequence_length(self, element_length_func: Callable[..., Any], bucket_boundaries: list[int],
                                  bucket_batch_sizes: list[int], padded_shapes: Any = None,
                                  padding_values: Any = None, pad_to_bucket_boundary: bool = False,
                                  no_padding: bool = False, drop_remainder: bool = False,
                                  name: str | None = None) -> Any:
        """Batches of elements of similar length: the length ``element_length_func`` gives picks a bucket by
        ``bucket_boundaries``, each bucket batched by its ``bucket_batch_sizes`` entry and padded."""
        bounds = list(bucket_boundaries)
        if len(bucket_batch_sizes) != len(bounds) + 1:
            raise ValueError("Dataset.bucket_by_sequence_length: len(bucket_batch_sizes) must equal "
                             f"len(bucket_boundaries) + 1. Received: {len(bucket_batch_sizes)} and {len(bounds)}")

        def bucket(*element: Any) -> int:
            length = int(np.asarray(element_length_func(*element)))
            return int(np.searchsorted(bounds, length, side="right"))

        def reduce(key: Any, window: Any) -> Any:
            size = bucket_batch_sizes[int(key)]
            if no_padding:
                return window.batch(size, drop_remainder=drop_remainder)
            shapes = padded_shapes
            if pad_to_bucket_boundary:
                if int(key) >= len(bounds):
                    raise ValueError("Dataset.bucket_by_sequence_length: with pad_to_bucket_boundary=True every "
                                     "length must be below the last boundary.")
                shapes = (bounds[int(key)] - 1,)
            return window.padded_batch(size, shapes, padding_values, drop_remainder=drop_remainder)

        return self.group_by_window(bucket, reduce, window_size_func=lambda key: bucket_batch_sizes[int(key)])

    # ------------------------------------------------------------------ consuming
    def reduce(self, initial_state: Any, reduce_func: Callable[[Any, Any], Any], name: str | None = None) -> Any:
        """``reduce_func(state, element)`` folded over the elements, from ``initial_state``."""
        state = initial_state
        for element in self._elements():
            state = reduce_func(state, element)
        return map_leaves(as_eager, map_leaves(np.asarray, state))

    def get_single_element(self, name: str | None = None) -> Any:
        """The one element of a one-element dataset (an error for an empty or longer one)."""
        it = self._elements()
        try:
            element = next(it)
        except StopIteration:
            raise ValueError("Dataset.get_single_element: the dataset was empty.") from None
        if next(it, None) is not None:
            raise ValueError("Dataset.get_single_element: the dataset had more than one element.")
        return map_leaves(as_eager, element)

    def apply(self, transformation_func: Callable[[Any], Any]) -> Any:
        """``transformation_func(self)``, which must return a dataset."""
        out = transformation_func(self)
        if not isinstance(out, DatasetMethods):
            raise TypeError(f"Dataset.apply: `transformation_func` must return a Dataset. Received: {type(out)}")
        return out

    @property
    def element_spec(self) -> Any:
        """The structure of ``tf.TensorSpec`` of the elements (read from the first; the batch dim is ``None``
        where a last partial batch may differ)."""
        first = next(iter(self._elements()), None)
        if first is None:
            raise ValueError("Dataset.element_spec: the dataset is empty, so its element spec is not known here.")
        batching = [s for s in self._stages if s[0] in ("batch", "padded_batch")]
        partial = bool(batching) and not batching[-1][-1] and self._stages[-1][0] in ("batch", "padded_batch")

        def spec(array: Any) -> TensorSpec:
            made = TensorSpec.from_tensor(array)
            if partial and made.shape:
                return TensorSpec((None, *made.shape[1:]), made.dtype)
            return made

        return map_leaves(spec, first)

    def options(self) -> Options:
        """The dataset's options (accepted for compatibility; nothing here reads them)."""
        return Options()

    def with_options(self, options: Any, name: str | None = None) -> Any:
        """Accepted for compatibility: the same dataset."""
        return self
