"""The pipeline stages behind ``Dataset``'s tf.data methods beyond the core ones (``dataset_methods``): each
takes the iterator of elements before it (and the stage's arguments) and yields the elements after it.

Example:
    >>> import numpy as np
    >>> [x.tolist() for x in _padded_batch(iter([np.ones(1), np.ones(3)]), 2, None, None, False)]
    [[[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]]]
"""
from __future__ import annotations

__all__ = ["EXTRA_STAGES"]

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .dataset_structure import as_element, call_spread, leaves, map_leaves


def _pad_to(array: np.ndarray, shape: tuple[int, ...], value: Any) -> np.ndarray:
    if array.shape == shape:
        return array
    if len(shape) != array.ndim or any(a > s for a, s in zip(array.shape, shape)):
        raise ValueError(f"Dataset.padded_batch: an element of shape {array.shape} does not fit the padded shape "
                         f"{shape}.")
    return np.pad(array, [(0, s - a) for a, s in zip(array.shape, shape)], constant_values=value)


def _padded_stack(elements: list[Any], padded_shapes: Any, padding_values: Any) -> Any:
    flat = [leaves(e) for e in elements]
    count = len(flat[0])
    shapes = leaves(padded_shapes) if padded_shapes is not None and not _is_shape(padded_shapes) else \
        [padded_shapes] * count
    values = leaves(padding_values) if isinstance(padding_values, (tuple, list, dict)) else [padding_values] * count
    stacked = []
    for k in range(count):
        arrays = [np.asarray(f[k]) for f in flat]
        if len({a.ndim for a in arrays}) != 1:
            raise ValueError(f"Dataset.padded_batch: component {k} has elements of different ranks "
                             f"{sorted({a.ndim for a in arrays})}.")
        longest = tuple(max(a.shape[d] for a in arrays) for d in range(arrays[0].ndim))
        wanted = shapes[k]
        target = longest if wanted is None else tuple(
            m if w is None or w == -1 else int(w) for w, m in zip(tuple(wanted), longest))
        value = values[k]
        if value is None:
            value = b"" if arrays[0].dtype.kind in ("S", "O") else 0
        stacked.append(np.stack([_pad_to(a, target, value) for a in arrays]))
    it = iter(stacked)
    return map_leaves(lambda _: next(it), elements[0])


def _is_shape(value: Any) -> bool:
    return isinstance(value, (tuple, list)) and all(d is None or isinstance(d, (int, np.integer)) for d in value)


def _enumerate(it: Iterator[Any], start: int) -> Iterator[Any]:
    for i, element in enumerate(it, start):
        yield np.int64(i), element


def _padded_batch(it: Iterator[Any], size: int, shapes: Any, values: Any, drop_remainder: bool) -> Iterator[Any]:
    while True:
        chunk = list(itertools.islice(it, size))
        if not chunk or (drop_remainder and len(chunk) < size):
            return
        yield _padded_stack(chunk, shapes, values)


def _unzip(cls: type, elements: list[Any]) -> Any:
    """A window's elements as a dataset per component (tf.data's nested windows)."""
    first = elements[0]
    if isinstance(first, (tuple, list)):
        return type(first)(_unzip(cls, [e[i] for e in elements]) for i in range(len(first)))
    if isinstance(first, dict):
        return {k: _unzip(cls, [e[k] for e in elements]) for k in first}
    return cls(lambda: iter(elements), len(elements))


def _window(it: Iterator[Any], cls: type, size: int, shift: int, stride: int, drop_remainder: bool) -> Iterator[Any]:
    items = list(it)
    for start in range(0, len(items), shift):
        picked = items[start:start + (size - 1) * stride + 1:stride]
        if len(picked) < size and drop_remainder:
            return
        yield _unzip(cls, picked)


def _flat_map(it: Iterator[Any], fn: Callable[..., Any]) -> Iterator[Any]:
    for element in it:
        yield from _returned_dataset("flat_map", call_spread(fn, element))._elements()


def _returned_dataset(method: str, out: Any) -> Any:
    if not hasattr(out, "_elements"):
        raise TypeError(f"Dataset.{method}: `map_func` must return a Dataset. Received: {type(out).__name__}")
    return out


def _interleave(it: Iterator[Any], fn: Callable[..., Any], cycle: int, block: int) -> Iterator[Any]:
    open_its: list[Iterator[Any]] = []
    inputs_left = True
    while True:
        while inputs_left and len(open_its) < cycle:
            element = next(it, None)
            if element is None:
                inputs_left = False
                break
            open_its.append(_returned_dataset("interleave", call_spread(fn, element))._elements())
        if not open_its:
            return
        k = 0
        while k < len(open_its):
            taken = list(itertools.islice(open_its[k], block))
            yield from taken
            if len(taken) < block:
                open_its.pop(k)
                if inputs_left:   # the next input element takes the finished one's slot
                    element = next(it, None)
                    if element is None:
                        inputs_left = False
                    else:
                        open_its.insert(k, _returned_dataset("interleave", call_spread(fn, element))._elements())
                        k += 1
            else:
                k += 1


def _scan(it: Iterator[Any], initial_state: Any, fn: Callable[[Any, Any], Any]) -> Iterator[Any]:
    state = initial_state
    for element in it:
        state, out = fn(state, element)
        yield as_element(out)


def _take_while(it: Iterator[Any], predicate: Callable[..., Any]) -> Iterator[Any]:
    for element in it:
        if not bool(np.asarray(call_spread(predicate, element))):
            return
        yield element


def _shard(it: Iterator[Any], shards: int, index: int) -> Iterator[Any]:
    return itertools.islice(it, index, None, shards)


def _unique(it: Iterator[Any]) -> Iterator[Any]:
    seen: set[Any] = set()
    for element in it:
        array = np.asarray(element)
        if array.ndim != 0:
            raise ValueError(f"Dataset.unique: elements must be scalars. Received an element of shape {array.shape}")
        key = array.item()
        if key not in seen:
            seen.add(key)
            yield element


def _group_by_window(it: Iterator[Any], cls: type, key_func: Callable[..., Any], reduce_func: Callable[..., Any],
                     sizes: Callable[[Any], Any]) -> Iterator[Any]:
    groups: dict[int, list[Any]] = {}
    for element in it:
        key = int(np.asarray(call_spread(key_func, element)))
        group = groups.setdefault(key, [])
        group.append(element)
        if len(group) >= int(np.asarray(sizes(np.asarray(key, np.int64)))):
            del groups[key]
            yield from _returned_dataset("group_by_window", reduce_func(np.asarray(key, np.int64),
                                                                        cls(lambda g=group: iter(g), len(group))))._elements()
    for key, group in groups.items():
        yield from _returned_dataset("group_by_window", reduce_func(np.asarray(key, np.int64),
                                                                    cls(lambda g=group: iter(g), len(group))))._elements()


EXTRA_STAGES = {"enumerate": _enumerate, "padded_batch": _padded_batch, "window": _window, "flat_map": _flat_map,
                "interleave": _interleave, "scan": _scan, "take_while": _take_while, "shard": _shard,
                "unique": _unique, "group_by_window": _group_by_window}
