"""Turning what users pass to ``fit`` / ``evaluate`` / ``predict`` into batches of host arrays.

Accepted, as in Keras: a numpy array (or anything ``np.asarray`` takes), a list or tuple of arrays (one
per model input or output), a dict keyed by input or output names, and, for ``x`` alone, a batch
source: a ``keras.utils.PyDataset``-like object (``__len__`` batches, ``__getitem__(i)``), a generator
or any other iterable yielding ``x``, ``(x, y)`` or ``(x, y, sample_weight)`` batches.

A batch is ``(xs, ys, sample_weight)``: lists of arrays in the model's input and output order and a
per-sample weight vector, a list of them (one per output, ``None`` for unweighted ones) or ``None``.

Checking and converting the user's arrays and weights is ``data_checks``; this module batches them. A model
whose own ``train_step`` / ``test_step`` / ``predict_step`` receives a dict gets it as given (``step_data``).
"""
from __future__ import annotations

__all__ = ["ArrayData", "ArraySource", "IterableSource", "Batch", "make_source", "io_names",
           "target_slots", "to_arrays", "to_weights", "class_weight_to_sample_weight", "split_validation", "unpack_batch"]

import itertools
import math
import random
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from .data_checks import (Batch, Weights, _as_array, _is_array_like, _is_ort_value, _labelled, _labelled_weights,
                          _take_weights, check_cardinality, check_class_weight, class_weight_to_sample_weight, io_names,
                          is_batch_source, target_slots, to_arrays, to_weights)
from .step_data import STEP_OF, StepData, flatten, has_mapping, has_nested_arrays, leaf_names, pack_batch


@dataclass
class ArrayData:
    """Whole-dataset arrays, already checked for matching sample counts."""

    xs: list[np.ndarray]
    ys: list[np.ndarray]
    sample_weight: Weights

    @property
    def n(self) -> int:
        return len(self.xs[0]) if self.xs else len(next(y for y in self.ys if y is not None))

    def take(self, index: np.ndarray | slice) -> Batch:
        if isinstance(self.xs, StepData):
            return self.xs.take(index), [], None
        return ([a[index] for a in self.xs], [None if a is None else a[index] for a in self.ys],
                _take_weights(self.sample_weight, index))

    def split(self, at: int) -> tuple[ArrayData, ArrayData]:
        head, tail = slice(0, at), slice(at, None)
        return ArrayData(*self.take(head)), ArrayData(*self.take(tail))


class ArraySource:
    """Batches of in-memory arrays.

    Without ``steps`` an epoch is one pass (the last batch may be partial), reshuffled each epoch.
    With ``steps`` in training, an epoch is the next ``steps`` batches of the current pass, so consecutive
    epochs continue where the previous one stopped; as in Keras 3's epoch iterator, a pass that runs out
    ends its epoch early (with Keras's warning) and the next epoch starts a new, reshuffled pass. With
    ``steps`` in evaluation and prediction, at most ``steps`` batches from the start.
    """

    def __init__(self, data: ArrayData, batch_size: int, shuffle: bool | str = False,
                 steps: int | None = None, repeat: bool = False):
        self.data = data
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.batches_per_pass = math.ceil(data.n / batch_size)
        self.repeat = repeat and steps is not None
        self.steps = steps if self.repeat else (
            self.batches_per_pass if steps is None else min(steps, self.batches_per_pass))
        self._stream: Iterator[Batch] | None = None
        self._seen = 0   # batches of the current pass already given (Keras's ``_steps_seen``)
        self.exhausted = False

    def _order(self) -> np.ndarray:
        n = self.data.n
        if self.shuffle == "batch":
            # Shuffle within batch-sized chunks only (Keras: for data that must be read in blocks).
            order = np.arange(n)
            for start in range(0, n, self.batch_size):
                np.random.shuffle(order[start:start + self.batch_size])
            return order
        return np.random.permutation(n) if self.shuffle else np.arange(n)

    def _one_pass(self) -> Iterator[Batch]:
        order = self._order() if self.shuffle else None
        for start in range(0, self.data.n, self.batch_size):
            index = slice(start, start + self.batch_size) if order is None else order[start:start + self.batch_size]
            yield self.data.take(index)

    def epoch(self) -> Iterator[Batch]:
        if not self.repeat:
            for step, batch in enumerate(self._one_pass()):
                if step >= self.steps:
                    return
                yield batch
            return
        if self._stream is None:
            self._stream, self._seen = self._one_pass(), 0
        for count in range(self.steps):
            if self._seen >= self.batches_per_pass:
                warnings.warn(f"fit(): your input ran out of data after {count} of {self.steps} steps; the next "
                              "epoch reads it again from the start.", stacklevel=4)
                break
            self._seen += 1
            yield next(self._stream)
        if self._seen >= self.batches_per_pass:   # the pass is over: the next epoch starts a new one
            self._stream = None


