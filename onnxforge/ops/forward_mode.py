"""``keras.ops.jvp``: forward-mode Jacobian-vector products.

onnxforge differentiates in reverse mode only; a JVP is read off the reverse pass twice (the transpose
trick): ``g(u) = J^T u`` is linear in ``u``, so ``d <g(u), t> / du = J t``. That needs the gradient tapes and
the compiled functions, which sit above ``ops`` in the import flow, so the implementation lives in
``trainer/forward_mode.py`` and registers itself here when ``onnxforge`` is imported.

Example:
    >>> import numpy as np
    >>> import onnxforge
    >>> out, tangent = jvp(onnxforge.ops.sin, (np.float32(0.1),), (np.float32(0.2),))
    >>> round(float(tangent), 5)
    0.199
"""
from __future__ import annotations

__all__ = ["jvp", "register_jvp"]

from typing import Any, Callable

_IMPLEMENTATION: list[Callable[..., Any]] = []


def register_jvp(implementation: Callable[..., Any]) -> None:
    """Install ``jvp``'s implementation (``trainer.forward_mode`` does, on import)."""
    _IMPLEMENTATION[:] = [implementation]


def jvp(fun: Callable[..., Any], primals: Any, tangents: Any, has_aux: bool = False) -> tuple:
    """``(fun(*primals), J t)`` with ``J`` the Jacobian of ``fun`` at ``primals`` and ``t`` the ``tangents``
    (one per primal, same shapes); with ``has_aux``, ``fun`` returns ``(output, aux)`` and the result is
    ``(output, J t, aux)``. On arrays it runs as one compiled program; inside a traced step or model it emits
    graph ops (the function must be differentiable by onnxforge's reverse-mode rules)."""
    if not _IMPLEMENTATION:
        raise RuntimeError("keras.ops.jvp needs onnxforge's training machinery: `import onnxforge` first.")
    return _IMPLEMENTATION[0](fun, primals, tangents, has_aux)
