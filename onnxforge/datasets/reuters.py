"""``keras.datasets.reuters``: 11,228 Reuters newswires over 46 topics, as word-index sequences."""
from __future__ import annotations

__all__ = ["load_data", "get_word_index", "get_label_names"]

import numbers

import numpy as np

from . import _cache
from ._untrusted_files import read_npz
from ._word_sequences import as_object_array, check_options, cut_vocabulary, drop_long, read_word_index, shift, shuffle

_LOADER = "keras.datasets.reuters.load_data"

# The 46 topics, in the order of the labels (as Keras lists them).
_LABELS = ("cocoa", "grain", "veg-oil", "earn", "acq", "wheat", "copper", "housing", "money-supply", "coffee", "sugar",
           "trade", "reserves", "ship", "cotton", "carcass", "crude", "nat-gas", "cpi", "money-fx", "interest", "gnp",
           "meal-feed", "alum", "oilseed", "gold", "tin", "strategic-metal", "livestock", "retail", "ipi",
           "iron-steel", "rubber", "heat", "jobs", "lei", "bop", "zinc", "orange", "pet-chem", "dlr", "gas", "silver",
           "wpi", "hog", "lead")


def load_data(path: str = "reuters.npz", num_words: int | None = None, skip_top: int = 0, maxlen: int | None = None,
              test_split: float = 0.2, seed: int = 113, start_char: int | None = 1, oov_char: int | None = 2,
              index_from: int = 3) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Loads the Reuters newswire topics as Keras 3 does, from ``reuters.npz`` in Keras's dataset cache.

    The options mean what they mean for ``imdb.load_data``; the file holds one set of sequences, shuffled
    with ``seed`` and then split, the last ``test_split`` of them for testing.

    Args:
        path: the file's name in ``$KERAS_HOME/datasets`` (``~/.keras/datasets``).
        num_words, skip_top, maxlen, seed, start_char, oov_char, index_from: as ``imdb.load_data``.
        test_split: the fraction of the sequences kept for testing, in [0, 1].

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: ``x`` object arrays of lists of ints, ``y`` int topic labels
        in 0..45 (``get_label_names()`` names them).

    Raises:
        FileNotFoundError: ``reuters.npz`` is not cached (the message says where to put it).
        ValueError: an option is out of range, or ``maxlen`` leaves no sequence.

    Example:
        >>> (x_train, y_train), (x_test, y_test) = load_data(num_words=10000, test_split=0.2)  # doctest: +SKIP
        >>> len(x_train), len(x_test)  # doctest: +SKIP
        (8982, 2246)
    """
    check_options(_LOADER, num_words, skip_top, maxlen, start_char, oov_char, index_from)
    if (isinstance(test_split, bool) or not isinstance(test_split, numbers.Real)
            or not 0 <= test_split <= 1):
        raise ValueError(f"{_LOADER}: `test_split` must be a number between 0 and 1. Received: test_split={test_split!r}")
    name = _cache.cached_name(_LOADER, path)
    found = _cache.find(name)
    if found is None:
        raise _cache.missing(_LOADER, name, _cache.ORIGIN + "reuters.npz")
    arrays = read_npz(found, _LOADER, ("x", "y"))
    xs, labels = shuffle(np.random.RandomState(seed), arrays["x"], arrays["y"])
    xs = shift(xs, start_char, index_from)
    xs, labels = drop_long(maxlen, xs, labels)
    if not xs and len(arrays["x"]):
        raise ValueError(f"{_LOADER}: after filtering for sequences shorter than maxlen={maxlen}, no sequence was "
                         "kept. Increase maxlen.")
    xs = cut_vocabulary(xs, num_words, skip_top, oov_char)
    if maxlen:
        # Keras's length cut leaves a list of labels, so an empty split comes out as np.array([]) (float64).
        labels = list(labels)
    split = int(len(xs) * (1 - test_split))
    return ((as_object_array(xs[:split]), np.array(labels[:split])),
            (as_object_array(xs[split:]), np.array(labels[split:])))


def get_word_index(path: str = "reuters_word_index.json") -> dict[str, int]:
    """The Reuters word index (word -> frequency rank) from ``reuters_word_index.json`` in Keras's cache.

    Add ``index_from`` (3 by default) to a rank to get the index ``load_data`` uses.

    Example:
        >>> get_word_index()["the"]  # doctest: +SKIP
        1
    """
    return read_word_index("keras.datasets.reuters.get_word_index", path, _cache.ORIGIN + "reuters_word_index.json")


def get_label_names() -> tuple[str, ...]:
    """The 46 topic names, indexed by the labels ``load_data`` returns.

    Example:
        >>> names = get_label_names()
        >>> len(names), names[3]
        (46, 'earn')
    """
    return _LABELS
