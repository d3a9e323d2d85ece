"""``TextVectorization``: standardize, split and look up text in standard ONNX string operators.

* ``lower``: ``ops.strings.lower`` (``StringNormalizer``: ASCII letters, as ``tf.strings.lower`` which Keras
  calls);
* ``strip_punctuation``: ``ops.strings.regex_replace`` of Keras's punctuation class (for each character,
  ``StringSplit`` on it and the pieces joined back in a ``Loop``: ONNX has no regex replace);
* a callable ``standardize`` (the ``custom_standardization`` of TensorFlow's text tutorials) is traced: it may
  call ``tf.strings.lower`` / ``regex_replace`` / ``join`` (``ops.strings``) on the string tensor;
* ``split="whitespace"``: ``StringSplit`` (runs of whitespace), padded with empty strings, which the
  lookup maps to the mask index 0;
* ``split="character"``: each string cut into its Unicode characters (``text_chars.py``: lengths by
  ``RegexFullMatch``, each vocabulary character placed by ``StringSplit`` on it), padded with ``""``;
* ``ngrams``: each window of tokens joined with a space (``StringConcat`` of shifted slices,
  ``text_ngrams.py``), widths one after another as ``tf.strings.ngrams`` gives them;
* the lookup is a ``StringLookup`` with ``mask_token=""`` (Keras's), then ``output_sequence_length``
  truncates or zero-pads.

Callable split functions have no standard-op formulation (ONNX splits strings on a delimiter only and has
no substring operator) and are refused with a clear error.
"""
from __future__ import annotations

__all__ = ["TextVectorization", "PUNCTUATION"]

import re
from typing import Any

import numpy as np
import onnx

from ...graph.value import np_dtype
from ...graph import Value
from ...graph import emit as _ops
from ..base import Layer
from ...custom_objects import lookup
from ...keras_objects import get_registered_name, get_registered_object
from ...ops import strings as _strings
from .adapt_data import batches
from .lookup import StringLookup
from .text_chars import char_tokens
from .text_ngrams import compact_ids, ngram_rows, ngram_tokens, ngram_widths

#: The characters Keras's default standardization strips (its regex ``[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~']``).
PUNCTUATION = "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~'"
_PUNCT_RE = re.compile("[" + re.escape(PUNCTUATION) + "]")
_MODES = ("lower_and_strip_punctuation", "lower", "strip_punctuation")
_STRING, _I64 = onnx.TensorProto.STRING, onnx.TensorProto.INT64


def _standardize_text(text: str, mode: str | None) -> str:
    if mode in ("lower", "lower_and_strip_punctuation"):
        text = "".join(c.lower() if "A" <= c <= "Z" else c for c in text)  # ASCII only, as tf.strings.lower
    if mode in ("strip_punctuation", "lower_and_strip_punctuation"):
        text = _PUNCT_RE.sub("", text)
    return text


def _resolve_standardize(standardize: Any, owner: str) -> Any:
    """A built-in mode, or the function a config names (Keras writes a callable ``standardize`` as a function
    entry; the loading program supplies it through ``custom_objects`` or registration)."""
    if standardize is None or callable(standardize) or standardize in _MODES:
        return standardize
    name = standardize.get("config") if isinstance(standardize, dict) and standardize.get("class_name") == "function" \
        else standardize
    fn = lookup(name) or get_registered_object(name) if isinstance(name, str) else None
    if callable(fn):
        return fn
    raise ValueError(f"TextVectorization {owner}: standardize={standardize!r} is neither one of {_MODES} nor a "
                     "function known to this program; pass the function in custom_objects or register it with "
                     "keras.saving.register_keras_serializable().")


