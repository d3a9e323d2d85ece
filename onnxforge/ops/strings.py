"""String ops in standard ONNX operators: ``lower``, ``upper``, ``regex_replace``, ``regex_full_match``,
``join`` (TensorFlow's ``tf.strings`` names and arguments), for text standardization inside a graph such as
the ``custom_standardization`` functions that TensorFlow's text tutorials pass to ``TextVectorization``.

ONNX has no regex replacement, so ``regex_replace`` takes the patterns that such code writes and that have
an exact formulation: a literal string (``"<br />"``) and a character class or alternation of single
characters (``f"[{re.escape(string.punctuation)}]"``). Each literal is removed by ``StringSplit`` on it and
the pieces joined back with the rewrite between them (a ``Loop`` of ``StringConcat``); other patterns are
refused with an error naming them. ``lower`` / ``upper`` change ASCII letters only, as ``tf.strings.lower``
does by default (``StringNormalizer`` with the C locale).

Example:
    >>> import numpy as np
    >>> regex_replace(np.array(["a<br />b!", "c"]), "<br />", " ").tolist()
    ['a b!', 'c']
    >>> lower(np.array(["Hello World"])).tolist()
    ['hello world']
"""
from __future__ import annotations

__all__ = ["lower", "upper", "regex_replace", "regex_full_match", "join", "replace_literal", "split", "to_number"]

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx

from ..graph import Value
from ._util import as_value, int_const, symbolic

try:   # the regex parser re uses (Python 3.11+), else its older public name
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
except ImportError:   # pragma: no cover - Python 3.10
    import sre_parse as _sre_parse  # type: ignore[no-redef]

_STRING, _I64, _BOOL = onnx.TensorProto.STRING, onnx.TensorProto.INT64, onnx.TensorProto.BOOL


def _strings(x: Any, what: str) -> Value:
    from ..tracing import current_trace

    b = x.builder if isinstance(x, Value) else current_trace().b
    value = as_value(x if isinstance(x, Value) else np.asarray(x, dtype=object), b)
    if value.dtype not in (None, _STRING):
        raise TypeError(f"{what}: `input` must be a string tensor. Received a tensor of ONNX type {value.dtype}")
    return value


def _flat(x: Value) -> tuple[Value, Value]:
    """``x`` as a 1-D tensor (the string ops' shape) and its original shape."""
    b = x.builder
    shape = b.op("Shape", [x], dtype=_I64)
    return b.op("Reshape", [x, int_const(b, [-1])], dtype=_STRING, shape=(None,)), shape


def _case(x: Any, action: str, what: str) -> Value:
    x = _strings(x, what)
    b = x.builder
    flat, shape = _flat(x)
    changed = b.op("StringNormalizer", [flat], case_change_action=action, locale="C", dtype=_STRING, shape=(None,))
    return b.op("Reshape", [changed, shape], dtype=_STRING, shape=x.shape)


@symbolic
def lower(input: Any, encoding: str = "", name: str | None = None) -> Value:  # noqa: A002 (TensorFlow's name)
    """``tf.strings.lower``: ASCII letters to lower case."""
    return _case(input, "LOWER", "strings.lower")


@symbolic
def upper(input: Any, encoding: str = "", name: str | None = None) -> Value:  # noqa: A002
    """``tf.strings.upper``: ASCII letters to upper case."""
    return _case(input, "UPPER", "strings.upper")


