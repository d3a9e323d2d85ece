"""Turning what users pass to ``fit`` / ``evaluate`` / ``predict`` into batches of host arrays.

Accepted, as in Keras: a numpy array (or anything ``np.asarray`` takes), a list or tuple of arrays (one
per model input or output), a dict keyed by input or output names, and, for ``x`` alone, a batch
source: a ``keras.utils.PyDataset``-like object (``__len__`` batches, ``__getitem__(i)``), a generator
or any other iterable yielding ``x``, ``(x, y)`` or ``(x, y, sample_weight)`` batches.

A batch is ``(xs, ys, sample_weight)``: lists of arrays in the model's input and output order and a
per-sample weight vector, a list of them (one per output, ``None`` for unweighted ones) or ``None``.
"""
from __future__ import annotations

__all__ = ["ArrayData", "ArraySource", "IterableSource", "Batch", "make_source", "io_names",
           "target_slots", "to_arrays", "to_weights", "class_weight_to_sample_weight", "split_validation", "unpack_batch"]

import math
import random
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

Weights = Union[np.ndarray, list, None]  # one vector for all outputs, or one (or None) per output
Batch = tuple[list[np.ndarray], list[np.ndarray], Weights]


def io_names(model: Any, kind: str) -> list[str] | None:
    """The model's input (``kind="input"``) or output names, or ``None`` when not known yet."""
    # An unbuilt model (a Sequential without an Input) raises here: its names come with its first batch.
    try:
        # Outputs are keyed by ``output_keys`` (the dict keys of a dict-output model) where a model has them.
        names = getattr(model, "output_keys", None) if kind == "output" else None
        names = names if names is not None else getattr(model, f"{kind}_names", None)
        if names is None:
            tensors = getattr(model, f"{kind}s", None)
            names = [t.name for t in tensors] if tensors else None
    except (AttributeError, TypeError, ValueError, RuntimeError):
        names = None
    return list(names) if names else None


def _is_ort_value(value: Any) -> bool:
    return type(value).__name__ == "OrtValue" and callable(getattr(value, "data_type", None))


def target_slots(model: Any) -> list[bool] | None:
    """Which outputs of a compiled, built model have a loss (``None`` before that is known)."""
    config = getattr(model, "_compiled_config", None)
    return None if config is None else [o.loss is not None for o in config.outputs]


def _is_array_like(value: Any) -> bool:
    return isinstance(value, np.ndarray) or hasattr(value, "__array__") or np.isscalar(value)


def is_batch_source(value: Any) -> bool:
    """Whether ``value`` yields batches itself (generator, PyDataset-like) rather than holding arrays."""
    if value is None or isinstance(value, (np.ndarray, list, tuple, Mapping, str, bytes)):
        return False
    if hasattr(value, "__array__"):
        return False
    return hasattr(value, "__iter__") or hasattr(value, "__next__") or (
        hasattr(value, "__getitem__") and hasattr(value, "__len__"))


