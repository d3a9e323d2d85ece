"""The exponential moving average of the trained weights (``use_ema=True``): checks, graph update, host swaps.

Keras keeps one ``average`` Variable per trained weight. After each update (before the weight's constraint),
``average = m * average + (1 - m) * weight`` with ``m = ema_momentum``, except on the very first step
(``iterations == 0``), where the average takes the weight itself. With ``ema_overwrite_frequency = k``, the
weights are replaced by their averages on every step where ``(iterations + 1) % k == 0``. At the end of
``fit`` (``finalize_variable_values``) the weights take their averages.

Example:
    >>> check_ema_arguments(True, 0.99, 5)
    >>> check_ema_arguments(True, 1.5, None)
    Traceback (most recent call last):
    ...
    ValueError: `ema_momentum` must be in the range [0, 1]. Received: ema_momentum=1.5
"""
from __future__ import annotations

__all__ = ["check_ema_arguments", "ema_graph", "swap_with_averages", "overwrite_with_averages"]

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx

from ..graph import GraphBuilder, Value
from ..variables import Variable


def check_ema_arguments(use_ema: bool, ema_momentum: Any, ema_overwrite_frequency: Any) -> None:
    """Keras's checks of the EMA arguments (made only when ``use_ema`` is set, as Keras does)."""
    if not use_ema:
        return
    if isinstance(ema_momentum, bool) or not isinstance(ema_momentum, (int, float, np.floating, np.integer)) \
            or not 0 <= ema_momentum <= 1:
        raise ValueError(f"`ema_momentum` must be in the range [0, 1]. Received: ema_momentum={ema_momentum}")
    if ema_overwrite_frequency and (isinstance(ema_overwrite_frequency, bool)
                                    or not isinstance(ema_overwrite_frequency, (int, np.integer))
                                    or ema_overwrite_frequency < 1):
        raise ValueError("`ema_overwrite_frequency` must be an integer >= 1 or None. Received: "
                         f"ema_overwrite_frequency={ema_overwrite_frequency}")


def ema_graph(optimizer: Any, b: GraphBuilder, read: Callable[[Variable], Value], variables: Sequence[Variable],
              new_params: Sequence[Value], iterations: Value) -> tuple[list[Value], list[tuple[Variable, Value]]]:
    """The averages' updates and the weights after an overwrite step, in graph ops.

    Args:
        optimizer: an optimizer with ``use_ema`` set (``averages(var)`` gives a weight's average Variable).
        read: a Variable's current graph value; ``iterations`` the step counter before this update.
        new_params: the updated weights (before their constraints).

    Returns:
        ``(new_params, [(average Variable, new value), ...])``.
    """
    first = b.op("Equal", [iterations, b.const(np.asarray(0, np.int64))], shape=())
    momentum = b.op("Where", [first, b.const(np.asarray(0.0, np.float32)),
                              b.const(np.asarray(optimizer.ema_momentum, np.float32))], shape=())
    frequency = optimizer.ema_overwrite_frequency
    overwrite = None
    if frequency:
        step = iterations + 1
        rest = b.op("Mod", [step, b.const(np.asarray(int(frequency), np.int64))], shape=())
        overwrite = b.op("Equal", [rest, b.const(np.asarray(0, np.int64))], shape=())
    params, averages = [], []
    for var, new in zip(variables, new_params):
        average = optimizer.average_of(var)
        m = momentum
        if new.dtype not in (None, onnx.TensorProto.FLOAT):
            m = b.op("Cast", [momentum], to=new.dtype, shape=())
        updated = read(average) * m + new * (1.0 - m)
        averages.append((average, updated))
        params.append(new if overwrite is None else b.op("Where", [overwrite, updated, new], dtype=new.dtype,
                                                          shape=new.shape))
    return params, averages


def overwrite_with_averages(optimizer: Any, var_list: Sequence[Variable]) -> None:
    """Each weight of ``var_list`` that has an average takes its value (Keras's ``finalize_variable_values``)."""
    for var in var_list:
        average = optimizer._averages.get(var.uid)
        if average is not None:
            var.assign(average.numpy())


def swap_with_averages(optimizer: Any) -> None:
    """Exchange every averaged weight's value with its average's (``SwapEMAWeights``)."""
    for var, average in optimizer.averaged_pairs():
        held = np.array(var.numpy(), copy=True)
        var.assign(average.numpy())
        average.assign(held)
