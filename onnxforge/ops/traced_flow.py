"""The hook through which ``keras.ops`` control flow on traced tensors reaches ONNX ``If`` / ``Loop``.

``ops.cond``, ``ops.while_loop``, ``ops.fori_loop`` and ``ops.switch`` decide in Python while tracing when
their condition (or index, or bounds) is known then. When it is a traced tensor (``ops.sum(x) > 0`` inside
a layer's ``call()``), the branch or the trip count is known only when the program runs: the same lowering
as a traced ``tf.cond`` / ``tf.while_loop`` then applies, one ``If`` running only the branch taken, one
``Loop`` running as long as the condition holds, both differentiated by ``autodiff/rules/control_flow.py``.
``ops.scan`` / ``ops.map`` / ``ops.vectorized_map`` over a first axis whose size is known only at run time
(the batch) become one ONNX ``Scan`` the same way.

That lowering lives in ``tf_compat/graph_flow.py`` (and ``graph_scan.py``), above ``ops/`` in the flow (it needs ``tf.nest`` and
``TensorArray``), so it registers itself here when imported (``import onnxforge`` imports it), as the
eager executor and the functional tensors do.

Example:
    >>> import onnxforge
    >>> from onnxforge.ops.traced_flow import lowering
    >>> sorted(lowering())
    ['cond', 'scan', 'while']
"""
from __future__ import annotations

__all__ = ["register_traced_flow", "lowering", "is_traced"]

from collections.abc import Callable
from typing import Any

from ..graph import Value
from ..trace_state import active_trace

_LOWERING: dict[str, Callable[..., Any]] = {}


def register_traced_flow(**kinds: Callable[..., Any]) -> None:
    """Install a lowering by kind: ``cond=f(pred, true_fn, false_fn)`` and
    ``while_=f(cond, step, state, keep, maximum_iterations, shape_invariants)`` (``graph_flow``'s), and
    ``scan=f(fn, init, xs, reverse)`` (``graph_scan``'s)."""
    _LOWERING.update({k.rstrip("_"): fn for k, fn in kinds.items()})


def lowering() -> dict[str, Callable[..., Any]]:
    """The registered lowering, by kind (``"cond"``, ``"while"``, ``"scan"``); refuses when none is
    registered."""
    if not _LOWERING:
        raise RuntimeError("keras.ops control flow on a traced tensor needs onnxforge.tf_compat.graph_flow, "
                           "which `import onnxforge` registers; import onnxforge first.")
    return _LOWERING


def is_traced(x: Any) -> bool:
    """Whether ``x`` is a value of a graph being traced (known only when the program runs)."""
    # A Variable read inside a trace is a traced value too: its value changes between runs of the program.
    return isinstance(x, Value) or (hasattr(x, "__onnx_value__") and active_trace() is not None)