def to_arrays(data: Any, names: list[str] | None, arg: str, method: str, text_ok: bool = False,
              targeted: list[bool] | None = None) -> list[np.ndarray]:
    """One array per model input (or output) from an array, a list/tuple or a dict.

    Args:
        data: what the user passed.
        names: the model's input (or output) names, ``None`` if unknown.
        arg: the argument's name for error messages (``"x"``, ``"y"``, ``"validation_data[0]"``).
        method: ``"fit"``, ``"evaluate"`` or ``"predict"``, for error messages.
        text_ok: accept arrays of strings (the model has a string input: StringLookup, TextVectorization).
        targeted: for targets, which outputs have a loss (``target_slots``); fewer arrays than outputs
            then fill those outputs in order, as Keras matches ``y`` to the losses that are not None.
    """
    if data is None:
        return []
    if isinstance(data, (str, bytes)):
        raise TypeError(f"{method}(): {arg} must be a numpy array, a list of arrays or a dict keyed by "
                        f"{'input' if arg.startswith('x') else 'output'} names. Received: {arg}={data!r}")
    if isinstance(data, Mapping):
        if names is None:
            names = list(data)
        missing = [n for n in names if n not in data]
        if missing and arg.startswith("y") and len(missing) < len(names):
            # Targets for some outputs only (Keras allows it for outputs without a loss or metrics): the
            # others are None here, and the step checks the outputs it trains on have theirs.
            arrays = [None if n in missing else _as_array(data[n], f"{arg}[{n!r}]", method) for n in names]
            extra = [k for k in data if k not in names]
            if extra:
                raise ValueError(f"{method}(): {arg} has key(s) {extra} that are not model outputs {names}.")
            return arrays
        if missing:
            raise ValueError(f"{method}(): {arg} is a dict without the key(s) {missing}. Expected keys "
                             f"{names} (the model's names). Received keys: {list(data)}")
        extra = [k for k in data if k not in names]
        if extra:
            warnings.warn(f"{method}(): ignoring key(s) {extra} of {arg}, which are not model names "
                          f"{names}.", stacklevel=4)
        arrays = [_as_array(data[n], f"{arg}[{n!r}]", method, text_ok) for n in names]
    elif isinstance(data, (list, tuple)):
        all_arrays = bool(data) and all(
            isinstance(v, np.ndarray) or (hasattr(v, "__array__") and not np.isscalar(v)) for v in data)
        per_name = (names is not None and len(names) > 1 and len(data) == len(names)
                    and all(isinstance(v, (list, tuple, np.ndarray)) for v in data))
        if all_arrays or per_name:
            arrays = [_as_array(v, f"{arg}[{i}]", method, text_ok) for i, v in enumerate(data)]
        else:
            # Plain nested Python lists of numbers are one array (one sample per element).
            arrays = [_as_array(data, arg, method, text_ok)]
    elif _is_array_like(data):
        arrays = [_as_array(data, arg, method, text_ok)]
    else:
        raise TypeError(f"{method}(): {arg} must be a numpy array, a list of arrays or a dict keyed by "
                        f"names. Received: {arg} of type {type(data).__name__}")
    if (targeted is not None and names is not None and len(names) == len(targeted)
            and 0 < len(arrays) < len(names) and len(arrays) == sum(targeted)):
        # Keras: with some outputs' losses None (``loss=[loss_fn, None]``), y may hold targets for the
        # outputs that have a loss only, in order; the others get None.
        given = iter(arrays)
        arrays = [next(given) if t else None for t in targeted]
    if names is not None and len(arrays) != len(names):
        kind = "inputs" if arg.startswith("x") else "outputs"
        raise ValueError(f"{method}(): the model has {len(names)} {kind} {names}, but {arg} holds "
                         f"{len(arrays)} arrays.")
    return arrays


def _as_array(value: Any, arg: str, method: str, text_ok: bool = False) -> np.ndarray:
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as e:
        raise TypeError(f"{method}(): {arg} could not be converted to a numpy array ({e}). "
                        f"Received: {type(value).__name__}") from e
    text = array.dtype.kind in "US" or (array.dtype == object and array.size and
                                        all(isinstance(v, (str, bytes)) for v in array.flat))
    if text and text_ok:
        array = array.astype(object)  # strings for a string input (StringLookup, TextVectorization)
    elif array.dtype == object or array.dtype.kind in "USV":
        raise TypeError(f"{method}(): {arg} must hold numbers. Received an array of dtype {array.dtype}")
    if array.ndim == 0:
        raise ValueError(f"{method}(): {arg} must have a batch dimension (one row per sample). "
                         f"Received a scalar: {arg}={array!r}")
    return array


def _labelled(prefix: str, arrays: list[np.ndarray], names: list[str] | None) -> list[tuple[str, np.ndarray]]:
    if len(arrays) == 1:
        return [] if arrays[0] is None else [(prefix, arrays[0])]
    labels = names if names is not None and len(names) == len(arrays) else range(len(arrays))
    return [(f"{prefix}[{n!r}]" if isinstance(n, str) else f"{prefix}[{n}]", a) for n, a in zip(labels, arrays)
            if a is not None]


def check_cardinality(method: str, named: list[tuple[str, np.ndarray]]) -> int:
    """The common number of samples of ``named`` arrays; a clear error naming them if they differ."""
    counts = {name: len(a) for name, a in named}
    if len(set(counts.values())) > 1:
        detail = ", ".join(f"{name}: {n} samples" for name, n in counts.items())
        raise ValueError(f"{method}(): data cardinality is ambiguous; all arrays must contain the same "
                         f"number of samples (first dimension). Received: {detail}")
    return next(iter(counts.values()))


def _weight_vector(value: Any, arg: str, method: str) -> np.ndarray:
    w = numeric_weights(value, arg, method)
    if w.ndim == 2 and w.shape[1] == 1:
        w = w[:, 0]
    if w.ndim != 1:
        raise ValueError(f"{method}(): {arg} must be a 1D array with one weight per sample. "
                         f"Received shape {w.shape}")
    return w


