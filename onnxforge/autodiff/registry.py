"""The registry of gradient rules, keyed by ONNX op type (a plain dict filled next to each rule)."""
from __future__ import annotations

__all__ = ["Rule", "RULES", "register", "register_zero", "lookup"]

from collections.abc import Callable
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from ..graph import Value
    from .context import GradContext

#: ``rule(ctx) -> [gradient of input 0, gradient of input 1, ...]`` with ``None`` where an input gets no
#: gradient. ``ctx`` gives the node, its forward inputs and outputs ``I(i)``/``O(i)``, the incoming
#: output gradients ``GO(i)`` and the builder ``ctx.b``.
Rule = Callable[["GradContext"], "list[Optional[Value]]"]

RULES: dict[str, Rule] = {}


def register(*op_types: str) -> Callable[[Rule], Rule]:
    """Decorator: register ``rule`` for each of ``op_types``."""
    def wrap(rule: Rule) -> Rule:
        for op in op_types:
            if op in RULES:
                raise ValueError(f"A gradient rule for {op!r} is already registered.")
            RULES[op] = rule
        return rule
    return wrap


def register_zero(*op_types: str) -> None:
    """Ops whose float outputs are piecewise constant in their inputs (Floor, Sign, ...): zero gradient."""
    for op in op_types:
        register(op)(lambda ctx: [None] * len(ctx.node.input))


def lookup(op_type: str) -> Rule | None:
    """The rule for ``op_type``, or ``None``."""
    from . import rules  # noqa: F401  (importing the families fills RULES)

    return RULES.get(op_type)
