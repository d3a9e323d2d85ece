"""``TextVectorization(split="character")``: each string cut into its Unicode characters in standard ONNX ops.

Keras splits with ``tf.strings.unicode_split``. ONNX has no substring operator, but it has ``StringSplit``
on a literal delimiter and ``RegexFullMatch`` (RE2, whose ``.`` is one UTF-8 code point). With these:

* **a string's length in characters** is read modulo a few small coprime moduli (one ``RegexFullMatch`` per
  bit of each residue: ``(?:.{m})*(?:.{r}|...)``) and put back together by the Chinese remainder theorem
  (exact up to 6.9e9 characters, with patterns of a few hundred RE2 instructions: a plain binary ladder
  would need patterns as long as the text);
* **where each known character sits**: the string is split on that character; its ``k``-th occurrence is at
  ``len(piece_0) + ... + len(piece_k) + k``;
* the characters the layer can tell apart are those of its vocabulary: each is scattered to its positions,
  every other position holds ``UNKNOWN``, a string that is out of vocabulary (it is the OOV token, which
  the lookup maps to the OOV index) and that no character n-gram equals, so n-grams through an unknown
  character are out of vocabulary too, as in Keras.

The result is a ``(batch, longest)`` tensor padded with ``""``, which the lookup maps to the mask index 0,
as the whitespace split's is.

Example:
    >>> import numpy as np
    >>> from onnxforge.layers import TextVectorization
    >>> layer = TextVectorization(split="character", standardize=None)
    >>> layer.adapt(["abb"])
    >>> np.asarray(layer(np.array(["bad", "é", ""]))).tolist()
    [[2, 3, 1], [1, 0, 0], [0, 0, 0]]
"""
from __future__ import annotations

__all__ = ["UNKNOWN", "char_lengths", "char_tokens"]

from collections.abc import Iterable
from math import prod

import numpy as np
import onnx

from ...graph import Value
from ...graph import emit as _ops

#: What an unknown character becomes: the OOV token itself, which no character or n-gram of characters equals.
UNKNOWN = "[UNK]"
_STRING, _I64, _BOOL = onnx.TensorProto.STRING, onnx.TensorProto.INT64, onnx.TensorProto.BOOL
#: Pairwise coprime; their product (about 6.98e9) bounds the lengths told apart.
_MODULI = (32, 27, 25, 7, 11, 13, 17, 19)


def _residue_patterns(m: int) -> list[str]:
    """For each bit of ``length % m``, the RE2 pattern a string matches when that bit is set."""
    patterns = []
    for bit in range(max(1, (m - 1).bit_length())):
        tails = "|".join(f".{{{r}}}" for r in range(m) if r >> bit & 1)
        patterns.append(f"(?s)(?:.{{{m}}})*(?:{tails})")
    return patterns


