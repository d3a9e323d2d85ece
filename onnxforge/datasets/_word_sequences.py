"""What ``imdb`` and ``reuters`` share: the shuffle, the index shift, the length cut and the vocabulary cut.

Each step follows Keras 3 exactly (including that, without ``num_words``, the highest index is kept out of
the vocabulary, since the cut keeps ``w < num_words`` with ``num_words`` the largest index seen), so the
same cached file gives the same sequences.
"""
from __future__ import annotations

__all__ = ["check_options", "shuffle", "shift", "drop_long", "cut_vocabulary", "as_object_array", "read_word_index"]

import json
import numbers
import os
from typing import Any, Sequence

import numpy as np

from . import _cache
from ._untrusted_files import MAX_FILE_BYTES


def _int_or_none(loader: str, name: str, value: Any, minimum: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{loader}: `{name}` must be None or an integer >= {minimum}. Received: {name}={value!r}")


def check_options(loader: str, num_words: Any, skip_top: Any, maxlen: Any, start_char: Any, oov_char: Any,
                  index_from: Any) -> None:
    """The options' types checked up front (Keras fails on them later, with less clear errors)."""
    for name, value in (("num_words", num_words), ("maxlen", maxlen), ("start_char", start_char),
                        ("oov_char", oov_char)):
        _int_or_none(loader, name, value, 0)
    for name, value in (("skip_top", skip_top), ("index_from", index_from)):
        if value is None:
            raise ValueError(f"{loader}: `{name}` must be an integer >= 0. Received: {name}=None")
        _int_or_none(loader, name, value, 0)


def shuffle(rng: np.random.RandomState, xs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays in the order of one ``rng.shuffle`` of their indices (Keras's ``RandomState`` draw)."""
    if len(xs) != len(labels):
        raise ValueError(f"the sequences ({len(xs)}) and their labels ({len(labels)}) differ in number")
    indices = np.arange(len(xs))
    rng.shuffle(indices)
    return xs[indices], labels[indices]


def shift(xs: Sequence, start_char: int | None, index_from: int) -> list[list]:
    """Each sequence's words moved up by ``index_from``, after ``start_char`` where one is given."""
    head = [] if start_char is None else [start_char]
    return [head + [w + index_from for w in x] for x in xs]


def drop_long(maxlen: int | None, xs: list[list], labels: np.ndarray) -> tuple[list[list], np.ndarray]:
    """Only the sequences shorter than ``maxlen`` (Keras keeps ``len(x) < maxlen``); all where it is falsy."""
    if not maxlen:
        return xs, labels
    keep = [len(x) < maxlen for x in xs]
    return [x for x, k in zip(xs, keep) if k], labels[np.asarray(keep, dtype=bool)]


def cut_vocabulary(xs: list[list], num_words: int | None, skip_top: int, oov_char: int | None) -> list[list]:
    """Words outside ``[skip_top, num_words)`` replaced by ``oov_char``, or dropped where it is None."""
    if not num_words:
        num_words = max((max(x) for x in xs if len(x)), default=0)
    if oov_char is not None:
        return [[w if skip_top <= w < num_words else oov_char for w in x] for x in xs]
    return [[w for w in x if skip_top <= w < num_words] for x in xs]


def as_object_array(xs: list[list]) -> np.ndarray:
    """The sequences as Keras returns them: ``np.array(xs, dtype="object")`` (2-D where all lengths agree)."""
    return np.array(xs, dtype="object")


def read_word_index(loader: str, path: Any, default_origin: str) -> dict[str, int]:
    """A cached ``*_word_index.json``: a dict of words to their frequency rank."""
    name = _cache.cached_name(loader, path)
    found = _cache.find(name)
    if found is None:
        raise _cache.missing(loader, name, default_origin)
    if os.path.getsize(found) > MAX_FILE_BYTES:
        raise ValueError(f"{loader}: {found} is larger than a word index may be ({MAX_FILE_BYTES} bytes).")
    try:
        with open(found, encoding="utf-8") as f:
            index = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{loader}: {found} is not a readable JSON word index ({e}).") from None
    if not isinstance(index, dict):
        raise ValueError(f"{loader}: {found} holds a JSON {type(index).__name__}, not a dict of words to indices.")
    return index
