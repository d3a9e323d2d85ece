"""Gradient accumulation (``gradient_accumulation_steps=k``): an update every ``k`` steps, of the mean gradient.

Keras's rule, step by step (``n`` the optimizer's raw step counter before the step, ``g`` the unscaled gradient):

- ``(n + 1) % k != 0``: the gradient joins the weight's ``gradient_accumulator`` Variable; weights and slots keep
  their values.
- ``(n + 1) % k == 0``: the update runs on ``(g + accumulator) / k`` (clipped and weight-decayed then, as
  always), and the accumulators go back to zero.

Inside the update the optimizer sees ``n // k`` as its step (Adam's bias correction counts updates, not steps),
as does the moving average of ``use_ema``, which Keras updates on every step. A schedule's learning rate reads
the raw counter. Both branches are computed and one is selected (``Where``): ONNX graphs here hold no ``If``
around state updates, and the update branch costs no more than a step without accumulation.

Example:
    >>> check_accumulation_steps(None), check_accumulation_steps(4)
    (None, 4)
    >>> check_accumulation_steps(1)
    Traceback (most recent call last):
    ...
    ValueError: `gradient_accumulation_steps` must be an integer >= 2. Received: gradient_accumulation_steps=1
"""
from __future__ import annotations

__all__ = ["accumulated_update", "check_accumulation_steps"]

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..graph import GraphBuilder, Value
from ..variables import Variable
from .ema import ema_graph

_INT64 = 7   # onnx.TensorProto.INT64


def check_accumulation_steps(steps: Any) -> int | None:
    """Keras's check of ``gradient_accumulation_steps``: ``None``/0 (off) or an integer of at least 2."""
    if not steps:
        return None
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 2:
        raise ValueError("`gradient_accumulation_steps` must be an integer >= 2. Received: "
                         f"gradient_accumulation_steps={steps}")
    return int(steps)


def accumulated_update(optimizer: Any, b: GraphBuilder, read: Callable[[Variable], Value],
                       variables: Sequence[Variable], params: Sequence[Value], grads: Sequence[Value],
                       lr: Value) -> tuple[list[Value], list[tuple[Variable, Value]]]:
    """The weights (before their constraints) and the optimizer state after one step under accumulation.

    Args:
        optimizer: a built-in optimizer with ``gradient_accumulation_steps`` set.
        read: a Variable's current graph value; ``params`` the weights' values, ``grads`` their gradients (as
            scaled by ``loss_scale_factor``); ``lr`` the step's learning rate.

    Returns:
        ``(new weights, [(Variable, new value), ...])`` for the moving averages, slots and accumulators; the
        step counter is the caller's.
    """
    optimizer.build(variables)
    steps = optimizer.gradient_accumulation_steps
    if optimizer.loss_scale_factor is not None:   # Keras sums unscaled gradients
        grads = [g * (1.0 / optimizer.loss_scale_factor) for g in grads]
    raw = read(optimizer.iterations)
    k = b.const(np.asarray(steps, np.int64))
    is_update = b.op("Equal", [b.op("Mod", [raw + 1, k], shape=()), b.const(np.asarray(0, np.int64))], shape=())
    count = b.op("Div", [raw, k], dtype=_INT64, shape=())   # non-negative: truncation is floor
    accumulators = [optimizer.accumulator(v) for v in variables]
    summed = [g + read(a) for g, a in zip(grads, accumulators)]
    slot_vars = [optimizer.slots(v) for v in variables]
    slot_vals = [{name: read(sv) for name, sv in slots.items()} for slots in slot_vars]
    new_params, new_slots = optimizer.update_graph(b, variables, params, [s * (1.0 / steps) for s in summed],
                                                   slot_vals, lr, count, unscaled=True)

    def pick(new: Value, old: Value) -> Value:
        return b.op("Where", [is_update, new, old], dtype=new.dtype, shape=new.shape)

    new_params = [pick(n, p) for n, p in zip(new_params, params)]
    state: list[tuple[Variable, Value]] = []
    if optimizer.use_ema:   # every step, counting updates (Keras's ``iterations`` under accumulation)
        new_params, state = ema_graph(optimizer, b, read, variables, new_params, count)
    for slots, news, olds in zip(slot_vars, new_slots, slot_vals):
        state += [(sv, pick(news[name], olds[name])) for name, sv in slots.items()]
    for acc, s in zip(accumulators, summed):   # a scalar zero broadcast by Where: no weight-sized constant
        state.append((acc, b.op("Where", [is_update, b.const(np.zeros((), dtype=acc.dtype)), s], dtype=s.dtype,
                                          shape=s.shape)))
    return new_params, state