def unpack_batch(item: Any) -> tuple[Any, Any, Any]:
    """``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)`` -> ``(x, y, sample_weight)``."""
    if isinstance(item, list):
        item = tuple(item)
    if not isinstance(item, tuple):
        return item, None, None
    if len(item) == 1:
        return item[0], None, None
    if len(item) == 2:
        return item[0], item[1], None
    if len(item) == 3:
        return item
    raise ValueError("A batch must be x, (x,), (x, y) or (x, y, sample_weight). "
                     f"Received a tuple of length {len(item)}")


class IterableSource:
    """Batches drawn from a PyDataset-like object, a generator or another iterable of batches.

    A PyDataset-like object (``__getitem__`` with ``__len__`` or ``num_batches``) gives its batches once
    per epoch, between ``on_epoch_begin()`` and ``on_epoch_end()``, in a new random order each epoch when
    ``shuffle`` (``fit``'s default, as in Keras 3); an endless one (``num_batches`` of ``None``) needs
    ``steps`` and continues where the last epoch stopped. An iterator (a generator) is consumed across
    epochs; an epoch ends after ``steps`` batches or when it runs out, after which ``exhausted`` is set.
    Other iterables (a ``tf.data`` dataset) are iterated afresh each epoch; with ``steps``, an epoch takes
    ``steps`` batches, continuing where the last one stopped and starting a new pass when one ends.
    """

    def __init__(self, source: Any, method: str, model: Any, steps: int | None = None,
                 class_weight: Mapping[int, float] | None = None, shuffle: bool | str = False,
                 step: str | None = None):
        self.source = source
        self.method = method
        self.step = step or STEP_OF.get(method)
        self.model = model
        self.in_names = io_names(model, "input")
        self.text_ok = has_text_input(model)
        self.out_names = io_names(model, "output")
        self.targeted = target_slots(model)
        self.own_step = reads_data_freely(model, self.step)   # fixed for the model: asked once, not per batch
        self.class_weight = class_weight
        self.shuffle = bool(shuffle)
        # A PyDataset is indexed even when it is also an iterator (ImageDataGenerator.flow's), as in Keras;
        # found by class name since utils/ sits above trainer/.
        self.indexed = hasattr(source, "__getitem__") and (
            not hasattr(source, "__next__") or any(c.__name__ == "PyDataset" for c in type(source).__mro__)) and (
            hasattr(source, "__len__") or hasattr(source, "num_batches"))
        self.is_iterator = not self.indexed and iter(source) is source
        self._next_index = 0
        if self.indexed:
            self.length = _num_batches(source)
            if self.length is None and steps is None:
                raise ValueError(f"{method}(): {type(source).__name__} is endless (num_batches is None): pass "
                                 f"{'steps_per_epoch' if method == 'fit' else 'steps'} to say how many batches make "
                                 "an epoch.")
            self.steps: int | None = self.length if steps is None else steps
        else:
            self.steps = steps
        self.exhausted = False
        self._iterator: Iterator[Any] | None = None
        # fit's validation generator, read as Keras reads it: see replay_first_batches().
        self._replayed: list[Any] | None = None

    def replay_first_batches(self) -> None:
        """Read a generator as Keras 3 reads ``fit``'s ``validation_data``: its generator adapter keeps the first
        two batches it peeked at (for their specs) and every validation run starts again with them, then goes on
        with the generator. With ``validation_steps=2`` each epoch validates on the same two batches; a finite
        generator gives them again once it has run dry."""
        if self.is_iterator and self._replayed is None:
            self._replayed = list(itertools.islice(self.source, _PEEKED_BATCHES))

    def _convert(self, item: Any, step: int) -> Batch:
        x, y, sw = unpack_batch(item)
        if keeps_structure(self.model, self.step, item):
            if self.class_weight is not None:
                raise ValueError(f"{self.method}(): class_weight needs (x, y) batches of arrays; the model's own "
                                 f"{self.step} receives the batches as they are (batch {step} holds a dict or nested tuples).")
            return structured_batch(item, self.method, f"batch {step}", same_count=False), [], None
        if isinstance(x, Mapping) and self.in_names is None:
            build_from_dict(self.model, x)
            self.in_names = io_names(self.model, "input")
        where = f"batch {step} of x"
        if _is_ort_value(x) and (y is None or _is_ort_value(y)):
            # A batch already on the model's device: the step binds it as it is (its checks read only the
            # shape and type), so a dataset kept on a GPU is never copied back and forth.
            if sw is not None or self.class_weight is not None:
                raise ValueError(f"{self.method}(): {where} is an OrtValue batch; sample weights and class_weight "
                                 "need host arrays.")
            return [x], ([] if y is None else [y]), None
        in_names, out_names = (None, None) if self.own_step else (self.in_names, self.out_names)
        xs = to_arrays(x, in_names, "x", self.method, self.text_ok)
        ys = to_arrays(y, out_names, "y", self.method, targeted=self.targeted)
        sw = to_weights(sw, out_names, len(ys), f"sample_weight of {where}", self.method)
        if self.class_weight is not None and ys:
            if sw is not None:
                raise ValueError(f"{self.method}(): cannot use class_weight when {where} also yields "
                                 "sample weights.")
            if len(ys) != 1:
                raise ValueError(f"{self.method}(): class_weight is only supported for models with a single "
                                 f"output. Received {len(ys)} target arrays in {where}.")
            sw = class_weight_to_sample_weight(ys[0], self.class_weight)
        named = (_labelled("x", xs, self.in_names) + _labelled("y", ys, self.out_names)
                 + _labelled_weights("sample_weight", sw, self.out_names))
        # A model's own step takes each batch as it comes, as Keras's dataset and generator adapters hand it
        # over: keras.io's NNCLR zips 8 unlabelled images with 4 labelled ones. Only arrays that fit() slices
        # itself must agree (array_data).
        if named and not self.own_step:
            check_cardinality(self.method, named)
        return xs, ys, sw

    def _items(self) -> Iterator[Any]:
        if self.indexed:
            if hasattr(self.source, "on_epoch_begin"):
                self.source.on_epoch_begin()
            if self.length is None:   # endless: number the batches on from the last epoch
                indices = range(self._next_index, self._next_index + self.steps)
                self._next_index += self.steps
            else:
                order = list(range(self.length))
                if self.shuffle:
                    random.shuffle(order)
                indices = [order[i % self.length] for i in range(self.steps)] if self.length else []
            for i in indices:
                yield self.source[i]
            if hasattr(self.source, "on_epoch_end"):
                self.source.on_epoch_end()
            return
        if self.is_iterator:
            it = self.source if self._replayed is None else itertools.chain(self._replayed, self.source)
        elif self.steps is not None:
            it = self._iterator = self._iterator or iter(self.source)
        else:
            it = iter(self.source)
        count = 0
        restarted = False
        while self.steps is None or count < self.steps:
            try:
                item = next(it)
            except StopIteration:
                self._iterator = None
                if self.is_iterator:
                    self.exhausted = self._replayed is None
                    return
                if self.steps is None:
                    return
                # A dataset walked ``steps`` batches at a time (``validation_steps``, ``steps_per_epoch``) is read
                # again from its start once a pass ends, as Keras's epoch iterator does; it never runs dry.
                if count == 0 and not restarted:
                    it = self._iterator = iter(self.source)
                    restarted = True
                    continue
                if count:
                    warnings.warn(f"{self.method}(): your input ran out of data after {count} of {self.steps} "
                                  "steps; the next epoch reads it again from the start.", stacklevel=4)
                return
            count += 1
            yield item

    def epoch(self) -> Iterator[Batch]:
        for step, item in enumerate(self._items()):
            yield self._convert(item, step)


