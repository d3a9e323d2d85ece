"""``tf.nest``: nested structures of lists, tuples, namedtuples and dicts, with TensorFlow's rules.

Everything else is a leaf: arrays, tensors, strings and ``None``. Dict values come in sorted key order
(``pack_sequence_as`` rebuilds a dict with the structure's own key order), as ``tf.nest`` does.

Example:
    >>> flatten({"b": [1, (2, None)], "a": 3})
    [3, 1, 2, None]
    >>> map_structure(lambda x, y: x + y, {"a": [1, 2]}, {"a": [10, 20]})
    {'a': [11, 22]}
    >>> pack_sequence_as({"b": 0, "a": [0, 0]}, [1, 2, 3])
    {'b': 3, 'a': [1, 2]}
"""
from __future__ import annotations

__all__ = ["flatten", "map_structure", "pack_sequence_as", "is_nested", "assert_same_structure"]

from collections.abc import Callable, Mapping
from typing import Any


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def is_nested(structure: Any) -> bool:
    """Whether ``structure`` is a list, tuple (namedtuples too) or mapping, rather than a leaf."""
    return isinstance(structure, (list, tuple, Mapping))


def _sorted_keys(mapping: Mapping) -> list:
    try:
        return sorted(mapping)
    except TypeError as e:
        raise TypeError("nest only supports dicts with sortable keys.") from e


def _children(structure: Any) -> list:
    if isinstance(structure, Mapping):
        return [structure[k] for k in _sorted_keys(structure)]
    return list(structure)


def flatten(structure: Any, expand_composites: bool = False) -> list:
    """The leaves of ``structure``, left to right (dict values by sorted key); a leaf gives ``[leaf]``."""
    if not is_nested(structure):
        return [structure]
    return [leaf for child in _children(structure) for leaf in flatten(child)]


def _rebuild(structure: Any, children: list) -> Any:
    """A container like ``structure`` holding ``children`` (in ``_children``'s order)."""
    if isinstance(structure, Mapping):
        by_key = dict(zip(_sorted_keys(structure), children))
        out = [(k, by_key[k]) for k in structure]
        if hasattr(structure, "default_factory"):   # a defaultdict keeps its factory
            return type(structure)(structure.default_factory, out)
        return type(structure)(out)
    if _is_namedtuple(structure):
        return type(structure)(*children)
    return type(structure)(children)


def _pack(structure: Any, flat: list, index: int) -> tuple[Any, int]:
    if not is_nested(structure):
        return flat[index], index + 1
    children = []
    for child in _children(structure):
        packed, index = _pack(child, flat, index)
        children.append(packed)
    return _rebuild(structure, children), index


def pack_sequence_as(structure: Any, flat_sequence: Any, expand_composites: bool = False) -> Any:
    """``flat_sequence``'s items put into the shape of ``structure`` (the inverse of ``flatten``)."""
    if not is_nested(flat_sequence):
        raise TypeError(f"Attempted to pack value:\n  {flat_sequence!r}\ninto a structure, but found incompatible "
                        f"type `{type(flat_sequence)}` instead.")
    flat = list(flat_sequence)
    count = len(flatten(structure))
    if count != len(flat):
        raise ValueError(f"Could not pack sequence. Structure had {count} atoms, but flat_sequence had {len(flat)} "
                         f"items.  Structure: {structure}, flat_sequence: {flat}.")
    return _pack(structure, flat, 0)[0]


def assert_same_structure(nest1: Any, nest2: Any, check_types: bool = True, expand_composites: bool = False) -> None:
    """Raises ``ValueError`` (``TypeError`` for different container types) unless both nest alike."""
    if is_nested(nest1) != is_nested(nest2):
        raise ValueError(f"The two structures don't have the same nested structure.\n\nFirst structure: {nest1}\n\n"
                         f"Second structure: {nest2}")
    if not is_nested(nest1):
        return
    both_mappings = isinstance(nest1, Mapping) and isinstance(nest2, Mapping)
    if check_types and type(nest1) is not type(nest2) and not both_mappings:
        raise TypeError(f"The two structures don't have the same sequence type. First structure has type "
                        f"{type(nest1)}, while second structure has type {type(nest2)}.")
    if isinstance(nest1, Mapping) and set(nest1) != set(nest2):
        raise ValueError(f"The two dictionaries don't have the same set of keys. First structure has keys "
                         f"{_sorted_keys(nest1)}, while second structure has keys {_sorted_keys(nest2)}.")
    a, b = _children(nest1), _children(nest2)
    if len(a) != len(b):
        raise ValueError(f"The two structures don't have the same number of elements. First structure: {nest1}. "
                         f"Second structure: {nest2}.")
    for x, y in zip(a, b):
        assert_same_structure(x, y, check_types)


def map_structure(func: Callable[..., Any], *structure: Any, check_types: bool = True,
                  expand_composites: bool = False) -> Any:
    """``func`` applied to the leaves of the structures side by side, in the first structure's shape."""
    if not structure:
        raise ValueError("Must provide at least one structure")
    for other in structure[1:]:
        assert_same_structure(structure[0], other, check_types)
    flats = [flatten(s) for s in structure]
    return pack_sequence_as(structure[0], [func(*leaves) for leaves in zip(*flats)])
