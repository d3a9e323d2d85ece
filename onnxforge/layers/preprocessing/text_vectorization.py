"""``TextVectorization``: standardize, split and look up text in standard ONNX string operators.

* ``lower``: ``StringNormalizer`` (ASCII letters, as ``tf.strings.lower`` which Keras calls);
* ``strip_punctuation``: for each character of Keras's punctuation set, ``StringSplit`` on it and join the
  pieces back with ``StringConcat`` in a ``Loop`` (ONNX has no regex replace);
* ``split="whitespace"``: ``StringSplit`` (runs of whitespace), padded with empty strings, which the
  lookup maps to the mask index 0;
* the lookup is a ``StringLookup`` with ``mask_token=""`` (Keras's), then ``output_sequence_length``
  truncates or zero-pads.

``split="character"``, ``ngrams`` and callable standardize / split functions have no standard-op
formulation and are refused with a clear error.
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
from ..recurrent._scan import _input as _body_input
from ..recurrent._scan import body_builder
from .adapt_data import batches
from .lookup import StringLookup

#: The characters Keras's default standardization strips (its regex ``[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~']``).
PUNCTUATION = "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~'"
_PUNCT_RE = re.compile("[" + re.escape(PUNCTUATION) + "]")
_STRING, _I64 = onnx.TensorProto.STRING, onnx.TensorProto.INT64


def _standardize_text(text: str, mode: str | None) -> str:
    if mode in ("lower", "lower_and_strip_punctuation"):
        text = "".join(c.lower() if "A" <= c <= "Z" else c for c in text)  # ASCII only, as tf.strings.lower
    if mode in ("strip_punctuation", "lower_and_strip_punctuation"):
        text = _PUNCT_RE.sub("", text)
    return text


def _empty_like(x: Value) -> Value:
    b = x.builder
    same = b.op("Equal", [x, x], shape=x.shape)
    empty = b.const(np.asarray("", dtype=object), _STRING)
    return b.op("Where", [same, empty, empty], dtype=_STRING, shape=x.shape)


def _join_pieces(pieces: Value, like: Value) -> Value:
    """Concatenate the strings of ``pieces`` ``(B, P)`` along ``P``: a ``Loop`` of ``StringConcat`` (a
    ``Scan`` over string slices gives wrong results in onnxruntime)."""
    b = pieces.builder
    sb = body_builder(b)
    i = _body_input(sb, "join_i", _I64, ())
    cond = _body_input(sb, "join_cond", onnx.TensorProto.BOOL, ())
    acc = _body_input(sb, "join_acc", _STRING, like.shape)
    piece = sb.op("Gather", [pieces, i], axis=1, dtype=_STRING, shape=like.shape)
    sb.output(sb.op("Identity", [cond], dtype=onnx.TensorProto.BOOL, shape=()))
    sb.output(sb.op("StringConcat", [acc, piece], dtype=_STRING, shape=like.shape))
    body = sb.to_graph(name=b.fresh("join_body"))
    count = b.op("Gather", [b.op("Shape", [pieces]), b.const(np.asarray(1, np.int64))], axis=0, shape=())
    return b.op("Loop", [count, "", _empty_like(like)], body=body, dtype=_STRING, shape=like.shape)


def _strip(x: Value) -> Value:
    b = x.builder
    for ch in PUNCTUATION:
        pieces, _ = b.op("StringSplit", [x], outputs=2, delimiter=ch)
        pieces.dtype, pieces.shape = _STRING, (x.shape[0], None)
        x = _join_pieces(pieces, x)
    return x


class TextVectorization(Layer):
    """Turns strings into token indices (or multi-hot / count / tf-idf vectors), Keras 3's
    ``TextVectorization``.

    Args:
        max_tokens: vocabulary size limit (mask and OOV indices included).
        standardize: ``"lower_and_strip_punctuation"`` (default), ``"lower"``, ``"strip_punctuation"`` or
            ``None``.
        split: ``"whitespace"`` (default) or ``None`` (each input is one token).
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

    def __init__(self, max_tokens: int | None = None, standardize: Any = "lower_and_strip_punctuation",
                 split: Any = "whitespace", ngrams: Any = None, output_mode: str = "int",
                 output_sequence_length: int | None = None, pad_to_max_tokens: bool = False, vocabulary: Any = None,
                 idf_weights: Any = None, sparse: bool = False, ragged: bool = False, encoding: str = "utf-8",
                 name: str | None = None, **kwargs: Any):
        vocabulary_size = kwargs.pop("vocabulary_size", None)
        super().__init__(name=name, **kwargs)
        if standardize not in (None, "lower_and_strip_punctuation", "lower", "strip_punctuation"):
            raise NotImplementedError(
                f"TextVectorization {self.name!r}: standardize={standardize!r} cannot be written in standard ONNX "
                "operators; use None, 'lower', 'strip_punctuation' or 'lower_and_strip_punctuation'.")
        if split not in (None, "whitespace"):
            raise NotImplementedError(
                f"TextVectorization {self.name!r}: split={split!r} cannot be written in standard ONNX operators "
                "(ONNX splits strings on a delimiter only); use 'whitespace' or None.")
        if ngrams is not None:
            raise NotImplementedError(f"TextVectorization {self.name!r}: ngrams are not supported by onnxforge. "
                                      f"Received: ngrams={ngrams!r}")
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
        rows = []
        for t in np.asarray(texts, dtype=object).reshape(-1):
            text = _standardize_text(t.decode("utf-8") if isinstance(t, bytes) else str(t), self._standardize)
            rows.append(text.split() if self._split == "whitespace" else [text])
        return rows

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
        if x.dtype != _STRING:
            raise TypeError(f"TextVectorization {self.name!r} expects string inputs. Received dtype "
                            f"{np_dtype(x.dtype) if x.dtype else None}")
        rank = len(x.shape)
        if rank > 1 and self._split is not None:
            if x.shape[-1] != 1:
                raise ValueError("When using `TextVectorization` to tokenize strings, the input rank must be 1 or the "
                                 f"last shape dimension must be 1. Received: inputs.shape={_ops.static_shape(x)}")
            x = b.op("Squeeze", [x, _ops.ints(b, [rank - 1])], dtype=_STRING, shape=tuple(x.shape[:-1]))
        if self._standardize in ("lower", "lower_and_strip_punctuation"):
            x = b.op("StringNormalizer", [x], case_change_action="LOWER", locale="C", dtype=_STRING, shape=x.shape)
        if self._standardize in ("strip_punctuation", "lower_and_strip_punctuation"):
            x = _strip(x)
        if self._split == "whitespace":
            tokens, _ = b.op("StringSplit", [x], outputs=2)
            tokens.dtype, tokens.shape = _STRING, (x.shape[0], None)
        else:
            tokens = x
        ids = self._lookup_layer(tokens)
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
        batch = tuple(input_shape)[0]
        if self._output_mode == "int":
            return (batch, self._output_sequence_length)
        depth = self._lookup_layer._depth()
        return (batch, depth)

    def _count_flops(self, input_shapes, output_shapes):
        return None

    def get_config(self):
        lookup = self._lookup_layer.get_config()
        return {**super().get_config(), "max_tokens": self._max_tokens, "standardize": self._standardize,
                "split": self._split, "ngrams": None, "output_mode": self._output_mode,
                "output_sequence_length": self._output_sequence_length, "pad_to_max_tokens": self._pad_to_max_tokens,
                "sparse": False, "ragged": False, "vocabulary": lookup["vocabulary"],
                "idf_weights": lookup["idf_weights"], "encoding": self._encoding,
                "vocabulary_size": self.vocabulary_size()}