#: How many batches Keras's generator adapter peeks at (``NUM_BATCHES_FOR_TENSOR_SPEC``).
_PEEKED_BATCHES = 2


def _num_batches(source: Any) -> int | None:
    """A PyDataset's number of batches: ``num_batches`` where defined (``None``: endless), else ``len``."""
    if hasattr(source, "num_batches"):
        try:
            count = source.num_batches
        except NotImplementedError:
            count = None
        else:
            return None if count is None else int(count)
    return len(source)


Source = Union[ArraySource, IterableSource]


def has_text_input(model: Any) -> bool:
    """Whether any of ``model``'s inputs is a string tensor (for a model not built yet: whether its first layer
    reads strings, as ``Sequential([TextVectorization(...), ...])``)."""
    try:
        inputs = getattr(model, "inputs", None) or []
    except ValueError:  # a subclassed model before its first call has no inputs
        inputs = []
    if not inputs:   # an unbuilt Sequential starting with a layer that reads text: built on the strings given
        first = next(iter(getattr(model, "layers", None) or []), None)
        return bool(getattr(first, "reads_strings", False))
    return any(getattr(t, "dtype", None) == "string" for t in inputs)


def build_from_dict(model: Any, x: Any) -> None:
    """An unbuilt subclassed model given a dict of input arrays is built on that dict (its ``call()`` reads
    ``inputs["name"]``, as in Keras), so the arrays are then matched by key."""
    if not isinstance(x, Mapping) or getattr(model, "built", True) or getattr(model, "_graph", None) is not None:
        return
    if not hasattr(model, "_record_input_specs") or getattr(model, "_input_specs", None) is not None:
        return
    arrays = {k: v for k, v in x.items() if _is_array_like(v) and not np.isscalar(v)}
    if len(arrays) != len(x):
        return
    shapes = {k: (None,) + tuple(np.shape(v))[1:] for k, v in arrays.items()}
    dtypes = {k: np.asarray(v).dtype.name for k, v in arrays.items()}
    model._record_input_specs(shapes, {k: (d if d not in ("float64",) else None) for k, d in dtypes.items()})
    model.build(shapes)


