"""What the compiler tells the gradient rules about where a program will run, so a rule can pick the
formulation that is fastest there (every choice computes the same gradient in standard ops).

``session_threads(n)`` is set around the building of a program that will run in sessions with ``n`` intra-op
threads (``None``: not known, as for exports and GPU programs; rules then keep their one-thread choices).

Example:
    >>> with session_threads(2):
    ...     planned_threads()
    2
    >>> planned_threads() is None
    True
"""
from __future__ import annotations

__all__ = ["session_threads", "planned_threads"]

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_THREADS: ContextVar[int | None] = ContextVar("onnxforge_session_threads", default=None)


@contextmanager
def session_threads(threads: int | None) -> Iterator[None]:
    """Within the block, programs are built for sessions with ``threads`` intra-op threads."""
    token = _THREADS.set(threads)
    try:
        yield
    finally:
        _THREADS.reset(token)


def planned_threads() -> int | None:
    """The intra-op threads of the sessions the program being built will run in, if known."""
    return _THREADS.get()
