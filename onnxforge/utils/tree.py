"""``keras.tree``: nested structures (lists, tuples, namedtuples, dicts) as Keras 3 walks them.

Dict values come in sorted key order (an ``OrderedDict`` keeps its own order), ``None`` is a leaf unless a
function says otherwise, and rebuilt containers keep their types (a dict keeps its key order, a namedtuple
its class).

Example:
    >>> flatten({"b": [1, (2, None)], "a": 3})
    [3, 1, 2, None]
    >>> map_structure(lambda x, y: x + y, {"a": [1, 2]}, {"a": [10, 20]})
    {'a': [11, 22]}
    >>> flatten_with_path({"b": [1, 2], "a": 3})
    [(('a',), 3), (('b', 0), 1), (('b', 1), 2)]
"""
from __future__ import annotations

__all__ = ["MAP_TO_NONE", "is_nested", "flatten", "flatten_with_path", "map_structure", "map_structure_up_to",
           "pack_sequence_as", "assert_same_structure", "assert_same_paths", "lists_to_tuples", "traverse",
           "map_shape_structure"]

import collections
from collections.abc import Callable, Mapping
from typing import Any


class _MapToNone:
    """What a ``traverse`` function returns to put ``None`` in place of a subtree."""

    def __repr__(self) -> str:
        return "keras.tree.MAP_TO_NONE"


MAP_TO_NONE = _MapToNone()


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def is_nested(structure: Any) -> bool:
    """Whether ``structure`` is a list, tuple or mapping (a container), rather than a leaf."""
    return isinstance(structure, (list, tuple, Mapping))


def _keys(mapping: Mapping) -> list:
    if isinstance(mapping, collections.OrderedDict):
        return list(mapping)
    try:
        return sorted(mapping)
    except TypeError as e:
        raise TypeError(f"keras.tree needs dicts with sortable keys. Received keys: {list(mapping)!r}") from e


def _items(structure: Any) -> list[tuple[Any, Any]]:
    """``(key or index, child)`` pairs of a container, in flattening order."""
    if isinstance(structure, Mapping):
        return [(k, structure[k]) for k in _keys(structure)]
    return list(enumerate(structure))


def _rebuild(structure: Any, children: list) -> Any:
    if isinstance(structure, Mapping):
        by_key = dict(zip(_keys(structure), children))
        pairs = [(k, by_key[k]) for k in structure]
        if isinstance(structure, collections.defaultdict):
            return type(structure)(structure.default_factory, pairs)
        return type(structure)(pairs)
    if _is_namedtuple(structure):
        return type(structure)(*children)
    return type(structure)(children)


def _leaf(x: Any, none_is_leaf: bool) -> bool:
    return not is_nested(x) and (none_is_leaf or x is not None)


def flatten(structure: Any) -> list:
    """The leaves of ``structure``, left to right; a leaf alone gives ``[leaf]``."""
    return [leaf for _, leaf in flatten_with_path(structure)]


def flatten_with_path(structure: Any) -> list[tuple[tuple, Any]]:
    """``(path, leaf)`` pairs: each path the keys and indices leading to its leaf."""
    if not is_nested(structure):
        return [((), structure)]
    out = []
    for key, child in _items(structure):
        out += [((key, *path), leaf) for path, leaf in flatten_with_path(child)]
    return out


def _check_same(a: Any, b: Any, where: str = "") -> None:
    if is_nested(a) != is_nested(b):
        raise ValueError(f"The two structures don't have the same nested structure{where}: {a!r} vs {b!r}")
    if not is_nested(a):
        return
    # Mappings of any kind match each other; sequences must be of one type (a list is not a tuple, a
    # namedtuple not a plain tuple), as Keras 3 checks.
    kinds_differ = isinstance(a, Mapping) != isinstance(b, Mapping) or \
        (not isinstance(a, Mapping) and type(a) is not type(b))
    if kinds_differ or len(a) != len(b):
        raise ValueError(f"The two structures don't have the same nested structure{where}: {a!r} vs {b!r}")
    if isinstance(a, Mapping) and set(a) != set(b):
        raise ValueError(f"The two structures don't have the same keys{where}: {sorted(a, key=repr)} vs "
                         f"{sorted(b, key=repr)}")
    for (k, x), (_, y) in zip(_items(a), _items(b)):
        _check_same(x, y, f" at [{k!r}]")


