"""``tf.strings`` functions that read the characters or bytes of strings: ``reduce_join``, ``unicode_split``,
``unicode_decode``, ``unicode_encode``, ``bytes_split``, ``split``, ``length``, ``substr``, ``strip``, ``to_number``,
``as_string``, ``format`` and ``ngrams``, with TensorFlow's arguments and results.

They run on concrete tensors: eagerly and in ``Dataset.map`` (onnxforge's tf.data runs its functions on
arrays). Standard ONNX has no operator that reads the characters of a string (``StringSplit`` splits on a
delimiter, ``StringConcat`` joins), so a tensor traced into an ONNX graph (inside a compiled ``tf.function``
argument that is a number tensor, a model's ``call``, a ``TextVectorization`` standardization) is refused with
an error naming the function; the graph-side string functions are in ``onnxforge.ops.strings``.
``regex_replace`` is that module's where its pattern has an ONNX formulation (literals, character classes), and
on concrete tensors takes any other pattern too, through Python's ``re`` (RE2's common syntax).

TensorFlow returns a ``RaggedTensor`` where rows have different lengths (``unicode_split`` of several
strings). onnxforge has no ragged tensors: rows of equal length come back as one dense tensor (whose
``.to_tensor()`` is itself), and rows of different lengths raise an error that says so.

Strings are held as ``str`` (see ``onnxforge.eager_tensor``); ``.numpy()`` gives TensorFlow's ``bytes``.

Example:
    >>> import onnxforge as tf
    >>> tf.strings.reduce_join([["a", "b"], ["c", "d"]], axis=-1, separator="-").numpy()
    array([b'a-b', b'c-d'], dtype=object)
    >>> tf.strings.unicode_split("héllo", "UTF-8").numpy().tolist()
    [b'h', b'\\xc3\\xa9', b'l', b'l', b'o']
    >>> tf.strings.length(["hé", "abc"]).numpy().tolist(), tf.strings.length("hé", unit="UTF8_CHAR").numpy()
    ([3, 3], array(2, dtype=int32))
"""
from __future__ import annotations

__all__ = ["reduce_join", "unicode_split", "unicode_decode", "unicode_encode", "bytes_split", "length", "substr",
           "strip", "to_number", "as_string", "format", "regex_replace", "split", "ngrams",
           "to_hash_bucket_fast", "to_hash_bucket_strong"]

import builtins
import re
from typing import Any

import numpy as np

from ..eager_tensor import as_eager, is_text
from ..graph.value import Value
from ..layers.preprocessing.hashing import hash_buckets
from ..layers.keras_tensor import KerasTensor
from ..ops import strings as _string_ops
from .errors import InvalidArgumentError
from .printing import _format_tensor
from .tensors import _decoded

_UNITS = ("BYTE", "UTF8_CHAR")
_ENCODINGS = ("UTF-8", "UTF8")


def _concrete(x: Any, what: str, arg: str) -> Any:
    if isinstance(x, (Value, KerasTensor)):
        raise NotImplementedError(
            f"tf.strings.{what}: `{arg}` is a tensor traced into an ONNX graph ({x!r}); standard ONNX has no "
            f"operator that reads the characters of a string, so onnxforge runs tf.strings.{what} on concrete "
            "tensors only: eagerly, or in Dataset.map. Call it on the data before the model (a string argument "
            "of a tf.function stays concrete).")
    return x


def _texts(x: Any, what: str, arg: str = "input") -> np.ndarray:
    """``x`` as an array of ``str`` (bytes decoded from UTF-8; bytes that are not UTF-8 stay bytes)."""
    array = _decoded(np.asarray(_concrete(x, what, arg)))
    if not is_text(array) and array.size:
        raise TypeError(f"tf.strings.{what}: `{arg}` must be a string tensor. Received a tensor of dtype "
                        f"{array.dtype} and shape {array.shape}")
    return array.astype(object)


def _strings(values: list, shape: tuple) -> Any:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return as_eager(out.reshape(shape))


