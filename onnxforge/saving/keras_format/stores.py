"""The stores Keras 3 hands to a layer's ``save_own_variables`` / ``load_own_variables`` overrides.

Keras (``keras.src.saving.saving_lib.H5IOStore``) gives each object a dict-like view of its ``<path>/vars``
group: ``store["0"] = array`` when saving, ``store["0"]``, ``keys()``, ``len(store)`` when loading. A custom
layer that overrides these methods (to store a variable under its own key, or state that is not a
Variable) is called with the same views here; every other object keeps the checked, shape-first path of
:mod:`.h5io`. A dataset read through a view is still checked as :mod:`.h5io` checks it (no links, numeric
only) and refused when it declares far more bytes than the file stores.

Example:
    >>> store = WriteStore()
    >>> store["variables"] = [1.0, 2.0]
    >>> list(store.keys()), store["variables"].shape
    (['variables'], (2,))
"""
from __future__ import annotations

__all__ = ["WriteStore", "ReadStore", "overrides", "own_entries", "run_load_hooks"]

from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import KerasFileError
from .layout import Saveable


def overrides(obj: Any, method: str) -> bool:
    """Whether ``obj``'s class replaces the base ``Layer``'s ``method`` (the default path handles the rest)."""
    from ...layers.base import Layer

    found = getattr(type(obj), method, None)
    only_if = getattr(found, "_overrides_only_if", None)   # LoRA layers: their own I/O only once enabled
    if only_if is not None:
        return bool(getattr(obj, only_if, False))
    return callable(found) and isinstance(obj, Layer) and found is not getattr(Layer, method, None)


class WriteStore:
    """What ``save_own_variables(store)`` fills: ``{key: array}`` in insertion order."""

    def __init__(self) -> None:
        self.entries: dict[str, np.ndarray] = {}

    def __setitem__(self, key: str, value: Any) -> None:
        self.entries[str(key)] = np.asarray(value.numpy() if hasattr(value, "numpy") else value)

    def __getitem__(self, key: str) -> np.ndarray:
        return self.entries[key]

    def __contains__(self, key: object) -> bool:
        return key in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def keys(self) -> list[str]:
        return list(self.entries)


def own_entries(saveable: Saveable) -> list[tuple[str, np.ndarray]]:
    """The datasets of ``saveable``'s ``vars`` group: its variables as ``"0"``, ``"1"``... or, when its class
    overrides ``save_own_variables``, whatever that writes."""
    if overrides(saveable.obj, "save_own_variables"):
        store = WriteStore()
        saveable.obj.save_own_variables(store)
        return list(store.entries.items())
    return [(str(i), np.asarray(ref.read())) for i, ref in enumerate(saveable.refs)]


class ReadStore:
    """What ``load_own_variables(store)`` reads: the datasets of one ``vars`` group (empty when absent).

    Args:
        reader: the :class:`.h5io.H5Reader` (its checked ``group`` / ``dataset`` accessors are used).
        group: the group's path, ``<path>/vars``.
    """

    def __init__(self, reader: Any, group: str):
        self.reader, self.where = reader, group
        self.group = reader.group(group)

    def keys(self) -> list[str]:
        return [] if self.group is None else list(self.group.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def __getitem__(self, key: str) -> np.ndarray:
        where = f"{self.where}/{key}"
        if key not in self.keys():
            raise KeyError(f"No dataset {key!r} in {self.where!r}; it holds {self.keys()}")
        ds = self.reader.dataset(self.group, key, where)
        declared = int(np.prod(ds.shape, dtype=np.float64)) * ds.dtype.itemsize
        if declared > 2**20 and declared > 1000 * ds.id.get_storage_size():
            # As stored_shapes: no shape was checked first here, so a shape bomb is refused before reading.
            raise KerasFileError(self.reader.path, f"the dataset declares {declared} bytes but stores far fewer; "
                                 "refusing it", key=where)
        value = np.asarray(ds[()])
        if ds.attrs.get("dtype") == "bfloat16":     # Keras stores bfloat16 as its raw 16-bit patterns
            value = (value.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        return value


def run_load_hooks(hooked: list[Saveable], reader: Any, problem: Callable[[str, str], Any]) -> list[Any]:
    """Call each object's ``load_own_variables`` with its :class:`ReadStore`; a failure becomes
    ``problem(group, message)`` (raised with the others, or warned under ``skip_mismatch``)."""
    problems = []
    for s in hooked:
        try:
            s.obj.load_own_variables(ReadStore(reader, s.group))
        except KerasFileError:
            raise
        except Exception as e:      # the user's code: any failure means this object did not load
            problems.append(problem(s.group, f"Layer '{s.name}' ({type(s.obj).__name__}): load_own_variables() "
                                    f"failed: {type(e).__name__}: {e}"))
    return problems
