"""Values gradients do not flow through: the outputs of ``stop_gradient`` and of reads after an assign.

Each such value is an ``Identity`` whose output name is recorded per builder; the autodiff engine cuts the graph
there (``GradientTape`` and compiled steps read ``stopped_outputs``). Kept at the graph level so the trace
(``onnxforge.tracing``) and the ops can both mark values without importing each other.

Example:
    >>> import numpy as np
    >>> from onnxforge.graph import GraphBuilder
    >>> b = GraphBuilder("g")
    >>> out = stop_gradient_value(b, b.const(np.ones(2, np.float32)))
    >>> out.name in stopped_outputs(b)
    True
"""
from __future__ import annotations

__all__ = ["stop_gradient_value", "stopped_outputs"]

import weakref

from .builder import GraphBuilder
from .value import Value

# builder -> outputs of stop-gradient nodes.
_stopped: weakref.WeakKeyDictionary[GraphBuilder, set[str]] = weakref.WeakKeyDictionary()


def stop_gradient_value(b: GraphBuilder, value: Value) -> Value:
    """An ``Identity`` of ``value`` that gradients do not pass."""
    out = b.op("Identity", [value], shape=value.shape)
    _stopped.setdefault(b, set()).add(out.name)
    return out


def stopped_outputs(b: GraphBuilder) -> set[str]:
    """Names of the stop-gradient outputs in ``b``."""
    return _stopped.get(b, set())
