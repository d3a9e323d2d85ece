"""Small, learnable stand-ins for the datasets keras.io examples download, generated with fixed seeds.

Each has the shape and kind of the original (token-id reviews, univariate series, ratings, sentence pairs,
segmentation masks) and a structure a small model learns in a few epochs; nothing is downloaded.
"""
from __future__ import annotations

import numpy as np

__all__ = ["reviews", "series", "ratings", "phrases", "shapes", "tickets", "corpus", "transactions",
           "counting_sequences", "tabular_regression"]

_POSITIVE = range(2, 12)    # word ids that make a review positive
_NEGATIVE = range(12, 22)   # ... and negative


def reviews(n: int, vocab: int = 100, min_len: int = 8, max_len: int = 40, seed: int = 0
            ) -> tuple[list[list[int]], np.ndarray]:
    """IMDB-like reviews: lists of word ids of varied lengths (1 is the start token) and 0/1 sentiment.

    The label is whether the review holds more "positive" than "negative" words, each review holding at
    least two more of one kind than the other.
    """
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        length = int(rng.integers(min_len, max_len + 1))
        words = list(rng.integers(22, vocab, size=length))
        label = int(rng.integers(0, 2))
        strong, weak = (_POSITIVE, _NEGATIVE) if label else (_NEGATIVE, _POSITIVE)
        k = int(rng.integers(2, 5))
        for _ in range(k + 2):
            words[int(rng.integers(0, length))] = int(rng.choice(strong))
        for _ in range(int(rng.integers(0, k - 1))):
            words[int(rng.integers(0, length))] = int(rng.choice(weak))
        pos = sum(w in _POSITIVE for w in words)
        neg = sum(w in _NEGATIVE for w in words)
        texts.append([1] + [int(w) for w in words])
        labels.append(int(pos > neg))
    return texts, np.asarray(labels, dtype="int64")