def numeric_weights(value: Any, arg: str, method: str) -> np.ndarray:
    """``value`` as float32 weights, or a ``TypeError`` naming ``arg`` (strings, objects, None inside).

    Example:
        >>> numeric_weights([1, 2.5], "sample_weight", "fit").tolist()
        [1.0, 2.5]
    """
    raw = np.asarray(value) if not isinstance(value, (str, bytes)) else np.asarray([value])
    if raw.dtype.kind not in "biuf":
        raise TypeError(f"{method}(): {arg} must hold numbers (one weight per sample). Received: {arg}="
                        f"{_brief(value)} (dtype {raw.dtype})")
    w = raw.astype(np.float32)
    if w.size and not np.isfinite(w).all():
        raise ValueError(f"{method}(): {arg} must hold finite numbers. Received: {arg}={_brief(value)}")
    return w


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_class_weight(class_weight: Any, method: str) -> dict[int, float]:
    """``class_weight`` as ``{class index: weight}``; a clear error naming the argument otherwise.

    Example:
        >>> check_class_weight({0: 1, 1: 2.5}, "fit")
        {0: 1.0, 1: 2.5}
    """
    if not isinstance(class_weight, Mapping):
        raise TypeError(f"{method}(): class_weight must be a dict mapping class indices to weights. "
                        f"Received: class_weight={_brief(class_weight)}")
    out: dict[int, float] = {}
    for key, weight in class_weight.items():
        if isinstance(key, (bool, np.bool_)) or not isinstance(key, (int, np.integer)) or key < 0:
            raise ValueError(f"{method}(): class_weight keys must be class indices (non-negative integers). "
                             f"Received: class_weight={_brief(class_weight)} with key {key!r}")
        if isinstance(weight, (bool, np.bool_)) or not isinstance(weight, (int, float, np.integer, np.floating)) \
                or not np.isfinite(weight):
            raise ValueError(f"{method}(): class_weight values must be finite numbers. Received: "
                             f"class_weight[{key!r}]={weight!r}")
        out[int(key)] = float(weight)
    return out


def to_weights(sample_weight: Any, out_names: list[str] | None, n_outputs: int, arg: str,
               method: str) -> Weights:
    """``sample_weight`` as one vector, or as a list with one vector (or ``None``) per output.

    Per-output weights come as a dict keyed by output names or as a list with one entry per output.
    """
    if sample_weight is None:
        return None
    if isinstance(sample_weight, Mapping):
        if out_names is None:
            raise ValueError(f"{method}(): {arg} is a dict, but the model's output names are not known yet.")
        unknown = [k for k in sample_weight if k not in out_names]
        if unknown:
            raise ValueError(f"{method}(): {arg} has key(s) {unknown} that are not output names {out_names}.")
        return [None if sample_weight.get(n) is None else _weight_vector(sample_weight[n], f"{arg}[{n!r}]", method)
                for n in out_names]
    if (isinstance(sample_weight, (list, tuple)) and n_outputs > 1 and len(sample_weight) == n_outputs
            and all(w is None or np.ndim(w) >= 1 for w in sample_weight)):
        return [None if w is None else _weight_vector(w, f"{arg}[{i}]", method) for i, w in enumerate(sample_weight)]
    return _weight_vector(sample_weight, arg, method)


def _take_weights(sw: Weights, index: Any) -> Weights:
    if sw is None:
        return None
    if isinstance(sw, list):
        return [None if w is None else w[index] for w in sw]
    return sw[index]


def _labelled_weights(arg: str, sw: Weights, out_names: list[str] | None) -> list[tuple[str, np.ndarray]]:
    if sw is None:
        return []
    if not isinstance(sw, list):
        return [(arg, sw)]
    labels = out_names if out_names is not None and len(out_names) == len(sw) else range(len(sw))
    return [(f"{arg}[{n!r}]" if isinstance(n, str) else f"{arg}[{n}]", w)
            for n, w in zip(labels, sw) if w is not None]