def _utf8(text: Any) -> bytes:
    return text.encode("utf-8") if isinstance(text, str) else bytes(text)


def _text(data: bytes) -> Any:
    """``data`` as ``str`` where it is UTF-8 (the form string tensors hold), else as ``bytes``."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data


def _unit(unit: str, what: str) -> str:
    if unit not in _UNITS:
        raise ValueError(f"tf.strings.{what}: `unit` must be one of {list(_UNITS)}. Received: unit={unit!r}")
    return unit


def _encoding(encoding: str, what: str, arg: str) -> None:
    if not isinstance(encoding, str) or encoding.upper() not in _ENCODINGS:
        raise NotImplementedError(f"tf.strings.{what}: only UTF-8 is supported. Received: {arg}={encoding!r}")


def _axes(axis: Any, ndim: int, what: str) -> list[int]:
    """The axes to join, slowest-varying first: TensorFlow's element order is row-major for ``axis=None``
    and, for a list, varies the first listed axis fastest."""
    axes = list(range(ndim - 1, -1, -1)) if axis is None else np.asarray(axis).reshape(-1).tolist()
    out: list[int] = []
    for a in axes:
        if not isinstance(a, int) or not -ndim <= a < builtins.max(ndim, 1):
            raise InvalidArgumentError(f"tf.strings.{what}: axis {a!r} is out of range for a tensor of rank {ndim}")
        if a % ndim not in out:
            out.append(a % ndim)
    return out[::-1]


def reduce_join(inputs: Any, axis: Any = None, keepdims: bool = False, separator: str = "",
                name: str | None = None) -> Any:
    """``tf.strings.reduce_join``: the strings along ``axis`` (all axes for ``None``) joined with
    ``separator``, in row-major order; ``keepdims`` keeps the joined axes with length 1."""
    texts = _texts(inputs, "reduce_join", "inputs")
    axes = _axes(axis, texts.ndim, "reduce_join") if texts.ndim else []
    kept = [a for a in range(texts.ndim) if a not in axes]
    moved = np.transpose(texts, kept + axes) if texts.ndim else texts
    rows = moved.reshape(moved.shape[:len(kept)] + (-1,))
    joined = [str(separator).join(str(t) for t in row) for row in rows.reshape(-1, rows.shape[-1])]
    shape = tuple(1 if a in axes else texts.shape[a] for a in range(texts.ndim)) if keepdims else \
        tuple(texts.shape[a] for a in kept)
    return _strings(joined, shape)


def _rows(pieces: list[list], shape: tuple, what: str, make: Any) -> Any:
    """One row per input string, as a dense tensor of shape ``shape + (row length,)``."""
    lengths = sorted({len(p) for p in pieces})
    if len(lengths) > 1:
        raise ValueError(
            f"tf.strings.{what}: the strings give rows of different lengths ({lengths[0]} and {lengths[-1]}); "
            "TensorFlow returns a RaggedTensor here and onnxforge has no ragged tensors. Pass strings of equal "
            "length, or one string at a time (each gives a dense 1-D tensor).")
    width = lengths[0] if lengths else 0
    return make([v for p in pieces for v in p], tuple(shape) + (width,))


def unicode_split(input: Any, input_encoding: str, errors: str = "replace",  # noqa: A002 (TensorFlow's name)
                  replacement_char: int = 65533, name: str | None = None) -> Any:
    """``tf.strings.unicode_split``: each string split into its characters (a new last axis)."""
    _encoding(input_encoding, "unicode_split", "input_encoding")
    texts = _texts(input, "unicode_split")
    pieces = [list(_decode(t, errors, replacement_char, "unicode_split")) for t in texts.flat]
    return _rows(pieces, texts.shape, "unicode_split", _strings)


def _decode(text: Any, errors: str, replacement: int, what: str) -> str:
    if isinstance(text, str):
        return text
    if errors not in ("replace", "ignore", "strict"):
        raise ValueError(f"tf.strings.{what}: `errors` must be 'replace', 'ignore' or 'strict'. "
                         f"Received: errors={errors!r}")
    try:
        decoded = bytes(text).decode("utf-8", errors=errors)
    except UnicodeDecodeError as err:
        raise InvalidArgumentError(f"tf.strings.{what}: invalid UTF-8 in {bytes(text)!r}: {err}") from None
    return decoded.replace("\ufffd", chr(replacement)) if errors == "replace" else decoded


def unicode_decode(input: Any, input_encoding: str, errors: str = "replace",  # noqa: A002
                   replacement_char: int = 65533, replace_control_characters: bool = False,
                   name: str | None = None) -> Any:
    """``tf.strings.unicode_decode``: each string's code points as int32 (a new last axis)."""
    _encoding(input_encoding, "unicode_decode", "input_encoding")
    texts = _texts(input, "unicode_decode")
    pieces = [[ord(c) for c in _decode(t, errors, replacement_char, "unicode_decode")] for t in texts.flat]
    return _rows(pieces, texts.shape, "unicode_decode",
                 lambda flat, shape: as_eager(np.asarray(flat, np.int32).reshape(shape)))