def series(n: int, length: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """FordA-like univariate series (n, length) labelled -1 / 1: a slow or a fast noisy oscillation."""
    rng = np.random.default_rng(seed)
    labels = rng.choice([-1, 1], size=n)
    t = np.arange(length)
    freq = np.where(labels == 1, rng.uniform(0.18, 0.28, n), rng.uniform(0.05, 0.12, n))
    phase = rng.uniform(0, 2 * np.pi, n)
    x = np.sin(freq[:, None] * t[None, :] + phase[:, None]) + rng.normal(0, 0.6, (n, length))
    return x.astype("float64"), labels


def ratings(num_users: int = 60, num_movies: int = 50, n: int = 2000, dim: int = 3, seed: int = 0
            ) -> tuple[np.ndarray, np.ndarray]:
    """MovieLens-like ``[user, movie]`` pairs and ratings 0.5..5.0 from hidden taste vectors."""
    rng = np.random.default_rng(seed)
    users = rng.normal(size=(num_users, dim))
    movies = rng.normal(size=(num_movies, dim))
    pairs = np.stack([rng.integers(0, num_users, n), rng.integers(0, num_movies, n)], axis=1)
    score = np.sum(users[pairs[:, 0]] * movies[pairs[:, 1]], axis=1) + rng.normal(0, 0.3, n)
    rating = np.clip(np.round((2.75 + score) * 2) / 2, 0.5, 5.0)
    return pairs.astype("int64"), rating


def phrases(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """A toy "translation" task: lowercase words to their reversed uppercase (``"abc" -> "CBA"``)."""
    rng = np.random.default_rng(seed)
    letters = "abcdefgh"
    out = []
    for _ in range(n):
        word = "".join(rng.choice(list(letters), size=int(rng.integers(2, 6))))
        out.append((word, word[::-1].upper()))
    return out


def shapes(n: int, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Oxford-pets-like segmentation: noisy images with a square and a disc; masks 0 background, 1 square,
    2 disc (images ``(n, size, size, 1)`` float32, masks ``(n, size, size, 1)`` uint8)."""
    rng = np.random.default_rng(seed)
    images = rng.normal(0.0, 0.25, (n, size, size, 1)).astype("float32")
    masks = np.zeros((n, size, size, 1), dtype="uint8")
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        s = int(rng.integers(5, 10))
        r0, c0 = rng.integers(0, size - s, 2)
        masks[i, r0:r0 + s, c0:c0 + s, 0] = 1
        radius = rng.uniform(3, 6)
        cy, cx = rng.uniform(radius, size - radius, 2)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2
        masks[i, disc, 0] = 2
        images[i, masks[i, ..., 0] == 1, 0] += 1.0
        images[i, masks[i, ..., 0] == 2, 0] -= 1.0
    return images, masks


def tickets(n: int, num_words: int = 200, num_tags: int = 12, num_departments: int = 4, seed: int = 0):
    """The functional-API guide's support tickets: title and body word ids, tag bits, and two targets —
    priority in [0, 1] (set by the tags) and a one-hot department (set by the title's words)."""
    rng = np.random.default_rng(seed)
    department = rng.integers(0, num_departments, n)
    title = rng.integers(num_departments * 5 + 1, num_words, size=(n, 10))
    for i in range(n):   # each department has its own five title words
        title[i, rng.integers(0, 10, 3)] = 1 + department[i] * 5 + rng.integers(0, 5, 3)
    body = rng.integers(1, num_words, size=(n, 20))
    tags = rng.integers(0, 2, size=(n, num_tags)).astype("float32")
    priority = (tags[:, :3].sum(axis=1, keepdims=True) / 3.0).astype("float32")
    return title, body, tags, priority, np.eye(num_departments, dtype="float32")[department]


_SUBJECTS = ["the cat", "a dog", "my friend", "the bird", "our teacher"]
_VERBS = ["sat on", "ran to", "looked at", "jumped over", "sang to"]
_OBJECTS = ["the mat", "a log", "the moon", "the old tree", "a red box"]


def corpus(n_sentences: int, seed: int = 0) -> str:
    """A Nietzsche-like training text from a tiny grammar: ``subject verb object.`` sentences."""
    rng = np.random.default_rng(seed)
    return " ".join(f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}."
                    for _ in range(n_sentences))


def corpus_words() -> set[str]:
    """Every word the grammar of ``corpus`` uses (to score generated text)."""
    return {w for phrase in _SUBJECTS + _VERBS + _OBJECTS for w in phrase.split()}


def transactions(n: int, features: int = 30, positive_rate: float = 0.03, seed: int = 0
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Credit-card-fraud-like rows: rare positives shifted along a few feature directions."""
    rng = np.random.default_rng(seed)
    y = (rng.uniform(size=n) < positive_rate).astype("int64")
    x = rng.normal(size=(n, features))
    shift = np.zeros(features)
    shift[:6] = [1.6, -1.4, 1.2, 1.0, -1.1, 0.9]
    x[y == 1] += shift
    x[:, 29] = rng.exponential(80.0, n)   # an "Amount" column on its own scale
    return x.astype("float32"), y


def counting_sequences(n: int, length: int, vocab: int, seed: int = 0) -> np.ndarray:
    """Token sequences for a language model: each counts up modulo ``vocab`` by its own stride (1, 2 or 3)."""
    rng = np.random.default_rng(seed)
    start = rng.integers(0, vocab, n)
    stride = rng.integers(1, 4, n)
    return ((start[:, None] + stride[:, None] * np.arange(length)[None, :]) % vocab).astype("int64")


def tabular_regression(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Auto-MPG-like rows: 7 features on very different scales and a smooth, noisy target."""
    rng = np.random.default_rng(seed)
    cylinders = rng.choice([4, 6, 8], n).astype("float64")
    displacement = cylinders * 40 + rng.normal(0, 20, n)
    horsepower = displacement * 0.5 + rng.normal(0, 10, n)
    weight = 1500 + displacement * 6 + rng.normal(0, 200, n)
    acceleration = 20 - horsepower / 20 + rng.normal(0, 1, n)
    year = rng.integers(70, 83, n).astype("float64")
    origin = rng.integers(1, 4, n).astype("float64")
    mpg = 60 - weight / 100 + (year - 70) * 0.8 - cylinders * 0.5 + rng.normal(0, 1.5, n)
    x = np.stack([cylinders, displacement, horsepower, weight, acceleration, year, origin], axis=1)
    return x.astype("float32"), mpg.astype("float32")