class TextVectorization(Layer):
    """Turns strings into token indices (or multi-hot / count / tf-idf vectors), Keras 3's
    ``TextVectorization``.

    Args:
        max_tokens: vocabulary size limit (mask and OOV indices included).
        standardize: ``"lower_and_strip_punctuation"`` (default), ``"lower"``, ``"strip_punctuation"``, ``None``,
            or a function of a string tensor written with ``tf.strings`` ops (traced into the graph).
        split: ``"whitespace"`` (default), ``"character"`` (each Unicode character is a token) or ``None``
            (each input is one token).
        ngrams: ``None``, an int ``n`` (token n-grams of widths 1 to ``n``) or a tuple of widths.
        output_mode: ``"int"``, ``"multi_hot"``, ``"count"`` or ``"tf_idf"``.
        output_sequence_length: ``"int"`` outputs are truncated or padded with 0 to this length.
        vocabulary / idf_weights / pad_to_max_tokens: as ``StringLookup``.

    Example:
        >>> from onnxforge.layers import TextVectorization
        >>> layer = TextVectorization(output_sequence_length=4)
        >>> layer.adapt(["The cat sat.", "the dog!"])
        >>> layer.get_vocabulary()
        ['', '[UNK]', 'the', 'sat', 'dog', 'cat']
    """

    _autocast = False
    #: Takes string tensors (an unbuilt ``Sequential`` starting with it is fed text).
    reads_strings = True

    def __init__(self, max_tokens: int | None = None, standardize: Any = "lower_and_strip_punctuation",
                 split: Any = "whitespace", ngrams: Any = None, output_mode: str = "int",
                 output_sequence_length: int | None = None, pad_to_max_tokens: bool = False, vocabulary: Any = None,
                 idf_weights: Any = None, sparse: bool = False, ragged: bool = False, encoding: str = "utf-8",
                 name: str | None = None, **kwargs: Any):
        vocabulary_size = kwargs.pop("vocabulary_size", None)
        super().__init__(name=name, **kwargs)
        standardize = _resolve_standardize(standardize, repr(self.name))
        if callable(split):
            raise NotImplementedError(
                f"TextVectorization {self.name!r}: a callable split={split!r} cannot be written in standard ONNX "
                "operators (ONNX splits strings on a delimiter only and has no substring operator); use "
                "'whitespace', 'character' or None.")
        if split not in (None, "whitespace", "character"):
            raise ValueError(f"TextVectorization {self.name!r}: `split` must be one of (None, 'whitespace', "
                             f"'character'). Received: split={split!r}")
        self._ngrams_arg, self._ngrams = ngrams, ngram_widths(ngrams, repr(self.name))
        if output_mode not in ("int", "multi_hot", "count", "tf_idf"):
            raise ValueError(f"Invalid value for argument `output_mode`. Expected one of ('int', 'multi_hot', "
                             f"'count', 'tf_idf'). Received: output_mode={output_mode}")
        if output_sequence_length is not None and output_mode != "int":
            raise ValueError("`output_sequence_length` must not be set if `output_mode` is not 'int'. "
                             f"Received output_sequence_length={output_sequence_length}.")
        if sparse or ragged:
            raise NotImplementedError(f"TextVectorization {self.name!r}: sparse and ragged outputs are not supported.")
        self._max_tokens, self._standardize, self._split = max_tokens, standardize, split
        self._output_mode = output_mode
        self._output_sequence_length = output_sequence_length
        self._pad_to_max_tokens, self._encoding = bool(pad_to_max_tokens), encoding
        self._lookup_layer = StringLookup(max_tokens=max_tokens, vocabulary=vocabulary, idf_weights=idf_weights,
                                          pad_to_max_tokens=pad_to_max_tokens, mask_token="", output_mode=output_mode,
                                          vocabulary_size=vocabulary_size, encoding=encoding,
                                          name=f"{self.name}_lookup")

    # ------------------------------------------------------------------ vocabulary
    def get_vocabulary(self, include_special_tokens: bool = True) -> list:
        """The vocabulary by index: ``""`` (padding) and ``"[UNK]"`` first unless excluded."""
        return self._lookup_layer.get_vocabulary(include_special_tokens)

    def vocabulary_size(self) -> int:
        return self._lookup_layer.vocabulary_size()

    def set_vocabulary(self, vocabulary: Any, idf_weights: Any = None) -> None:
        self._lookup_layer.set_vocabulary(vocabulary, idf_weights)

    # Keras 3 writes the vocabulary (and tf_idf weights) both here and under ``_lookup_layer``; either reads.
    def save_own_variables(self, store: Any) -> None:
        self._lookup_layer.save_own_variables(store)

    def load_own_variables(self, store: Any) -> None:
        self._lookup_layer.load_own_variables(store)

    def save_assets(self, dir_path: str) -> None:
        self._lookup_layer.save_assets(dir_path)

    def load_assets(self, dir_path: str | None) -> None:
        self._lookup_layer.load_assets(dir_path)

    def _tokens(self, texts: np.ndarray) -> list[list[str]]:
        texts = np.asarray(texts, dtype=object)
        texts = np.vectorize(lambda t: t.decode("utf-8") if isinstance(t, bytes) else str(t), otypes=[object])(texts)
        mode = self._standardize
        if callable(mode):   # the same function the graph traces, run eagerly on this batch
            texts, mode = np.asarray(mode(texts), dtype=object), None
        rows = []
        for t in texts.reshape(-1):
            text = _standardize_text(t.decode("utf-8") if isinstance(t, bytes) else str(t), mode)
            rows.append(text.split() if self._split == "whitespace" else list(text) if self._split == "character"
                        else [text])
        return rows if self._ngrams is None else ngram_rows(rows, self._ngrams)

    def adapt(self, data: Any, batch_size: int | None = None, steps: int | None = None) -> None:
        """Learn the vocabulary (and tf-idf weights) from ``data``: strings, an array of them or batches."""
        rows: list[list[str]] = []
        for batch in batches(data, f"TextVectorization {self.name!r}", steps):
            rows.extend(self._tokens(batch))
        width = max((len(r) for r in rows), default=1) or 1
        padded = np.asarray([r + [""] * (width - len(r)) for r in rows] or [[""]], dtype=object)
        self._lookup_layer.adapt(padded)

    # ------------------------------------------------------------------ graph
    def call(self, inputs):
        b = inputs.builder
        x = inputs
        if x.dtype == _STRING and x.shape is not None and len(x.shape) == 0:
            # One string (a tf.data element mapped before batching, as keras.io's active learning example
            # does): Keras returns that row alone, ``(output_sequence_length,)`` ids for instance.
            row = self.call(b.op("Unsqueeze", [x, _ops.ints(b, [0])], dtype=_STRING, shape=(1,)))
            shape = tuple(row.shape[1:]) if row.shape is not None else None
            return b.op("Squeeze", [row, _ops.ints(b, [0])], dtype=row.dtype, shape=shape)
        if x.dtype != _STRING:
            raise TypeError(f"TextVectorization {self.name!r} expects string inputs. Received dtype "
                            f"{np_dtype(x.dtype) if x.dtype else None}")
        # Standardize, then split (Keras's order): a callable sees the input as given.
        if callable(self._standardize):
            x = self._standardize(x)
            if not isinstance(x, Value) or x.dtype != _STRING:
                raise TypeError(f"TextVectorization {self.name!r}: the standardize function must return a string "
                                f"tensor (built with tf.strings ops). Received: {x!r}")
        if self._standardize in ("lower", "lower_and_strip_punctuation"):
            x = _strings.lower(x)
        if self._standardize in ("strip_punctuation", "lower_and_strip_punctuation"):
            x = _strings.regex_replace(x, _PUNCT_RE.pattern, "")
        rank = len(x.shape)
        if rank > 1 and self._split is not None:
            if x.shape[-1] != 1:
                raise ValueError("When using `TextVectorization` to tokenize strings, the input rank must be 1 or the "
                                 f"last shape dimension must be 1. Received: inputs.shape={_ops.static_shape(x)}")
            x = b.op("Squeeze", [x, _ops.ints(b, [rank - 1])], dtype=_STRING, shape=tuple(x.shape[:-1]))
        if self._split == "whitespace":
            tokens, _ = b.op("StringSplit", [x], outputs=2)
            tokens.dtype, tokens.shape = _STRING, (x.shape[0], None)
        elif self._split == "character":
            # Only the characters the vocabulary holds need telling apart; any other is out of vocabulary.
            tokens = char_tokens(x, {c for t in self.get_vocabulary(include_special_tokens=False) for c in str(t)})
        else:
            tokens = x
        if self._ngrams is not None:
            tokens = ngram_tokens(tokens, self._ngrams, padded=self._split is not None)
        ids = self._lookup_layer(tokens)
        several_widths = self._ngrams is not None and len(self._ngrams) > 1
        if several_widths and self._split is not None and self._output_mode == "int":
            # Each width's padding sits after its own n-grams: Keras's rows are dense, padding last.
            ids = compact_ids(ids)
        if self._output_mode != "int" or self._output_sequence_length is None:
            return ids
        n = self._output_sequence_length
        ids = b.op("Slice", [ids, _ops.ints(b, [0]), _ops.ints(b, [n]), _ops.ints(b, [1])])
        length = b.op("Gather", [b.op("Shape", [ids]), _ops.ints(b, [1])], axis=0)
        pads = b.op("Concat", [_ops.ints(b, [0, 0, 0]), _ops.ints(b, [n]) - length], axis=0)
        return b.op("Pad", [ids, pads], mode="constant", shape=(ids.shape[0] if ids.shape else None, n))

    def _output_dtype(self, input_dtypes):
        return "int64" if self._output_mode == "int" else self.compute_dtype

    def compute_output_shape(self, input_shape):
        if len(tuple(input_shape)) == 0:   # one string: one row
            return self.compute_output_shape((1,))[1:]
        batch = tuple(input_shape)[0]
        if self._output_mode == "int":
            return (batch, self._output_sequence_length)
        depth = self._lookup_layer._depth()
        return (batch, depth)

    def _count_flops(self, input_shapes, output_shapes):
        return None

    @classmethod
    def from_config(cls, config: dict) -> TextVectorization:
        config = dict(config)
        if isinstance(config.get("ngrams"), list):   # JSON has no tuples
            config["ngrams"] = tuple(config["ngrams"])
        return super().from_config(config)

    def get_config(self):
        lookup = self._lookup_layer.get_config()
        standardize = self._standardize
        if callable(standardize):   # Keras writes a function by its (registered) name
            standardize = {"module": "builtins", "class_name": "function",
                           "config": get_registered_name(standardize), "registered_name": "function"}
        return {**super().get_config(), "max_tokens": self._max_tokens, "standardize": standardize,
                "split": self._split, "ngrams": self._ngrams_arg, "output_mode": self._output_mode,
                "output_sequence_length": self._output_sequence_length, "pad_to_max_tokens": self._pad_to_max_tokens,
                "sparse": False, "ragged": False, "vocabulary": lookup["vocabulary"],
                "idf_weights": lookup["idf_weights"], "encoding": self._encoding,
                "vocabulary_size": self.vocabulary_size()}
