"""``keras.datasets.imdb``: the 50,000 IMDB movie reviews as word-index sequences, from Keras's cache."""
from __future__ import annotations

__all__ = ["load_data", "get_word_index"]

import warnings
from typing import Any

import numpy as np

from . import _cache
from ._untrusted_files import read_npz
from ._word_sequences import (as_object_array, check_options, cut_vocabulary, drop_long, read_word_index, shift,
                              shuffle)

_LOADER = "keras.datasets.imdb.load_data"


def load_data(path: str = "imdb.npz", num_words: int | None = None, skip_top: int = 0, maxlen: int | None = None,
              seed: int = 113, start_char: int | None = 1, oov_char: int | None = 2, index_from: int = 3,
              **kwargs: Any) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Loads the IMDB sentiment dataset as Keras 3 does, from ``imdb.npz`` in Keras's dataset cache.

    Each review is a list of word indices (1 is the most frequent word of the data, before ``index_from`` is
    added); labels are 1 (positive) or 0 (negative). The file's ragged arrays are pickles, read with an
    unpickler that only rebuilds numpy arrays and builtin containers.

    Args:
        path: the file's name in ``$KERAS_HOME/datasets`` (``~/.keras/datasets``).
        num_words: keep the ``num_words`` most frequent words, others become ``oov_char``; None keeps all.
        skip_top: the most frequent words to replace by ``oov_char`` too.
        maxlen: keep only the sequences shorter than this (counting ``start_char``); None keeps all.
        seed: seed of the shuffle (numpy ``RandomState``, as Keras).
        start_char: index put at the start of every sequence; None for none.
        oov_char: index of the words cut out; None drops them instead.
        index_from: added to every word index (indices below it are reserved: padding, start, OOV).
        **kwargs: accepted and ignored, as Keras 3 does (a warning names them).

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: ``x`` object arrays of lists of ints (25,000 each in the
        full file), ``y`` int arrays of 0/1 labels.

    Raises:
        FileNotFoundError: ``imdb.npz`` is not cached (the message says where to put it).
        ValueError: an option is not an integer, or ``maxlen`` leaves no sequence.

    Example:
        >>> (x_train, y_train), (x_test, y_test) = load_data(num_words=10000)  # doctest: +SKIP
        >>> x_train[0][:3]  # doctest: +SKIP
        [1, 14, 22]
    """
    if kwargs:
        warnings.warn(f"{_LOADER}: ignored the unknown arguments {sorted(kwargs)} (Keras 3 ignores them too).",
                      UserWarning, stacklevel=2)
    check_options(_LOADER, num_words, skip_top, maxlen, start_char, oov_char, index_from)
    name = _cache.cached_name(_LOADER, path)
    found = _cache.find(name)
    if found is None:
        raise _cache.missing(_LOADER, name, _cache.ORIGIN + "imdb.npz")
    arrays = read_npz(found, _LOADER, ("x_train", "y_train", "x_test", "y_test"))
    rng = np.random.RandomState(seed)
    x_train, labels_train = shuffle(rng, arrays["x_train"], arrays["y_train"])
    x_test, labels_test = shuffle(rng, arrays["x_test"], arrays["y_test"])
    x_train, x_test = shift(x_train, start_char, index_from), shift(x_test, start_char, index_from)
    x_train, labels_train = drop_long(maxlen, x_train, labels_train)
    x_test, labels_test = drop_long(maxlen, x_test, labels_test)
    if maxlen and (not x_train or not x_test):
        raise ValueError(f"After filtering for sequences shorter than maxlen={maxlen}, no sequence was kept. "
                         "Increase maxlen.")
    xs = cut_vocabulary(x_train + x_test, num_words, skip_top, oov_char)
    labels = np.concatenate([labels_train, labels_test])
    split = len(x_train)
    return (as_object_array(xs[:split]), labels[:split]), (as_object_array(xs[split:]), labels[split:])


def get_word_index(path: str = "imdb_word_index.json") -> dict[str, int]:
    """The IMDB word index (word -> frequency rank) from ``imdb_word_index.json`` in Keras's cache.

    Add ``index_from`` (3 by default) to a rank to get the index ``load_data`` uses.

    Example:
        >>> index = get_word_index()  # doctest: +SKIP
        >>> index["the"]  # doctest: +SKIP
        1
    """
    return read_word_index("keras.datasets.imdb.get_word_index", path, _cache.ORIGIN + "imdb_word_index.json")
