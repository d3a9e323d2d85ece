"""Nested elements of ``Dataset`` pipelines: arrays, or tuples / lists / dicts of them (tf.data's structures).

Example:
    >>> import numpy as np
    >>> batch = stack([(np.zeros(2), 1), (np.ones(2), 2)])
    >>> batch[0].shape, batch[1].tolist()
    ((2, 2), [1, 2])
    >>> [e[1].item() for e in split_batch(batch)]
    [1, 2]
"""
from __future__ import annotations

__all__ = ["map_leaves", "leaves", "stack", "split_batch", "call_spread", "same_structure", "as_element",
           "in_data_pipeline", "pipeline_call"]

from collections.abc import Callable
from typing import Any

import numpy as np

from ..trace_state import data_pipeline, in_data_pipeline


def map_leaves(fn: Callable[[Any], Any], structure: Any) -> Any:
    """``structure`` with ``fn`` applied to every leaf."""
    if isinstance(structure, tuple):
        return tuple(map_leaves(fn, s) for s in structure)
    if isinstance(structure, list):
        return [map_leaves(fn, s) for s in structure]
    if isinstance(structure, dict):
        return {k: map_leaves(fn, v) for k, v in structure.items()}
    return fn(structure)


def leaves(structure: Any) -> list[Any]:
    """The leaves in order (dicts in their key order)."""
    if isinstance(structure, (tuple, list)):
        return [leaf for s in structure for leaf in leaves(s)]
    if isinstance(structure, dict):
        return [leaf for k in structure for leaf in leaves(structure[k])]
    return [structure]


def stack(elements: list[Any]) -> Any:
    """Elements of one structure stacked leaf by leaf along a new first axis."""
    first = elements[0]
    if isinstance(first, (tuple, list)):
        return type(first)(stack([e[i] for e in elements]) for i in range(len(first)))
    if isinstance(first, dict):
        return {k: stack([e[k] for e in elements]) for k in first}
    return np.stack([np.asarray(e) for e in elements])


def split_batch(batch: Any) -> list[Any]:
    """A batched element back into its rows."""
    n = len(leaves(batch)[0])
    return [map_leaves(lambda a, i=i: a[i], batch) for i in range(n)]


def call_spread(fn: Callable[..., Any], element: Any) -> Any:
    """tf.data's calling convention: a tuple element is spread over the function's arguments."""
    return fn(*element) if isinstance(element, tuple) else fn(element)


def pipeline_call(fn: Callable[..., Any], element: Any) -> Any:
    """``call_spread`` marked as running inside a data pipeline (see ``in_data_pipeline``)."""
    with data_pipeline():
        return call_spread(fn, element)


def same_structure(a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` nest the same way (same container types, lengths and dict keys)."""
    if isinstance(a, (tuple, list)) or isinstance(b, (tuple, list)):
        return (type(a) is type(b) and len(a) == len(b)
                and all(same_structure(x, y) for x, y in zip(a, b)))
    if isinstance(a, dict) or isinstance(b, dict):
        return isinstance(a, dict) and isinstance(b, dict) and list(a) == list(b) and \
            all(same_structure(a[k], b[k]) for k in a)
    return True


def as_element(value: Any) -> Any:
    """What a ``map`` function returned, as a dataset element: tuples and dicts nest, and every other value (a
    Python list or number included, as tf.data converts them) becomes one array."""
    if isinstance(value, tuple):
        return tuple(as_element(v) for v in value)
    if isinstance(value, dict):
        return {k: as_element(v) for k, v in value.items()}
    return value if isinstance(value, np.ndarray) else np.asarray(value)
