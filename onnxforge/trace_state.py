"""What is active now: the stack of traces layers emit into, the autocast scope, and the eager hook.

A bottom module (it imports nothing from onnxforge), so ``Variable`` (below ``tracing``) can find the trace
it is read in, and the eager executor (``onnxforge.eager``, which compiles and runs programs and so sits
above the layers in the import flow) can register itself here for layers and ops to reach.
"""
from __future__ import annotations

__all__ = ["current_trace", "active_trace", "entered", "host_assigns", "assigns_on_host", "set_eager_executor", "eager_executor", "autocast_scope",
           "autocast_dtype", "data_pipeline", "in_data_pipeline"]

import contextlib
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .tracing import TraceContext

_stack: list[TraceContext] = []
# The dtype Variables read inside a layer's call are cast to (Keras's AutocastScope); None: no cast.
_autocast: list[str | None] = []
# The eager executor (``onnxforge.eager``): it compiles and runs, so it sits above the layers in the import
# flow; it registers itself here when onnxforge is imported, and layers and ops reach it through this hook.
_executor: Any = None


@contextlib.contextmanager
def autocast_scope(dtype: str | None) -> Iterator[None]:
    """Within the block, float Variables with ``autocast=True`` read as graph values of ``dtype``."""
    _autocast.append(dtype)
    try:
        yield
    finally:
        _autocast.pop()


def autocast_dtype() -> str | None:
    """The dtype of the innermost autocast scope, or ``None`` (no scope, or one that turns casting off)."""
    return _autocast[-1] if _autocast else None


def current_trace() -> TraceContext:
    """The innermost active trace; layer code outside a trace is an error."""
    if not _stack:
        raise RuntimeError("No active trace: layers and Variables emit graph ops only while a model is being "
                           "compiled (inside TraceContext.active()).")
    return _stack[-1]


@contextlib.contextmanager
def entered(trace: TraceContext) -> Iterator[TraceContext]:
    """Make ``trace`` the innermost active trace for the block (``TraceContext.active()``)."""
    _stack.append(trace)
    _owners.append(threading.get_ident())
    try:
        yield trace
    finally:
        _stack.pop()
        _owners.pop()


# Per thread, how many blocks run now whose ``Variable.assign`` of a host value applies on the host at once even
# inside a trace: a layer's ``build()`` (initial values are set once, as in Keras), not its ``call()``.
_host_assign_depth = threading.local()
# The thread that entered each trace on ``_stack``: host-value assigns join only a trace of their own thread (a
# data-parallel rank seeding its streams must not write into the program another rank is tracing).
_owners: list[int] = []


@contextlib.contextmanager
def host_assigns() -> Iterator[None]:
    """Within the block, assigns of host values change the Variable now, not the traced program."""
    _host_assign_depth.n = getattr(_host_assign_depth, "n", 0) + 1
    try:
        yield
    finally:
        _host_assign_depth.n -= 1


def assigns_on_host() -> bool:
    """Whether a host value assigned now changes the Variable at once: inside a ``host_assigns`` block, or
    while the innermost trace belongs to another thread."""
    return getattr(_host_assign_depth, "n", 0) > 0 or not _owners or _owners[-1] != threading.get_ident()


def active_trace() -> TraceContext | None:
    """The innermost active trace, or ``None`` outside any (eager code)."""
    return _stack[-1] if _stack else None


def set_eager_executor(executor: Any) -> None:
    """Register what runs layers and ops on concrete arrays outside a trace (``onnxforge.eager`` does)."""
    global _executor
    _executor = executor


def eager_executor() -> Any:
    """The registered eager executor (``call_layer(layer, args, kwargs)``, ``run_function(fn, args, kwargs)``)."""
    if _executor is None:
        raise RuntimeError("No eager executor is registered: import onnxforge (the package) to call layers and "
                           "ops on arrays.")
    return _executor


# How many ``Dataset.map`` functions run now on this thread: Keras's data layers convert their inputs as in tf.data
# there (layers read it, the Dataset sets it, and layers sit below the Dataset in the import flow).
_pipeline = threading.local()


@contextlib.contextmanager
def data_pipeline() -> Iterator[None]:
    """Within the block a ``Dataset.map`` function runs (see ``in_data_pipeline``)."""
    _pipeline.depth = getattr(_pipeline, "depth", 0) + 1
    try:
        yield
    finally:
        _pipeline.depth -= 1


def in_data_pipeline() -> bool:
    """Whether a ``Dataset.map`` function is running now (Keras's preprocessing layers behave as in tf.data)."""
    return getattr(_pipeline, "depth", 0) > 0