def keeps_structure(model: Any, step: str | None, data: Any) -> bool:
    """Whether ``data`` goes to the model's own ``step`` as it is: it holds a dict or nested tuples of arrays and
    the step is overridden (a dict for the compiled steps is matched to the model's input and output names
    instead)."""
    has_custom = getattr(model, f"_has_custom_{step}", None) if step else None
    return has_custom is not None and has_custom() and (has_mapping(data) or has_nested_arrays(data))


def reads_data_freely(model: Any, step: str | None) -> bool:
    """Whether ``x`` and ``y`` go unmatched to the model's inputs and outputs: a subclassed model's own step.

    That step reads x and y as it likes (keras.io's GAT: node ids in, while its train_step calls the model on
    the whole graph; CycleGAN: (horses, zebras) batches, while its call() returns four outputs), so the inputs
    and outputs it was built with do not count them.
    """
    custom = getattr(model, f"_has_custom_{step}", None) if step else None
    return custom is not None and custom() and getattr(model, "_graph", False) is None


def structured_batch(data: Any, method: str, arg: str, same_count: bool = True) -> StepData:
    """``data``'s arrays, checked (with ``same_count``, for one number of samples: arrays fit() slices), with
    its structure (see ``step_data``)."""
    leaves, spec = flatten(data)
    labels = [f"{arg}[{name!r}]" for name in leaf_names(spec)]
    named = [(label, _as_array(a, label, method)) for label, a in zip(labels, leaves)]
    if same_count:
        check_cardinality(method, named)
    return StepData([a for _, a in named], spec)