def replace_literal(flat: Value, literal: str, rewrite: str, first_only: bool = False) -> Value:
    """Every (or the first) occurrence of ``literal`` in the 1-D string tensor ``flat`` replaced by
    ``rewrite``, left to right without overlaps (``str.replace``)."""
    b = flat.builder
    attrs = {"maxsplit": 1} if first_only else {}
    pieces, counts = b.op("StringSplit", [flat], outputs=2, delimiter=literal, **attrs)
    pieces.dtype, pieces.shape = _STRING, (flat.shape[0] if flat.shape else None, None)
    counts.dtype, counts.shape = _I64, flat.shape
    sep = b.const(np.asarray(rewrite, dtype=object), _STRING) if rewrite else None
    sb = b.body_builder()
    i = sb.body_input("piece_i", _I64, ())
    cond = sb.body_input("piece_cond", _BOOL, ())
    acc = sb.body_input("joined", _STRING, flat.shape)
    piece = sb.op("Gather", [pieces, i], axis=1, dtype=_STRING, shape=flat.shape)
    left = acc if not rewrite else sb.op("StringConcat", [acc, sep], dtype=_STRING, shape=flat.shape)
    glued = sb.op("StringConcat", [left, piece], dtype=_STRING, shape=flat.shape)
    # Rows split into fewer pieces are padded with "": those columns must not add the rewrite.
    present = sb.op("Less", [i, counts], dtype=_BOOL, shape=flat.shape)
    first = sb.op("Equal", [i, sb.const(np.asarray(0, np.int64))], dtype=_BOOL, shape=())
    step = sb.op("Where", [first, piece, sb.op("Where", [present, glued, acc], dtype=_STRING, shape=flat.shape)],
                 dtype=_STRING, shape=flat.shape)
    sb.output(sb.op("Identity", [cond], dtype=_BOOL, shape=()))
    sb.output(step)
    body = sb.to_graph(name=b.fresh("replace_body"))
    count = b.op("Gather", [b.op("Shape", [pieces], dtype=_I64), int_const(b, [1])], axis=0, dtype=_I64, shape=(1,))
    count = b.op("Reshape", [count, int_const(b, [])], dtype=_I64, shape=())
    empty = b.op("Where", [b.op("Equal", [flat, flat], dtype=_BOOL, shape=flat.shape),
                           b.const(np.asarray("", dtype=object), _STRING), flat], dtype=_STRING, shape=flat.shape)
    return b.op("Loop", [count, "", empty], body=body, dtype=_STRING, shape=flat.shape)


def _pattern_plan(pattern: str) -> tuple[str, Any]:
    """``("literal", text)`` or ``("chars", [c, ...])`` for the patterns ``regex_replace`` can write exactly."""
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(f"strings.regex_replace: `pattern` must be a non-empty string. Received: {pattern!r}")
    try:
        items = list(_sre_parse.parse(pattern))
    except Exception as err:  # re.error and its older spellings
        raise ValueError(f"strings.regex_replace: invalid regex {pattern!r}: {err}") from None
    if all(str(op) == "LITERAL" for op, _ in items):
        return "literal", "".join(chr(c) for _, c in items)
    if len(items) == 1:
        op, arg = items[0]
        chars = _class_chars(str(op), arg)
        if chars is not None:
            return "chars", chars
    raise NotImplementedError(
        f"strings.regex_replace: the pattern {pattern!r} has no formulation in standard ONNX operators (ONNX has no "
        "regex replacement). Supported: a literal string, or a character class / alternation of single characters "
        "such as '[!\"#$%]'.")


def _class_chars(op: str, arg: Any) -> list[str] | None:
    if op == "IN":
        chars: list[str] = []
        for kind, value in arg:
            if str(kind) == "LITERAL":
                chars.append(chr(value))
            elif str(kind) == "RANGE" and value[1] - value[0] < 4096:
                chars.extend(chr(c) for c in range(value[0], value[1] + 1))
            else:
                return None   # a negated class or a category (\s, \w) matches an open set
        return chars
    if op == "BRANCH":
        branches = arg[1]
        if all(len(list(s)) == 1 and str(list(s)[0][0]) == "LITERAL" for s in branches):
            return [chr(list(s)[0][1]) for s in branches]
    return None


