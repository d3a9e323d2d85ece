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

# The active traces, innermost last, each with the thread that entered it: host-value assigns join only a trace of
# their own thread (a data-parallel rank seeding its streams must not write into the program another rank traces).
_stack: list[tuple[TraceContext, int]] = []
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
    return _stack[-1][0]


@contextlib.contextmanager
def entered(trace: TraceContext) -> Iterator[TraceContext]:
    """Make ``trace`` the innermost active trace for the block (``TraceContext.active()``)."""
    _stack.append((trace, threading.get_ident()))
    try:
        yield trace
    finally:
        _stack.pop()


class _ThreadDepth(threading.local):
    """How many blocks of one kind run now on this thread (nested blocks count)."""
    depth = 0

    @contextlib.contextmanager
    def enter(self) -> Iterator[None]:
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1


# Blocks whose ``Variable.assign`` of a host value applies on the host at once even inside a trace: a layer's
# ``build()`` (initial values are set once, as in Keras), not its ``call()``.
_host_assign_blocks = _ThreadDepth()


def host_assigns() -> contextlib.AbstractContextManager[None]:
    """Within the block, assigns of host values change the Variable now, not the traced program."""
    return _host_assign_blocks.enter()


def assigns_on_host() -> bool:
    """Whether a host value assigned now changes the Variable at once: inside a ``host_assigns`` block, outside
    any trace, or while the innermost trace belongs to another thread."""
    return _host_assign_blocks.depth > 0 or not _stack or _stack[-1][1] != threading.get_ident()


def active_trace() -> TraceContext | None:
    """The innermost active trace, or ``None`` outside any (eager code)."""
    return _stack[-1][0] if _stack else None


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
_pipeline = _ThreadDepth()


def data_pipeline() -> contextlib.AbstractContextManager[None]:
    """Within the block a ``Dataset.map`` function runs (see ``in_data_pipeline``)."""
    return _pipeline.enter()


def in_data_pipeline() -> bool:
    """Whether a ``Dataset.map`` function is running now (Keras's preprocessing layers behave as in tf.data)."""
    return _pipeline.depth > 0
