"""Graph values out of scope: a tensor that leaked out of a finished ``tf.function`` trace (a global assigned while
tracing, TensorFlow's tf.function guide's ``leaky_function``) must not be used by another graph, where its name
names another node or nothing (onnxruntime would report a cyclic or broken graph). TensorFlow refuses it with a
``TypeError``; so does ``check_in_scope``, before any node uses it.

Example:
    >>> from onnxforge.graph import GraphBuilder
    >>> first, second = GraphBuilder(), GraphBuilder()
    >>> leaked = first.input("x", 1, (1,))
    >>> close(first)
    >>> try:
    ...     check_in_scope(second, leaked)
    ... except TypeError as e:
    ...     print(str(e)[:40])
    Graph tensor 'x' was created while traci
"""
from __future__ import annotations

__all__ = ["check_in_scope", "close"]

from typing import Any


def close(builder: Any) -> None:
    """Mark ``builder``'s trace finished: its values are out of scope in any other graph from now on."""
    builder.closed = True


def check_in_scope(builder: Any, value: Any) -> None:
    """Raise ``TypeError`` when ``value`` belongs to another builder whose trace is finished (``close``)."""
    owner = value.builder
    if owner is not None and owner is not builder and getattr(owner, "closed", False):
        raise TypeError(f"Graph tensor {value.name!r} was created while tracing another tf.function and is out of "
                        "scope here. Return it from that function, or pass it as an argument.")
