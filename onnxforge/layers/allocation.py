"""Weight creation under a loader's budget: a saved config cannot make onnxforge allocate what the file lacks.

A config is a few bytes of JSON; ``Dense(10**12)`` in it would ask for four terabytes. While a loader
rebuilds a model from a file it knows the shapes of the tensors the file really stores, so it opens a
:func:`weight_budget` with them: every weight a layer creates (``Layer.add_weight``, an ``OnnxModel``'s
declared weights) must claim a stored tensor of the same shape *before* its initializer runs. A weight
no stored tensor matches fails with :class:`WeightBudgetError` naming the layer, the weight and the
shape, and nothing is allocated. Outside a budget (building models in code) nothing is checked.

Example:
    >>> with weight_budget([(3, 2), (2,)], "demo.onnx"):
    ...     claim("dense", "kernel", (3, 2))
    ...     try:
    ...         claim("dense", "bias", (10**12,))
    ...     except WeightBudgetError as e:
    ...         print(str(e).split(";")[0])
    layer 'dense' declares weight 'bias' of shape (1000000000000,) (1000000000000 elements), but demo.onnx stores no unclaimed tensor of that shape
"""
from __future__ import annotations

__all__ = ["WeightBudgetError", "weight_budget", "claim", "active", "unstored_weights"]

import math
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any


class WeightBudgetError(ValueError):
    """A weight a config declares has no matching tensor in the file being loaded (nothing was allocated)."""


class _Budget:
    def __init__(self, shapes: Iterable[tuple[int, ...]], source: str) -> None:
        self.remaining: Counter[tuple[int, ...]] = Counter(tuple(int(d) for d in s) for s in shapes)
        self.source = source

    def take(self, owner: str, name: str, shape: tuple[int, ...]) -> None:
        if self.remaining[shape] > 0:
            self.remaining[shape] -= 1
            return
        left = sorted((s for s, k in self.remaining.items() if k > 0), key=math.prod, reverse=True)
        shown = ", ".join(str(s) for s in left[:6]) + (" ..." if len(left) > 6 else "")
        raise WeightBudgetError(
            f"{owner} declares weight {name!r} of shape {shape} ({math.prod(shape)} elements), but "
            f"{self.source} stores no unclaimed tensor of that shape; the architecture does not match the "
            f"stored weights (unclaimed shapes: {shown or 'none'}), so nothing was allocated")


_BUDGET: ContextVar[_Budget | None] = ContextVar("onnxforge_weight_budget", default=None)


@contextmanager
def weight_budget(shapes: Iterable[tuple[int, ...]], source: str) -> Iterator[None]:
    """Within the block, every weight created must claim one of ``shapes`` (each usable once).

    Args:
        shapes: the shapes of the tensors the file stores for the model's weights.
        source: the file, for messages.
    """
    token = _BUDGET.set(_Budget(shapes, source))
    try:
        yield
    finally:
        _BUDGET.reset(token)


def active() -> bool:
    """Whether a loader's budget is open in this context."""
    return _BUDGET.get() is not None


_UNSTORED: ContextVar[int | None] = ContextVar("onnxforge_unstored_weights", default=None)


@contextmanager
def unstored_weights(max_elements: int) -> Iterator[None]:
    """Within the block, weights a file never stores (Keras saves a LoRA layer's merged kernel, not its
    factors) claim nothing, but each may hold at most ``max_elements``: the caller passes the size of a
    weight that did claim a stored tensor, so the file still bounds what its config can allocate."""
    token = _UNSTORED.set(int(max_elements))
    try:
        yield
    finally:
        _UNSTORED.reset(token)


def claim(owner: str, name: Any, shape: tuple[int, ...]) -> None:
    """Called before a weight of ``shape`` is allocated; raises :class:`WeightBudgetError` if the open
    budget has no tensor of that shape left. A no-op outside :func:`weight_budget`."""
    budget = _BUDGET.get()
    if budget is None:
        return
    shape = tuple(int(d) for d in shape)
    limit = _UNSTORED.get()
    if limit is None:
        budget.take(f"layer {owner!r}", str(name), shape)
    elif math.prod(shape) > limit:
        raise WeightBudgetError(
            f"layer {owner!r} declares weight {name!r} of shape {shape} ({math.prod(shape)} elements), which the "
            f"file does not store and which may hold at most {limit} elements (the size of the stored weight it "
            f"derives from) while loading {budget.source}, so nothing was allocated")