def unicode_encode(input: Any, output_encoding: str, errors: str = "replace",  # noqa: A002
                   replacement_char: int = 65533, name: str | None = None) -> Any:
    """``tf.strings.unicode_encode``: the code points along the last axis of ``input`` as one string each."""
    _encoding(output_encoding, "unicode_encode", "output_encoding")
    codes = np.asarray(_concrete(input, "unicode_encode", "input"))
    if codes.dtype.kind not in "iu" or codes.ndim == 0:
        raise TypeError(f"tf.strings.unicode_encode: `input` must be an integer tensor of code points with at "
                        f"least one axis. Received dtype {codes.dtype}, shape {codes.shape}")
    rows = codes.reshape(-1, codes.shape[-1]) if codes.size else np.zeros((0, 0), np.int64)

    def char(c: int) -> str:
        if 0 <= c <= 0x10FFFF and not 0xD800 <= c <= 0xDFFF:
            return chr(c)
        if errors == "strict":
            raise InvalidArgumentError(f"tf.strings.unicode_encode: {c} is not a valid code point")
        return "" if errors == "ignore" else chr(replacement_char)
    return _strings(["".join(char(int(c)) for c in row) for row in rows], codes.shape[:-1])


def bytes_split(input: Any, name: str | None = None) -> Any:  # noqa: A002
    """``tf.strings.bytes_split``: each string split into single bytes (a byte that is not a whole UTF-8
    character stays ``bytes`` inside)."""
    texts = _texts(input, "bytes_split")
    pieces = [[_text(bytes([b])) for b in _utf8(t)] for t in texts.flat]
    return _rows(pieces, texts.shape, "bytes_split", _strings)


def split(input: Any, sep: str | None = None, maxsplit: int = -1, name: str | None = None) -> Any:  # noqa: A002
    """``tf.strings.split``: each string's pieces (a new last axis): runs of whitespace for ``sep=None``, else
    the literal ``sep``, keeping empty pieces (``""`` is one empty piece), as TensorFlow. keras.io's movielens
    transformer splits its comma-joined id and rating sequences so, then ``to_number`` and ``.to_tensor()``.
    In a graph, one string (a scalar) is split by ONNX ``StringSplit`` (``onnxforge.ops.strings.split``)."""
    if isinstance(input, (Value, KerasTensor)):
        return _string_ops.split(input, sep, maxsplit)
    texts = _texts(input, "split")
    sep = sep.decode("utf-8") if isinstance(sep, bytes) else sep
    limit = maxsplit if maxsplit >= 0 else -1
    pieces = [(str(t).split(None, limit) if sep is None else str(t).split(sep, limit)) for t in texts.flat]
    return _rows(pieces, texts.shape, "split", _strings)


