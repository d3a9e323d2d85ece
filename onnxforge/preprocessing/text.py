"""``tf.keras.preprocessing.text``: tf.keras 2's host-side text utilities (``Tokenizer``,
``text_to_word_sequence``, ``one_hot``, ``hashing_trick``, ``tokenizer_from_json``), which TensorFlow's
``tf.keras`` still ships. They run in Python on lists of strings, before any graph; the graph-side
equivalent is the ``TextVectorization`` layer.

Example:
    >>> tok = Tokenizer(num_words=4, oov_token="<unk>")
    >>> tok.fit_on_texts(["The cat sat.", "The dog sat on the mat!"])
    >>> tok.word_index["the"], tok.texts_to_sequences(["the cat flew"])
    (2, [[2, 1, 1]])
"""
from __future__ import annotations

import collections
import hashlib
import json
from typing import Any, Callable, Iterable, Iterator

import numpy as np

__all__ = ["Tokenizer", "hashing_trick", "one_hot", "text_to_word_sequence", "tokenizer_from_json"]

DEFAULT_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'
_MODES = ("binary", "count", "tfidf", "freq")


def text_to_word_sequence(input_text: str, filters: str = DEFAULT_FILTERS, lower: bool = True,
                          split: str = " ") -> list[str]:
    """Words of ``input_text``: lower-cased, each ``filters`` character made a separator, empty words dropped.

    Example:
        >>> text_to_word_sequence("Hello, World!  again")
        ['hello', 'world', 'again']
    """
    if lower:
        input_text = input_text.lower()
    input_text = input_text.translate(str.maketrans({c: split for c in filters}))
    return [word for word in input_text.split(split) if word]


def hashing_trick(text: str, n: int, hash_function: Callable[[str], int] | str | None = None,
                  filters: str = DEFAULT_FILTERS, lower: bool = True, split: str = " ",
                  analyzer: Callable[[str], list[str]] | None = None) -> list[int]:
    """Each word hashed to an index in ``[1, n - 1]`` (0 stays free for padding). ``hash_function`` is
    Python's ``hash`` by default (salted per process), ``"md5"`` for indices stable across runs.

    Example:
        >>> hashing_trick("a b a", 10, hash_function="md5")[0] == hashing_trick("a", 10, hash_function="md5")[0]
        True
    """
    if hash_function is None:
        hash_function = hash
    elif hash_function == "md5":
        def hash_function(word: str) -> int:
            return int(hashlib.md5(word.encode()).hexdigest(), 16)
    elif not callable(hash_function):
        raise ValueError(f"`hash_function` must be None, 'md5' or a callable. Received: {hash_function!r}")
    words = analyzer(text) if analyzer is not None else text_to_word_sequence(text, filters, lower, split)
    return [hash_function(word) % (n - 1) + 1 for word in words]


def one_hot(input_text: str, n: int, filters: str = DEFAULT_FILTERS, lower: bool = True, split: str = " ",
            analyzer: Callable[[str], list[str]] | None = None) -> list[int]:
    """``hashing_trick`` with Python's ``hash``: word indices in ``[1, n - 1]`` (not a one-hot matrix)."""
    return hashing_trick(input_text, n, hash_function=hash, filters=filters, lower=lower, split=split,
                         analyzer=analyzer)