def array_data(method: str, model: Any, x: Any, y: Any, sample_weight: Any,
               class_weight: Mapping[int, float] | None = None, x_arg: str = "x", y_arg: str = "y",
               sw_arg: str = "sample_weight", step: str | None = None) -> ArrayData:
    """Check and assemble whole-dataset arrays (the argument names go into error messages; ``step`` is the
    step the data feeds, by default the one ``method`` runs)."""
    step = step or STEP_OF.get(method)
    if keeps_structure(model, step, (x, y, sample_weight)):
        if class_weight is not None:
            raise ValueError(f"{method}(): class_weight needs x and y arrays; the model's own {step} receives "
                             f"{x_arg} as it is (a dict).")
        label = x_arg if y is None and sample_weight is None else "data"
        return ArrayData(structured_batch(pack_batch(x, y, sample_weight), method, label), [], None)
    build_from_dict(model, x)
    in_names, out_names = (None, None) if reads_data_freely(model, step) else \
        (io_names(model, "input"), io_names(model, "output"))
    xs = to_arrays(x, in_names, x_arg, method, has_text_input(model))
    ys = to_arrays(y, out_names, y_arg, method, targeted=target_slots(model))
    sw = to_weights(sample_weight, out_names, len(ys), sw_arg, method)
    if class_weight is not None:
        class_weight = check_class_weight(class_weight, method)
        if sw is not None:
            raise ValueError(f"{method}(): you cannot use class_weight and sample_weight at the same time.")
        if len(ys) != 1:
            raise ValueError(f"{method}(): class_weight is only supported for models with a single output. "
                             f"Received {len(ys)} target arrays.")
        sw = class_weight_to_sample_weight(ys[0], class_weight)
    named = _labelled(x_arg, xs, in_names) + _labelled(y_arg, ys, out_names) + _labelled_weights(sw_arg, sw, out_names)
    check_cardinality(method, named)
    return ArrayData(xs, ys, sw)


def split_validation(data: ArrayData, validation_split: float) -> tuple[ArrayData, ArrayData]:
    """Keras ``validation_split``: the LAST fraction of the samples, taken before any shuffling."""
    split_at = int(math.floor(data.n * (1.0 - validation_split)))
    if split_at == 0 or split_at == data.n:
        raise ValueError(f"Training data contains {data.n} samples, which is not sufficient to split it "
                         f"into a validation and training set as specified by "
                         f"validation_split={validation_split}. Either provide more data, or a different "
                         "value for the validation_split argument.")
    return data.split(split_at)


def make_source(method: str, model: Any, x: Any, y: Any, sample_weight: Any, batch_size: int,
                shuffle: bool | str = False, steps: int | None = None,
                class_weight: Mapping[int, float] | None = None, step: str | None = None) -> Source:
    """A batch source for ``x`` / ``y`` / ``sample_weight`` as one of the loops receives them (feeding ``step``,
    by default the one ``method`` runs)."""
    if is_batch_source(x):
        for name, value in (("y", y), ("sample_weight", sample_weight)):
            if value is not None:
                raise ValueError(f"{method}(): the {name} argument is not supported when x is a dataset or "
                                 f"generator ({type(x).__name__}); yield (x, y, sample_weight) batches "
                                 "instead.")
        return IterableSource(x, method, model, steps=steps, class_weight=class_weight, shuffle=shuffle, step=step)
    data = array_data(method, model, x, y, sample_weight, class_weight, step=step)
    return ArraySource(data, batch_size, shuffle=shuffle, steps=steps, repeat=method == "fit")