def _crt_weights() -> list[int]:
    total = prod(_MODULI)
    return [(total // m) * pow(total // m, -1, m) % total for m in _MODULI]


def char_lengths(x: Value) -> Value:
    """The length of each string of ``x`` in Unicode code points (int64, ``x``'s shape)."""
    b = x.builder
    total = None
    for m, weight in zip(_MODULI, _crt_weights()):
        residue = None
        for bit, pattern in enumerate(_residue_patterns(m)):
            hit = b.op("Cast", [b.op("RegexFullMatch", [x], pattern=pattern, dtype=_BOOL, shape=x.shape)], to=_I64,
                       dtype=_I64, shape=x.shape)
            term = hit * b.const(np.int64(1 << bit)) if bit else hit
            residue = term if residue is None else residue + term
        term = residue * b.const(np.int64(weight))
        total = term if total is None else total + term
    return b.op("Mod", [total, b.const(np.int64(prod(_MODULI)))], dtype=_I64, shape=x.shape)


def _strings_const(b, values) -> Value:
    return b.const(np.asarray(values, dtype=object), _STRING)


def char_tokens(x: Value, alphabet: Iterable[str]) -> Value:
    """``x`` (rank 1 strings) split into characters, ``(batch, longest)`` padded with ``""``; a character
    outside ``alphabet`` is ``UNKNOWN``."""
    b = x.builder
    zero, one = _ops.ints(b, [0]), _ops.ints(b, [1])
    lengths = char_lengths(x)                                             # (B,)
    longest = b.op("ReduceMax", [b.op("Concat", [lengths, zero], axis=0)], keepdims=1)   # (1,), 0 for no rows
    positions = b.op("Range", [b.const(np.int64(0)), b.op("Squeeze", [longest, zero]), b.const(np.int64(1))],
                     dtype=_I64, shape=(None,))
    inside = b.op("Less", [positions, b.op("Unsqueeze", [lengths, one])], dtype=_BOOL)
    base = b.op("Where", [inside, _strings_const(b, UNKNOWN), _strings_const(b, "")], dtype=_STRING,
                shape=(x.shape[0], None))
    chars = sorted(set(alphabet))
    if not chars:
        return base
    pieces, counts, local, labels = [], [], [], []
    for c in chars:   # each occurrence of c ends a piece: piece k is followed by occurrence k
        split, count = b.op("StringSplit", [x], outputs=2, delimiter=c)
        split.dtype, split.shape = _STRING, (x.shape[0], None)
        width = b.op("Gather", [b.op("Shape", [split]), one], axis=0)                           # (1,)
        pieces.append(split)
        counts.append(b.op("Expand", [b.op("Unsqueeze", [count, one]), b.op("Shape", [split])]))
        local.append(b.op("Range", [b.const(np.int64(0)), b.op("Squeeze", [width, zero]), b.const(np.int64(1))],
                          dtype=_I64, shape=(None,)))
        labels.append(b.op("Expand", [_strings_const(b, [c]), width], dtype=_STRING, shape=(None,)))
    pieces = b.op("Concat", pieces, axis=1, dtype=_STRING, shape=(x.shape[0], None))           # (B, W)
    counts = b.op("Concat", counts, axis=1, dtype=_I64)
    local = b.op("Concat", local, axis=0, dtype=_I64)                                          # (W,)
    labels = b.op("Concat", labels, axis=0, dtype=_STRING)
    steps = char_lengths(pieces) + b.const(np.int64(1))
    ends = b.op("CumSum", [steps, b.const(np.int64(1))])                                       # inclusive
    starts = b.op("CumSum", [steps, b.const(np.int64(1))], exclusive=1)
    first = b.op("Range", [b.const(np.int64(0)), b.op("Squeeze", [b.op("Gather", [b.op("Shape", [local]), zero],
                                                                        axis=0), zero]), b.const(np.int64(1))],
                 dtype=_I64) - local                                     # each column's segment start
    first = b.op("Expand", [b.op("Unsqueeze", [first, zero]), b.op("Shape", [pieces])])
    where = ends - b.op("GatherElements", [starts, first], axis=1) - b.const(np.int64(1))
    valid = b.op("Less", [local + b.const(np.int64(1)), counts], dtype=_BOOL)
    # Columns past a row's last occurrence go to a dump column of their own (ScatterElements must not see a
    # repeated index) past the text, sliced away below.
    column = b.op("Range", [b.const(np.int64(0)), b.op("Squeeze", [b.op("Gather", [b.op("Shape", [local]), zero],
                                                                         axis=0), zero]), b.const(np.int64(1))],
                  dtype=_I64)
    dump = b.op("Expand", [b.op("Unsqueeze", [column + longest, zero]), b.op("Shape", [pieces])])
    index = b.op("Where", [valid, where, dump], dtype=_I64)
    spare = b.op("Expand", [_strings_const(b, [""]), b.op("Shape", [pieces])], dtype=_STRING)
    canvas = b.op("Concat", [base, spare], axis=1, dtype=_STRING)
    updates = b.op("Expand", [b.op("Unsqueeze", [labels, zero]), b.op("Shape", [pieces])], dtype=_STRING)
    placed = b.op("ScatterElements", [canvas, index, updates], axis=1, dtype=_STRING)
    return b.op("Slice", [placed, zero, longest, one], dtype=_STRING, shape=(x.shape[0], None))
