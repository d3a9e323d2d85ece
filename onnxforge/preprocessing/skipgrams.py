"""tf.keras's word2vec helpers, ``keras.preprocessing.sequence.skipgrams`` and ``make_sampling_table``, which
TensorFlow still ships under ``tf.keras`` (keras.io's node2vec page builds its training pairs with them).

Both draw from Python's ``random`` module in the order tf.keras does, so a program that seeds ``random`` gets
the same pairs as under TensorFlow.

Example:
    >>> import random
    >>> random.seed(0)
    >>> pairs, labels = skipgrams([1, 2, 3], vocabulary_size=4, window_size=1, negative_samples=0.0, shuffle=False)
    >>> pairs, labels
    ([[1, 2], [2, 1], [2, 3], [3, 2]], [1, 1, 1, 1])
"""
from __future__ import annotations

__all__ = ["skipgrams", "make_sampling_table"]

import random
from collections.abc import Sequence
from typing import Any

import numpy as np

_EULER_GAMMA = 0.577   # the constant tf.keras uses in its Zipf approximation


def make_sampling_table(size: int, sampling_factor: float = 1e-5) -> np.ndarray:
    """``sampling_table[i]``: the probability of keeping the ``i``-th most frequent word, from word2vec's
    subsampling rule with frequencies assumed to follow Zipf's law (as tf.keras computes it)."""
    rank = np.arange(size)
    rank[0] = 1   # index 0 is never a word; tf.keras gives it rank 1's value
    inverse_frequency = rank * (np.log(rank) + _EULER_GAMMA) + 0.5 - 1.0 / (12.0 * rank)
    scaled = sampling_factor * inverse_frequency
    return np.minimum(1.0, scaled / np.sqrt(scaled))


def skipgrams(sequence: Sequence[int], vocabulary_size: int, window_size: int = 4,
              negative_samples: float = 1.0, shuffle: bool = True, categorical: bool = False,
              sampling_table: Any = None, seed: int | None = None) -> tuple[list, list]:
    """``(couples, labels)``: ``[word, context]`` pairs of words at most ``window_size`` apart in ``sequence``
    (label 1), then ``int(negative_samples * positives)`` pairs of a word with a random index in
    ``[1, vocabulary_size)`` (label 0); index 0 is skipped as padding. ``categorical`` labels are ``[0, 1]`` /
    ``[1, 0]``. ``sampling_table`` drops word ``i`` unless ``random.random() <= sampling_table[i]``.
    ``shuffle`` shuffles couples and labels alike, from ``seed`` (drawn from ``random`` when ``None``)."""
    positive, negative = ([0, 1], [1, 0]) if categorical else (1, 0)
    couples: list[list[int]] = []
    labels: list[Any] = []
    for i, word in enumerate(sequence):
        if not word:
            continue
        if sampling_table is not None and sampling_table[word] < random.random():
            continue
        for j in range(max(0, i - window_size), min(len(sequence), i + window_size + 1)):
            if j == i or not sequence[j]:
                continue
            couples.append([word, sequence[j]])
            labels.append(positive)
    if negative_samples > 0:
        count = int(len(labels) * negative_samples)
        words = [couple[0] for couple in couples]
        random.shuffle(words)
        couples += [[words[k % len(words)], random.randint(1, vocabulary_size - 1)] for k in range(count)]
        labels += [negative] * count
    if shuffle:
        if seed is None:
            seed = random.randint(0, int(10e6))
        # The same seed for both shuffles keeps each label with its couple.
        random.seed(seed)
        random.shuffle(couples)
        random.seed(seed)
        random.shuffle(labels)
    return couples, labels