@symbolic
def regex_replace(input: Any, pattern: str, rewrite: str, replace_global: bool = True,  # noqa: A002
                  name: str | None = None) -> Value:
    """``tf.strings.regex_replace`` for literal patterns and single-character classes (see the module
    docstring); ``rewrite`` is inserted as is."""
    x = _strings(input, "strings.regex_replace")
    if not isinstance(rewrite, str):
        raise TypeError(f"strings.regex_replace: `rewrite` must be a string. Received: {rewrite!r}")
    kind, what = _pattern_plan(pattern)
    if "\\" in rewrite:
        raise NotImplementedError(f"strings.regex_replace: group references and escapes in `rewrite` are not "
                                  f"supported. Received: rewrite={rewrite!r}")
    b = x.builder
    flat, shape = _flat(x)
    if kind == "literal":
        flat = replace_literal(flat, what, rewrite, first_only=not replace_global)
    else:
        if not replace_global:
            raise NotImplementedError("strings.regex_replace: replace_global=False with a character class is not "
                                      "supported.")
        if any(c in rewrite for c in what):
            raise NotImplementedError(f"strings.regex_replace: a rewrite {rewrite!r} holding a character of the "
                                      f"pattern {pattern!r} is not supported (the characters are replaced in turn).")
        for ch in dict.fromkeys(what):
            flat = replace_literal(flat, ch, rewrite)
    return b.op("Reshape", [flat, shape], dtype=_STRING, shape=x.shape)


@symbolic
def regex_full_match(input: Any, pattern: str, name: str | None = None) -> Value:  # noqa: A002
    """``tf.strings.regex_full_match``: whether each whole string matches ``pattern`` (RE2 syntax)."""
    x = _strings(input, "strings.regex_full_match")
    b = x.builder
    flat, shape = _flat(x)
    hit = b.op("RegexFullMatch", [flat], pattern=pattern, dtype=_BOOL, shape=(None,))
    return b.op("Reshape", [hit, shape], dtype=_BOOL, shape=x.shape)


@symbolic
def join(inputs: Sequence[Any], separator: str = "", name: str | None = None) -> Value:
    """``tf.strings.join``: the strings of ``inputs`` (same shapes, or broadcast) joined elementwise."""
    if not isinstance(inputs, (list, tuple)) or not inputs:
        raise ValueError(f"strings.join: `inputs` must be a non-empty list of string tensors. Received: {inputs!r}")
    values = [_strings(v, "strings.join") for v in inputs]
    b = values[0].builder
    out = values[0]
    sep = b.const(np.asarray(separator, dtype=object), _STRING) if separator else None
    for v in values[1:]:
        if sep is not None:
            out = b.op("StringConcat", [out, sep], dtype=_STRING)
        out = b.op("StringConcat", [out, v], dtype=_STRING)
    return out


@symbolic
def split(input: Any, sep: str | None = None, maxsplit: int = -1, name: str | None = None) -> Value:  # noqa: A002
    """``tf.strings.split`` of one string (a scalar): its pieces, a 1-D string tensor (``StringSplit``).

    Without ``sep`` runs of whitespace separate the pieces; with it every ``sep`` does (empty pieces kept),
    as Python's ``str.split``. TensorFlow returns a ``RaggedTensor`` for a tensor of several strings, which
    onnxforge has no type for: that is refused, naming the way round."""
    x = _strings(input, "strings.split")
    if x.shape is None or len(x.shape) != 0:
        raise NotImplementedError(
            f"strings.split: splitting a tensor of shape {x.shape} gives a RaggedTensor in TensorFlow, which "
            "onnxforge does not represent. Split each string (a scalar) on its own, or use TextVectorization "
            "(its split='whitespace' pads the tokens of each row).")
    b = x.builder
    attrs = {"maxsplit": int(maxsplit)} if maxsplit is not None and int(maxsplit) >= 0 else {}
    if sep:
        attrs["delimiter"] = sep
    pieces, _ = b.op("StringSplit", [x], outputs=2, **attrs)
    pieces.dtype, pieces.shape = _STRING, (None,)
    return pieces


@symbolic
def to_number(string_tensor: Any, out_type: Any = "float32", name: str | None = None) -> Value:
    """``tf.strings.to_number``: each string parsed as a number of ``out_type`` (float32 by default)."""
    from ._util import dtype_enum

    x = _strings(string_tensor, "strings.to_number")
    return x.builder.op("Cast", [x], to=dtype_enum(out_type), shape=x.shape)
