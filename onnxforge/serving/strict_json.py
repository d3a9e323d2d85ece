"""Decoding a request body as JSON without the standard library's silent choices.

``json.loads`` keeps the *last* of duplicated keys (``{"x": [[1]], "x": [[2]]}``), where another reader
in front of the server (a proxy, a WAF, a logger) may keep the first: the two would disagree on what was
asked. It also turns a number too large for a float64 (``1e400``, a 100,000-digit decimal) into infinity,
so a finite value the client wrote would reach the model as ``inf``, past the range check that refuses
``1e39`` for a float32 input. :func:`loads_request` refuses both with a :class:`JSONRequestError` naming
the key or the number. ``NaN`` and ``Infinity`` written as such stay accepted (Python's ``json.dumps``
writes them; the answer lists non-finite outputs under ``"non_finite"``).

Example:
    >>> loads_request(b'{"inputs": {"x": [[1, 2.5]]}}')
    {'inputs': {'x': [[1, 2.5]]}}
    >>> try:
    ...     loads_request(b'{"inputs": {"x": [[1]], "x": [[2]]}}')
    ... except JSONRequestError as e:
    ...     print(e)
    duplicate key 'x' in one JSON object (which one counts would depend on the reader)
"""
from __future__ import annotations

__all__ = ["JSONRequestError", "loads_request"]

import json
import math
from typing import Any


class JSONRequestError(ValueError):
    """The body is JSON, but ambiguous or beyond what the server computes with (a 400)."""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise JSONRequestError(f"duplicate key {key[:64]!r} in one JSON object (which one counts would "
                                   "depend on the reader)")
        out[key] = value
    return out


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        shown = text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"
        raise JSONRequestError(f"the number {shown} is beyond the float64 range (max 1.8e308)")
    return value


def loads_request(body: bytes | str) -> Any:
    """``json.loads(body)``, refusing duplicated keys and numbers that overflow a float64.

    Raises:
        JSONRequestError: a duplicated key or an overflowing number.
        ValueError: not JSON at all (``json.JSONDecodeError``, ``UnicodeDecodeError``, an integer of more
            digits than Python converts).
        RecursionError: nested too deeply.
    """
    return json.loads(body, object_pairs_hook=_object, parse_float=_float)