class Tokenizer:
    """Builds a word index from texts (most frequent word first, index 1; ties in order of first appearance)
    and turns texts into index sequences or document-term matrices.

    Args:
        num_words: keep only words with an index below this (the ``num_words - 1`` most frequent) when
            converting; ``None`` keeps all. Fitting always indexes every word.
        filters: characters removed (made separators) before splitting.
        lower: lower-case the texts first.
        split: the word separator.
        char_level: tokenize characters instead of words.
        oov_token: if given, it takes index 1 and stands for every unknown (or beyond-``num_words``) word.
        analyzer: a callable splitting a text into tokens, replacing the filters / split rule.

    Example:
        >>> tok = Tokenizer()
        >>> tok.fit_on_texts(["b a b", "c b"])
        >>> tok.word_index, tok.texts_to_matrix(["a a c"], mode="count").tolist()
        ({'b': 1, 'a': 2, 'c': 3}, [[0.0, 0.0, 2.0, 1.0]])
    """

    def __init__(self, num_words: int | None = None, filters: str = DEFAULT_FILTERS, lower: bool = True,
                 split: str = " ", char_level: bool = False, oov_token: str | None = None,
                 analyzer: Callable[[str], list[str]] | None = None, document_count: int = 0, **kwargs: Any):
        if "nb_words" in kwargs:  # Keras 1's spelling, which tf.keras 2 still accepted
            num_words = kwargs.pop("nb_words")
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments: {kwargs}")
        if num_words is not None and (not isinstance(num_words, int) or num_words < 0):
            raise ValueError(f"`num_words` must be a non-negative integer or None. Received: num_words={num_words!r}")
        self.num_words = num_words
        self.filters, self.lower, self.split = filters, lower, split
        self.char_level, self.oov_token, self.analyzer = char_level, oov_token, analyzer
        self.document_count = document_count
        self.word_counts: collections.OrderedDict[str, int] = collections.OrderedDict()
        self.word_docs: collections.defaultdict[str, int] = collections.defaultdict(int)
        self.word_index: dict[str, int] = {}
        self.index_word: dict[int, str] = {}
        self.index_docs: collections.defaultdict[int, int] = collections.defaultdict(int)

    def _tokens(self, text: Any) -> list[str]:
        if self.char_level or isinstance(text, list):
            if self.lower:
                text = [t.lower() for t in text] if isinstance(text, list) else text.lower()
            return list(text)
        if self.analyzer is not None:
            return self.analyzer(text)
        return text_to_word_sequence(text, self.filters, self.lower, self.split)

    def fit_on_texts(self, texts: Iterable[Any]) -> None:
        """Counts the words of ``texts`` (strings, or lists of tokens) and rebuilds ``word_index``."""
        if isinstance(texts, str):
            raise TypeError("`texts` must be a list of strings, not one string (it would be read character by "
                            f"character). Received: {texts!r}")
        for text in texts:
            self.document_count += 1
            tokens = self._tokens(text)
            for token in tokens:
                self.word_counts[token] = self.word_counts.get(token, 0) + 1
            for token in set(tokens):
                self.word_docs[token] += 1
        # sorted() is stable: equally frequent words keep their order of first appearance.
        ranked = [w for w, _ in sorted(self.word_counts.items(), key=lambda item: item[1], reverse=True)]
        vocabulary = ([self.oov_token] if self.oov_token is not None else []) + ranked
        self.word_index = {word: i for i, word in enumerate(vocabulary, start=1)}
        self.index_word = {i: word for word, i in self.word_index.items()}
        self.index_docs = collections.defaultdict(int)
        for word, count in self.word_docs.items():
            self.index_docs[self.word_index[word]] = count

    def fit_on_sequences(self, sequences: Iterable[Iterable[int]]) -> None:
        """Counts document frequencies of indices (needed by ``sequences_to_matrix(mode="tfidf")``)."""
        sequences = list(sequences)
        self.document_count += len(sequences)
        for seq in sequences:
            for i in set(seq):
                self.index_docs[i] += 1

    def _keep(self, index: int | None) -> int | None:
        oov = self.word_index.get(self.oov_token) if self.oov_token is not None else None
        if index is None or (self.num_words and index >= self.num_words):
            return oov
        return index

    def texts_to_sequences_generator(self, texts: Iterable[Any]) -> Iterator[list[int]]:
        for text in texts:
            kept = (self._keep(self.word_index.get(token)) for token in self._tokens(text))
            yield [i for i in kept if i is not None]

    def texts_to_sequences(self, texts: Iterable[Any]) -> list[list[int]]:
        """Each text as its word indices (unknown words dropped, or ``oov_token``'s index)."""
        return list(self.texts_to_sequences_generator(texts))

    def sequences_to_texts_generator(self, sequences: Iterable[Iterable[int]]) -> Iterator[str]:
        for seq in sequences:
            words = []
            for index in seq:
                kept = self._keep(int(index) if index in self.index_word else None)
                if kept is not None:
                    words.append(self.index_word[kept])
            yield " ".join(words)

    def sequences_to_texts(self, sequences: Iterable[Iterable[int]]) -> list[str]:
        """The inverse of ``texts_to_sequences`` (joined with spaces)."""
        return list(self.sequences_to_texts_generator(sequences))

    def texts_to_matrix(self, texts: Iterable[Any], mode: str = "binary") -> np.ndarray:
        """``sequences_to_matrix(texts_to_sequences(texts), mode)``."""
        return self.sequences_to_matrix(self.texts_to_sequences(texts), mode=mode)

    def sequences_to_matrix(self, sequences: Iterable[Iterable[int]], mode: str = "binary") -> np.ndarray:
        """A ``(len(sequences), num_words)`` float64 matrix: per index, presence (``"binary"``), ``"count"``,
        ``"freq"`` (count / length) or ``"tfidf"`` (``(1 + log count) * log(1 + docs / (1 + docs with it))``)."""
        if mode not in _MODES:
            raise ValueError(f"Unknown vectorization mode: {mode!r}. Expected one of {_MODES}")
        width = self.num_words
        if not width:
            if not self.word_index:
                raise ValueError("Specify a dimension (`num_words` argument), or fit on some text data first.")
            width = len(self.word_index) + 1
        if mode == "tfidf" and not self.document_count:
            raise ValueError("Fit the Tokenizer on some data before using tfidf mode.")
        sequences = [list(s) for s in sequences]
        matrix = np.zeros((len(sequences), width))
        for row, seq in enumerate(sequences):
            counts = collections.Counter(j for j in seq if j < width)
            for j, count in counts.items():
                if mode == "count":
                    matrix[row, j] = count
                elif mode == "freq":
                    matrix[row, j] = count / len(seq)
                elif mode == "binary":
                    matrix[row, j] = 1
                else:
                    idf = np.log(1 + self.document_count / (1 + self.index_docs.get(j, 0)))
                    matrix[row, j] = (1 + np.log(count)) * idf
        return matrix

    def get_config(self) -> dict[str, Any]:
        """The settings and the fitted vocabulary (its dicts as JSON strings, as tf.keras wrote them)."""
        return {"num_words": self.num_words, "filters": self.filters, "lower": self.lower, "split": self.split,
                "char_level": self.char_level, "oov_token": self.oov_token, "document_count": self.document_count,
                "word_counts": json.dumps(self.word_counts), "word_docs": json.dumps(self.word_docs),
                "index_docs": json.dumps(self.index_docs), "index_word": json.dumps(self.index_word),
                "word_index": json.dumps(self.word_index)}

    def to_json(self, **kwargs: Any) -> str:
        """A JSON string for ``tokenizer_from_json``; ``kwargs`` go to ``json.dumps``."""
        return json.dumps({"class_name": type(self).__name__, "config": self.get_config()}, **kwargs)