def length(input: Any, unit: str = "BYTE", name: str | None = None) -> Any:  # noqa: A002
    """``tf.strings.length``: each string's length in bytes (``unit="BYTE"``) or characters (``"UTF8_CHAR"``)."""
    unit = _unit(unit, "length")
    texts = _texts(input, "length")
    counts = [len(_utf8(t)) if unit == "BYTE" else len(_decode(t, "replace", 65533, "length")) for t in texts.flat]
    return as_eager(np.asarray(counts, np.int32).reshape(texts.shape))


def substr(input: Any, pos: Any, len: Any, unit: str = "BYTE", name: str | None = None) -> Any:  # noqa: A002
    """``tf.strings.substr``: ``len`` bytes or characters from ``pos`` (negative: from the end) of each string;
    ``pos`` and ``len`` broadcast against ``input``. A ``pos`` past the end is an error, as in TensorFlow."""
    unit = _unit(unit, "substr")
    texts = _texts(input, "substr")
    starts, sizes = (np.asarray(_concrete(v, "substr", arg)) for v, arg in ((pos, "pos"), (len, "len")))
    if starts.shape != sizes.shape:
        raise InvalidArgumentError(f"tf.strings.substr: `pos` and `len` must have the same shape. Received shapes "
                                   f"{starts.shape} and {sizes.shape}")
    texts, starts, sizes = np.broadcast_arrays(texts, starts, sizes)
    out = []
    for text, start, size in zip(texts.flat, starts.flat, sizes.flat):
        seq: Any = _utf8(text) if unit == "BYTE" else _decode(text, "replace", 65533, "substr")
        n, start = builtins.len(seq), int(start)
        if not -n <= start <= n:
            raise InvalidArgumentError(f"tf.strings.substr: pos {start} out of range for string of length {n}: "
                                       f"{text!r}")
        start = start + n if start < 0 else start
        piece = seq[start:start + builtins.max(int(size), 0)]
        out.append(_text(piece) if unit == "BYTE" else piece)
    return _strings(out, texts.shape)


def strip(input: Any, name: str | None = None) -> Any:  # noqa: A002
    """``tf.strings.strip``: leading and trailing ASCII whitespace removed."""
    texts = _texts(input, "strip")
    return _strings([t.strip(" \t\n\v\f\r") if isinstance(t, str) else bytes(t).strip() for t in texts.flat],
                    texts.shape)


def to_number(string_tensor: Any, out_type: Any = "float32", name: str | None = None) -> Any:
    """``tf.strings.to_number``: each string parsed as a number of ``out_type`` (float32 by default); in a
    graph, an ONNX ``Cast`` from strings (``onnxforge.ops.strings.to_number``)."""
    if isinstance(string_tensor, (Value, KerasTensor)):
        return _string_ops.to_number(string_tensor, out_type)
    dtype = np.dtype(out_type)
    if dtype.kind not in "iuf":
        raise TypeError(f"tf.strings.to_number: `out_type` must be a float or integer type. Received: "
                        f"out_type={out_type!r}")
    texts = _texts(string_tensor, "to_number", "string_tensor")
    values = []
    for t in texts.flat:
        text = _decode(t, "replace", 65533, "to_number").strip()
        try:
            values.append(int(text, 10) if dtype.kind in "iu" else float(text))
        except ValueError:
            raise InvalidArgumentError(f"tf.strings.to_number: StringToNumberOp could not correctly convert "
                                       f"string: {text}") from None
        if dtype.kind in "iu" and not np.iinfo(dtype).min <= values[-1] <= np.iinfo(dtype).max:
            raise InvalidArgumentError(f"tf.strings.to_number: {text} is out of range for {dtype.name}")
    return as_eager(np.asarray(values, dtype).reshape(texts.shape))


