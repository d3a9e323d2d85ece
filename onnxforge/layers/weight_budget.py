"""A cap on the memory that creating weights may take, for rebuilding models from untrusted files.

A model file's config says how big each layer is (``Dense(units=...)``, ``Embedding(input_dim=...)``); a
hostile one can ask for terabytes before any weight is read. Loaders run the rebuild inside
:func:`weight_budget`, sized from what the file really holds, and ``Layer.add_weight`` charges every new
weight against it *before* allocating, so such a file fails with a clear error instead of exhausting memory.

Example:
    >>> import onnxforge as of
    >>> with weight_budget(1024, "demo.keras"):
    ...     of.layers.Dense(4).build((None, 8))     # 32 floats + 4: fits
    >>> try:
    ...     with weight_budget(1024, "demo.keras"):
    ...         of.layers.Dense(10**6).build((None, 10**6))
    ... except ValueError as e:
    ...     print(str(e)[:60])
    demo.keras: layer 'dense_1' asks for weight 'kernel' of shap
"""
from __future__ import annotations

__all__ = ["weight_budget", "charge"]

import contextlib
import contextvars
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

_BUDGET: contextvars.ContextVar[list | None] = contextvars.ContextVar("onnxforge_weight_budget", default=None)


@contextlib.contextmanager
def weight_budget(max_bytes: int, source: str) -> Iterator[None]:
    """Within the block, all weights created together may take at most ``max_bytes`` bytes."""
    token = _BUDGET.set([int(max_bytes), int(max_bytes), source])
    try:
        yield
    finally:
        _BUDGET.reset(token)


def charge(shape: tuple[Any, ...], dtype: Any, layer: str, weight: str | None) -> None:
    """Account for a weight about to be created; raises ``ValueError`` when the budget would be exceeded."""
    budget = _BUDGET.get()
    if budget is None:
        return
    nbytes = math.prod(int(d) for d in shape) * np.dtype(dtype).itemsize
    budget[0] -= nbytes
    if budget[0] < 0:
        raise ValueError(f"{budget[2]}: layer {layer!r} asks for weight {weight!r} of shape {tuple(shape)} "
                         f"({nbytes} bytes); the model's weights would take more than the {budget[1]} bytes the file "
                         "can hold. The file's config does not match its weights (or is hostile); refusing it.")