def tokenizer_from_json(json_string: str) -> Tokenizer:
    """The ``Tokenizer`` that ``Tokenizer.to_json`` described.

    The JSON may come from anyone: every setting and every vocabulary entry is checked for its type first,
    and one of the wrong type (an ``analyzer`` string, a list for ``word_index``, a word index that is not
    an integer) is a ``ValueError`` naming the key and the value, not a later failure inside
    ``texts_to_sequences``.

    Example:
        >>> tok = Tokenizer(oov_token="?"); tok.fit_on_texts(["x y y"])
        >>> tokenizer_from_json(tok.to_json()).texts_to_sequences(["y z"])
        [[2, 1]]
    """
    try:
        data = json.loads(json_string)
    except (TypeError, ValueError, RecursionError) as e:
        raise ValueError(f"tokenizer_from_json() reads the JSON string Tokenizer.to_json() writes ({type(e).__name__}: "
                         f"{e})") from None
    config = data.get("config", {}) if isinstance(data, dict) else None
    if not isinstance(config, dict):
        raise _refuse_tokenizer("the 'config'", "a JSON object", config if isinstance(data, dict) else data)
    config = dict(config)
    fitted = {name: _fitted(name, config.pop(name)) for name in _FITTED if name in config}
    for key, value in config.items():
        if key not in _SETTINGS:
            raise _refuse_tokenizer(f"config[{key!r}]", "one of the settings Tokenizer.to_json writes "
                                    f"({sorted(_SETTINGS)})", value)
        if not _SETTINGS[key](value):
            raise _refuse_tokenizer(f"config[{key!r}]", _SETTING_TYPES[key], value)
    tokenizer = Tokenizer(**config)
    tokenizer.word_counts = collections.OrderedDict(fitted.get("word_counts", {}))
    tokenizer.word_docs = collections.defaultdict(int, fitted.get("word_docs", {}))
    tokenizer.index_docs = collections.defaultdict(int, {int(k): v for k, v in fitted.get("index_docs", {}).items()})
    tokenizer.index_word = {int(k): v for k, v in fitted.get("index_word", {}).items()}
    tokenizer.word_index = fitted.get("word_index", {})
    return tokenizer