def as_string(input: Any, precision: int = -1, scientific: bool = False,  # noqa: A002
              shortest: bool = False, width: int = -1, fill: str = "", name: str | None = None) -> Any:
    """``tf.strings.as_string``: numbers and booleans formatted as TensorFlow does (``%f`` for floats, 6
    digits unless ``precision``; ``scientific`` ``%e``; ``shortest`` ``%g``; ``width`` padded with ``fill``,
    ``" "`` or ``"0"``)."""
    values = np.asarray(_concrete(input, "as_string", "input"))
    if fill not in ("", " ", "0"):
        raise ValueError(f"tf.strings.as_string: `fill` must be '', ' ' or '0'. Received: fill={fill!r}")
    if scientific and shortest:
        raise ValueError("tf.strings.as_string: cannot select both scientific and shortest notation")
    pad = ("0" if fill == "0" else "") + (str(width) if width > -1 else "")
    if values.dtype.kind == "b":
        return _strings([("%" + pad.lstrip("0") + "s") % ("true" if v else "false") for v in values.flat],
                        values.shape)
    if values.dtype.kind in "iu":
        if precision > -1 or scientific or shortest:
            raise ValueError("tf.strings.as_string: precision, scientific and shortest apply to floats only")
        spec = "%" + pad + "d"
    elif values.dtype.kind == "f":
        spec = "%" + pad + (f".{precision}" if precision > -1 else "") + ("e" if scientific else
                                                                           "g" if shortest else "f")
    else:
        raise TypeError(f"tf.strings.as_string: `input` must be a number or bool tensor. Received dtype "
                        f"{values.dtype}")
    return _strings([spec % v for v in values.flat], values.shape)


def format(template: str, inputs: Any, placeholder: str = "{}", summarize: int = 3,  # noqa: A001
           name: str | None = None) -> Any:
    """``tf.strings.format``: ``template`` with each ``placeholder`` replaced by the next tensor of ``inputs``
    printed as ``tf.print`` prints it (``summarize`` items at each end of each axis)."""
    tensors = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    parts = str(template).split(placeholder)
    if builtins.len(parts) - 1 != builtins.len(tensors):
        raise InvalidArgumentError(f"tf.strings.format: {builtins.len(parts) - 1} placeholders in the template "
                                   f"{template!r} for {builtins.len(tensors)} inputs")
    texts = [_format_tensor(_printable(np.asarray(_concrete(t, "format", "inputs"))), summarize) for t in tensors]
    out = parts[0] + "".join(t + p for t, p in zip(texts, parts[1:]))
    return as_eager(np.asarray(out, dtype=object))


def _printable(array: np.ndarray) -> np.ndarray:
    # TensorFlow quotes the strings of a string tensor it prints.
    if is_text(array):
        quoted = np.empty(array.shape, dtype=object)
        quoted.flat[:] = [f'"{v}"' if isinstance(v, str) else repr(v) for v in array.flat]
        return quoted
    return array



def regex_replace(input: Any, pattern: str, rewrite: str, replace_global: bool = True,  # noqa: A002
                  name: str | None = None) -> Any:
    """``tf.strings.regex_replace``: in a graph, ``onnxforge.ops.strings.regex_replace`` (literal patterns
    and character classes); on concrete tensors any pattern, with ``\\1`` group references in ``rewrite``."""
    try:
        return _string_ops.regex_replace(input, pattern, rewrite, replace_global=replace_global)
    except NotImplementedError:
        if isinstance(input, (Value, KerasTensor)):
            raise
    texts = _texts(input, "regex_replace")
    try:
        compiled = re.compile(pattern)
    except re.error as err:
        raise InvalidArgumentError(f"tf.strings.regex_replace: invalid pattern {pattern!r}: {err}") from None

    def expand(match: re.Match) -> str:
        # RE2's rewrite syntax: \0-\9 a group (\0 the whole match), \\ a backslash.
        return re.sub(r"\\([0-9\\])", lambda m: "\\" if m.group(1) == "\\" else match.group(int(m.group(1))) or "",
                      rewrite)
    return _strings([compiled.sub(expand, _decode(t, "replace", 65533, "regex_replace"),
                                  count=0 if replace_global else 1) for t in texts.flat], texts.shape)


