"""``TextVectorization(ngrams=...)``: the token n-grams Keras builds with ``tf.strings.ngrams``, in ONNX ops.

Keras joins each window of ``n`` consecutive tokens with one space, for every width asked for
(``ngrams=3`` means widths 1, 2 and 3; a tuple lists the widths), and a row's n-grams come width by width:
``"the cat sat"`` with ``ngrams=2`` is ``["the", "cat", "sat", "the cat", "cat sat"]``.

In the graph the whitespace-split tokens are a ``(batch, longest)`` tensor padded with ``""``. Width ``n``
is the ``StringConcat`` of ``n`` shifted slices; a window whose last token is padding is padding too. The
widths are concatenated along the row, so a short row's padding sits between its widths: ``compact_ids``
moves each row's non-padding ids to the front in order (a stable partition through ``ScatterElements``),
which gives Keras's dense ``"int"`` output, padded with 0 to the longest row. Without a split there is no
padding (``""`` is a token like any other) and nothing moves.

Example:
    >>> ngram_rows([["the", "cat", "sat"]], (1, 2))
    [['the', 'cat', 'sat', 'the cat', 'cat sat']]
"""
from __future__ import annotations

__all__ = ["ngram_widths", "ngram_rows", "ngram_tokens", "compact_ids"]

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx

from ...graph import Value
from ...graph import emit as _ops
from ...graph.size_limits import charge_graph
from ...ops import strings as _strings

_STRING, _I64 = onnx.TensorProto.STRING, onnx.TensorProto.INT64
_END = np.iinfo(np.int64).max


def ngram_widths(ngrams: Any, owner: str) -> tuple[int, ...] | None:
    """The n-gram widths Keras reads from ``ngrams`` (``None``, an int ``n`` for 1..n, or a tuple of ints)."""
    if ngrams is None:
        return None
    if isinstance(ngrams, bool) or not (isinstance(ngrams, int) or isinstance(ngrams, tuple) and ngrams and all(
            isinstance(n, int) and not isinstance(n, bool) for n in ngrams)):
        raise ValueError(f"TextVectorization {owner}: `ngrams` must be None, an integer, or a tuple of integers. "
                         f"Received: ngrams={ngrams!r}")
    # The graph slices each window of each width (n (n + 1) / 2 nodes for 1..n): a loaded config's n is bounded
    # by the node limit before the widths are even listed.
    nodes = ngrams * (ngrams + 1) // 2 if isinstance(ngrams, int) else sum(max(n, 0) for n in ngrams)
    charge_graph(0, nodes, f"TextVectorization's ngrams={ngrams if isinstance(ngrams, int) else '(...)'}")
    widths = tuple(range(1, ngrams + 1)) if isinstance(ngrams, int) else ngrams
    if not widths or min(widths) < 1:
        raise ValueError(f"TextVectorization {owner}: n-gram widths must be positive integers. Received: "
                         f"ngrams={ngrams!r}")
    return widths


def ngram_rows(rows: Sequence[Sequence[str]], widths: Sequence[int]) -> list[list[str]]:
    """Each row's n-grams on the host (``adapt``), width by width, as the graph makes them."""
    return [[" ".join(row[i:i + n]) for n in widths for i in range(len(row) - n + 1)] for row in rows]


def _window(x: Value, k: int, n: int) -> Value:
    """``x[:, k : width - (n - 1 - k)]``: the ``k``-th token of every width-``n`` window of each row."""
    b = x.builder
    trim = n - 1 - k
    return b.op("Slice", [x, _ops.ints(b, [k]), _ops.ints(b, [-trim if trim else _END]), _ops.ints(b, [1])],
                dtype=_STRING, shape=(x.shape[0], None))


def ngram_tokens(tokens: Value, widths: Sequence[int], padded: bool) -> Value:
    """The n-grams of ``tokens`` (rank 1: one sequence; rank 2: one per row) along the last axis.

    ``padded``: ``""`` marks padding after each row's tokens (a whitespace split), so windows ending in it
    are padding too.
    """
    b = tokens.builder
    rank = len(tokens.shape)
    x = tokens if rank == 2 else b.op("Unsqueeze", [tokens, _ops.ints(b, [0])], dtype=_STRING,
                                      shape=(1, tokens.shape[0]))
    empty = b.const(np.asarray("", dtype=object), _STRING)
    parts = []
    for n in widths:
        if n == 1:
            parts.append(x)
            continue
        pieces = [_window(x, k, n) for k in range(n)]
        gram = _strings.join(pieces, separator=" ")
        if padded:
            gram = b.op("Where", [b.op("Equal", [pieces[-1], empty]), empty, gram], dtype=_STRING)
        parts.append(gram)
    out = parts[0] if len(parts) == 1 else b.op("Concat", parts, axis=1, dtype=_STRING)
    out.shape = (x.shape[0], None)
    if rank == 2:
        return out
    return b.op("Squeeze", [out, _ops.ints(b, [0])], dtype=_STRING, shape=(None,))


def compact_ids(ids: Value) -> Value:
    """Each row's non-zero ids moved to the front in their order, the zeros (padding) after them."""
    b = ids.builder
    axis = _ops.ints(b, [1])
    kept = b.op("Not", [b.op("Equal", [ids, b.const(np.int64(0))])])
    keep = b.op("Cast", [kept], to=_I64)
    before = b.op("CumSum", [keep, b.const(np.int64(1))]) - 1     # where a kept id goes
    total = b.op("ReduceSum", [keep, axis], keepdims=1)
    after = total + b.op("CumSum", [1 - keep, b.const(np.int64(1))]) - 1   # where a padding id goes
    where = b.op("Where", [kept, before, after], dtype=_I64)
    return b.op("ScatterElements", [ids, where, ids], axis=1, dtype=_I64, shape=ids.shape)
