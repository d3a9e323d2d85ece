"""The data a custom step receives, in the structure the user gave it, and a custom ``predict_step``'s results
joined over batches.

Keras hands a dataset element (or ``fit``'s ``x`` / ``(x, y)`` / ``(x, y, sample_weight)``) to an overridden
``train_step``, ``test_step`` or ``predict_step`` unchanged: ``fit({"x": x, "y": y})`` gives the step the dict.
The batch loops carry arrays, so such a batch travels as ``StepData``: its arrays (the leaves, in flattening
order) and a ``Spec`` of the structure they are rebuilt into, on symbolic values, when the step is traced.
Arrays in the model's own input order (no dict anywhere) keep the existing path, where several inputs reach
the step as a tuple.

Example:
    >>> import numpy as np
    >>> leaves, spec = flatten({"x": np.zeros((4, 3)), "y": (np.ones(4), np.ones(4))})
    >>> [a.shape for a in leaves], leaf_names(spec)
    ([(4, 3), (4,), (4,)], ['x', 'y/0', 'y/1'])
    >>> sorted(rebuild(spec, ["a", "b", "c"]).items())
    [('x', 'a'), ('y', ('b', 'c'))]
"""
from __future__ import annotations

__all__ = ["StepData", "Spec", "flatten", "rebuild", "leaf_names", "has_mapping", "has_nested_arrays", "pack_batch", "concat_batches",
           "STEP_OF"]

from collections.abc import Mapping, Sequence
from typing import Any, Union

import numpy as np

#: A leaf is ``None``; a container is ``("dict", keys, children)``, ``("tuple", children)`` or ``("list", children)``
#: (tuples throughout: a spec is hashable, part of the key of a traced step).
Spec = Union[None, tuple]

#: The step a method runs (``fit``'s validation data is evaluated: its caller names ``test_step`` itself).
STEP_OF = {"fit": "train_step", "train_on_batch": "train_step", "evaluate": "test_step",
           "test_on_batch": "test_step", "predict": "predict_step", "predict_on_batch": "predict_step"}


class StepData(list):
    """A batch's arrays (the leaves) and the structure a custom step receives them in (``spec``)."""

    def __init__(self, leaves: Sequence[Any], spec: Spec):
        super().__init__(leaves)
        self.spec = spec

    def take(self, index: Any) -> StepData:
        """The rows ``index`` of every leaf, in the same structure."""
        return StepData([a[index] for a in self], self.spec)


def has_mapping(data: Any) -> bool:
    """Whether ``data`` is a dict or holds one inside tuples or lists."""
    if isinstance(data, Mapping):
        return True
    return isinstance(data, (tuple, list)) and any(has_mapping(d) for d in data)


def has_nested_arrays(data: Any) -> bool:
    """Whether a part of ``data`` (x, y or sample_weight of a batch) is a tuple or list holding tuples or lists
    of arrays: keras.io's AdaMatch zips two zipped datasets of batches of different sizes, which only keep
    their meaning in the structure its own step unpacks (plain nested lists of numbers are one array)."""
    def arrays(v: Any) -> bool:
        return isinstance(v, (tuple, list)) and bool(v) and all(
            arrays(u) or u is None or (hasattr(u, "__array__") and not np.isscalar(u)) for u in v)

    return isinstance(data, (tuple, list)) and any(
        isinstance(part, (tuple, list)) and any(isinstance(v, (tuple, list)) and arrays(v) for v in part)
        for part in data)


def flatten(data: Any) -> tuple[list[Any], Spec]:
    """The leaves of nested dicts, tuples and lists (dict keys in insertion order), and the structure."""
    if isinstance(data, Mapping):
        keys = list(data)
        parts = [flatten(data[k]) for k in keys]
        return [leaf for leaves, _ in parts for leaf in leaves], ("dict", tuple(keys), tuple(s for _, s in parts))
    if isinstance(data, (tuple, list)):
        parts = [flatten(d) for d in data]
        kind = "tuple" if isinstance(data, tuple) else "list"
        return [leaf for leaves, _ in parts for leaf in leaves], (kind, tuple(s for _, s in parts))
    return [data], None


def rebuild(spec: Spec, leaves: Sequence[Any]) -> Any:
    """The structure ``spec`` describes, with ``leaves`` in flattening order."""
    it = iter(leaves)

    def build(s: Spec) -> Any:
        if s is None:
            return next(it)
        if s[0] == "dict":
            return {k: build(c) for k, c in zip(s[1], s[2])}
        children = [build(c) for c in s[1]]
        return tuple(children) if s[0] == "tuple" else children

    return build(spec)


def leaf_names(spec: Spec, prefix: str = "") -> list[str]:
    """A readable name per leaf: its path of keys and positions (``"x"``, ``"0/image"``); ``"data"`` for a
    bare leaf."""
    if spec is None:
        return [prefix or "data"]
    keys = spec[1] if spec[0] == "dict" else range(len(spec[1]))
    children = spec[2] if spec[0] == "dict" else spec[1]
    return [name for k, c in zip(keys, children) for name in leaf_names(c, f"{prefix}/{k}" if prefix else str(k))]


def pack_batch(x: Any, y: Any = None, sample_weight: Any = None) -> Any:
    """Keras's ``pack_x_y_sample_weight``: ``x`` alone, ``(x, y)`` or ``(x, y, sample_weight)``."""
    if y is None and sample_weight is None:
        return x if not isinstance(x, tuple) else (x,)
    return (x, y) if sample_weight is None else (x, y, sample_weight)


def concat_batches(batches: Sequence[Any], what: str) -> Any:
    """``predict``'s result: each leaf of the per-batch structures concatenated along the first axis (Keras
    does this per leaf for a ``predict_step`` that returns a dict or nested outputs)."""
    leaves, spec = flatten(batches[0])
    columns: list[list[np.ndarray]] = [[np.asarray(a)] for a in leaves]
    for batch in batches[1:]:
        more, other = flatten(batch)
        if other != spec:
            raise ValueError(f"{what} returned differently structured results for different batches.")
        for column, a in zip(columns, more):
            column.append(np.asarray(a))
    names = leaf_names(spec, "")
    for name, column in zip(names, columns):
        if column[0].ndim == 0:
            raise ValueError(f"{what} returned a scalar at {name!r}: predict() joins the batches' results along "
                             "their first axis, so each must keep the batch dimension.")
    return rebuild(spec, [np.concatenate(column, axis=0) for column in columns])