def ngrams(data: Any, ngram_width: Any, separator: str = " ", pad_values: Any = None, padding_width: int | None = None,
           preserve_short_sequences: bool = False, name: str | None = None) -> Any:
    """``tf.strings.ngrams``: the ``ngram_width``-grams (an int or a list of widths, concatenated in that order)
    of the tokens along ``data``'s last axis, joined by ``separator``. ``pad_values`` (a string, or a
    ``(left, right)`` pair) adds ``padding_width`` pads (``width - 1`` by default) to both ends;
    ``preserve_short_sequences`` makes a too-short sequence one n-gram of all its tokens."""
    widths = [int(w) for w in np.asarray(ngram_width).reshape(-1).tolist()]
    if builtins.any(w <= 0 for w in widths):
        raise ValueError(f"All ngram_widths must be greater than 0. Got {ngram_width}")
    tokens = _texts(data, "ngrams", "data")
    if tokens.ndim == 0:
        raise ValueError("tf.strings.ngrams: data must have rank 1 or more (a scalar has no token sequence).")
    if pad_values is None:
        left = right = None
    elif isinstance(pad_values, (tuple, list)) and len(pad_values) == 2:
        left, right = (str(_decoded(np.asarray(v)).item()) for v in pad_values)
    elif isinstance(pad_values, (str, bytes)):
        left = right = str(_decoded(np.asarray(pad_values)).item())
    else:
        raise ValueError(f"pad_values must be a string, tuple of strings, or None. Received: {pad_values!r}")
    if padding_width is not None and int(padding_width) < 1:
        raise ValueError(f"padding_width must be greater than 0. Got {padding_width}")
    pieces = []
    for row in tokens.reshape(-1, tokens.shape[-1]):
        grams: list[str] = []
        for w in widths:
            pad = 0 if left is None else (w - 1 if padding_width is None else builtins.min(int(padding_width), w - 1))
            seq = [left] * pad + [str(t) for t in row] + [right] * pad
            found = [str(separator).join(seq[i:i + w]) for i in range(len(seq) - w + 1)]
            if not found and preserve_short_sequences and len(row):
                found = [str(separator).join(seq)]
            grams.extend(found)
        pieces.append(grams)
    return _rows(pieces, tokens.shape[:-1], "ngrams", _strings)


def to_hash_bucket_fast(input: Any, num_buckets: int, name: str | None = None) -> Any:  # noqa: A002
    """``tf.strings.to_hash_bucket_fast``: FarmHash ``Fingerprint64`` of each string modulo ``num_buckets``
    (int64, the input's shape), bit for bit as TensorFlow.

    Example:
        >>> import onnxforge as tf
        >>> tf.strings.to_hash_bucket_fast(["Hello", "TensorFlow", "2.x"], 3).numpy().tolist()
        [0, 2, 2]
    """
    return as_eager(hash_buckets(_texts(input, "to_hash_bucket_fast"), _buckets(num_buckets)))


def to_hash_bucket_strong(input: Any, num_buckets: int, key: Any, name: str | None = None) -> Any:  # noqa: A002
    """``tf.strings.to_hash_bucket_strong``: SipHash-2-4 of each string under ``key`` (two integers) modulo
    ``num_buckets`` (int64), bit for bit as TensorFlow.

    Example:
        >>> import onnxforge as tf
        >>> tf.strings.to_hash_bucket_strong(["Hello", "TF"], 3, [1, 2]).numpy().tolist()
        [2, 0]
    """
    if not isinstance(key, (list, tuple)) or len(key) != 2:
        raise ValueError(f"tf.strings.to_hash_bucket_strong: `key` must be a list of 2 integers. Received: key={key!r}")
    return as_eager(hash_buckets(_texts(input, "to_hash_bucket_strong"), _buckets(num_buckets),
                                 (int(key[0]), int(key[1]))))


def _buckets(num_buckets: Any) -> int:
    if isinstance(num_buckets, bool) or not isinstance(num_buckets, (int, np.integer)) or num_buckets < 1:
        raise ValueError(f"tf.strings: `num_buckets` must be a positive integer. Received: num_buckets={num_buckets!r}")
    return int(num_buckets)
