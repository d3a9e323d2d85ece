"""``fit``'s step through an optimizer subclass's own ``apply(grads, trainable_variables)``.

Keras's trainers hand the gradients to ``optimizer.apply``; a subclass that overrides it (keras.io's gradient
centralization subtracts each kernel gradient's mean, then calls ``super().apply``) changes what the update
sees. The compiled step calls that method while tracing, with the gradients as graph values: whatever the
override computes with ``keras.ops`` becomes part of the program, and the gradients it finally passes to the
base ``apply`` (``apply_gradients``) are the ones the optimizer's update is emitted with.
"""
from __future__ import annotations

__all__ = ["overrides_apply", "gradients_through_apply"]

from collections.abc import Sequence
from typing import Any

from ..graph import Value
from ..optimizers.custom_steps import CustomStepMixin
from ..variables import Variable


def overrides_apply(optimizer: Any) -> bool:
    """Whether ``optimizer``'s class defines its own ``apply`` (not onnxforge's ``apply_gradients`` spelling)."""
    return getattr(type(optimizer), "apply", CustomStepMixin.apply) is not CustomStepMixin.apply


def gradients_through_apply(optimizer: Any, ctx: Any, trained: Sequence[Variable],
                            grads: Sequence[Value]) -> tuple[list[Variable], list[Value]]:
    """The ``(variables, gradients)`` that ``optimizer.apply(grads, trained)`` passes on to the base update,
    traced into ``ctx``'s graph (the update itself is emitted by the caller, as for any optimizer)."""
    captured: list[tuple[Any, Any]] = []

    def capture(opt: Any, grads_and_vars: Any) -> Value:
        if opt is not optimizer:
            raise TypeError(f"{type(optimizer).__name__}.apply applied the gradients with another optimizer "
                            f"({type(opt).__name__}); fit() traces one optimizer's update. Received: {opt!r}")
        captured.extend(tuple(p) for p in grads_and_vars)
        return ctx.read(optimizer.iterations)

    if not optimizer.built:   # Keras's fit builds the optimizer before the first step: `super().apply(grads)` works
        optimizer.build(list(trained))
    ctx.apply_gradients = capture
    try:
        with ctx.active():
            optimizer.apply(list(grads), list(trained))
    finally:
        del ctx.apply_gradients
    if not captured:
        raise TypeError(f"{type(optimizer).__name__}.apply returned without passing the gradients on to "
                        "super().apply(grads, trainable_variables): fit() emits the update there. "
                        f"Received: {len(grads)} gradients for {[v.path for v in trained]}")
    known = {v.uid for v in trained}
    variables, out = [], []
    for g, v in captured:
        if not isinstance(v, Variable) or v.uid not in known:
            raise TypeError(f"{type(optimizer).__name__}.apply passed on {v!r}, which is not one of the "
                            f"trainable variables it was given ({[w.path for w in trained]})")
        if g is None:
            continue
        g = g.__onnx_value__() if isinstance(g, Variable) else g
        if not isinstance(g, Value):
            raise TypeError(f"{type(optimizer).__name__}.apply passed on a gradient for {v.path!r} that is not "
                            f"a traced tensor. Received: {g!r}")
        variables.append(v)
        out.append(g)
    return variables, out