def assert_same_structure(a: Any, b: Any, check_types: Any = None) -> None:
    """Raise ``ValueError`` unless ``a`` and ``b`` nest alike (``check_types`` is accepted and ignored, as in
    Keras 3.15)."""
    _check_same(a, b)


def assert_same_paths(a: Any, b: Any) -> None:
    """Raise ``ValueError`` unless ``a`` and ``b`` have the same leaf paths (container types may differ)."""
    pa, pb = [p for p, _ in flatten_with_path(a)], [p for p, _ in flatten_with_path(b)]
    if set(pa) != set(pb):
        raise ValueError(f"`a` and `b` don't have the same paths. Paths only in `a`: {sorted(set(pa) - set(pb))}; "
                         f"only in `b`: {sorted(set(pb) - set(pa))}")


def map_structure(func: Callable[..., Any], *structures: Any, none_is_leaf: bool = True) -> Any:
    """``func`` applied leafwise across ``structures`` (which must nest alike), in the first one's shape.
    With ``none_is_leaf=False`` a ``None`` stays ``None`` without a call."""
    if not structures:
        raise ValueError("map_structure needs at least one structure.")
    for other in structures[1:]:
        _check_same(structures[0], other)
    return _map(func, structures, none_is_leaf)


def _map(func: Callable[..., Any], structures: tuple, none_is_leaf: bool) -> Any:
    first = structures[0]
    if not is_nested(first):
        if first is None and not none_is_leaf:
            return None
        return func(*structures)
    columns = [[child for _, child in _items(s)] for s in structures]
    return _rebuild(first, [_map(func, tuple(col), none_is_leaf) for col in zip(*columns)])


def map_structure_up_to(shallow_structure: Any, func: Callable[..., Any], *structures: Any) -> Any:
    """``func`` applied to the subtrees of ``structures`` found at ``shallow_structure``'s leaves."""
    if not is_nested(shallow_structure):
        return func(*structures)
    for s in structures:
        if not is_nested(s) or len(s) != len(shallow_structure):
            raise ValueError(f"map_structure_up_to: {s!r} does not nest like {shallow_structure!r}")
    children = []
    for i, (key, sub) in enumerate(_items(shallow_structure)):
        picked = [s[key] if isinstance(s, Mapping) else list(s)[i] for s in structures]
        children.append(map_structure_up_to(sub, func, *picked))
    return _rebuild(shallow_structure, children)


def pack_sequence_as(structure: Any, flat_sequence: Any) -> Any:
    """``flat_sequence``'s items rebuilt into the nesting of ``structure``."""
    flat = list(flat_sequence)
    count = len(flatten(structure))
    if len(flat) != count:
        raise ValueError(f"The target structure has {count} leaves but `flat_sequence` has {len(flat)} items. "
                         f"Received: structure={structure!r}")
    it = iter(flat)
    return map_structure(lambda _: next(it), structure)


def lists_to_tuples(structure: Any) -> Any:
    """``structure`` with every list turned into a tuple, at every depth."""
    if not is_nested(structure):
        return structure
    children = [lists_to_tuples(child) for _, child in _items(structure)]
    return tuple(children) if isinstance(structure, list) else _rebuild(structure, children)


def traverse(func: Callable[[Any], Any], structure: Any, top_down: bool = True) -> Any:
    """Apply ``func`` to every subtree. Top-down, a non-``None`` result replaces the subtree (and is not
    descended into); bottom-up, ``func`` sees subtrees already rebuilt. ``MAP_TO_NONE`` puts ``None``."""
    def fix(value: Any) -> Any:
        return None if value is MAP_TO_NONE else value

    if top_down:
        result = func(structure)
        if result is not None:
            return fix(result)
        if not is_nested(structure):
            return structure
        return _rebuild(structure, [traverse(func, child, True) for _, child in _items(structure)])
    rebuilt = structure if not is_nested(structure) else \
        _rebuild(structure, [traverse(func, child, False) for _, child in _items(structure)])
    result = func(rebuilt)
    return rebuilt if result is None else fix(result)


def _is_shape(x: Any) -> bool:
    return isinstance(x, (list, tuple)) and not _is_namedtuple(x) and \
        all(d is None or (isinstance(d, int) and not isinstance(d, bool)) for d in x)


def map_shape_structure(func: Callable[[Any], Any], structure: Any) -> Any:
    """``func`` applied to every shape (a tuple or list of ints and ``None``) in ``structure``."""
    if _is_shape(structure) or not is_nested(structure):
        return func(structure)
    return _rebuild(structure, [map_shape_structure(func, child) for _, child in _items(structure)])
