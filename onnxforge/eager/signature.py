"""Cache keys of eager calls: the structure of the arguments, with arrays reduced to shape and dtype.

Two calls share a compiled program when their arguments have the same nesting (lists, tuples, dicts),
their arrays the same dtypes and shapes (a leading batch axis may be left free), and every other argument
the same value (``training=True``, ``axis=1``) or, for objects such as a ``SeedGenerator``, the same object.

Example:
    >>> import numpy as np
    >>> a, _ = signature(((np.zeros((4, 3), np.float32),), {"training": True}), free_batch=True)
    >>> b, _ = signature(((np.ones((9, 3), np.float32),), {"training": True}), free_batch=True)
    >>> a == b
    True
"""
from __future__ import annotations

__all__ = ["Uncacheable", "signature", "is_array", "array_leaves", "map_arrays", "shared_batch"]

from collections.abc import Callable
from typing import Any

import numpy as np


class Uncacheable(TypeError):
    """An argument that cannot be part of a cache key (an unhashable object)."""


def is_array(x: Any) -> bool:
    """Whether ``x`` is a concrete array (numpy arrays, ``EagerTensor``s, numpy scalars)."""
    return isinstance(x, (np.ndarray, np.generic)) and not isinstance(x, (np.str_, np.bytes_))


def array_leaves(tree: Any) -> list[Any]:
    """The arrays in ``tree`` (lists, tuples and dicts in key order), left to right."""
    if isinstance(tree, (list, tuple)):
        return [a for item in tree for a in array_leaves(item)]
    if isinstance(tree, dict):
        return [a for key in sorted(tree, key=repr) for a in array_leaves(tree[key])]
    return [tree] if is_array(tree) else []


def map_arrays(tree: Any, fn: Callable[[Any], Any]) -> Any:
    """``tree`` with every array replaced by ``fn(array)``, visited in ``array_leaves`` order."""
    if isinstance(tree, list):
        return [map_arrays(t, fn) for t in tree]
    if isinstance(tree, tuple):
        return tuple(map_arrays(t, fn) for t in tree)
    if isinstance(tree, dict):
        done = {k: map_arrays(tree[k], fn) for k in sorted(tree, key=repr)}
        return {k: done[k] for k in tree}
    return fn(tree) if is_array(tree) else tree


def shared_batch(arrays: list[np.ndarray]) -> bool:
    """Whether every array of rank >= 1 has the same leading size (then it can be a free batch axis)."""
    leading = {a.shape[0] for a in arrays if a.ndim >= 1}
    return len(leading) == 1


def _leaf_key(x: Any, free_batch: bool) -> Any:
    if is_array(x):
        shape = tuple(x.shape)
        if free_batch and shape:
            shape = (None, *shape[1:])
        # Strings of any width are one ONNX string input: "<U117" and "<U98" share a program (keras.io's
        # active learning maps a TextVectorization over single reviews of every length).
        dtype = x.dtype.kind if x.dtype.kind in "US" else x.dtype.str
        return ("array", shape, dtype)
    if x is None or isinstance(x, (bool, int, float, complex, str, bytes)):
        return ("value", type(x).__name__, x)
    try:
        hash(x)
    except TypeError:
        raise Uncacheable(f"unhashable argument of type {type(x).__name__}") from None
    return ("object", x)   # the key holds the object: its id cannot be reused while the entry lives


def _key(tree: Any, free_batch: bool) -> Any:
    if isinstance(tree, list):
        return ("list", tuple(_key(t, free_batch) for t in tree))
    if isinstance(tree, tuple):
        return ("tuple", tuple(_key(t, free_batch) for t in tree))
    if isinstance(tree, dict):
        return ("dict", tuple((k, _key(tree[k], free_batch)) for k in sorted(tree, key=repr)))
    return _leaf_key(tree, free_batch)


def signature(tree: Any, free_batch: bool) -> tuple[Any, list[Any]]:
    """``(cache key, array leaves)`` of the call arguments ``tree``.

    Raises:
        Uncacheable: an argument is neither an array, a plain value nor a hashable object.
    """
    return _key(tree, free_batch), array_leaves(tree)