def _is_count(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _is_index_key(x: Any) -> bool:      # JSON writes an int key as a string of digits
    return isinstance(x, str) and x.isascii() and x.isdigit() and len(x) <= 18


_SETTINGS: dict[str, Callable[[Any], bool]] = {
    "num_words": lambda v: v is None or _is_count(v), "nb_words": lambda v: v is None or _is_count(v),
    "filters": lambda v: isinstance(v, str), "lower": lambda v: isinstance(v, bool),
    "split": lambda v: isinstance(v, str) and v != "", "char_level": lambda v: isinstance(v, bool),
    "oov_token": lambda v: v is None or isinstance(v, str), "document_count": _is_count,
}
_SETTING_TYPES = {"num_words": "an integer >= 0 or null", "nb_words": "an integer >= 0 or null",
                  "filters": "a string", "lower": "true or false", "split": "a non-empty string",
                  "char_level": "true or false", "oov_token": "a string or null", "document_count": "an integer >= 0"}
#: The fitted tables, each a JSON string of an object: (key check, value check, what is expected).
_FITTED: dict[str, tuple[Callable[[Any], bool], Callable[[Any], bool], str]] = {
    "word_counts": (lambda k: True, _is_count, "words to counts >= 0"),
    "word_docs": (lambda k: True, _is_count, "words to counts >= 0"),
    "index_docs": (_is_index_key, _is_count, "indices to counts >= 0"),
    "index_word": (_is_index_key, lambda v: isinstance(v, str), "indices to words"),
    "word_index": (lambda k: True, _is_count, "words to indices >= 0"),
}


def _refuse_tokenizer(where: str, expected: str, value: Any) -> ValueError:
    shown = repr(value)
    shown = shown if len(shown) <= 120 else shown[:117] + "..."
    return ValueError(f"tokenizer_from_json(): {where} must be {expected}. Received: {shown} "
                      f"({type(value).__name__})")


def _fitted(name: str, text: Any) -> dict:
    """One fitted table from its JSON string, every entry of the type ``texts_to_sequences`` reads."""
    key_ok, value_ok, what = _FITTED[name]
    expected = f"a JSON string of an object mapping {what}"
    if not isinstance(text, str):
        raise _refuse_tokenizer(f"config[{name!r}]", expected, text)
    try:
        table = json.loads(text)
    except (ValueError, RecursionError):
        raise _refuse_tokenizer(f"config[{name!r}]", expected, text) from None
    if not isinstance(table, dict):
        raise _refuse_tokenizer(f"config[{name!r}]", expected, table)
    for key, value in table.items():
        if not (key_ok(key) and value_ok(value)):
            raise _refuse_tokenizer(f"config[{name!r}][{key!r}]", f"an entry of an object mapping {what}", value)
    return table