def class_weight_to_sample_weight(y: np.ndarray, class_weight: Mapping[int, float]) -> np.ndarray:
    """Per-sample weights from ``class_weight``; labels are integers, ``(n, 1)`` or one-hot rows.

    Classes absent from ``class_weight`` weigh 1, as in Keras 3.

    Example:
        >>> class_weight_to_sample_weight(np.array([0, 1, 1]), {1: 3.0}).tolist()
        [1.0, 3.0, 3.0]
    """
    labels = np.asarray(y)
    if labels.ndim > 1:
        labels = labels[..., 0] if labels.shape[-1] == 1 else np.argmax(labels, axis=-1)
    labels = np.round(labels).astype(np.int64).reshape(len(labels), -1)[:, 0]
    weights = np.ones(len(labels), dtype=np.float32)
    for cls, w in class_weight.items():
        weights[labels == int(cls)] = float(w)
    return weights


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
        return ([a[index] for a in self.xs], [None if a is None else a[index] for a in self.ys],
                _take_weights(self.sample_weight, index))

    def split(self, at: int) -> tuple[ArrayData, ArrayData]:
        head, tail = slice(0, at), slice(at, None)
        return ArrayData(*self.take(head)), ArrayData(*self.take(tail))


class ArraySource:
    """Batches of in-memory arrays.

    Without ``steps`` an epoch is one pass (the last batch may be partial), reshuffled each epoch.
    With ``steps`` in training, an epoch is ``steps`` batches from an endless stream of passes (each
    pass reshuffled), so consecutive epochs continue where the previous one stopped, like a repeated
    ``tf.data`` dataset. With ``steps`` in evaluation and prediction, at most ``steps`` batches from the
    start.
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

    def _endless(self) -> Iterator[Batch]:
        while True:
            yield from self._one_pass()

    def epoch(self) -> Iterator[Batch]:
        if not self.repeat:
            for step, batch in enumerate(self._one_pass()):
                if step >= self.steps:
                    return
                yield batch
            return
        if self._stream is None:
            self._stream = self._endless()
        for _ in range(self.steps):
            yield next(self._stream)


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
    Other iterables are iterated afresh each epoch.
    """

    def __init__(self, source: Any, method: str, model: Any, steps: int | None = None,
                 class_weight: Mapping[int, float] | None = None, shuffle: bool | str = False):
        self.source = source
        self.method = method
        self.model = model
        self.in_names = io_names(model, "input")
        self.text_ok = has_text_input(model)
        self.out_names = io_names(model, "output")
        self.targeted = target_slots(model)
        self.class_weight = class_weight
        self.shuffle = bool(shuffle)
        self.indexed = hasattr(source, "__getitem__") and not hasattr(source, "__next__") and (
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

    def _convert(self, item: Any, step: int) -> Batch:
        x, y, sw = unpack_batch(item)
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
        xs = to_arrays(x, self.in_names, "x", self.method, self.text_ok)
        ys = to_arrays(y, self.out_names, "y", self.method, targeted=self.targeted)
        sw = to_weights(sw, self.out_names, len(ys), f"sample_weight of {where}", self.method)
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
        if named:
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
            it = self.source
        elif self.steps is not None:
            it = self._iterator = self._iterator or iter(self.source)
        else:
            it = iter(self.source)
        count = 0
        while self.steps is None or count < self.steps:
            try:
                item = next(it)
            except StopIteration:
                if self.is_iterator or self.steps is not None:
                    self.exhausted = True
                self._iterator = None
                return
            count += 1
            yield item

    def epoch(self) -> Iterator[Batch]:
        for step, item in enumerate(self._items()):
            yield self._convert(item, step)


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
    """Whether any of ``model``'s inputs is a string tensor (``False`` for a model not built yet)."""
    try:
        inputs = getattr(model, "inputs", None) or []
    except ValueError:  # a subclassed model before its first call has no inputs
        return False
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


def array_data(method: str, model: Any, x: Any, y: Any, sample_weight: Any,
               class_weight: Mapping[int, float] | None = None, x_arg: str = "x", y_arg: str = "y",
               sw_arg: str = "sample_weight") -> ArrayData:
    """Check and assemble whole-dataset arrays (the argument names go into error messages)."""
    build_from_dict(model, x)
    in_names, out_names = io_names(model, "input"), io_names(model, "output")
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
                class_weight: Mapping[int, float] | None = None) -> Source:
    """A batch source for ``x`` / ``y`` / ``sample_weight`` as one of the loops receives them."""
    if is_batch_source(x):
        for name, value in (("y", y), ("sample_weight", sample_weight)):
            if value is not None:
                raise ValueError(f"{method}(): the {name} argument is not supported when x is a dataset or "
                                 f"generator ({type(x).__name__}); yield (x, y, sample_weight) batches "
                                 "instead.")
        return IterableSource(x, method, model, steps=steps, class_weight=class_weight, shuffle=shuffle)
    data = array_data(method, model, x, y, sample_weight, class_weight)
    return ArraySource(data, batch_size, shuffle=shuffle, steps=steps, repeat=method == "fit")
